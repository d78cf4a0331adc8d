"""VLAE: masked convolutions are causal and see exactly their designed receptive field, the
importance-sampled NLL is an upper bound on the exact NLL that tightens with k (checked
against quadrature), free bits equal the ELBO above λ, the band sampler equals a full one,
the training step is deterministic, and the quick preset's claims (slow)."""

import json
import math

import numpy as np
import pytest
import torch

from sutskever30.cli import main
from sutskever30.papers.vlae.experiment import (
    QUICK,
    SMOKE,
    InformationConfig,
    nll_by_k,
    trainer,
)
from sutskever30.papers.vlae.model import (
    SIDE,
    VLAE,
    VLAEConfig,
    elbo,
    free_bits_objective,
    importance_nll,
    log_normal,
    log_weights,
    mask_offsets,
    receptive_field,
    row_logits,
    sample,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny(kernels, *, z_dim=4, channels=4) -> VLAE:
    return VLAE(config=VLAEConfig(z_dim=z_dim, hidden=16, channels=channels, kernels=kernels))


def binary(n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 1, SIDE, SIDE), 0.4), generator=g)


def gradient_into(model: VLAE, row: int, col: int) -> torch.Tensor:
    """∂ logit(row, col) / ∂ x, (28, 28), with every ReLU switched on (c(z) shifted far up):
    the network is then linear in x, so the gradient is non-zero exactly on the pixels that
    some path of unmasked taps reaches."""
    x = binary(1).double().requires_grad_()
    c = model.decoder.condition(torch.randn(1, model.config.z_dim).double()).detach() + 50.0
    model.decoder.logits(x, c)[0, 0, row, col].backward()
    return x.grad[0, 0]


# -- masks and receptive fields ------------------------------------------------------------


def test_mask_offsets_exact():
    assert mask_offsets(3, "A") == {(-1, -1), (-1, 0), (-1, 1), (0, -1)}
    assert mask_offsets(3, "B") == mask_offsets(3, "A") | {(0, 0)}
    assert len(mask_offsets(7, "A")) == (7 * 7 - 1) // 2
    assert mask_offsets(1, "A") == set() and mask_offsets(1, "B") == {(0, 0)}
    with pytest.raises(ValueError):
        mask_offsets(4, "A")
    with pytest.raises(ValueError):
        mask_offsets(3, "C")


def test_receptive_field_by_hand():
    # type-A 3×3 then type-B 3×3: 5 pixels two rows up, 4 one row up (the blind spot at
    # (-1, +2)), 2 to the left: 11
    field = receptive_field((3, 3))
    assert len(field) == 11
    assert (-1, 2) not in field and (-2, 2) in field and (0, 0) not in field
    assert receptive_field(()) == set()
    assert receptive_field((3,)) == mask_offsets(3, "A")


@pytest.mark.parametrize("kernels", [(3,), (3, 3), QUICK.large_kernels])
def test_masked_decoder_is_causal(kernels):
    """Flipping pixel j changes no logit at a pixel ≤ j in raster order, and (but for the odd
    ReLU that is off) does change the logit of pixel j + 1, which sees its left neighbour."""
    model = tiny(kernels, channels=8).double()
    x, z = binary(1).double(), torch.randn(1, 4, dtype=torch.float64)
    c = model.decoder.condition(z)
    with torch.no_grad():
        base = model.decoder.logits(x, c).flatten()  # (784,)
        flipped = x.repeat(SIDE * SIDE, 1, 1, 1).view(SIDE * SIDE, -1)
        j = torch.arange(SIDE * SIDE)
        flipped[j, j] = 1 - flipped[j, j]
        out = model.decoder.logits(flipped.view(-1, 1, SIDE, SIDE), c.expand(len(j), -1, -1, -1))
    changed = (out.flatten(1) - base).abs() > 1e-12  # (j, pixel)
    not_after = torch.ones(SIDE * SIDE, SIDE * SIDE).tril().bool()  # [j, pixel]: pixel ≤ j
    assert not (changed & not_after).any(), "a logit depends on its own or a later pixel"
    left = j[:-1][(j[:-1] + 1) % SIDE != 0]  # pixels whose right neighbour is in the row
    assert changed[left, left + 1].float().mean() > 0.95


@pytest.mark.parametrize("kernels", [(3, 3), (5, 3, 3), QUICK.large_kernels])
def test_receptive_field_measured_by_gradients(kernels):
    """The pixels with a non-zero gradient into the logit at (14, 14) are exactly the
    designed receptive field, blind spot included."""
    row, col = 14, 14
    seen = gradient_into(tiny(kernels).double(), row, col).nonzero().tolist()
    measured = {(y - row, x - col) for y, x in seen}
    assert measured == receptive_field(kernels)


def test_factorized_decoder_sees_no_pixel():
    model = tiny(())
    c = model.decoder.condition(torch.randn(1, 4))
    a, b = (model.decoder.logits(x, c) for x in (binary(1, seed=1), binary(1, seed=2)))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("kernels", [(3, 3), (5, 3), QUICK.large_kernels])
def test_band_logits_equal_full_image_logits(kernels):
    """The sampler computes each row on only the rows it can see; the logits equal those
    of the whole image, for every row."""
    model = tiny(kernels).double()
    x = binary(2).double()
    c = model.decoder.condition(torch.randn(2, 4).double())
    full = model.decoder.logits(x, c)[:, 0]  # (B, 28, 28)
    band = torch.stack([row_logits(model.decoder, x, c, r) for r in range(SIDE)], dim=1)
    torch.testing.assert_close(band, full, rtol=0, atol=1e-12)


def test_sampler_draws_from_the_decoder():
    """Pixels are drawn in raster order from the logits given the pixels drawn so far: a
    loop that reruns the whole image for every pixel draws the same digits."""
    model = tiny((5, 3))
    z = torch.randn(2, 4)
    fast = sample(model, z, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    x = torch.zeros(2, 1, SIDE, SIDE)
    c = model.decoder.condition(z)
    with torch.no_grad():
        for i in range(SIDE):
            for j in range(SIDE):
                p = torch.sigmoid(model.decoder.logits(x, c)[:, 0, i, j])
                x[:, 0, i, j] = torch.bernoulli(p, generator=gen)
    torch.testing.assert_close(fast, x, rtol=0, atol=0)


# -- bounds: ELBO, importance sampling, free bits ------------------------------------------


def exact_log_px(model: VLAE, x: torch.Tensor, points: int = 60) -> torch.Tensor:
    """log p(x) = log ∫ p(x|z) N(z; 0, I) dz for a 2-d latent, by Gauss–Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(points)  # weight exp(−z²/2)
    zs = torch.tensor(np.stack(np.meshgrid(nodes, nodes), -1).reshape(-1, 2), dtype=x.dtype)
    log_w = torch.tensor(
        np.log(np.outer(weights, weights).reshape(-1) / (2 * math.pi)), dtype=x.dtype
    )
    with torch.no_grad():
        out = [
            torch.logsumexp(model.decoder(xi.expand(len(zs), -1, -1, -1), zs) + log_w, 0)
            for xi in x
        ]
    return torch.stack(out)


@pytest.fixture(scope="module")
def latent2():
    """A tiny VLAE with a 2-d latent (so log p(x) can be integrated) and a few images."""
    torch.manual_seed(5)
    model = VLAE(config=VLAEConfig(z_dim=2, hidden=8, channels=2, kernels=(3,))).double()
    with torch.no_grad():
        model.decoder.to_map[2].weight.mul_(0.05)  # p(x|z) smooth in z: quadrature is exact
    x = binary(3, seed=7).double()
    return model, x, exact_log_px(model, x)


def test_importance_nll_bounds_and_tightens(latent2):
    """ELBO ≤ log p(x); the IS estimate with k = 1 is the ELBO; its NLL falls with k and
    stays above the exact NLL, which it reaches at large k."""
    model, x, log_px = latent2
    gen = torch.Generator().manual_seed(11)
    log_w = log_weights(model, x, 4000, generator=gen)  # (k, B)
    mu, logvar = model.encoder(x)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    # k = 1: E_q[log p(z) − log q(z|x)] = −KL exactly, so the mean log-weight is the ELBO
    z = mu + torch.exp(0.5 * logvar) * torch.randn(20_000, *mu.shape, generator=gen).double()
    prior_minus_q = log_normal(z, torch.zeros_like(mu), torch.zeros_like(logvar)) - log_normal(
        z, mu, logvar
    )
    torch.testing.assert_close(prior_minus_q.mean(0), -kl, atol=0.05, rtol=0)
    exact_nll = -log_px.mean().item()
    nll = nll_by_k(log_w, (1, 10, 100, 1000, 4000))
    assert nll[1] > nll[10] > nll[100] > nll[1000] >= exact_nll - 1e-3
    assert nll[1] - exact_nll > 0.1, "the test needs a loose ELBO to show the tightening"
    assert nll[4000] == pytest.approx(exact_nll, abs=0.01)
    assert -log_w.mean().item() == pytest.approx(nll[1], abs=1e-9)


def test_elbo_below_exact_log_likelihood(latent2):
    model, x, log_px = latent2
    draws = 2000
    eps = torch.randn(draws * len(x), 2, generator=torch.Generator().manual_seed(2)).double()
    with torch.no_grad():
        values = elbo(*model.terms(x.repeat(draws, 1, 1, 1), eps)).view(draws, len(x))
    assert (values.mean(0) < log_px).all()


def test_importance_nll_of_known_weights():
    log_w = torch.log(torch.tensor([[1.0, 4.0], [3.0, 2.0]]))  # (k=2, B=2)
    torch.testing.assert_close(importance_nll(log_w), -torch.log(torch.tensor([2.0, 3.0])))
    by_k = nll_by_k(log_w, (1, 2))
    assert by_k[1] == pytest.approx(-log_w.mean().item())
    assert by_k[2] == pytest.approx(-(math.log(2.0) + math.log(3.0)) / 2)


def test_free_bits_equals_elbo_above_lambda():
    log_px_z = torch.tensor([-90.0, -110.0])
    kl = torch.full((2, 8), 0.5)  # 4 groups of 2 dims: 1 nat each
    exact = elbo(log_px_z, kl).mean()
    assert free_bits_objective(log_px_z, kl, lam=0.75, groups=4) == pytest.approx(exact.item())
    assert free_bits_objective(log_px_z, kl, lam=0.0, groups=4) == pytest.approx(exact.item())


def test_free_bits_floors_each_group_below_lambda():
    log_px_z = torch.tensor([-100.0])
    kl = torch.tensor([[0.1, 0.1, 2.0, 2.0]], requires_grad=True)  # groups: 0.2 and 4 nats
    out = free_bits_objective(log_px_z, kl, lam=1.0, groups=2)
    assert out.item() == pytest.approx(-100.0 - 1.0 - 4.0)
    out.backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.0, -1.0, -1.0]]))
    with pytest.raises(ValueError):
        free_bits_objective(log_px_z, kl, lam=1.0, groups=3)


# -- training step and configs ------------------------------------------------------------


class _Run:
    seed = 3
    device = torch.device("cpu")


def test_training_step_learns_and_is_deterministic():
    cfg = SMOKE
    x = torch.rand(64, 1, SIDE, SIDE)
    model_a, _, step_a = trainer(_Run(), cfg, "small", x)
    before = [p.detach().clone() for p in model_a.parameters()]
    first = [step_a(i) for i in range(3)]
    assert all(not torch.equal(b, p) for b, p in zip(before, model_a.parameters(), strict=True))
    _, _, step_b = trainer(_Run(), cfg, "small", x)
    assert [step_b(i) for i in range(3)] == first
    losses = [step_a(0)["loss"] for _ in range(60)]  # the same batch again and again
    assert losses[-1] < first[0]["loss"] - 20


@pytest.mark.parametrize(
    "bad",
    [
        {"groups": 5},
        {"free_bits": -0.1},
        {"small_kernels": ()},
        {"small_kernels": (4,)},
        {"large_kernels": (3, 3)},  # not larger than the small window
        {"is_size": 3000},
        {"is_k": 0},
        {"test_size": 20_000},
    ],
)
def test_config_rejects_meaningless_values(bad):
    with pytest.raises(ValueError):
        InformationConfig(**bad)


def test_quick_preset_sizes():
    assert QUICK.is_k >= 100
    assert len(receptive_field(QUICK.small_kernels)) < len(receptive_field(QUICK.large_kernels))


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    """The quick preset's claims (3 seeds, aggregated), run once for the claim tests."""
    out = tmp_path_factory.mktemp("vlae-quick")
    assert main(["run", "vlae", "--preset", "quick", "--out", str(out), "-q", "--no-publish"]) == 0
    (run_dir,) = (out / "vlae" / "information_placement").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    return {c["id"]: c for c in results["claims"]}


@pytest.mark.slow
def test_quick_small_window_beats_factorized(quick_claims):
    claim = quick_claims["small_window_beats_factorized"]
    assert claim["holds"], claim


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="at the quick budget both PixelCNN decoders leave z at about the free-bits floor "
    "(K·λ = 4 nats): KL(small) vs KL(large) is within seed noise (README: What the quick "
    "run shows)",
)
def test_quick_kl_falls_with_receptive_field(quick_claims):
    claim = quick_claims["kl_falls_with_receptive_field"]
    assert claim["holds"], claim
