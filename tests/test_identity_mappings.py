"""Identity Mappings (He et al. 2016): each unit ordering of Fig. 4 and shortcut of Fig. 2
against its formula, the gradient ratio against its analytic value, parameter counts."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.papers.identity_mappings.experiment import PAPER
from sutskever30.papers.identity_mappings.experiments.deep_training import SMOKE, TrainingConfig
from sutskever30.papers.identity_mappings.experiments.gradient_flow import (
    GradientConfig,
    gradient_profile,
)
from sutskever30.papers.identity_mappings.model import (
    ORDERINGS,
    VARIANTS,
    CifarResNet,
    NetConfig,
    ResidualUnit,
    UnitConfig,
    count_parameters,
)

from .conftest import has_dataset
from .scratch import scratch_run


def _randomize_bn(module: torch.nn.Module) -> None:
    """Non-trivial BN statistics and affine parameters, so a misplaced BN changes outputs."""
    gen = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen))
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=gen))
            m.bias.data.copy_(torch.randn(c, generator=gen))


def _fig4(unit: ResidualUnit, x: torch.Tensor) -> torch.Tensor:
    """Fig. 4's five units, written out: (a) … (e)."""
    (c1, c2), bns = unit.convs, unit.bns
    order = unit.unit.ordering
    if order == "original":
        return F.relu(x + bns[1](c2(F.relu(bns[0](c1(x))))))
    if order == "bn_after_add":
        return F.relu(unit.bn_out(x + c2(F.relu(bns[0](c1(x))))))
    if order == "relu_before_add":
        return x + F.relu(bns[1](c2(F.relu(bns[0](c1(x))))))
    if order == "relu_preact":
        return x + bns[1](c2(F.relu(bns[0](c1(F.relu(x))))))
    assert order == "full_preact"
    return x + c2(F.relu(bns[1](c1(F.relu(bns[0](x))))))


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_each_ordering_puts_bn_and_relu_where_fig4_says(ordering):
    unit = ResidualUnit(c_in=8, c_out=8, unit=UnitConfig(ordering=ordering))
    _randomize_bn(unit)
    unit.eval()
    x = torch.randn(3, 8, 6, 6)
    torch.testing.assert_close(unit(x), _fig4(unit, x), atol=1e-5, rtol=1e-5)


def _zero_residual(module: torch.nn.Module) -> None:
    """F(x) = 0 in every unit: the last weight layer of each branch is zeroed (a BN after
    it maps 0 to its bias, 0 at initialization)."""
    for m in module.modules():
        if isinstance(m, ResidualUnit):
            torch.nn.init.zeros_(m.convs[-1].weight)


def test_full_preact_output_is_x_plus_f_with_no_relu_after_the_addition():
    """With F = 0 the full pre-activation unit passes negative inputs unchanged; the
    original unit's ReLU after the addition clips them."""
    x = torch.randn(2, 8, 5, 5)
    assert (x < 0).any()
    for ordering, expected in (("full_preact", x), ("original", F.relu(x))):
        unit = ResidualUnit(c_in=8, c_out=8, unit=UnitConfig(ordering=ordering))
        _zero_residual(unit)
        torch.testing.assert_close(unit(x), expected)


def test_constant_scaling_scales_the_shortcut():
    unit = ResidualUnit(
        c_in=8, c_out=8, unit=UnitConfig(ordering="full_preact", shortcut="scaling")
    )
    x = torch.randn(2, 8, 5, 5)
    f = unit.residual(x)
    torch.testing.assert_close(unit(x), 0.5 * x + f)
    both = ResidualUnit(c_in=8, c_out=8, unit=VARIANTS["scaling_both"])
    torch.testing.assert_close(both(x), F.relu(0.5 * x + 0.5 * both.residual(x)))


@pytest.mark.parametrize("kind", ["exclusive_gating", "shortcut_gating"])
def test_gating_formulas(kind):
    unit = ResidualUnit(c_in=8, c_out=8, unit=UnitConfig(ordering="full_preact", shortcut=kind))
    torch.nn.init.normal_(unit.gate.bias)  # gates away from their −6 start
    x = torch.randn(2, 8, 5, 5)
    w, b = unit.gate.weight[:, :, 0, 0], unit.gate.bias  # (C_out, C_in), (C_out,)
    g = torch.sigmoid(torch.einsum("oc,bchw->bohw", w, x) + b[None, :, None, None])
    f = unit.residual(x)
    expected = (1 - g) * x + (g * f if kind == "exclusive_gating" else f)
    torch.testing.assert_close(unit(x), expected, atol=1e-5, rtol=1e-5)
    assert float(VARIANTS[kind].gate_bias) == -6.0


def test_conv1x1_and_dropout_shortcuts():
    x = torch.randn(2, 8, 5, 5)
    conv = ResidualUnit(
        c_in=8, c_out=8, unit=UnitConfig(ordering="full_preact", shortcut="conv1x1")
    )
    w = conv.proj.weight[:, :, 0, 0]
    torch.testing.assert_close(
        conv(x), torch.einsum("oc,bchw->bohw", w, x) + conv.residual(x), atol=1e-5, rtol=1e-5
    )
    drop = ResidualUnit(
        c_in=8, c_out=8, unit=UnitConfig(ordering="full_preact", shortcut="dropout")
    )
    _zero_residual(drop)
    torch.testing.assert_close(drop.eval()(x), x)
    y = drop.train()(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], 2 * x[kept])  # inverted dropout, p = 0.5
    assert 0.3 < kept.float().mean() < 0.7


def test_downsampling_unit_subsamples_and_zero_pads_the_identity():
    unit = ResidualUnit(c_in=8, c_out=16, stride=2, unit=UnitConfig(ordering="full_preact"))
    _zero_residual(unit)
    x = torch.randn(2, 8, 6, 6)
    y = unit(x)
    assert y.shape == (2, 16, 3, 3)
    torch.testing.assert_close(y[:, :8], x[:, :, ::2, ::2])
    torch.testing.assert_close(y[:, 8:], torch.zeros(2, 8, 3, 3))


@pytest.mark.parametrize("name,lam", [("full_preact", 1.0), ("full_preact_scaling", 0.5)])
def test_gradient_ratio_of_the_linear_case_is_analytic(name, lam):
    """With every F = 0 the stack is x_L = λ^L x_0 (Eq. 4, 6 with no residual term), so
    ‖∂L/∂x_l‖ / ‖∂L/∂x_L‖ = λ^(L−l) exactly: 1 for identity, 0.5^(L−l) for scaling."""
    units = 12
    net = CifarResNet(NetConfig(depth=2 * units + 2, stages=1, width=4, unit=VARIANTS[name]))
    _zero_residual(net)
    x, y = torch.randn(4, 3, 8, 8), torch.arange(4)
    grads, power = gradient_profile(net, x, y)
    ratios = grads / grads[-1]
    np.testing.assert_allclose(ratios, lam ** np.arange(units, -1, -1), rtol=1e-5)
    np.testing.assert_allclose(power[-1] / power[0], lam ** (2 * units), rtol=1e-5)


def test_identity_gradient_keeps_the_direct_term_and_scaling_loses_it():
    """At initialization (F ≠ 0) the full pre-activation stack's gradient ratio stays ≥ 1/2
    (Eq. 5's "1"), while λ = 0.5 leaves the stack's ratio orders of magnitude away."""
    units = 30
    x, y = torch.randn(8, 3, 8, 8), torch.arange(8) % 10
    logs = {}
    for name in ("full_preact", "full_preact_scaling"):
        torch.manual_seed(0)
        net = CifarResNet(NetConfig(depth=2 * units + 2, stages=1, width=8, unit=VARIANTS[name]))
        grads, _ = gradient_profile(net, x, y)
        logs[name] = math.log10(grads[0] / grads[-1])
    assert -0.3 <= logs["full_preact"] <= 1.5 * math.log10(units + 1)
    assert abs(logs["full_preact_scaling"]) > logs["full_preact"] + 1


@pytest.mark.parametrize("depth,params", [(56, 853_018), (110, 1_727_962)])
def test_original_net_matches_resnet_table6_counts(depth, params):
    """The original unit with identity (option A) shortcuts is ResNet's CIFAR net: 0.85M and
    1.7M parameters (ResNet, Table 6; exact counts of that architecture)."""
    assert (
        count_parameters(CifarResNet(NetConfig(depth=depth, unit=VARIANTS["original"]))) == params
    )


def test_preactivation_net_counts_and_layers():
    """Full pre-activation moves two BNs onto the narrower unit inputs where stages change
    (−2·16 −2·32) and adds the final BN (+2·64): 32 more than the original ResNet-110."""
    preact = CifarResNet(NetConfig(depth=110, unit=VARIANTS["full_preact"]))
    assert count_parameters(preact) == 1_727_962 + 32
    convs = [m for m in preact.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) + 1 == 110  # 6n + 2 weighted layers
    r164 = CifarResNet(NetConfig(depth=164, unit=UnitConfig(bottleneck=True)))
    assert round(count_parameters(r164) / 1e6, 1) == 1.7  # Table 2: ResNet-164, 1.7M
    assert len([m for m in r164.modules() if isinstance(m, torch.nn.Conv2d)]) + 1 == 164


def test_preactivation_net_activates_conv1_once_and_ends_with_bn_relu():
    net = CifarResNet(NetConfig(depth=14, unit=VARIANTS["full_preact"]))
    units = list(net.units)
    assert units[0].preactivated and not any(u.preactivated for u in units[1:])
    assert isinstance(net.final[0], torch.nn.BatchNorm2d)
    original = CifarResNet(NetConfig(depth=14, unit=VARIANTS["original"]))
    assert isinstance(original.final, torch.nn.Identity)
    assert not any(u.preactivated for u in original.units)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="6n\\+2"):
        NetConfig(depth=21)
    with pytest.raises(ValueError, match="ordering"):
        UnitConfig(ordering="post")
    with pytest.raises(ValueError, match="dropout"):
        UnitConfig(dropout=1.0)
    with pytest.raises(ValueError, match="arms"):
        TrainingConfig(arms=("nope",))
    with pytest.raises(ValueError, match="full_preact"):
        GradientConfig(variants=("original",))


@pytest.mark.skipif(not has_dataset("cifar10"), reason="no CIFAR-10 copy")
def test_bench_steps_change_the_parameters(tmp_path):
    run = scratch_run(tmp_path, "identity_mappings", "deep_training", SMOKE)
    cases = PAPER.bench(run)
    assert [c.name for c in cases] == ["full_preact_56", "original_56", "scaling_56"]
    case = cases[0]
    before = [p.detach().clone() for p in case.model.parameters()]
    assert np.isfinite(case.step(0)["loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, case.model.parameters(), strict=True))


def test_one_batch_overfits():
    model = CifarResNet(NetConfig(depth=8, unit=VARIANTS["full_preact"]))
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    out = tmp_path_factory.mktemp("identity_mappings")
    args = ["run", "identity_mappings", "--out", str(out), "-q", "--no-publish", "--jobs", "3"]
    assert main(args) == 0
    claims = {}
    for path in out.glob("identity_mappings/*/quick-*/results.json"):
        claims.update({c["id"]: c for c in json.loads(path.read_text())["claims"] if c["asserted"]})
    return claims


@pytest.mark.skipif(not has_dataset("cifar10"), reason="no CIFAR-10 copy")
@pytest.mark.slow
@pytest.mark.parametrize(
    "claim_id",
    [
        "identity_gradient_bounded",
        "scaled_gradient_blows_up",
        "preact_not_worse",
        "scaling_worse",
    ],
)
def test_quick_claims_hold(quick_claims, claim_id):
    assert quick_claims[claim_id]["holds"], quick_claims[claim_id]
