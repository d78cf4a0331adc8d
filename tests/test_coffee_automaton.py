"""Coffee automaton: cream is conserved; a sub-step swaps only adjacent pairs of one
matching; the mean density of both models follows the exact expected (linear) update, whose
slowest mode decays with the relaxation time the experiment uses; the window mean against a
brute-force loop; thresholds and the row-majority adjustment; the measures on ordered,
random and banded states; and the quick claims."""

import json

import numpy as np
import pytest

from sutskever30.cli import main
from sutskever30.papers.coffee_automaton.experiment import MixingConfig, plateau, rise_and_fall
from sutskever30.papers.coffee_automaton.model import (
    InteractingAutomaton,
    NonInteractingAutomaton,
    coarse_grain,
    complexity_bits,
    entropy_bits,
    grain_for,
    initial_grid,
    relaxation_time,
    row_majority,
    threshold,
    window_mean,
)


def test_initial_grid_is_cream_over_coffee():
    grid = initial_grid(6)
    assert grid[:3].all() and not grid[3:].any()
    with pytest.raises(ValueError):
        initial_grid(7)


def test_interacting_model_conserves_cream():
    rng = np.random.default_rng(0)
    a = InteractingAutomaton.start(20)
    a.advance(rng, 2000)
    assert a.grid.sum() == 200 and set(np.unique(a.grid)) <= {0, 1}
    assert a.steps == pytest.approx(2000 * 20 * 19 / 4)
    assert 50 < a.grid[10:].sum() < 150  # and it did mix


def test_non_interacting_model_conserves_cream_and_stays_inside():
    rng = np.random.default_rng(0)
    b = NonInteractingAutomaton.start(20)
    b.advance(rng, 500)
    assert b.counts().sum() == 200 and b.density().sum() == 200
    assert ((b.pos >= 0) & (b.pos < 20)).all()
    assert b.counts().max() > 1  # several particles may share a cell
    assert b.steps == 500 * 200


def _fits_matching(before, after, vertical: int, offset: int) -> bool:
    """``after`` is ``before`` with some pairs of this matching swapped, nothing else."""
    b, a = (before.T, after.T) if vertical else (before, after)
    n = b.shape[1]
    left, right = slice(offset, n - 1, 2), slice(offset + 1, n, 2)
    kept = (a[:, left] == b[:, left]) & (a[:, right] == b[:, right])
    swapped = (a[:, left] == b[:, right]) & (a[:, right] == b[:, left])
    unpaired = np.ones(n, dtype=bool)
    unpaired[left] = unpaired[right] = False
    return bool((kept | swapped).all() and (a[:, unpaired] == b[:, unpaired]).all())


def test_sub_step_swaps_only_the_pairs_of_one_matching():
    """After one sub-step the grid is the old one with some pairs of one of the 4 matchings
    (horizontal/vertical pairs at even/odd offset) swapped."""
    rng = np.random.default_rng(1)
    for _ in range(50):
        a = InteractingAutomaton(rng.integers(0, 2, (9, 9)).astype(np.uint8))
        before = a.grid.copy()
        a.sub_step(rng)
        assert (before != a.grid).any()
        assert any(_fits_matching(before, a.grid, v, o) for v in (0, 1) for o in (0, 1))


def _expected_rows_interacting(rows: np.ndarray) -> np.ndarray:
    """E[row densities] after one sub-step: half the time a vertical matching (offset 0 or
    1), whose pairs each swap with probability 1/2, so each paired row's expectation becomes
    the pair's mean."""
    out = []
    for offset in (0, 1):
        r = rows.copy()
        i = np.arange(offset, len(rows) - 1, 2)
        mean = (rows[i] + rows[i + 1]) / 2
        r[i], r[i + 1] = mean, mean
        out.append(r)
    return rows / 2 + (out[0] + out[1]) / 4


def _expected_rows_non_interacting(rows: np.ndarray) -> np.ndarray:
    """E[row counts] after one sweep: up and down with probability 1/4 each, refused at the
    walls, otherwise a horizontal move (row unchanged)."""
    up = np.append(rows[1:], 0.0)  # arrivals from the row below
    down = np.insert(rows[:-1], 0, 0.0)  # arrivals from the row above
    stay = rows / 2 + rows / 4 * np.r_[1.0, np.zeros(len(rows) - 1)]
    stay = stay + rows / 4 * np.r_[np.zeros(len(rows) - 1), 1.0]
    return stay + up / 4 + down / 4


@pytest.mark.parametrize("model", ["interacting", "non_interacting"])
def test_mean_density_follows_the_expected_update(model):
    """Monte Carlo mean of the row densities over many runs equals the exact expectation
    (symmetric exclusion and independent walkers share the same linear mean dynamics)."""
    n, runs, units = 8, 600, 12
    rng = np.random.default_rng(2)
    total = np.zeros(n)
    for _ in range(runs):
        state = InteractingAutomaton if model == "interacting" else NonInteractingAutomaton
        s = state.start(n)
        s.advance(rng, units)
        total += s.density().mean(axis=1)
    expected = initial_grid(n).mean(axis=1).astype(float)
    update = (
        _expected_rows_interacting if model == "interacting" else _expected_rows_non_interacting
    )
    for _ in range(units):
        expected = update(expected)
    # Per-run std of a row mean is ≤ 0.5/√n; 5 standard errors.
    np.testing.assert_allclose(total / runs, expected, atol=5 * 0.5 / np.sqrt(n * runs))


@pytest.mark.parametrize("model", ["interacting", "non_interacting"])
def test_relaxation_time_matches_the_slowest_mode(model):
    """τ of model.relaxation_time against the exact mean update's second eigenvalue λ:
    the slowest mode decays as λ^t = exp(−t/τ)."""
    n = 100
    update = (
        _expected_rows_interacting if model == "interacting" else _expected_rows_non_interacting
    )
    matrix = np.stack([update(e) for e in np.eye(n)], axis=1)
    lam = np.sort(np.linalg.eigvals(matrix).real)[-2]
    assert -1 / np.log(lam) == pytest.approx(relaxation_time(model, n), rel=0.02)


def test_window_mean_equals_brute_force():
    rng = np.random.default_rng(3)
    density = rng.poisson(0.7, (9, 12)).astype(float)
    g, h = 5, 2
    brute = np.empty_like(density)
    for i in range(9):
        for j in range(12):
            brute[i, j] = density[max(0, i - h) : i + h + 1, max(0, j - h) : j + h + 1].mean()
    np.testing.assert_allclose(window_mean(density, g), brute, rtol=1e-12)
    with pytest.raises(ValueError):
        window_mean(density, 4)


def test_threshold_buckets():
    mean = np.array([0.0, 0.32, 0.34, 0.66, 0.67, 1.0, 2.5])
    np.testing.assert_array_equal(threshold(mean, 3), [0, 0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(threshold(np.array([0.15, 0.5, 0.86]), 7), [1, 3, 6])


def test_row_majority_snaps_neighbouring_levels_only():
    levels = np.array([[3, 3, 4, 2, 3, 6], [0, 0, 1, 0, 3, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(row_majority(levels), [[3, 3, 3, 3, 3, 6], [0, 0, 0, 0, 3, 0]])


def test_adjustment_removes_border_flicker():
    """A row-uniform density sitting on a bucket boundary, with small noise: 3 buckets give a
    salt-and-pepper picture, the adjusted coarse-graining a clean banded one."""
    rng = np.random.default_rng(4)
    n = 60
    profile = np.linspace(1.0, 0.0, n)[:, None] * np.ones((1, n))
    density = np.clip(profile + rng.normal(0, 0.03, (n, n)), 0, None)
    raw = coarse_grain(density, 1, adjusted=False)
    adjusted = coarse_grain(density, 1, adjusted=True)
    assert (adjusted == adjusted[:, :1]).mean() > 0.98  # rows are uniform
    assert (raw == raw[:, :1]).mean() < 0.95
    assert complexity_bits(density, 1, adjusted=True) < 0.5 * complexity_bits(
        density, 1, adjusted=False
    )


def test_measures_on_ordered_and_mixed_states():
    """Ordered start: low entropy, low complexity. Well mixed (random): entropy near n² bits,
    coarse-grained picture uniform again, so complexity low."""
    n = 100
    g = grain_for(n)
    start = InteractingAutomaton.start(n)
    rng = np.random.default_rng(5)
    mixed = InteractingAutomaton(rng.permutation(initial_grid(n).ravel()).reshape(n, n))
    assert entropy_bits(start) < 0.02 * n * n
    assert entropy_bits(mixed) > 0.98 * n * n
    for adjusted in (False, True):
        assert complexity_bits(start.density(), g, adjusted=adjusted) < 400
        assert complexity_bits(mixed.density(), g, adjusted=adjusted) < 400
    assert grain_for(32) == 3 and grain_for(50) == 5 and grain_for(100) == 11


def test_rise_and_fall_summary():
    shape = rise_and_fall([100, 300, 800, 400, 120])
    assert shape == {"c_start": 100, "c_peak": 800, "c_end": 120, "peak_at": 0.5}


def test_plateau_summary():
    out = plateau([0, 1, 2, 3, 4], [0, 50, 99, 100, 98])
    assert out["reach99_at"] == 0.5 and out["spearman_rise"] == pytest.approx(1.0)
    assert out["max_drop_pct"] == pytest.approx(2.0)


def test_config_validation():
    for bad in (dict(n=33), dict(sizes=(10, 15)), dict(grain=4), dict(horizon=0.0)):
        with pytest.raises(ValueError):
            MixingConfig(**bad)


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    out = tmp_path_factory.mktemp("coffee")
    args = ["run", "coffee_automaton", "--preset", "quick", "--out", str(out), "-q"]
    assert main([*args, "--no-publish"]) == 0  # the quick preset's 3 seeds
    (path,) = out.glob("coffee_automaton/mixing/quick-*/results.json")
    return {c["id"]: c for c in json.loads(path.read_text())["claims"] if c["asserted"]}


_ENTROPY_PLATEAU = pytest.mark.xfail(
    reason="does not hold at quick scale (README: the gzip entropy estimate reaches its "
    "equilibrium ceiling early in the run and then stays flat within its noise, so its rank "
    "correlation with time over the whole run is far below 0.95)",
    strict=True,
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "claim_id",
    [
        pytest.param("entropy_rises_interacting", marks=_ENTROPY_PLATEAU),
        pytest.param("entropy_rises_non_interacting", marks=_ENTROPY_PLATEAU),
        "complexity_rise_fall_non_interacting",
    ],
)
def test_quick_claims_hold(quick_claims, claim_id):
    assert quick_claims[claim_id]["holds"], quick_claims[claim_id]
