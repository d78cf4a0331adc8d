"""``s30 report``: the page and README tables come from results.json files only."""

import json
import shutil
import subprocess

import pytest

from sutskever30.core.plots import line_plot
from sutskever30.core.report import END, START, build_report, markdown_table


def fake_results(root, paper, experiment, holds):
    folder = root / paper / experiment
    folder.mkdir(parents=True)
    line_plot(folder / "curve.png", {"a": ([0, 1], [1, 0])}, xlabel="x", ylabel="y")
    res = {
        "paper": paper,
        "experiment": experiment,
        "preset": "quick",
        "seeds": [0],
        "claims": [
            {
                "id": "c",
                "statement": f"{experiment} statement",
                "paper": "Fig. 6: 0.33",
                "measured": {"ours": 0.25},
                "holds": holds,
                "asserted": True,
            },
            {
                "id": "r",
                "statement": "reported number",
                "paper": "Table 6: 8.75",
                "measured": {"err": 12.5},
                "holds": None,
                "asserted": False,
            },
        ],
        "plots": ["curve.png"],
        "notes": ["a note"],
        "runtime_s": 90.0,
        "env": {"torch": "2.13.0", "device": "cpu", "commit": "abc1234", "threads": 2},
    }
    (folder / "results.json").write_text(json.dumps(res))


def test_report_page_and_readme_table(tmp_path):
    fake_results(tmp_path / "results", "resnet", "degradation", True)
    fake_results(tmp_path / "results", "resnet", "other", False)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nstale\n{END}\noutro\n")
    page = build_report(tmp_path / "results", tmp_path / "report", readme)
    html = page.read_text()
    assert "degradation statement" in html and "Table 6: 8.75" in html
    assert "does not hold" in html and "holds" in html and "reported" in html
    assert (tmp_path / "report" / "plots" / "resnet" / "degradation" / "curve.png").exists()
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| `resnet` | degradation | degradation statement | Fig. 6: 0.33 | ours = 0.25 |" in text
    assert "**does not hold**" in text


def test_empty_results_give_a_page(tmp_path):
    page = build_report(tmp_path / "none", tmp_path / "report", None)
    assert "No results yet" in page.read_text()
    assert "| - |" in markdown_table([])


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    fake_results(tmp_path / "results", "resnet", "degradation", True)
    page = build_report(tmp_path / "results", tmp_path / "report", None)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "degradation statement" in dom and "<img" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    # The plot image actually loads (naturalWidth > 0) in the rendered page.
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.read_text().replace(
            "</body>",
            "<script>window.onload=()=>{document.title=[...document.images]"
            ".every(i=>i.naturalWidth>0)?'IMAGES_OK':'IMAGES_BROKEN'}</script></body>",
        )
    )
    (tmp_path / "report" / "probe.html").write_text(probe.read_text())
    dom = subprocess.run(
        [
            "chromium",
            *flags,
            "--virtual-time-budget=5000",
            "--dump-dom",
            (tmp_path / "report" / "probe.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "IMAGES_OK" in dom
