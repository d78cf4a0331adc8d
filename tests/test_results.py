"""Claims' rules and their verdicts over one seed and several (core/results.py), and the
CLI's ``--seeds``: one aggregated results.json, resumable seed by seed."""

import json
import statistics

import pytest

from sutskever30.cli import main, parse_seeds
from sutskever30.core.errors import UsageError
from sutskever30.core.results import (
    RuleError,
    aggregate_results,
    fmt_measured,
    holds,
    markdown_table,
)


def seeds(*pairs):
    return [{"a": a, "b": b} for a, b in pairs]


def test_single_seed_rules_are_plain_comparisons():
    assert holds("a > b", {"a": 2.0, "b": 1.0})
    assert not holds("a > b", {"a": 1.0, "b": 2.0})
    assert holds("a > b + spread", {"a": 1.01, "b": 1.0}), "spread is 0 for one seed"
    assert holds("x < 1 < y", {"x": 0.5, "y": 2}) and not holds("x < 1 < y", {"x": 0.5, "y": 1})
    assert holds("abs(log(m / t)) < log(2) and not w[-1] > w[0]", {"m": 3, "t": 2, "w": [2, 1]})
    assert holds("a < 1 or b < 1", {"a": 5, "b": 0.5})


def test_spread_is_the_seed_to_seed_std_of_the_gap():
    steady = seeds((0.60, 0.50), (0.62, 0.50), (0.58, 0.50))  # gap 0.1 ± 0.02
    assert holds("a > b + spread", steady)
    noisy = seeds((0.9, 0.5), (0.3, 0.5), (0.6, 0.5))  # gap 0.1 ± 0.3
    assert holds("a > b", noisy), "decided on the means"
    assert not holds("a > b + spread", noisy), "a gap within the spread is not a result"
    assert holds("a <= b + spread", noisy), "not above b by more than the spread"
    assert not holds("a <= b", noisy)
    gaps = [0.4, -0.2, 0.1]
    mean, sd = statistics.fmean(gaps), statistics.stdev(gaps)
    # exactly at the margin: a − b = sd must not pass a strict ">" but passes "<="
    edge = seeds(*((0.5 + g - mean + sd, 0.5) for g in gaps))
    assert not holds("a > b + spread", edge) and holds("a <= b + spread", edge)


@pytest.mark.parametrize(
    "rule",
    ["a.real > 0", "__import__('os') > 0", "open(a) > 0", "c > 0", "a > [b]", "lambda: 1", "a >"],
)
def test_rules_allow_only_comparisons_of_measured_numbers(rule):
    with pytest.raises(RuleError):
        holds(rule, {"a": 1.0, "b": 2.0})


def _res(seed, a, b, wer):
    return {
        "paper": "p",
        "experiment": "e",
        "preset": "quick",
        "seeds": [seed],
        "claims": [
            {
                "id": "c",
                "statement": "a above b",
                "paper": "Fig. 1",
                "measured": {"a": a, "b": b, "wer": wer, "name": "x"},
                "rule": "a > b + spread",
                "holds": a > b,
                "asserted": True,
            },
            {
                "id": "r",
                "statement": "reported",
                "paper": "Table 1",
                "measured": {"err": a},
                "rule": None,
                "holds": None,
                "asserted": False,
            },
        ],
        "plots": ["p.png"],
        "notes": ["n"],
        "runtime_s": 10.0,
        "env": {"device": "cpu", "torch": "2", "commit": "c"},
    }


def test_aggregate_results_means_stds_and_seed_counts():
    agg = aggregate_results(
        [_res(0, 0.6, 0.5, [3, 1]), _res(1, 0.4, 0.5, [5, 1]), _res(2, 0.8, 0.5, [4, 2])]
    )
    claim, reported = agg["claims"]
    assert agg["seeds"] == [0, 1, 2] and agg["runtime_s"] == 30.0
    assert claim["measured"]["a"] == pytest.approx(0.6) and claim["std"]["a"] == pytest.approx(0.2)
    assert claim["measured"]["b"] == 0.5 and claim["std"]["b"] == 0.0
    assert claim["measured"]["wer"] == [4, pytest.approx(4 / 3)]
    assert claim["per_seed"]["a"] == [0.6, 0.4, 0.8] and claim["measured"]["name"] == "x"
    assert claim["held_in"] == 2 and claim["n_seeds"] == 3
    assert claim["holds"] is False, "gap 0.1 is within its seed spread 0.2"
    assert reported["holds"] is None and reported["held_in"] is None
    assert "a = 0.6 ± 0.2" in fmt_measured(claim)
    table = markdown_table([agg])
    assert "(3 seeds)" in table and "2/3 seeds" in table and "**does not hold**" in table


def test_parse_seeds():
    assert parse_seeds(None, None, 3) == [0, 1, 2]
    assert parse_seeds(None, 7, 3) == [7]
    assert parse_seeds("3", 4, 1) == [4, 5, 6]
    assert parse_seeds("0,4,7", None, 1) == [0, 4, 7]
    for bad in ("0", "x", "1,1", "-1,2"):
        with pytest.raises(UsageError):
            parse_seeds(bad, None, 1)


def _run(tmp_path, *extra):
    return main(
        [
            "run",
            "initialization_scale:random_products",
            "--preset",
            "smoke",
            "--out",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "results"),
            "-q",
            *extra,
        ]
    )


def test_cli_seeds_write_one_aggregated_results_and_resume_per_seed(tmp_path):
    assert _run(tmp_path, "--seeds", "0,1,2") == 0
    (run_dir,) = (tmp_path / "runs" / "initialization_scale" / "random_products").iterdir()
    assert sorted(p.name for p in run_dir.glob("seed-*")) == ["seed-0", "seed-1", "seed-2"]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["seeds"] == [0, 1, 2]
    for claim in results["claims"]:
        assert claim["n_seeds"] == 3
        assert all(len(v) == 3 for v in claim["per_seed"].values())
    seed1 = json.loads((run_dir / "seed-1" / "results.json").read_text())
    assert seed1["seeds"] == [1]
    # an interrupted seed: its results are gone, the others are kept and not run again
    (run_dir / "results.json").unlink()
    (run_dir / "seed-2" / "results.json").unlink()
    before = (run_dir / "seed-0" / "results.json").read_text()
    assert _run(tmp_path, "--seeds", "0,1,2", "--resume") == 0
    assert (run_dir / "seed-0" / "results.json").read_text() == before
    again = json.loads((run_dir / "results.json").read_text())
    assert [c["measured"] for c in again["claims"]] == [c["measured"] for c in results["claims"]]
    assert _run(tmp_path, "--seeds", "0,1", "--resume") == 0, "other seeds: a new run"
    assert len(list(run_dir.parent.iterdir())) == 2


def test_cli_seeds_side_by_side_equal_one_after_another(tmp_path):
    assert _run(tmp_path / "a", "--seeds", "0,1") == 0
    assert _run(tmp_path / "b", "--seeds", "0,1", "--jobs", "2") == 0
    (seq,), (par,) = (
        list((tmp_path / k / "runs" / "initialization_scale" / "random_products").iterdir())
        for k in "ab"
    )
    seq, par = (json.loads((d / "results.json").read_text()) for d in (seq, par))
    assert [c["per_seed"] for c in par["claims"]] == [c["per_seed"] for c in seq["claims"]]
    assert par["jobs"] == 2 and "jobs" not in seq
    assert seq["runtime_s"] == round(sum(seq["seed_runtimes_s"]), 1)


def test_runtime_says_when_other_jobs_loaded_the_machine():
    """The 5-min load average beyond the run's own processes (jobs × threads) by more than
    one marks the runtime busy; the run's own load, or jobs that ended before it, do not."""
    from sutskever30.core.results import busy_note

    res = {"env": {"threads": 1, "cpus": 2}, "jobs": 3, "load_avg": [3.1, 3.0, 4.4]}
    assert busy_note(res) == ""
    assert busy_note({**res, "load_avg": [6.0, 5.5, 5.2]}) == " (busy: load 5.5 on 2 CPUs)"
    assert busy_note({"env": {"threads": 2, "cpus": 2}, "load_avg": [3.5, 3.4, 3.5]}) != ""
    assert busy_note({"env": {"threads": 2, "cpus": 2}}) == ""  # older results: no load
