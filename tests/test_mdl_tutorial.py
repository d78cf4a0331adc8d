"""MDL tutorial: exact NML complexity against brute force and the direct sum, Szpankowski's
expansion, the prequential KT code against sequential prediction, the regression codes
against plain least squares, AIC/BIC, the Elias δ lengths, the claims' rules, and the
quick-preset claims (slow)."""

import itertools
import json
import math

import numpy as np
import pytest

from sutskever30.cli import main
from sutskever30.core.errors import DataMissingError
from sutskever30.papers.mdl_tutorial.experiments.complexity import ComplexityConfig
from sutskever30.papers.mdl_tutorial.experiments.markov import MarkovConfig, encode, run_markov
from sutskever30.papers.mdl_tutorial.experiments.polynomial import (
    PolynomialConfig,
    code_lengths,
    recovery_claims,
    sample_trials,
)
from sutskever30.papers.mdl_tutorial.model import (
    LOG2E,
    aic_code_length,
    bernoulli_complexity,
    bernoulli_normalizer,
    bic_code_length,
    context_counts,
    elias_delta_length,
    fit_polynomials,
    fnml_code_length,
    gaussian_ml_code_length,
    kt_code_length,
    ml_code_length,
    multinomial_complexity,
    multinomial_complexity_direct,
    nml_complexity_brute_force,
    orthonormal_design,
    prequential_code_length,
    prequential_gaussian_code_length,
    rissanen_asymptotic,
    signed_integer_length,
    two_part_code_length,
)

from .conftest import has_dataset
from .scratch import scratch_run


# -- exact parametric complexity ------------------------------------------------------------
@pytest.mark.parametrize("n", range(1, 15))
def test_bernoulli_complexity_equals_brute_force_over_all_sequences(n):
    """The acceptance test: log2 Σ over all 2^n sequences of P(x | θ̂(x)), one by one."""
    total = 0.0
    for seq in itertools.product((0, 1), repeat=n):
        k = sum(seq)
        total += (k / n) ** k * ((n - k) / n) ** (n - k)  # Python: 0.0 ** 0 == 1.0
    assert bernoulli_complexity(n) == pytest.approx(math.log2(total), abs=1e-12)
    assert nml_complexity_brute_force(2, n) == pytest.approx(math.log2(total), abs=1e-12)


def _composition_sum(m: int, n: int) -> float:
    """C(m, n) as the plain sum over count vectors h with h_1 + … + h_m = n."""
    total = 0.0
    for h in itertools.product(range(n + 1), repeat=m):
        if sum(h) != n:
            continue
        coef = math.factorial(n) / math.prod(math.factorial(c) for c in h)
        total += coef * math.prod((c / n) ** c for c in h) if n else 1.0
    return total


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 6, 9])
def test_multinomial_recursion_equals_sum_over_count_vectors(m, n):
    expected = math.log2(_composition_sum(m, n))
    assert float(multinomial_complexity(m, n)) == pytest.approx(expected, abs=1e-12)
    assert multinomial_complexity_direct(m, n) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("m", "n"), [(3, 9), (4, 7), (5, 6)])
def test_multinomial_complexity_equals_brute_force_over_all_sequences(m, n):
    assert float(multinomial_complexity(m, n)) == pytest.approx(
        nml_complexity_brute_force(m, n), abs=1e-12
    )


def test_recursion_equals_direct_sum_for_large_alphabets_and_samples():
    ns = np.array([0, 1, 17, 150, 400])
    for m in (2, 7, 20, 65):
        fast = multinomial_complexity(m, ns)
        direct = [multinomial_complexity_direct(m, int(n)) for n in ns]
        np.testing.assert_allclose(fast, direct, rtol=1e-11, atol=1e-11)


def test_exact_small_values():
    # C(m, 1) = m (each one-symbol sequence has ML probability 1); C(2, 2) = 1 + ½ + 1.
    for m in (1, 2, 5, 65):
        assert float(multinomial_complexity(m, 1)) == pytest.approx(math.log2(m), abs=1e-13)
        assert float(multinomial_complexity(m, 0)) == 0.0
    assert bernoulli_complexity(2) == pytest.approx(math.log2(2.5), abs=1e-14)
    assert bernoulli_complexity(0) == 0.0


@pytest.mark.parametrize("n", [1, 7, 100, 5_000])
def test_sublinear_series_equals_binomial_sum(n):
    assert math.log2(bernoulli_normalizer(n)) == pytest.approx(bernoulli_complexity(n), abs=1e-11)


@pytest.mark.parametrize("n", [100, 1_000, 10_000])
def test_bernoulli_normalizer_matches_szpankowski_expansion(n):
    """C(2, n) = √(nπ/2) + 2/3 + √(2π)/(24√n) − 4/(135n) + O(n^{−3/2}) (Szpankowski 1998)."""
    expansion = (
        math.sqrt(n * math.pi / 2)
        + 2 / 3
        + math.sqrt(2 * math.pi) / (24 * math.sqrt(n))
        - 4 / (135 * n)
    )
    assert abs(bernoulli_normalizer(n) - expansion) < 0.1 * n**-1.5


def test_rissanen_asymptotic_is_half_log_n_pi_over_2_for_bernoulli():
    n = np.array([3.0, 100.0, 1e6])
    np.testing.assert_allclose(rissanen_asymptotic(2, n), 0.5 * np.log2(n * math.pi / 2))
    # m = 3: Fisher volume π^{3/2}/Γ(3/2) = 2π
    np.testing.assert_allclose(
        rissanen_asymptotic(3, n), np.log2(n / (2 * math.pi)) + math.log2(2 * math.pi)
    )


def test_bernoulli_gap_to_asymptotic_shrinks_like_inverse_sqrt_n():
    ns = np.array([10, 100, 1_000, 10_000, 100_000])
    gap = np.array([bernoulli_complexity(int(n)) for n in ns]) - rissanen_asymptotic(2, ns)
    assert np.all(gap > 0) and np.all(np.diff(gap) < 0)
    # leading term: log2(1 + (2/3)/√(nπ/2)) ≈ (2/3)/(√(nπ/2) ln 2)
    np.testing.assert_allclose(gap[-1], 2 / 3 / math.sqrt(ns[-1] * math.pi / 2) * LOG2E, rtol=1e-3)


# -- Markov chains --------------------------------------------------------------------------
def _naive_prequential(x, order, m, start, alpha=0.5):
    """The prequential plug-in code, one symbol at a time with dictionaries of counts."""
    pair, ctx, bits = {}, {}, 0.0
    for i in range(start, len(x)):
        c = tuple(x[i - order : i])
        p = (pair.get((c, x[i]), 0) + alpha) / (ctx.get(c, 0) + m * alpha)
        bits -= math.log2(p)
        pair[(c, x[i])] = pair.get((c, x[i]), 0) + 1
        ctx[c] = ctx.get(c, 0) + 1
    return bits


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_prequential_kt_equals_sequential_prediction_and_closed_form(order):
    rng = np.random.default_rng(order)
    m, start = 4, 3
    x = rng.choice(m, size=400, p=[0.5, 0.25, 0.15, 0.1])
    naive = _naive_prequential(list(x), order, m, start)
    assert prequential_code_length(x, order, m, start) == pytest.approx(naive, rel=1e-12)
    counts = context_counts(x, order, m, start)
    assert kt_code_length(counts) == pytest.approx(naive, rel=1e-12)


def test_context_counts_and_order0_codes():
    rng = np.random.default_rng(0)
    m, start = 5, 4
    x = rng.integers(0, m, size=1_000)
    for order in range(start + 1):
        c = context_counts(x, order, m, start)
        assert c.n == len(x) - start == int(c.h.sum())
        np.testing.assert_array_equal(np.bincount(c.context, weights=c.h), c.n_context)
    c0 = context_counts(x, 0, m, start)
    freq = np.bincount(x[start:], minlength=m) / c0.n
    entropy = -(freq[freq > 0] * np.log2(freq[freq > 0])).sum()
    assert ml_code_length(c0) == pytest.approx(c0.n * entropy, rel=1e-12)
    expected = ml_code_length(c0) + float(multinomial_complexity(m, c0.n))
    assert fnml_code_length(c0) == pytest.approx(expected, rel=1e-12)


def test_ml_code_length_never_grows_with_order_but_fnml_charges_for_it():
    """A higher-order chain fits at least as well (nested models); the NML code adds the
    complexity of every context, so on i.i.d. symbols order 0 has the shortest fNML code."""
    rng = np.random.default_rng(1)
    m, start = 3, 3
    x = rng.integers(0, m, size=3_000)
    ml = [ml_code_length(context_counts(x, k, m, start)) for k in range(start + 1)]
    fnml = [fnml_code_length(context_counts(x, k, m, start)) for k in range(start + 1)]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(ml))
    assert int(np.argmin(fnml)) == 0 and int(np.argmin(ml)) == start


def test_aic_and_bic_in_bits():
    ml, p, n = np.array([100.0, 90.0]), np.array([2, 5]), 64
    np.testing.assert_allclose(aic_code_length(ml, p) - ml, p / math.log(2))  # p nats
    np.testing.assert_allclose(bic_code_length(ml, p, n) - ml, p * 3.0)  # (p/2) log2 64


# -- integer codes and regression codes -----------------------------------------------------
def test_elias_delta_lengths_and_kraft_inequality():
    known = {1: 1, 2: 4, 3: 4, 4: 5, 7: 5, 8: 8, 15: 8, 16: 9, 17: 9, 100: 11}
    np.testing.assert_array_equal(elias_delta_length(list(known)), list(known.values()))
    # 2^j integers of length j + 2⌊log2(j+1)⌋ + 1 for each j: the Kraft sum tends to 1
    kraft = np.sum(2.0 ** -elias_delta_length(np.arange(1, 2**20)))
    groups = sum(2.0 ** (-2 * math.floor(math.log2(j + 1)) - 1) for j in range(20))
    assert kraft == pytest.approx(groups, rel=1e-12) and kraft <= 1.0
    assert signed_integer_length(0) == 1 and signed_integer_length(-1) == 4
    with pytest.raises(ValueError):
        elias_delta_length(0)


def test_orthonormal_design_is_nested_and_orthonormal():
    x = np.random.default_rng(0).uniform(-1, 1, size=(3, 40))
    q = orthonormal_design(x, 5)
    np.testing.assert_allclose(
        q.transpose(0, 2, 1) @ q, np.broadcast_to(np.eye(6), (3, 6, 6)), atol=1e-12
    )
    # the first k + 1 columns span the polynomials of degree ≤ k: x^2 is fitted exactly by 3
    proj = q[0, :, :3] @ (q[0, :, :3].T @ x[0] ** 2)
    np.testing.assert_allclose(proj, x[0] ** 2, atol=1e-12)


def test_fits_equal_numpy_polyfit():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(4, 30))
    y = np.sin(3 * x) + 0.1 * rng.standard_normal(x.shape)
    fits = fit_polynomials(x, y, 6)
    for t in range(4):
        for k in range(7):
            coef = np.polynomial.polynomial.polyfit(x[t], y[t], k)
            rss = np.sum((y[t] - np.polynomial.polynomial.polyval(x[t], coef)) ** 2)
            assert fits.rss[t, k] == pytest.approx(rss, rel=1e-9)
    assert np.all(np.diff(gaussian_ml_code_length(fits.rss, 30), axis=1) <= 1e-9)


def test_prequential_gaussian_equals_refitting_every_prefix():
    """Each y_i is coded with the fit to y_0 … y_{i−1} only, and s² = RSS/(i − k − 1)."""
    rng = np.random.default_rng(3)
    n, max_degree, start = 30, 3, 6
    x = rng.uniform(-1, 1, size=(2, n))
    y = x**3 - x + 0.1 * rng.standard_normal(x.shape)
    fast = prequential_gaussian_code_length(x, y, max_degree, start)
    for t in range(2):
        for k in range(max_degree + 1):
            bits = 0.0
            for i in range(start, n):
                coef = np.polynomial.polynomial.polyfit(x[t, :i], y[t, :i], k)
                rss = np.sum((y[t, :i] - np.polynomial.polynomial.polyval(x[t, :i], coef)) ** 2)
                s2 = rss / (i - k - 1)
                resid = y[t, i] - np.polynomial.polynomial.polyval(x[t, i], coef)
                bits += 0.5 * math.log2(2 * math.pi * s2) + resid**2 / (2 * s2) * LOG2E
            assert fast[t, k] == pytest.approx(bits, rel=1e-8)


def test_two_part_code_equals_explicit_encoding():
    """Rebuild the two-part code step by step: rounded ln σ, rounded coefficients, and the
    data coded with the rounded polynomial (its residual computed directly, not through
    the orthogonality identity)."""
    rng = np.random.default_rng(4)
    n, max_degree, precision = 50, 4, 0.7
    x = rng.uniform(-1, 1, size=(1, n))
    y = 2 * x**2 - 0.5 + 0.2 * rng.standard_normal(x.shape)
    fits = fit_polynomials(x, y, max_degree)
    q = orthonormal_design(x, max_degree)[0]
    total = two_part_code_length(fits, precision)[0]
    for k in range(max_degree + 1):
        d = k + 1
        beta_hat = q[:, :d].T @ y[0]
        rss = np.sum((y[0] - q[:, :d] @ beta_hat) ** 2)
        s_index = round(0.5 * math.log(rss / n) * math.sqrt(n))
        sigma = math.exp(s_index / math.sqrt(n))
        b_index = np.rint(beta_hat / (precision * sigma))
        resid = y[0] - q[:, :d] @ (b_index * precision * sigma)
        data = n / 2 * math.log2(2 * math.pi * sigma**2) + resid @ resid / (2 * sigma**2) * LOG2E
        params = elias_delta_length(d) + signed_integer_length(s_index)
        params += signed_integer_length(b_index.astype(np.int64)).sum()
        assert total[k] == pytest.approx(float(params + data), rel=1e-10)
        assert total[k] > gaussian_ml_code_length(fits.rss[0, k], n)


def test_codes_see_a_clear_cubic_and_ml_overfits():
    """With little noise no code misses the cubic term; ML always takes the top degree."""
    cfg = PolynomialConfig(sigma=0.02, trials=20)
    x, y = sample_trials(np.random.default_rng(0), cfg, cfg.trials)
    picks = {name: np.argmin(bits, axis=1) for name, bits in code_lengths(cfg, x, y).items()}
    assert np.all(picks["ml"] == cfg.max_degree)
    for name in ("two_part", "prequential", "bic", "aic"):
        assert np.all(picks[name] >= cfg.true_degree), name
    assert np.mean(picks["two_part"] == cfg.true_degree) >= 0.9


# -- claims, configs, data ------------------------------------------------------------------
def _run(tmp_path, cfg, experiment="polynomial"):
    return scratch_run(tmp_path, "mdl_tutorial", experiment, cfg)


def _hits(rate: float, trials: int = 400) -> np.ndarray:
    return np.arange(trials) < round(rate * trials)


def test_recovery_claim_fails_when_mdl_is_behind_aic(tmp_path):
    cfg = PolynomialConfig(trials=400)
    run = _run(tmp_path, cfg)
    hits = {"ml": _hits(0.0), "aic": _hits(0.8), "bic": _hits(0.9)}
    recovery_claims(run, cfg, {**hits, "two_part": _hits(0.95), "prequential": _hits(0.75)})
    verdicts = {c.id: c.as_dict()["holds"] for c in run.claims}
    assert verdicts == {
        "two_part_recovers_degree": True,
        "prequential_recovers_degree": False,
        "bic_recovery": None,
    }


def test_recovery_claim_needs_a_margin_over_ml(tmp_path):
    cfg = PolynomialConfig(trials=400)
    run = _run(tmp_path, cfg)
    hits = {"ml": _hits(0.0), "aic": _hits(0.0), "bic": _hits(0.0)}
    recovery_claims(run, cfg, {**hits, "two_part": _hits(0.005), "prequential": _hits(0.2)})
    verdicts = {c.id: c.as_dict()["holds"] for c in run.claims}
    assert not verdicts["two_part_recovers_degree"]  # 2 hits of 400: within 2 SE of ML
    assert verdicts["prequential_recovers_degree"]


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (PolynomialConfig, {"sigma": 0}),
        (PolynomialConfig, {"coefficients": (1.0, 0.0)}),
        (PolynomialConfig, {"max_degree": 3}),
        (PolynomialConfig, {"prequential_start": 9}),
        (PolynomialConfig, {"trials": 1}),
        (ComplexityConfig, {"ns": (10, 5)}),
        (ComplexityConfig, {"tolerance_bits": 0}),
        (ComplexityConfig, {"brute_force_n": 30}),
        (MarkovConfig, {"max_order": 0}),
        (MarkovConfig, {"max_chars": 5}),
    ],
)
def test_configs_reject_meaningless_values(cls, kwargs):
    with pytest.raises(ValueError):
        cls(**kwargs)


def test_encode_maps_characters_to_sorted_indices():
    x, m = encode("abca b")
    assert m == 4 and x.tolist() == [1, 2, 3, 1, 0, 2]


def test_markov_without_data_names_the_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path / "empty"))
    run = _run(tmp_path, MarkovConfig(max_order=2, max_chars=1_000), experiment="markov")
    with pytest.raises(DataMissingError, match="tinyshakespeare"):
        run_markov(run, run.cfg)


@pytest.mark.skipif(not has_dataset("tinyshakespeare"), reason="tiny-shakespeare not here")
def test_refined_codes_stop_short_of_the_top_order_on_real_text(tmp_path):
    """ML always prefers the longest context; the NML and prequential codes pay for every
    context they use and pick a lower order (with the complexity dropped they would not)."""
    run = _run(tmp_path, MarkovConfig(max_order=3, max_chars=20_000), experiment="markov")
    run_markov(run, run.cfg)
    (chosen,) = [c.measured for c in run.claims if c.id == "markov_order_chosen"]
    assert chosen["ml_order"] == 3 and chosen["alphabet"] == 58
    assert chosen["fnml_order"] < 3 and chosen["prequential_order"] < 3
    assert run.summary["kt_closed_form_vs_sequential_bits"] < 1e-6


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    args = ["run", "mdl_tutorial", "--preset", "quick", "--out", str(tmp_path), "--no-publish"]
    assert main([*args, "-q"]) == 0
    paths = sorted(tmp_path.glob("mdl_tutorial/*/quick-*/results.json"))
    assert [p.parts[-3] for p in paths] == ["complexity", "markov", "polynomial"]
    for path in paths:
        results = json.loads(path.read_text())
        assert results["claims"]
        for claim in results["claims"]:
            assert claim["holds"] or not claim["asserted"], claim
