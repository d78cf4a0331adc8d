"""Frozen config dataclasses, presets and typed ``--set key=value`` overrides.

An experiment's config is a frozen dataclass; nested dataclasses are addressed with dots
(``--set model.depth=56``). Values are parsed by the field's annotated type, so a typo or a
wrong type fails with a message naming the valid keys or the expected type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, Union, get_args, get_origin

from sutskever30.core.errors import UsageError

PRESETS = ("smoke", "quick", "full")


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type annotations of a dataclass's fields."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def flat_keys(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model.depth": int, ...}``: every settable key of a config and its type."""
    out: dict[str, Any] = {}
    for name, tp in field_types(type(cfg)).items():
        value = getattr(cfg, name)
        if dataclasses.is_dataclass(value):
            out.update(flat_keys(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = tp
    return out


def type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def parse_value(text: str, tp: Any) -> Any:
    """Parse ``text`` as a value of annotated type ``tp``; raise ValueError if it is not one."""
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise ValueError(text)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null", ""):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(text, arg)
            except ValueError:
                continue
        raise ValueError(text)
    if origin is tuple:
        parts = [p for p in text.replace(" ", "").strip("()[]").split(",") if p != ""]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(p, args[0]) for p in parts)
        if len(parts) != len(args):
            raise ValueError(text)
        return tuple(parse_value(p, a) for p, a in zip(parts, args, strict=True))
    if tp is bool:
        return _parse_bool(text)
    if tp is int:
        value = float(text)
        if not value.is_integer():
            raise ValueError(text)
        return int(value)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    raise ValueError(f"unsupported type {tp}")


def _replace_path(cfg: Any, path: list[str], value: Any) -> Any:
    head, *rest = path
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: _replace_path(getattr(cfg, head), rest, value)})


def apply_overrides(cfg: Any, overrides: Iterable[str]) -> Any:
    """Return ``cfg`` with each ``key=value`` applied, typed by the dataclass field.

    Raises UsageError naming the valid keys (unknown key) or the expected type (bad value).
    """
    keys = flat_keys(cfg)
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in keys:
            raise UsageError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(keys))}")
        try:
            value = parse_value(text.strip(), keys[key])
        except ValueError:
            raise UsageError(
                f"bad value {text!r} for {key}: expected {type_name(keys[key])}"
            ) from None
        try:
            cfg = _replace_path(cfg, key.split("."), value)
        except ValueError as err:  # raised by a config's __post_init__ validation
            raise UsageError(f"bad value {text!r} for {key}: {err}") from None
    check_positive(cfg)
    return cfg


# Settings that make a run meaningless unless positive, whatever the experiment: a learning
# rate of 0 trains nothing, 0 steps measure nothing.
POSITIVE = frozenset({"lr", "lrs", "learning_rate", "steps", "batch_size", "epochs"})


def check_positive(cfg: Any) -> None:
    """Raise UsageError if a setting named in :data:`POSITIVE` is ≤ 0 (anywhere in ``cfg``)."""
    for key in flat_keys(cfg):
        if key.rsplit(".", 1)[-1] not in POSITIVE:
            continue
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, (int, float)) and not v > 0 for v in values):
            raise UsageError(f"bad value {value!r} for {key}: must be > 0")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(template: Any, data: dict[str, Any]) -> Any:
    """The config of type ``template``'s with the values of ``data`` (a saved
    ``config.json``'s ``config``); lists become tuples where the field holds a tuple."""
    values = {}
    for f in dataclasses.fields(template):
        if f.name not in data:
            raise UsageError(f"saved config has no {f.name!r}: it was made by another version")
        current, saved = getattr(template, f.name), data[f.name]
        if dataclasses.is_dataclass(current):
            values[f.name] = from_dict(current, saved)
        elif isinstance(current, tuple) and isinstance(saved, list):
            values[f.name] = tuple(saved)
        else:
            values[f.name] = saved
    return dataclasses.replace(template, **values)
