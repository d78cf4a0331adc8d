"""Complexodynamics: elementary automata against known sequences (rule 30's centre column,
rule 90 = Pascal's triangle mod 2), the vectorized update against the rule table cell by
cell, the generating program against the automaton, the O(log t) program bound, the
compressor estimates, and the quick claims."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from sutskever30.cli import main
from sutskever30.papers.complexodynamics.experiment import ECAConfig, measure_times
from sutskever30.papers.complexodynamics.model import (
    GENERATOR,
    compressed_sizes,
    elias_delta_bits,
    program_bits,
    rule_table,
    single_cell,
    space_time,
    states_at,
    step,
)

# OEIS A051023: the centre column of rule 30 started from one live cell, t = 0, 1, 2, ...
A051023 = "1101110011000101100100111010111001110101"


def test_rule30_centre_column_is_a051023():
    n = len(A051023)
    history = space_time(30, 2 * n + 1, n - 1)  # wide enough that the ring never wraps
    column = "".join(str(v) for v in history[:, n])
    assert column == A051023


def test_rule90_is_pascal_triangle_mod_2():
    steps, width = 40, 81
    centre = width // 2
    history = space_time(90, width, steps)
    for t in range(steps + 1):
        expected = np.zeros(width, dtype=np.uint8)
        for k in range(t + 1):  # cell centre − t + 2k holds C(t, k) mod 2
            expected[centre - t + 2 * k] = math.comb(t, k) % 2
        np.testing.assert_array_equal(history[t], expected, err_msg=f"row {t}")


@pytest.mark.parametrize("rule", [30, 90, 110, 184, 255, 0])
def test_vectorized_step_equals_the_rule_table_cell_by_cell(rule):
    rng = np.random.default_rng(rule)
    x = rng.integers(0, 2, size=23).astype(np.uint8)
    n = len(x)
    expected = [(rule >> (4 * x[i - 1] + 2 * x[i] + x[(i + 1) % n])) & 1 for i in range(n)]
    np.testing.assert_array_equal(step(x, rule_table(rule)), expected)


def test_states_at_matches_the_space_time_diagram():
    history = space_time(30, 64, 50)
    np.testing.assert_array_equal(states_at(30, 64, [0, 7, 31, 50]), history[[0, 7, 31, 50]])
    with pytest.raises(ValueError):
        states_at(30, 64, [5, 3])


@pytest.mark.parametrize("rule,width,t", [(30, 37, 11), (110, 20, 25), (90, 16, 40)])
def test_generator_program_prints_the_state(rule, width, t):
    """The program whose length is the bound really prints x_t (ring wrap included)."""
    out = subprocess.run(
        [sys.executable, "-c", GENERATOR, str(rule), str(width), str(t)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "".join(str(v) for v in states_at(rule, width, [t])[0])


def test_elias_delta_lengths():
    # Codes of 1, 2, 3, 4, 8, 16, 17: 1, 0100, 0101, 01100, 00100000, 001010000, 001010001.
    lengths = {1: 1, 2: 4, 3: 4, 4: 5, 8: 8, 16: 9, 17: 9}
    assert {n: elias_delta_bits(n) for n in lengths} == lengths
    with pytest.raises(ValueError):
        elias_delta_bits(0)


def test_program_bound_grows_as_log_t():
    """program_bits(t) − program_bits(0) ≤ log2(t+1) + 2 log2(log2(t+1) + 1) + 1."""
    base = program_bits(30, 4096, 0)
    for k in range(1, 40):
        t = 2**k
        extra = program_bits(30, 4096, t) - base
        bound = math.log2(t + 1) + 2 * math.log2(math.log2(t + 1) + 1) + 1
        assert 0 <= extra <= bound, (t, extra, bound)
    assert program_bits(30, 4096, 2**39) < 8 * len(GENERATOR) + 150


def test_compressors_random_bits_near_n_and_constant_state_tiny():
    rng = np.random.default_rng(0)
    n = 2**14
    random_sizes = compressed_sizes(rng.integers(0, 2, n).astype(np.uint8))
    assert min(random_sizes.values()) >= 0.99 * n
    assert max(compressed_sizes(single_cell(n)).values()) < 0.05 * n


def test_rule30_grows_toward_the_bound_rule90_does_not():
    """The mechanism at small scale: rule 30's best compressed size climbs from tiny to
    ≥ 0.9 n once the pattern fills the ring; rule 90's stays far below."""
    n = 4096
    sizes30 = [min(compressed_sizes(x).values()) for x in states_at(30, n, [8, 256, n])]
    assert sizes30[0] < 0.05 * n < sizes30[1] < sizes30[2]
    assert sizes30[2] >= 0.9 * n
    (x90,) = states_at(90, n, [n - 1])
    assert min(compressed_sizes(x90).values()) < 0.5 * n


def test_config_validation_and_times():
    with pytest.raises(ValueError):
        ECAConfig(rule=256)
    with pytest.raises(ValueError):
        ECAConfig(min_fraction=1.5)
    with pytest.raises(ValueError):
        ECAConfig(n_times=2)
    times = measure_times(ECAConfig(width=1024, steps=1000, n_times=10))
    assert times[0] == 0 and times[-1] == 1000 and times == sorted(set(times))


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    args = ["run", "complexodynamics", "--preset", "quick", "--out", str(tmp_path), "-q"]
    assert main([*args, "--no-publish"]) == 0
    (path,) = tmp_path.glob("complexodynamics/eca/quick-*/results.json")
    claims = [c for c in json.loads(path.read_text())["claims"] if c["asserted"]]
    assert len(claims) == 3
    for claim in claims:
        assert claim["holds"], claim
