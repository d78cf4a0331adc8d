"""Dilated convolutions (Yu & Koltun 2016): the receptive field by gradients (Table 1),
parameter counts, identity initialization (Eqs. 4 and 5), dilated = à-trous convolution,
the scattered-MNIST task, mIoU, and the quick claims (slow)."""

import json

import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.papers.dilated_convolutions import training
from sutskever30.papers.dilated_convolutions.experiment import PRESETS, ContextConfig
from sutskever30.papers.dilated_convolutions.model import (
    DILATIONS,
    TABLE1_RECEPTIVE_FIELD,
    UNDILATED,
    ContextModule,
    FrontEnd,
    count_parameters,
    count_weights,
    identity_init_,
    input_gradient,
    large_widths,
    positive_weights_,
    random_init_,
    receptive_field,
)
from sutskever30.papers.dilated_convolutions.task import (
    BACKGROUND,
    INK_BOX,
    MARGIN,
    confusion,
    iou_per_class,
    make_canvases,
    mean_iou,
    place,
)

from .conftest import has_dataset
from .scratch import scratch_run

# -- the receptive field (the wave's acceptance test) -------------------------------------


def support_of(net: torch.nn.Module, channels: int, size: int = 99) -> torch.Tensor:
    return input_gradient(positive_weights_(net), channels=channels, size=size) > 0


def test_receptive_field_by_gradients_is_exactly_67():
    support = support_of(ContextModule(C=3), 3)
    assert receptive_field(support) == (67, 67)
    assert int(support.sum()) == 67 * 67  # every pixel of the square, none outside
    rows, cols = torch.nonzero(support, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (49 - 33, 49 + 33, 16, 82)


def test_undilated_stack_sees_15():
    support = support_of(ContextModule(C=3, dilations=UNDILATED), 3)
    assert receptive_field(support) == (15, 15) and int(support.sum()) == 15 * 15


def test_receptive_field_after_each_layer_matches_table1():
    module = positive_weights_(ContextModule(C=2))
    fields = [receptive_field(support_of(module.prefix(n), 2))[0] for n in range(1, 9)]
    assert fields == list(TABLE1_RECEPTIVE_FIELD)


def test_large_module_has_the_same_receptive_field():
    support = support_of(ContextModule(C=1, widths=large_widths(1)), 1)
    assert receptive_field(support) == (67, 67) and int(support.sum()) == 67 * 67


def test_dilated_conv_equals_atrous_dense_kernel():
    """A 3×3 filter with dilation l is the (2l+1)×(2l+1) filter with the 3×3 taps spread
    l apart and zeros between ("à trous"): (F ∗_l k)(p) = Σ_{s + l t = p} F(s) k(t)."""
    x = torch.randn(2, 3, 20, 20, dtype=torch.float64)
    k = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    for d in (1, 2, 4):
        dense = torch.zeros(4, 3, 2 * d + 1, 2 * d + 1, dtype=torch.float64)
        dense[:, :, ::d, ::d] = k
        torch.testing.assert_close(
            F.conv2d(x, k, padding=d, dilation=d), F.conv2d(x, dense, padding=d), rtol=0, atol=1e-12
        )


# -- parameter counts ----------------------------------------------------------------------


@pytest.mark.parametrize("C", [1, 11, 21])
def test_basic_module_has_64_C_squared_weights(C):
    dilated = ContextModule(C=C)
    assert count_weights(dilated) == 64 * C * C  # Sec. 3: "64C² parameters"
    assert count_parameters(dilated) == 64 * C * C + 8 * C  # plus one bias per map
    assert count_parameters(ContextModule(C=C, dilations=UNDILATED)) == count_parameters(dilated)


def test_large_module_widths_and_weights():
    C = 3
    module = ContextModule(C=C, widths=large_widths(C))
    assert [conv.out_channels for conv in module.convs()] == [6, 6, 12, 24, 48, 96, 96, 3]
    assert [conv.dilation[0] for conv in module.layers] == list(DILATIONS)
    # 9·(C·2C + 2C·2C + 2C·4C + 4C·8C + 8C·16C + 16C·32C + 32C·32C) + 32C·C
    assert count_weights(module) == (9 * 1710 + 32) * C * C


# -- identity initialization ---------------------------------------------------------------


def test_basic_identity_init_passes_the_input_through():
    module = ContextModule(C=11)
    identity_init_(module)
    x = torch.randn(2, 11, 32, 32)
    torch.testing.assert_close(module(x), torch.relu(x), rtol=0, atol=0)  # Eq. 4, exact
    for conv in module.convs():  # 1[t = 0] 1[a = b]
        centre = conv.weight[:, :, conv.weight.shape[2] // 2, conv.weight.shape[3] // 2]
        torch.testing.assert_close(centre, torch.eye(11))
        assert conv.weight.abs().sum() == 11


def test_large_identity_init_eq5_is_identity_on_nonnegative_input():
    module = ContextModule(C=4, widths=large_widths(4))
    identity_init_(module, noise=0.0)
    x = torch.rand(2, 4, 24, 24)
    torch.testing.assert_close(module(x), x, rtol=1e-5, atol=1e-6)
    first = module.layers[0].weight[:, :, 1, 1]  # C → 2C: output b copies input ⌊b/2⌋ · 1/2
    expected = torch.zeros(8, 4)
    expected[torch.arange(8), torch.arange(8) // 2] = 0.5
    torch.testing.assert_close(first, expected)
    identity_init_(module, noise=0.01, generator=torch.Generator().manual_seed(0))
    noisy = module.layers[3].weight  # 4C → 8C: σ = 0.01 · C / 8C off the matching centre taps
    off = noisy[:, :, 0, 0].detach()
    assert 0.0005 < float(off.std()) < 0.002
    with torch.no_grad():
        err = (module(x) - x).abs().mean() / x.mean()
    assert 0 < err < 0.2  # near the identity, not on it


def test_a_score_map_negative_everywhere_is_dead_under_identity_init():
    """Why the front end must score every class positive on its digits: after Eq. 4 the
    first truncation zeroes a map that is negative everywhere, and max(·, 0) passes it no
    gradient."""
    module = ContextModule(C=3)
    identity_init_(module)
    x = torch.randn(2, 3, 16, 16)
    x[:, 1] = -x[:, 1].abs() - 0.1
    module(x).sum().backward()
    grad = module.layers[0].weight.grad  # (out, in, 3, 3)
    assert torch.all(grad[1] == 0) and grad[0].abs().sum() > 0 and grad[2].abs().sum() > 0


def test_positive_on_own_digits_counts_each_class_on_its_own_pixels():
    from sutskever30.papers.dilated_convolutions.experiment import (
        live_score_maps,
        positive_on_own_digits,
    )

    frontend = torch.nn.Conv2d(1, 11, 1)
    with torch.no_grad():
        frontend.weight.zero_()
        frontend.bias.fill_(-1.0)
        frontend.bias[3] = 1.0  # only digit 3's map is positive, everywhere
        frontend.weight[7, 0] = 2.0  # digit 7's map is positive where the ink is > 0.5
    x = torch.zeros(2, 1, 4, 4)
    y = torch.full((2, 4, 4), BACKGROUND)
    y[0, :2] = 3
    y[1, :2] = 7
    x[1, 0, 0] = 1.0  # ink on half of the 7's pixels
    fractions = positive_on_own_digits(frontend, (x, y))
    assert fractions[3] == 1.0 and fractions[7] == 0.5
    assert fractions[0] == 0.0  # a class absent from the canvases counts as 0
    assert live_score_maps(frontend, (x, y)) == 2


def test_random_init_is_he_normal_and_not_identity():
    module = ContextModule(C=11)
    random_init_(module, generator=torch.Generator().manual_seed(0))
    w = module.layers[2].weight.detach()
    assert abs(float(w.std()) - (2 / (11 * 9)) ** 0.5) < 0.01
    x = torch.rand(1, 11, 16, 16)
    assert (module(x) - x).abs().mean() > 0.1


# -- the task and the measure --------------------------------------------------------------


def digit_set(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits with a solid 16×16 square of ink in the middle of a 28×28 image."""
    images = torch.zeros(n, 28, 28)
    images[:, 6:22, 6:22] = 0.9
    return images, torch.arange(n) % 10


def test_ink_boxes_never_overlap_and_stay_on_the_canvas():
    corners, placed = place(500, 4, 64, torch.Generator().manual_seed(0))
    assert placed.float().mean() > 0.99
    ink = corners + MARGIN  # top-left of each 20×20 ink box
    assert ((ink >= 0) & (ink + INK_BOX <= 64))[placed].all()
    for i in range(4):
        for j in range(i):
            both = placed[:, i] & placed[:, j]
            gap = (corners[:, i] - corners[:, j]).abs()
            assert ((gap >= INK_BOX).any(dim=-1) | ~both).all()


def test_canvas_labels_follow_the_ink():
    images, labels = digit_set()
    gen = torch.Generator().manual_seed(1)
    x, y = make_canvases(images, labels, n=20, digits=3, size=64, ink=0.5, gen=gen)
    assert x.shape == (20, 1, 64, 64) and y.shape == (20, 64, 64)
    assert ((x[:, 0] > 0.5) == (y != BACKGROUND)).all()
    assert int((y != BACKGROUND).sum(dim=(1, 2)).max()) <= 3 * 16 * 16
    # every square of ink carries one digit's label: 256 pixels per placed digit
    counts = torch.stack([torch.bincount(c.flatten(), minlength=11)[:10] for c in y])
    assert ((counts % 256) == 0).all() and (counts.sum(dim=1) == 3 * 256).all()
    x2, y2 = make_canvases(images, labels, n=20, digits=3, size=64, ink=0.5, gen=gen.manual_seed(1))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_validation_and_test_canvases_use_their_own_digits(monkeypatch):
    """Test canvases hold only test digits, validation canvases only validation digits."""
    splits = {"train": 0, "val": 1, "test": 2}

    def fake_digits(split):
        images = torch.zeros(30, 28, 28)
        images[:, 8:20, 8:20] = 1.0
        return images, torch.full((30,), splits[split])

    monkeypatch.setattr(training, "load_digits", fake_digits)
    data = training.load_data(PRESETS["smoke"])
    for split, digit in (("val", 1), ("test", 2)):
        present = set(torch.unique(data[split][1]).tolist())
        assert present == {digit, BACKGROUND}
    assert set(data["train_digits"][1].tolist()) == {0}


def test_miou_by_hand():
    target = torch.tensor([[[0, 0, 1, 1], [10, 10, 10, 10]]])  # (1, 2, 4)
    pred = torch.tensor([[[0, 1, 1, 1], [10, 10, 10, 0]]])
    cm = confusion(pred, target).sum(0)
    iou = iou_per_class(cm)
    # class 0: TP 1, FP 1, FN 1 → 1/3; class 1: TP 2, FP 1 → 2/3; background: 3/4
    torch.testing.assert_close(iou[[0, 1, 10]], torch.tensor([1 / 3, 2 / 3, 3 / 4]).double())
    assert torch.isnan(iou[2:10]).all()
    assert mean_iou(cm) == pytest.approx((1 / 3 + 2 / 3 + 3 / 4) / 3)
    assert mean_iou(confusion(target, target).sum(0)) == 1.0


def test_per_canvas_confusions_add_up():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 11, (5, 8, 8), generator=gen)
    pred = torch.randint(0, 11, (5, 8, 8), generator=gen)
    per = confusion(pred, target)
    assert per.shape == (5, 11, 11)
    assert torch.equal(per[2], confusion(pred[2:3], target[2:3])[0])
    assert int(per.sum()) == 5 * 64


# -- models, configs, training -------------------------------------------------------------


def test_shapes_and_front_end_receptive_field():
    fe = FrontEnd(C=11, width=8, depth=2)
    assert fe(torch.rand(2, 1, 64, 64)).shape == (2, 11, 64, 64)
    assert receptive_field(support_of(fe, 1, 31)) == (5, 5) == (fe.receptive_field,) * 2
    assert ContextModule(C=11)(torch.rand(2, 11, 40, 40)).shape == (2, 11, 40, 40)


@pytest.mark.parametrize(
    "bad",
    [
        {"canvas": 16},
        {"digits": 0},
        {"digits": 10},
        {"ink": 1.0},
        {"module": "huge"},
        {"module_lrs": (1e-3, 0, 1e-3)},
        {"module_lrs": (1e-3,)},
    ],
)
def test_meaningless_configs_are_rejected(bad):
    with pytest.raises(ValueError):
        ContextConfig(**bad)


def test_bad_module_shapes_are_rejected():
    with pytest.raises(ValueError):
        ContextModule(C=4, widths=(4, 4, 4))
    with pytest.raises(ValueError):
        ContextModule(C=4, widths=(8,) * 8)


@pytest.mark.skipif(not has_dataset("mnist"), reason="no MNIST copy")
def test_module_step_learns_on_frozen_front_end(tmp_path):
    cfg = PRESETS["smoke"]
    run = scratch_run(tmp_path, "dilated_convolutions", "context", cfg)
    data = training.load_data(cfg)
    frontend, _, _ = training.frontend_trainer(run, cfg, data)
    before = [p.detach().clone() for p in frontend.parameters()]
    module, _, step = training.module_trainer(run, cfg, data, frontend, training.ARMS[0])
    start = [p.detach().clone() for p in module.parameters()]
    losses = [step(0)["loss"] for _ in range(15)]  # the same batch again and again
    assert losses[-1] < losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(start, module.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(before, frontend.parameters(), strict=True))


@pytest.mark.skipif(not has_dataset("mnist"), reason="no MNIST copy")
def test_bench_times_the_experiments_own_steps(tmp_path):
    from sutskever30.papers.dilated_convolutions.experiment import PAPER, RF_PRESETS

    run = scratch_run(tmp_path, "dilated_convolutions", "receptive_field", RF_PRESETS["quick"])
    cases = PAPER.bench(run)
    assert [c.name for c in cases] == ["frontend", *(arm.name for arm in training.ARMS)]
    assert all(c.examples_per_step == PRESETS["quick"].batch_size for c in cases)
    assert isinstance(cases[1].model, ContextModule) and cases[1].step(0)["loss"] > 0


# -- the quick claims ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    out = tmp_path_factory.mktemp("dilated_convolutions")
    args = ["run", "dilated_convolutions", "--out", str(out), "-q", "--no-publish", "--jobs", "3"]
    assert main(args) == 0
    claims = {}
    for path in out.glob("dilated_convolutions/*/quick-*/results.json"):
        claims.update({c["id"]: c for c in json.loads(path.read_text())["claims"]})
    return claims


@pytest.mark.skipif(not has_dataset("mnist"), reason="no MNIST copy")
@pytest.mark.slow
@pytest.mark.parametrize(
    "claim_id",
    [
        "receptive_field_67",
        "receptive_field_per_layer",
        "large_module_67",
        "undilated_15",
        "dilated_beats_undilated",
        "identity_beats_random",
    ],
)
def test_quick_claims_hold(quick_claims, claim_id):
    assert quick_claims[claim_id]["holds"], quick_claims[claim_id]
