"""The ``s30`` command: list, run, report, sample, data, bench.

Every user error (unknown paper or key, bad value, missing data, corrupt checkpoint,
divergence) is printed as one ``error:`` line with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from sutskever30.core.config import PRESETS, apply_overrides, flat_keys, type_name
from sutskever30.core.errors import S30Error, UsageError


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _run_help_epilog(argv: list[str]) -> str:
    """For ``s30 run <target> --help``: the settable keys of that target's configs."""
    from sutskever30.core.registry import resolve

    target = next((a for a in argv[1:] if not a.startswith("-")), None)
    if target is None:
        return ""
    lines = []
    for paper, exp in resolve(target):
        cfg = exp.presets["quick"]
        lines.append(f"{paper.slug}:{exp.name} keys (quick value):")
        for key, tp in flat_keys(cfg).items():
            value = cfg
            for part in key.split("."):
                value = getattr(value, part)
            lines.append(f"  {key}={value!r}  ({type_name(tp)})")
    return "\n".join(lines)


def build_parser(run_epilog: str = "") -> argparse.ArgumentParser:
    parser = _Parser(prog="s30", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="papers, experiments, quick runtimes and last verdicts")

    run = sub.add_parser(
        "run",
        help="run experiments",
        epilog=run_epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("target", help="all | <slug> | <slug>:<experiment>")
    run.add_argument("--preset", default="quick", choices=PRESETS)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run.add_argument("--out", type=Path, default=Path("runs"), help="run folders go here")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (typed; `s30 run <target> --help` lists the keys)",
    )
    run.add_argument("--resume", action="store_true", help="continue the newest unfinished run")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    run.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="quick-preset results are published here (default: results/)",
    )
    run.add_argument("--no-publish", action="store_true", help="do not update results/")

    report = sub.add_parser("report", help="build report/index.html and the README table")
    report.add_argument("--results", type=Path, default=Path("results"))
    report.add_argument("--out", type=Path, default=Path("report"))
    report.add_argument("--readme", type=Path, default=Path("README.md"))

    sample = sub.add_parser("sample", help="generate text from a trained run's checkpoint")
    sample.add_argument("paper", help="a paper with a sampler, e.g. char_rnn")
    sample.add_argument("--prompt", default="\n")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--length", type=int, default=500)
    sample.add_argument("--top-k", type=int, default=0)
    sample.add_argument("--top-p", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--run", type=Path, default=None, help="run folder (default: newest)")
    sample.add_argument("--out", type=Path, default=Path("runs"))

    data = sub.add_parser("data", help="list, fetch or verify datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    data_sub.add_parser("list", help="datasets and whether a copy is present")
    fetch = data_sub.add_parser("fetch", help="download the official files (md5-checked)")
    fetch.add_argument("name")
    fetch.add_argument("--url", default=None, help="a mirror of the official file")
    verify = data_sub.add_parser("verify", help="check presence and checksums")
    verify.add_argument("name", nargs="?")

    bench = sub.add_parser("bench", help="time the models' training steps")
    bench.add_argument("target", nargs="?", default="all")
    return parser


def cmd_list(_: argparse.Namespace) -> int:
    from sutskever30.core.registry import all_papers
    from sutskever30.core.report import load_results

    latest = {(r["paper"], r["experiment"]): r for r in load_results(Path("results"))}
    rows = [("slug", "paper", "year", "experiments", "quick", "last verdict")]
    for paper in all_papers():
        # Measured quick runtime where results exist, else the README's stated estimate.
        minutes, estimated = 0.0, False
        verdicts = []
        for exp in paper.experiments:
            res = latest.get((paper.slug, exp.name))
            if res is None or res.get("preset") != "quick":
                minutes += exp.quick_minutes
                estimated = True
            else:
                minutes += res["runtime_s"] / 60
            if res is None:
                verdicts.append("-")
            else:
                asserted = [c for c in res["claims"] if c.get("asserted", True)]
                held = sum(c["holds"] for c in asserted)
                verdicts.append(f"{held}/{len(asserted)}")
        rows.append(
            (
                paper.slug,
                paper.title[:44],
                str(paper.year),
                ", ".join(e.name for e in paper.experiments),
                f"{'~' if estimated else ''}{minutes:.1f} min",
                " ".join(verdicts),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from sutskever30.core.env import select_device
    from sutskever30.core.registry import resolve
    from sutskever30.core.run import open_run

    device = select_device(args.device)
    plan = []
    for paper, exp in resolve(args.target):
        if args.preset not in exp.presets:
            raise UsageError(f"{paper.slug}:{exp.name} has no preset {args.preset!r}")
        plan.append((paper, exp, apply_overrides(exp.presets[args.preset], args.overrides)))
    for dataset in {d for _, exp, _ in plan for d in exp.datasets}:
        from sutskever30.data import get_dataset

        get_dataset(dataset).require()
    # results/ holds the canonical quick results: runs with --set overrides stay in runs/.
    publish = None
    if args.preset == "quick" and not args.no_publish and not args.overrides:
        publish = args.results
    failures = 0
    for paper, exp, cfg in plan:
        run = open_run(
            slug=paper.slug,
            experiment=exp.name,
            preset=args.preset,
            cfg=cfg,
            seed=args.seed,
            device=device,
            out=args.out,
            resume=args.resume,
            quiet=args.quiet,
            publish_dir=publish,
        )
        if args.resume and not run.resumed and not args.quiet:
            print(f"{paper.slug}:{exp.name}: no unfinished {args.preset} run to resume; new run")
        start = time.time()
        exp.run(run, cfg)
        results = run.finish()
        asserted = [c for c in results["claims"] if c["asserted"]]
        held = sum(c["holds"] for c in asserted)
        failures += len(asserted) - held
        print(
            f"{paper.slug}:{exp.name} [{args.preset}] {held}/{len(asserted)} claims hold "
            f"({time.time() - start:.0f} s) -> {run.dir}"
        )
        for c in results["claims"]:
            mark = ("ok " if c["holds"] else "NO ") if c["asserted"] else "-- "
            print(f"  {mark} {c['id']}: {c['statement']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sutskever30.core.report import build_report

    page = build_report(args.results, args.out, args.readme)
    print(f"report written to {page}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from sutskever30.core.registry import get_paper

    paper = get_paper(args.paper)
    if paper.sample is None:
        raise UsageError(f"paper {paper.slug!r} has no sampler")
    if not args.temperature > 0:
        raise UsageError(f"--temperature must be > 0, got {args.temperature}")
    if args.length < 1:
        raise UsageError(f"--length must be >= 1, got {args.length}")
    if not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0, got {args.top_k}")
    print(paper.sample(args))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from sutskever30.data import all_datasets, data_dir, get_dataset

    if args.data_command == "list":
        print(f"data directory: {data_dir()}")
        for ds in all_datasets():
            found = ds.find()
            print(f"  {ds.name:16} {'present' if found else 'missing':8} {ds.description}")
        return 0
    if args.data_command == "fetch":
        path = get_dataset(args.name).fetch(args.url)
        print(f"{args.name}: {path}")
        return 0
    names = [args.name] if args.name else [d.name for d in all_datasets()]
    bad = 0
    for name in names:
        ok, message = get_dataset(name).verify()
        bad += not ok
        print(f"  {name:16} {'ok' if ok else 'FAIL':5} {message}")
    return 1 if bad else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from sutskever30.core.registry import all_papers, get_paper

    papers = all_papers() if args.target == "all" else [get_paper(args.target)]
    for paper in papers:
        if paper.bench is None:
            continue
        for name, value in paper.bench().items():
            print(f"{paper.slug:24} {name:40} {value}")
    return 0


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "report": cmd_report,
    "sample": cmd_sample,
    "data": cmd_data,
    "bench": cmd_bench,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        epilog = ""
        if argv[:1] == ["run"] and ("-h" in argv or "--help" in argv):
            epilog = _run_help_epilog(argv)
        args = build_parser(epilog).parse_args(argv)
        return COMMANDS[args.command](args)
    except S30Error as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
