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
from sutskever30.core.results import (
    busy_note,
    fmt_measured,
    fmt_runtime,
    markdown_table,
    seeds_text,
    verdict,
)

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
        v = verdict(c)
        cls = {"holds": "ok", "does not hold": "bad", "reported": "info"}[v]
        rule = (
            f"<div class='rule'>rule: <code>{html.escape(c['rule'])}</code></div>"
            if c.get("rule")
            else ""
        )
        seeds = f"<br><small>held in {seeds_text(c)}</small>" if seeds_text(c) else ""
        rows.append(
            "<tr>"
            f"<td>{html.escape(c['statement'])}{rule}</td>"
            f"<td>{html.escape(c['paper'])}</td>"
            f"<td class='num'>{_measured_html(c)}</td>"
            f"<td class='{cls}'>{v}{seeds}</td>"
            "</tr>"
        )
    return "\n".join(rows)


def _measured_html(claim: dict[str, Any]) -> str:
    """One measured number a line: ``name = mean ± std``."""
    return "<br>".join(html.escape(part) for part in fmt_measured(claim).split("; "))


def _texts(summary: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Long strings in a results summary (generated samples, say), with their key paths."""
    if isinstance(summary, dict):
        return [t for k, v in summary.items() for t in _texts(v, f"{prefix}{k} ")]
    if isinstance(summary, str) and (len(summary) > 60 or "\n" in summary):
        return [(prefix.strip(), summary)]
    return []


def _counts(items: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"holds": 0, "does not hold": 0, "reported": 0}
    for res in items:
        for c in res["claims"]:
            counts[verdict(c)] += 1
    return counts


def _summary_table(by_paper: dict[str, list[dict[str, Any]]]) -> str:
    """The top of the page: per paper, how many claims hold, do not hold, are reported."""
    rows = []
    total = {"holds": 0, "does not hold": 0, "reported": 0}
    for slug, items in by_paper.items():
        n = _counts(items)
        for k in total:
            total[k] += n[k]
        runtime = sum(r["runtime_s"] for r in items)
        seeds = sorted({len(r.get("seeds", [0])) for r in items})
        bad = " class='bad'" if n["does not hold"] else ""
        rows.append(
            f"<tr><td><a href='#{slug}'><code>{slug}</code></a></td>"
            f"<td class='ok'>{n['holds']}</td><td{bad}>{n['does not hold']}</td>"
            f"<td>{n['reported']}</td><td>{'/'.join(map(str, seeds))}</td>"
            f"<td>{fmt_runtime(runtime)}</td></tr>"
        )
    rows.append(
        f"<tr class='total'><td>all</td><td>{total['holds']}</td>"
        f"<td>{total['does not hold']}</td><td>{total['reported']}</td><td></td><td></td></tr>"
    )
    return (
        "<table class='summary'><tr><th>paper</th><th>claims holding</th>"
        "<th>not holding</th><th>reported (no verdict)</th><th>seeds</th><th>runtime</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _plots(res: dict[str, Any], slug: str, plots_dir: Path, out: Path) -> str:
    figs = []
    for name in res.get("plots", []):
        src = res["_dir"] / name
        if not src.exists():
            continue
        dest = plots_dir / slug / res["experiment"] / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        rel = dest.relative_to(out).as_posix()
        figs.append(
            f"<figure><a href='{rel}'><img src='{rel}' alt='{html.escape(name)}'></a>"
            f"<figcaption>{html.escape(name)}</figcaption></figure>"
        )
    return "<div class='plots'>" + "".join(figs) + "</div>" if figs else ""


def _experiment(res: dict[str, Any], slug: str, description: str, plots_dir, out) -> str:
    n = _counts([res])
    asserted = n["holds"] + n["does not hold"]
    seeds = res.get("seeds", [0])
    env = res["env"]
    parts = [
        f"<h3 id='{slug}-{html.escape(res['experiment'])}'>{html.escape(res['experiment'])} "
        f"<span class='meta'>{n['holds']}/{asserted} claims hold · preset {res['preset']} · "
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} {seeds} · "
        f"{fmt_runtime(res['runtime_s'])}{html.escape(busy_note(res))} on {env['device']} "
        f"({env.get('threads', '?')} threads) · commit "
        f"{html.escape(str(env.get('commit')))}</span></h3>"
    ]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    parts.append("<div class='row'><div class='claims'>")
    parts.append(
        "<table><tr><th>claim</th><th>paper's number</th><th>ours (measured"
        f"{', mean ± std' if len(seeds) > 1 else ''})</th><th>verdict</th></tr>"
        f"{_claim_rows(res)}</table></div>"
    )
    if res.get("notes"):
        notes = "".join(f"<li>{html.escape(note)}</li>" for note in res["notes"])
        parts.append(f"<aside class='caveats'><b>Caveats</b><ul>{notes}</ul></aside>")
    parts.append("</div>")
    for label, text in _texts(res.get("summary", {})):
        parts.append(
            f"<p class='note'>{html.escape(label)}</p><pre class='sample'>{html.escape(text)}</pre>"
        )
    parts.append(_plots(res, slug, plots_dir, out))
    return "\n".join(parts)


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
            desc = descriptions.get(res["experiment"], "")
            parts.append(_experiment(res, slug, desc, plots_dir, out))
        parts.append("</section>")
        sections.append("\n".join(parts))
    body = "\n".join(sections) or "<p>No results yet: run <code>s30 run all</code>.</p>"
    summary = _summary_table(by_paper) if by_paper else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sutskever30 report</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 1300px; margin: 2em auto;
       padding: 0 1.5em; color: #222; }}
h1 {{ margin-bottom: 0.2em; }} h2 {{ border-bottom: 2px solid #ddd; margin-top: 2.2em; }}
h3 {{ margin-top: 1.6em; }}
.meta {{ font-weight: normal; font-size: 0.75em; color: #666; }}
table {{ border-collapse: collapse; width: 100%; margin: 0.5em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ddd; padding: 5px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
td.num {{ font-family: ui-monospace, monospace; font-size: 0.85em; white-space: nowrap; }}
td.ok {{ background: #e3f6e3; }} td.bad {{ background: #fbe0e0; font-weight: 600; }}
td.info {{ color: #666; }}
table.summary {{ width: auto; min-width: 60%; }} table.summary td {{ text-align: right; }}
table.summary td:first-child {{ text-align: left; }} tr.total td {{ font-weight: 600; }}
.rule {{ color: #777; font-size: 0.85em; margin-top: 2px; }}
.row {{ display: flex; gap: 1em; align-items: flex-start; }}
.claims {{ flex: 3; min-width: 0; }}
aside.caveats {{ flex: 1; background: #fff8e6; border: 1px solid #f0dca8; padding: 6px 10px;
                font-size: 0.85em; margin-top: 0.5em; }}
aside.caveats ul {{ margin: 0.3em 0; padding-left: 1.2em; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.plots figure {{ margin: 0; max-width: 100%; }}
.plots img {{ max-width: 100%; border: 1px solid #eee; }}
figcaption {{ font-size: 0.8em; color: #777; }}
pre.sample {{ background: #f8f8f8; border: 1px solid #eee; padding: 6px 10px;
             white-space: pre-wrap; font-size: 0.85em; max-height: 18em; overflow: auto; }}
.note {{ color: #555; font-size: 0.9em; }}
</style></head>
<body>
<h1>sutskever30</h1>
<p>Each claim of each paper, measured by code at the quick preset on a laptop CPU, with the
paper's number beside ours. Every verdict is computed from the numbers shown by the rule shown
under the claim; over several seeds it is decided on the mean, with the seed-to-seed spread
as the noise margin where the rule says <code>spread</code>.</p>
{summary}
{body}
</body></html>
"""


def build_report(
    results_dir: Path, out: Path, readme: Path | None, *, papers_dir: Path | None = None
) -> Path:
    """Write ``out/index.html``; rewrite the results table of ``readme`` and, with
    ``papers_dir``, of each ``<papers_dir>/<slug>/README.md``. Nothing else is written."""
    results = load_results(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots_dir = out / "plots"
    if plots_dir.exists():
        shutil.rmtree(plots_dir)
    page = out / "index.html"
    atomic_write_text(page, _page(results, plots_dir, out))
    if readme is not None:
        rewrite_between_markers(readme, markdown_table(results))
    if papers_dir is not None:
        for slug in {r["paper"] for r in results}:
            own = [r for r in results if r["paper"] == slug]
            rewrite_between_markers(
                papers_dir / slug / "README.md", markdown_table(own, with_paper=False)
            )
    return page
