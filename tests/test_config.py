from dataclasses import dataclass, field
from typing import Literal

import pytest

from sutskever30.core.config import apply_overrides, flat_keys, parse_value
from sutskever30.core.errors import UsageError


@dataclass(frozen=True)
class Inner:
    depth: int = 20
    act: Literal["relu", "tanh"] = "relu"


@dataclass(frozen=True)
class Outer:
    lr: float = 0.1
    steps: int = 10
    augment: bool = True
    depths: tuple[int, ...] = (20, 56)
    name: str = "x"
    maybe: float | None = None
    model: Inner = field(default_factory=Inner)

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError("steps must be positive")


def test_overrides_are_typed_and_nested():
    cfg = apply_overrides(
        Outer(),
        [
            "lr=3e-4",
            "steps=1e3",
            "augment=false",
            "depths=8,14,20",
            "model.depth=56",
            "model.act=tanh",
            "maybe=none",
            "name=hello",
        ],
    )
    assert cfg.lr == pytest.approx(3e-4) and isinstance(cfg.lr, float)
    assert cfg.steps == 1000 and isinstance(cfg.steps, int)
    assert cfg.augment is False
    assert cfg.depths == (8, 14, 20)
    assert cfg.model == Inner(depth=56, act="tanh")
    assert cfg.maybe is None and cfg.name == "hello"
    assert Outer() == Outer()  # the original is untouched (frozen, replaced)


def test_unknown_key_names_valid_keys():
    with pytest.raises(UsageError) as err:
        apply_overrides(Outer(), ["nope=1"])
    assert "nope" in str(err.value) and "model.depth" in str(err.value)


@pytest.mark.parametrize(
    "item", ["steps=1.5", "steps=abc", "augment=maybe", "model.act=gelu", "lr", "depths=a,b"]
)
def test_bad_values_are_usage_errors(item):
    with pytest.raises(UsageError):
        apply_overrides(Outer(), [item])


def test_post_init_validation_becomes_usage_error():
    with pytest.raises(UsageError, match="steps must be positive"):
        apply_overrides(Outer(), ["steps=0"])


def test_flat_keys_and_parse_value():
    assert set(flat_keys(Outer())) == {
        "lr",
        "steps",
        "augment",
        "depths",
        "name",
        "maybe",
        "model.depth",
        "model.act",
    }
    assert parse_value("(1, 2)", tuple[int, int]) == (1, 2)
    with pytest.raises(ValueError):
        parse_value("1,2,3", tuple[int, int])
