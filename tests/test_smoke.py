"""Every registered experiment runs at the smoke preset and writes a valid results.json."""

import json

import pytest

from sutskever30.cli import main
from sutskever30.core.registry import all_papers

EXPERIMENTS = [(p.slug, e.name) for p in all_papers() for e in p.experiments]


@pytest.mark.parametrize("slug,name", EXPERIMENTS, ids=[f"{s}:{n}" for s, n in EXPERIMENTS])
def test_smoke(slug, name, tmp_path):
    code = main(
        [
            "run",
            f"{slug}:{name}",
            "--preset",
            "smoke",
            "--out",
            str(tmp_path),
            "-q",
            "--results",
            str(tmp_path / "results"),
            "--no-publish",
        ]
    )
    assert code == 0
    (run_dir,) = (tmp_path / slug / name).iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["paper"] == slug and results["experiment"] == name
    assert results["preset"] == "smoke" and results["runtime_s"] >= 0
    assert results["claims"], "an experiment must record at least one claim"
    for claim in results["claims"]:
        assert {"id", "statement", "paper", "measured", "holds"} <= set(claim)
        assert claim["measured"], f"{claim['id']} has no measured numbers"
        assert claim["holds"] in (True, False) or not claim["asserted"]
    for plot in results["plots"]:
        assert (run_dir / plot).stat().st_size > 1000
    assert json.loads((run_dir / "config.json").read_text())["preset"] == "smoke"
