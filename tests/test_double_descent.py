"""double_descent: the min-norm solution against numpy's pseudo-inverse and against every
other interpolator, ridge against its normal equations, interpolation at p ≥ n, the random
Fourier features (deterministic, nested, approximating the Gaussian kernel), the label noise,
the batched family of networks against separate nets, the claims' rules, and the quick
claims (slow)."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.cli import main
from sutskever30.core.run import open_run
from sutskever30.papers.double_descent.experiment import PAPER
from sutskever30.papers.double_descent.experiments import model_wise
from sutskever30.papers.double_descent.experiments.common import noisy_mnist
from sutskever30.papers.double_descent.experiments.random_features import (
    SMOKE,
    RandomFeaturesConfig,
    claims,
    largest_rise,
)
from sutskever30.papers.double_descent.model import (
    LeastSquares,
    MLPFamily,
    RandomFourierFeatures,
    flip_labels,
    gaussian_kernel,
    min_norm_solution,
    mlp_parameters,
    one_hot,
    zero_one_error,
)

from .conftest import has_dataset

F64 = torch.float64


def _problem(n: int, p: int, seed: int = 0, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, p, generator=gen, dtype=F64), torch.randn(n, k, generator=gen, dtype=F64)


def _features(n: int, p_max: int, seed: int = 0) -> tuple[RandomFourierFeatures, torch.Tensor]:
    """Random Fourier features of n points spread like MNIST pixels (in [0, 1)^784)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=gen) * (torch.rand(n, 784, generator=gen) < 0.2)
    rff = RandomFourierFeatures(
        d=784, p_max=p_max, bandwidth=5.0, generator=torch.Generator().manual_seed(seed + 1)
    )
    return rff, x


@pytest.mark.parametrize("n,p", [(40, 10), (40, 40), (40, 90), (30, 300)])
def test_min_norm_equals_numpy_pinv(n, p):
    phi, y = _problem(n, p)
    beta = min_norm_solution(phi, y)
    reference = np.linalg.pinv(phi.numpy()) @ y.numpy()
    np.testing.assert_allclose(beta.numpy(), reference, rtol=1e-8, atol=1e-10)


def test_min_norm_of_a_rank_deficient_matrix_equals_pinv():
    phi, y = _problem(40, 60)
    phi[:, 30:] = phi[:, :30] @ torch.randn(30, 30, dtype=F64)  # rank 30 < n, p
    beta = min_norm_solution(phi, y)
    assert LeastSquares(phi, y).rank == 30
    np.testing.assert_allclose(beta.numpy(), np.linalg.pinv(phi.numpy()) @ y.numpy(), atol=1e-8)


def test_min_norm_interpolator_has_the_smallest_norm():
    phi, y = _problem(30, 80)
    beta = min_norm_solution(phi, y)
    torch.testing.assert_close(phi @ beta, y, rtol=0, atol=1e-9)  # it interpolates
    null = torch.linalg.svd(phi).Vh[30:].T  # (p, p − n): Φ · null = 0
    torch.testing.assert_close(beta.T @ null, torch.zeros(3, 50, dtype=F64), rtol=0, atol=1e-10)
    gen = torch.Generator().manual_seed(1)
    for scale in (1e-3, 1.0, 10.0):
        other = beta + scale * null @ torch.randn(50, 3, generator=gen, dtype=F64)
        torch.testing.assert_close(phi @ other, y, rtol=0, atol=1e-8)  # interpolates too
        assert other.norm() > beta.norm()


@pytest.mark.parametrize("n,p", [(40, 15), (25, 70)])
def test_ridge_solves_its_normal_equations(n, p):
    phi, y = _problem(n, p)
    ls = LeastSquares(phi, y)
    for lam in (1e-3, 0.5, 20.0):
        reference = torch.linalg.solve(phi.T @ phi + lam * torch.eye(p, dtype=F64), phi.T @ y)
        torch.testing.assert_close(ls.coefficients(lam), reference, rtol=1e-9, atol=1e-11)
    norms = [float(ls.coefficients(lam).norm()) for lam in (1e-3, 0.5, 20.0)]
    assert norms[0] > norms[1] > norms[2]  # more shrinkage, smaller norm
    torch.testing.assert_close(ls.coefficients(1e-12), ls.coefficients(0.0), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError):
        ls.coefficients(-1.0)


def test_random_features_interpolate_exactly_from_p_equal_n():
    n = 50
    rff, x = _features(n, 10 * n)
    y_labels = torch.arange(n) % 10
    y = one_hot(y_labels, 10)
    for p in (n, n + 1, 2 * n, 10 * n):
        phi = rff(x, p)
        beta = min_norm_solution(phi, y)
        assert torch.linalg.matrix_rank(phi) == n
        assert zero_one_error(phi @ beta, y_labels) == 0.0
        torch.testing.assert_close(phi @ beta, y, rtol=0, atol=1e-5)
    phi = rff(x, n - 10)  # below the threshold the fit cannot interpolate all n·K targets
    assert (phi @ min_norm_solution(phi, y) - y).abs().max() > 0.1


def test_feature_map_is_deterministic_given_the_seed_and_nested():
    rff, x = _features(8, 300, seed=3)
    again, _ = _features(8, 300, seed=3)
    other, _ = _features(8, 300, seed=4)
    torch.testing.assert_close(rff(x, 300), again(x, 300), rtol=0, atol=0)
    assert not torch.allclose(rff(x, 300), other(x, 300))
    # φ_p is the first p features of the same draw, rescaled by sqrt(2/p)
    torch.testing.assert_close(rff(x, 100), math.sqrt(300 / 100) * rff(x, 300)[:, :100])
    with pytest.raises(ValueError):
        rff(x, 301)


def test_features_approximate_the_gaussian_kernel():
    rff, x = _features(6, 20_000)
    phi = rff(x, 20_000)
    kernel = gaussian_kernel(x, x, bandwidth=5.0)
    assert float(kernel.min()) < 0.5  # the points are not all alike at this bandwidth
    torch.testing.assert_close(phi @ phi.T, kernel, rtol=0, atol=0.03)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.5])
def test_label_noise_flips_exactly_the_fraction_to_another_class(fraction):
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (1001,), generator=gen)
    noisy, flipped = flip_labels(y, fraction=fraction, classes=10, generator=gen)
    changed = torch.nonzero(noisy != y).flatten()
    assert len(changed) == round(fraction * 1001) == len(flipped)
    assert set(changed.tolist()) == set(flipped.tolist())
    assert noisy.min() >= 0 and noisy.max() <= 9
    if fraction >= 0.2:  # every other class receives flipped labels
        shifts = ((noisy - y) % 10)[flipped]
        assert set(shifts.tolist()) == set(range(1, 10))


@pytest.mark.skipif(not has_dataset("mnist"), reason="MNIST not installed")
def test_noisy_mnist_subset():
    data = noisy_mnist(n=500, noise=0.2, val_size=100, test_size=200, seed=0)
    assert data.x_train.shape == (500, 784) and data.x_test.shape == (200, 784)
    assert float(data.x_train.min()) >= 0 and float(data.x_train.max()) < 1
    assert int((data.y_train != data.y_clean).sum()) == 100
    again = noisy_mnist(n=500, noise=0.2, val_size=100, test_size=200, seed=0)
    assert torch.equal(again.y_train, data.y_train) and torch.equal(again.x_train, data.x_train)
    assert len(set(data.y_clean.tolist())) == 10


def _separate_nets(family: MLPFamily) -> list[nn.Sequential]:
    """Standalone nets holding the family's blocks."""
    nets, start = [], 0
    for k, h in enumerate(family.widths):
        net = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, 10)).double()
        with torch.no_grad():
            net[0].weight.copy_(family.w1[:, start : start + h].T)
            net[0].bias.copy_(family.b1[start : start + h])
            net[2].weight.copy_(family.w2[start : start + h, k].T)
            net[2].bias.copy_(family.b2[k])
        nets.append(net)
        start += h
    return nets


def test_family_of_nets_trains_each_net_as_if_alone():
    gen = torch.Generator().manual_seed(0)
    family = MLPFamily(widths=(3, 5, 9), generator=gen).double()
    nets = _separate_nets(family)
    x, y = torch.rand(64, 784, generator=gen, dtype=F64), torch.randint(0, 10, (64,), generator=gen)
    logits = family(x)
    for k, net in enumerate(nets):
        torch.testing.assert_close(logits[:, k], net(x))
    opt = torch.optim.Adam(family.parameters(), lr=1e-2)
    opts = [torch.optim.Adam(net.parameters(), lr=1e-2) for net in nets]
    for _ in range(5):
        opt.zero_grad()
        family.loss(x, y).backward()
        opt.step()
        for net, o in zip(nets, opts, strict=True):
            o.zero_grad()
            F.cross_entropy(net(x), y).backward()
            o.step()
    after = family(x)
    for k, net in enumerate(nets):
        torch.testing.assert_close(after[:, k], net(x), rtol=1e-9, atol=1e-9)


def test_parameter_counts():
    for h in (1, 12, 128):
        net = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, 10))
        assert mlp_parameters(h) == sum(p.numel() for p in net.parameters()) == 795 * h + 10
    assert MLPFamily(widths=(2, 7)).parameters_per_net() == [1600, 5575]


def test_largest_rise():
    assert largest_rise([0.5, 0.4, 0.3, 0.3]) == 0.0
    assert largest_rise([0.3, 0.6, 0.2, 0.25]) == pytest.approx(0.3)
    assert largest_rise([0.5, 0.2, 0.4, 0.1, 0.45]) == pytest.approx(0.35)


def _verdicts(tmp_path, test_err: list[float], ridge: list[float]) -> dict[str, bool]:
    cfg = RandomFeaturesConfig(n=100, ratios=(0.5, 1.0, 2.0, 10.0))
    run = open_run(
        slug="double_descent",
        experiment="random_features",
        preset="smoke",
        cfg=cfg,
        seed=0,
        device=torch.device("cpu"),
        out=tmp_path,
        resume=False,
        quiet=True,
    )
    fits = [
        {"p": p, "test_err": e, "test_err_ridge": r}
        for p, e, r in zip(cfg.ps, test_err, ridge, strict=True)
    ]
    claims(run, cfg, fits)
    return {c.id: c.as_dict()["holds"] for c in run.claims}


def test_claims_follow_the_curves(tmp_path):
    good = _verdicts(tmp_path, [0.3, 0.6, 0.25, 0.2], [0.25, 0.22, 0.2, 0.18])
    assert good == {"peak_at_threshold": True, "second_descent": True, "ridge_removes_peak": True}
    classical = _verdicts(tmp_path, [0.3, 0.25, 0.4, 0.6], [0.25, 0.22, 0.2, 0.18])
    assert classical["peak_at_threshold"] is False and classical["second_descent"] is False
    ridge_peaks = _verdicts(tmp_path, [0.3, 0.6, 0.25, 0.2], [0.25, 0.3, 0.2, 0.18])
    assert ridge_peaks["ridge_removes_peak"] is False
    ridge_worse = _verdicts(tmp_path, [0.3, 0.6, 0.25, 0.2], [0.65, 0.62, 0.2, 0.18])
    assert ridge_worse["ridge_removes_peak"] is False


@pytest.mark.parametrize(
    "bad",
    [
        {"ratios": (0.5, 0.9, 2.0)},  # no p = n
        {"ratios": (1.0, 2.0, 3.0)},  # nothing below the threshold
        {"ratios": (0.5, 2.0, 1.0)},  # not increasing
        {"n": 10, "ratios": (0.5, 0.52, 1.0, 2.0)},  # two ratios, one p
        {"n": 10, "ratios": (0.01, 1.0, 2.0)},  # no feature at all
        {"noise": 0.95},
        {"peak_window": (1.1, 1.5)},
        {"lambdas": (0.0, 1.0)},
        {"bandwidth": 0.0},
        {"test_size": 10_001},
    ],
)
def test_random_features_config_rejects_meaningless_values(bad):
    with pytest.raises(ValueError):
        RandomFeaturesConfig(**bad)


@pytest.mark.parametrize("bad", [{"widths": (4, 2)}, {"widths": ()}, {"steps": 0}, {"lr": 0}])
def test_model_wise_config_rejects_meaningless_values(bad):
    with pytest.raises(ValueError):
        model_wise.ModelWiseConfig(**bad)


def test_smoke_sweep_crosses_the_threshold():
    assert SMOKE.ps[0] < SMOKE.n < SMOKE.ps[-1] and SMOKE.n in SMOKE.ps


@pytest.mark.skipif(not has_dataset("mnist"), reason="MNIST not installed")
def test_bench_times_the_experiments_own_training_step(tmp_path):
    run = open_run(
        slug="double_descent",
        experiment="model_wise",
        preset="quick",
        cfg=model_wise.QUICK,
        seed=0,
        device=torch.device("cpu"),
        out=tmp_path,
        resume=False,
        quiet=True,
    )
    (case,) = PAPER.bench(run)
    before = [p.detach().clone() for p in case.model.parameters()]
    assert math.isfinite(case.step(0)["loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, case.model.parameters(), strict=True))


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    code = main(["run", "double_descent", "--out", str(tmp_path), "-q", "--no-publish"])
    assert code == 0
    found = list(tmp_path.glob("double_descent/*/quick-*/results.json"))
    assert len(found) == 2
    for path in found:
        for claim in json.loads(path.read_text())["claims"]:
            if claim["asserted"]:
                assert claim["holds"], claim
