"""``s30 report``: a static HTML page and the README results tables, built from results/.

Everything shown comes from the committed ``results/<slug>/<experiment>/results.json`` files;
nothing is typed by hand. The README's table (and each paper README's) is rewritten between
``<!-- results:start -->`` and ``<!-- results:end -->``.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

from sutskever30.core.checkpoint import atomic_write_text
from sutskever30.core.errors import S30Error
from sutskever30.core.registry import SLUGS, get_paper
from sutskever30.core.results import fmt_measured, fmt_runtime, markdown_table, seeds_text, verdict

START, END = "<!-- results:start -->", "<!-- results:end -->"
PAPERS_DIR = Path(__file__).resolve().parent.parent / "papers"


def load_results(results_dir: Path) -> list[dict[str, Any]]:
    """Every readable results.json under ``results_dir``, in reading-list order."""
    found = []
    for path in sorted(results_dir.glob("*/*/results.json")):
        try:
            res = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        res["_dir"] = path.parent
        found.append(res)
    order = {slug: i for i, slug in enumerate(SLUGS)}

    def experiment_index(res: dict[str, Any]) -> int:
        try:
            names = [e.name for e in get_paper(res["paper"]).experiments]
        except S30Error:
            return 0
        return names.index(res["experiment"]) if res["experiment"] in names else len(names)

    return sorted(
        found,
        key=lambda r: (order.get(r["paper"], len(order)), experiment_index(r), r["experiment"]),
    )


def rewrite_between_markers(path: Path, body: str) -> bool:
    """Replace the text between the results markers of ``path``; False if it has none."""
    if not path.exists():
        return False
    text = path.read_text()
    if START not in text or END not in text:
        return False
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    atomic_write_text(path, f"{before}{START}\n{body}\n{END}{after}")
    return True


def _claim_rows(res: dict[str, Any]) -> str:
    rows = []
    for c in res["claims"]:
        cls = {"holds": "ok", "does not hold": "bad", "reported": "info"}[verdict(c)]
        rows.append(
            "<tr>"
            f"<td>{html.escape(c['statement'])}</td>"
            f"<td>{html.escape(c['paper'])}</td>"
            f"<td class='num'>{html.escape(fmt_measured(c))}</td>"
            f"<td class='{cls}'>{verdict(c)}<br><small>{seeds_text(c)}</small></td>"
            "</tr>"
        )
    return "\n".join(rows)


def _texts(summary: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Long strings in a results summary (generated samples, say), with their key paths."""
    if isinstance(summary, dict):
        return [t for k, v in summary.items() for t in _texts(v, f"{prefix}{k} ")]
    if isinstance(summary, str) and (len(summary) > 60 or "\n" in summary):
        return [(prefix.strip(), summary)]
    return []


def _page(results: list[dict[str, Any]], plots_dir: Path, out: Path) -> str:
    sections = []
    by_paper: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        by_paper.setdefault(res["paper"], []).append(res)
    for slug, items in by_paper.items():
        descriptions: dict[str, str] = {}
        link = ""
        try:
            paper = get_paper(slug)
            title = f"{paper.title} ({paper.authors}, {paper.year})"
            descriptions = {e.name: e.description for e in paper.experiments}
            if paper.arxiv:
                link = f" <a href='https://arxiv.org/abs/{paper.arxiv}'>arXiv:{paper.arxiv}</a>"
        except S30Error:
            title = slug
        parts = [f"<section id='{slug}'><h2><code>{slug}</code> {html.escape(title)}{link}</h2>"]
        for res in items:
            asserted = [c for c in res["claims"] if c.get("asserted", True)]
            held = sum(c["holds"] for c in asserted)
            parts.append(
                f"<h3>{html.escape(res['experiment'])} <span class='meta'>preset "
                f"{res['preset']} · {held}/{len(asserted)} claims hold · "
                f"{len(res.get('seeds', [0]))} seed(s) · "
                f"{fmt_runtime(res['runtime_s'])} on {res['env']['device']} "
                f"({res['env'].get('threads', '?')} threads) · commit "
                f"{html.escape(str(res['env'].get('commit')))}</span></h3>"
            )
            if res["experiment"] in descriptions:
                parts.append(f"<p>{html.escape(descriptions[res['experiment']])}</p>")
            parts.append(
                "<table><tr><th>claim</th><th>paper</th><th>ours (measured)</th>"
                f"<th>verdict</th></tr>{_claim_rows(res)}</table>"
            )
            for note in res.get("notes", []):
                parts.append(f"<p class='note'>{html.escape(note)}</p>")
            for label, text in _texts(res.get("summary", {})):
                parts.append(
                    f"<p class='note'>{html.escape(label)}</p>"
                    f"<pre class='sample'>{html.escape(text)}</pre>"
                )
            figs = []
            for name in res.get("plots", []):
                src = res["_dir"] / name
                if not src.exists():
                    continue
                dest = plots_dir / slug / res["experiment"] / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                rel = dest.relative_to(out).as_posix()
                figs.append(f"<figure><img src='{rel}' alt='{html.escape(name)}'></figure>")
            if figs:
                parts.append("<div class='plots'>" + "".join(figs) + "</div>")
        parts.append("</section>")
        sections.append("\n".join(parts))
    nav = " · ".join(f"<a href='#{slug}'>{slug}</a>" for slug in by_paper)
    body = "\n".join(sections) or "<p>No results yet: run <code>s30 run all</code>.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>sutskever30 report</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; }}
h1 {{ margin-bottom: 0; }} h2 {{ border-bottom: 1px solid #ddd; margin-top: 2em; }}
.meta {{ font-weight: normal; font-size: 0.8em; color: #666; }}
table {{ border-collapse: collapse; width: 100%; margin: 0.5em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }} td.num {{ font-family: ui-monospace, monospace; font-size: 0.85em; }}
td.ok {{ background: #e3f6e3; }} td.bad {{ background: #fbe0e0; }} td.info {{ color: #666; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.plots img {{ max-width: 100%; border: 1px solid #eee; }}
pre.sample {{ background: #f8f8f8; border: 1px solid #eee; padding: 6px 10px;
             white-space: pre-wrap; font-size: 0.85em; max-height: 18em; overflow: auto; }}
.note {{ color: #555; font-size: 0.9em; }}
</style></head>
<body>
<h1>sutskever30</h1>
<p>Each claim of each paper, measured by code at the quick preset; the paper's number beside
ours. Verdicts are computed from the numbers shown.</p>
<nav>{nav}</nav>
{body}
</body></html>
"""


def build_report(results_dir: Path, out: Path, readme: Path | None) -> Path:
    """Write ``out/index.html`` and refresh the README tables; return the page's path."""
    results = load_results(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots_dir = out / "plots"
    if plots_dir.exists():
        shutil.rmtree(plots_dir)
    page = out / "index.html"
    atomic_write_text(page, _page(results, plots_dir, out))
    if readme is not None:
        rewrite_between_markers(readme, markdown_table(results))
    for slug in {r["paper"] for r in results}:
        own = [r for r in results if r["paper"] == slug]
        rewrite_between_markers(
            PAPERS_DIR / slug / "README.md", markdown_table(own, with_paper=False)
        )
    return page
