"""Kolmogorov complexity: the Turing-machine formalism against hand-run machines and the
busy-beaver values, the symmetries of D(n), BDM by hand, the counting helpers, clustering
purity and the quick-preset claims (the Multi30k loader: tests/test_data.py)."""

import json
import math

import numpy as np
import pytest

from sutskever30.cli import main
from sutskever30.nn.compression import ncd
from sutskever30.papers.kolmogorov_complexity.experiments.compression import CompressionConfig
from sutskever30.papers.kolmogorov_complexity.experiments.ctm import (
    CTMConfig,
    alternating,
    paper_d5,
)
from sutskever30.papers.kolmogorov_complexity.experiments.ncd import (
    NCDConfig,
    cluster_purity,
    take_lines,
)
from sutskever30.papers.kolmogorov_complexity.model import (
    HALT,
    LEFT,
    RIGHT,
    STAY,
    Machines,
    bdm,
    blocks,
    code_string,
    complement,
    compression_savings,
    fraction_compressible,
    machines,
    n_machines,
    output_distribution,
    purity,
    run_machines,
    string_code,
    symmetry_gaps,
)


@pytest.fixture(scope="module")
def d2():
    return output_distribution(2)


def machine(rows: list[list[tuple[int, int, int]]]) -> Machines:
    """One machine from its table: rows[q − 1][read] = (write, move, next state)."""
    t = np.array(rows)  # (n, 2, 3)
    return Machines(
        write=t[None, :, :, 0].astype(np.uint8),
        move=t[None, :, :, 1].astype(np.int8),
        next_state=t[None, :, :, 2].astype(np.int8),
    )


# -- the formalism ----------------------------------------------------------------------------


def test_machine_counts_are_the_papers():
    # (4n + 2)^(2n); the paper quotes 11,019,960,576 machines for n = 4.
    assert [n_machines(n) for n in (1, 2, 3, 4)] == [36, 10_000, 7_529_536, 11_019_960_576]


def test_transition_digits_decode():
    tm = machines(2)
    # 10 transitions per (state, symbol): 8 moving (write × direction × next state), 2 halting.
    assert len(tm) == 10_000
    digits = machines(2, 0, 10)  # digit 0 (state 1 reading 0) runs through 0..9
    assert digits.write[:, 0, 0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert digits.move[:, 0, 0].tolist() == [LEFT, LEFT, RIGHT, RIGHT] * 2 + [STAY, STAY]
    assert digits.next_state[:, 0, 0].tolist() == [1, 1, 1, 1, 2, 2, 2, 2, HALT, HALT]
    # every machine is distinct: the table is a bijection of the index
    flat = np.concatenate([tm.write, tm.move + 1, tm.next_state], axis=1).reshape(len(tm), -1)
    assert len(np.unique(flat, axis=0)) == 10_000


def test_two_state_busy_beaver_by_hand():
    # A0 → 1RB, A1 → 1LB, B0 → 1LA, B1 → 1 halt: four 1s in six steps (Radó).
    tm = machine([[(1, RIGHT, 2), (1, LEFT, 2)], [(1, LEFT, 1), (1, STAY, HALT)]])
    runs = run_machines(tm, blank=0, max_steps=10)
    assert runs.halted.tolist() == [True]
    assert runs.steps.tolist() == [6] and runs.ones.tolist() == [4]
    assert code_string(runs.output[0]) == "1111"


def test_output_is_the_visited_cells_only():
    # Write 1 and step right twice, then halt writing 0: visited cells 1 1 0.
    tm = machine([[(1, RIGHT, 2), (0, STAY, HALT)], [(1, RIGHT, 3), (0, STAY, HALT)],
                  [(0, STAY, HALT), (0, STAY, HALT)]])  # fmt: skip
    runs = run_machines(tm, blank=0, max_steps=5)
    assert code_string(runs.output[0]) == "110" and runs.steps.tolist() == [3]
    on_ones = run_machines(tm, blank=1, max_steps=5)  # reads 1 first: halts at once
    assert code_string(on_ones.output[0]) == "0" and on_ones.steps.tolist() == [1]


def test_non_halting_machine_is_cut_off():
    tm = machine([[(1, RIGHT, 1), (1, RIGHT, 1)]])  # runs right forever
    runs = run_machines(tm, blank=0, max_steps=7)
    assert runs.halted.tolist() == [False] and runs.output.tolist() == [-1]


def test_d1_by_hand():
    # Only the 2 halting transitions of (state 1, blank) halt; 6 choices for the other one.
    d1 = output_distribution(1)
    assert d1.n_runs == 72 and d1.n_halting == 24
    assert d1.ctm() == {"0": 1.0, "1": 1.0}


def test_busy_beaver_values_found_by_enumeration(d2):
    assert d2.n_runs == 20_000
    assert d2.max_steps_halting == 6 and d2.max_ones == 4


def test_string_codes_round_trip():
    for s in ["0", "00", "1", "0101", "0" * 40]:
        assert code_string(string_code(s)) == s
    assert string_code("0") != string_code("00")
    with pytest.raises(ValueError):
        string_code("012")


# -- symmetries (the acceptance test) ----------------------------------------------------------


def test_ctm_invariant_under_complement_and_reversal(d2):
    ctm = d2.ctm()
    assert symmetry_gaps(ctm) == {"complement": 0.0, "reversal": 0.0}
    for s, k in ctm.items():
        assert ctm[complement(s)] == k and ctm[s[::-1]] == k


def test_one_blank_alone_is_not_complement_symmetric():
    # The complement symmetry comes from running both blanks, not from the counting code.
    ctm = output_distribution(2, blanks=(0,)).ctm()
    assert symmetry_gaps(ctm)["complement"] > 0
    assert symmetry_gaps(ctm)["reversal"] == 0


def test_ctm_orders_short_strings_like_the_paper(d2):
    ctm, d5 = d2.ctm(), paper_d5()
    assert ctm["0"] < ctm["00"] == ctm["01"] < ctm["000"]
    assert d5["0"] < d5["00"] == d5["01"] < d5["000"]
    assert d5["1"] == d5["0"] and d5["10110"] == d5["01001"]


# -- block decomposition ------------------------------------------------------------------------


def test_blocks_partition_and_overlap():
    assert list(blocks("0101010", block=3)) == ["010", "101", "0"]
    assert list(blocks("01011", block=2, step=1)) == ["01", "10", "01", "11"]
    with pytest.raises(ValueError):
        list(blocks("0101", block=2, step=3))


def test_bdm_by_hand():
    ctm = {"0": 1.0, "1": 1.0, "01": 3.0, "10": 3.5, "11": 4.0}
    assert bdm("010101", ctm, block=2) == pytest.approx(3.0 + math.log2(3))
    assert bdm("01010", ctm, block=2) == pytest.approx(3.0 + 1.0 + 1.0)
    assert bdm("0101", ctm, block=2, step=1) == pytest.approx(3.0 + 1.0 + 3.5)
    with pytest.raises(ValueError, match="not in the CTM table"):
        bdm("00", ctm, block=2)


def test_bdm_ranks_alternating_below_random(d2):
    ctm = d2.ctm()
    rng = np.random.default_rng(0)
    alt = bdm(alternating(48), ctm, block=3)
    rand = [bdm("".join(map(str, rng.integers(0, 2, 48))), ctm, block=3) for _ in range(20)]
    assert alt < min(rand)


# -- compression helpers -----------------------------------------------------------------------


def test_fraction_compressible_counts():
    savings = np.array([-40, 0, 1, 2, 5])
    assert fraction_compressible(savings, [1, 2, 3]).tolist() == [0.6, 0.4, 0.2]


def test_savings_of_random_and_constant_strings():
    rng = np.random.default_rng(0)
    random = rng.integers(0, 2, (5, 2048), dtype=np.uint8)
    assert (compression_savings(random, ("zlib",)) < 0).all()
    assert (compression_savings(np.zeros((2, 2048), np.uint8), ("zlib",)) > 1500).all()


def test_ncd_of_text_with_itself_is_small():
    text = b"the quick brown fox jumps over the lazy dog. " * 40
    other = bytes(np.random.default_rng(1).integers(0, 256, len(text), dtype=np.uint8))
    assert ncd(text, text, "bz2") < 0.2 < 0.9 < ncd(text, other, "bz2")


# -- clustering ----------------------------------------------------------------------------------


def test_cluster_purity_recovers_separated_groups():
    x = np.array([0.0, 0.3, 0.5, 10.0, 10.2, 20.0, 20.4, 20.5])
    d = np.abs(x[:, None] - x[None, :])
    labels = ["a", "a", "a", "b", "b", "c", "c", "c"]
    score, merges = cluster_purity(d, labels, 3)
    assert score == 1.0
    # average linkage: the last merge joins {a, b} (mean distance 10.0) and c
    assert merges[-1, 2] == pytest.approx(np.abs(x[:5, None] - x[None, 5:]).mean())
    assert cluster_purity(d, labels, 2)[0] == pytest.approx(6 / 8)  # {a, b} counts its 3 a


def test_purity():
    assert purity(["a", "a", "b", "b"], [0, 0, 1, 1]) == 1.0
    assert purity(["a", "a", "b", "b"], [0, 0, 0, 0]) == 0.5
    assert purity(["a", "b", "a", "b"], [0, 0, 1, 1]) == 0.5


def test_take_lines_keeps_whole_lines():
    assert take_lines(["abc", "dé", "xyz"], 0, 8) == "abc\ndé\n".encode()
    assert take_lines(["abc", "dé", "xyz"], 1, 3) == b""


# -- configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "bad"),
    [
        (CTMConfig, {"n_states": (6,)}),
        (CTMConfig, {"block": 3, "step": 4}),
        (CompressionConfig, {"n_bits": 12}),
        (CompressionConfig, {"counting_compressors": ("gzip9",)}),
        (NCDConfig, {"sources": ("en",)}),
        (NCDConfig, {"compressor": "ppmz"}),
    ],
)
def test_configs_reject_meaningless_values(cls, bad):
    with pytest.raises(ValueError):
        cls(**bad)


# -- the quick preset's claims --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["compression", "ctm", "ncd"])
def test_quick_claims_hold(name, tmp_path):
    code = main(
        ["run", f"kolmogorov_complexity:{name}", "--out", str(tmp_path), "-q", "--no-publish"]
    )
    assert code == 0
    (run_dir,) = (tmp_path / "kolmogorov_complexity" / name).iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    failed = [c["id"] for c in results["claims"] if c["asserted"] and not c["holds"]]
    assert not failed, failed
