"""s30: run the papers' experiments, measure their claims, report them.

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


PRESET_HELP = """presets:
  smoke   seconds: every code path once, for tests; its numbers mean nothing
  quick   minutes on a 2-core laptop CPU: the claims are measured and must hold (default)
  full    the paper's own setting (a GPU advised); results stay in runs/"""


def _value(cfg: object, key: str) -> object:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _run_help_epilog(argv: list[str]) -> str:
    """For ``s30 run <target> --help``: the presets and every settable key of that
    target's configs with its smoke / quick / full value."""
    from sutskever30.core.registry import resolve

    target = next((a for a in argv[1:] if not a.startswith("-")), None)
    if target is None:
        return PRESET_HELP + "\n\n`s30 run <target> --help` lists the target's --set keys."
    lines = [PRESET_HELP]
    for paper, exp in resolve(target):
        presets = {name: cfg for name, cfg in exp.presets.items()}
        lines += ["", f"{paper.slug}:{exp.name}: {exp.description}"]
        lines.append(f"  quick preset: {exp.quick_seeds} seed(s) by default")
        for key, tp in flat_keys(presets["quick"]).items():
            values = "  ".join(f"{n}={_value(c, key)!r}" for n, c in presets.items())
            lines.append(f"  {key} ({type_name(tp)}): {values}")
    return "\n".join(lines)


def build_parser(run_epilog: str = "") -> argparse.ArgumentParser:
    from sutskever30 import __version__

    parser = _Parser(
        prog="s30",
        description=__doc__.splitlines()[0],
        epilog="`s30 <command> --help` describes each command; start with `s30 list`.",
    )
    parser.add_argument("--version", action="version", version=f"s30 {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    sub.add_parser("list", help="papers, experiments, quick runtimes and last verdicts")

    run = sub.add_parser(
        "run",
        help="run experiments",
        description="Train and measure experiments; every claim's verdict is computed from "
        "the numbers. Writes runs/<slug>/<experiment>/<preset>-<time>/.",
        epilog=run_epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "target",
        nargs="?",
        help="all | <slug> | <slug>:<experiment> (not needed with --resume <run folder>)",
    )
    run.add_argument(
        "--preset", default="quick", choices=PRESETS, help="smoke | quick | full (default quick)"
    )
    run.add_argument(
        "--seed", type=int, default=None, help="run this one seed (default: the preset's seeds)"
    )
    run.add_argument(
        "--seeds",
        default=None,
        metavar="N|LIST",
        help="several seeds, aggregated into one results.json: a count (3, from --seed or 0) "
        "or a list (0,4,7); default: the quick preset's own count, 1 for smoke and full",
    )
    run.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run N seeds side by side in worker processes, the threads split between them "
        "(default 1: one seed after another)",
    )
    run.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun on CUDA: BatchNorm statistics over all ranks (SyncBatchNorm)",
    )
    run.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto (default): CUDA when present, else CPU",
    )
    run.add_argument(
        "--out", type=Path, default=Path("runs"), help="run folders go here (default runs/)"
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (typed; `s30 run <target> --help` lists the keys); "
        "with several experiments, each key goes to those that have it",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="RUN_FOLDER",
        help="continue the newest unfinished run of the target, or the run folder given "
        "(its paper, preset, seeds and settings are read from its config.json)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    run.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="quick-preset results are published here (default: results/)",
    )
    run.add_argument("--no-publish", action="store_true", help="do not update results/")

    report = sub.add_parser(
        "report",
        help="build report/index.html and the README results tables",
        description="Build the HTML report and rewrite the results tables of README.md and "
        "(inside a checkout) of each paper's README, from results/ only.",
    )
    report.add_argument(
        "--results", type=Path, default=Path("results"), help="results folder (default results/)"
    )
    report.add_argument(
        "--out", type=Path, default=Path("report"), help="page folder (default report/)"
    )
    report.add_argument(
        "--readme",
        type=Path,
        default=Path("README.md"),
        help="README whose results table is rewritten (default README.md)",
    )
    report.add_argument(
        "--no-readme", action="store_true", help="write the page only; touch no README"
    )

    sample = sub.add_parser(
        "sample",
        help="generate text from a trained run's checkpoint",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sample.add_argument("paper", help="a paper with a sampler, e.g. char_rnn")
    sample.add_argument(
        "--prompt",
        "--text",
        dest="prompt",
        default="\n",
        help="text the sample continues (transformer: the German sentence to translate)",
    )
    sample.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (> 0)")
    sample.add_argument("--length", type=int, default=500, help="characters or tokens to generate")
    sample.add_argument("--top-k", type=int, default=0, help="keep the k likeliest (0: all)")
    sample.add_argument(
        "--top-p", type=float, default=1.0, help="nucleus: keep this probability mass"
    )
    sample.add_argument(
        "--n", type=int, default=1, help="best-of-n: draw n, print the likeliest (if supported)"
    )
    sample.add_argument(
        "--model",
        default=None,
        help="zephyr: teacher (default) | dsft | ddpo | dpo_only, a trained student",
    )
    sample.add_argument("--seed", type=int, default=0, help="sampling seed")
    sample.add_argument("--run", type=Path, default=None, help="run folder (default: newest)")
    sample.add_argument("--out", type=Path, default=Path("runs"), help="where runs are")

    data = sub.add_parser("data", help="list, fetch or verify datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    data_sub.add_parser("list", help="datasets and whether a copy is present")
    fetch = data_sub.add_parser(
        "fetch",
        help="download the official files (md5-checked); `all`: every dataset not yet here",
        description="S30_DATA_MIRROR=<URL> fetches https://host/path from <URL>/host/path",
    )
    fetch.add_argument("name", help="a dataset, or all")
    fetch.add_argument("--url", default=None, help="a mirror of the official file")
    verify = data_sub.add_parser(
        "verify", help="check presence and checksums (optional datasets may be absent)"
    )
    verify.add_argument("name", nargs="?")

    bench = sub.add_parser(
        "bench",
        help="the training loop's overhead (fit vs a bare loop) and each model's share of "
        "the machine's matmul peak",
    )
    bench.add_argument("target", nargs="?", default="all", help="all | <slug> (default: all)")
    bench.add_argument(
        "--steps",
        type=int,
        default=40,
        help="steps per timed block, at least (default 40; a block lasts at least 2 s)",
    )
    bench.add_argument("--repeats", type=int, default=5, help="timed blocks (default 5)")
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
                paper.title,
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


def parse_seeds(text: str | None, base: int | None, default_count: int) -> list[int]:
    """``--seeds 3`` → three seeds from ``--seed`` (default 0); ``--seeds 0,4,7`` → those.
    Without ``--seeds``: ``--seed k`` alone runs seed k, else the preset's default count."""
    if text is None:
        if base is not None:
            return [base]
        return list(range(default_count))
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = list(range(base or 0, (base or 0) + count))
    except ValueError:
        raise UsageError(
            f"--seeds expects a count (3) or a comma-separated list (0,4,7), got {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f"--seeds must name distinct non-negative seeds, got {text!r}")
    return seeds


def writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` (and its parents) or say in one line why it cannot be written."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {what} {path}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write into {what} {path}: permission denied")
    return path


def _split_overrides(exp, preset: str, overrides: list[str], ignored: dict[str, list[str]]):
    """The ``--set`` items whose key this experiment's config has; the others are noted in
    ``ignored`` (key → experiments that ignored it)."""
    keys = flat_keys(exp.presets[preset])
    mine = []
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key in keys:
            mine.append(item)
        else:
            ignored.setdefault(key, []).append(exp.name)
    return mine


def _plan_resume_folder(args: argparse.Namespace) -> list[tuple]:
    """``s30 run --resume <run folder>``: paper, preset, seeds and settings from its
    config.json."""
    import json

    from sutskever30.core.config import from_dict
    from sutskever30.core.registry import get_paper

    folder = Path(args.resume)
    if args.target or args.overrides or args.seeds or args.seed is not None:
        raise UsageError(
            "--resume <run folder> reads the target, --set values and seeds from the folder; "
            "give none of them"
        )
    try:
        saved = json.loads((folder / "config.json").read_text())
        slug, name, preset = saved["paper"], saved["experiment"], saved["preset"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise UsageError(f"{folder} is not a run folder (no readable config.json)") from None
    if (folder / "results.json").exists():
        raise UsageError(f"{folder} is finished already (it has results.json)")
    exp = get_paper(slug).experiment(name)
    cfg = from_dict(exp.presets[preset], saved["config"])
    seeds = saved.get("seeds") or [saved["seed"]]
    args.preset = preset
    return [(get_paper(slug), exp, cfg, seeds, folder)]


def _plan(args: argparse.Namespace) -> list[tuple]:
    """(paper, experiment, config, seeds, run folder or None) for each experiment to run."""
    from sutskever30.core.registry import resolve

    if isinstance(args.resume, str):
        return _plan_resume_folder(args)
    if not args.target:
        raise UsageError(
            "run needs a target: all | <slug> | <slug>:<experiment> (`s30 list` shows them)"
        )
    targets = resolve(args.target)
    ignored: dict[str, list[str]] = {}
    plan = []
    for paper, exp in targets:
        if args.preset not in exp.presets:
            raise UsageError(f"{paper.slug}:{exp.name} has no preset {args.preset!r}")
        mine = args.overrides
        if len(targets) > 1:
            mine = _split_overrides(exp, args.preset, args.overrides, ignored)
        cfg = apply_overrides(exp.presets[args.preset], mine)
        default = exp.quick_seeds if args.preset == "quick" else 1
        plan.append((paper, exp, cfg, parse_seeds(args.seeds, args.seed, default), None))
    for key, names in ignored.items():
        if len(names) == len(targets):
            raise UsageError(f"unknown config key {key!r}: no experiment of {args.target} has it")
        print(f"--set {key}: ignored by {', '.join(names)} (no such key)", file=sys.stderr)
    return plan


def cmd_run(args: argparse.Namespace) -> int:
    from sutskever30.core import distributed
    from sutskever30.core.env import select_device
    from sutskever30.core.results import fmt_measured, seeds_text
    from sutskever30.core.run import run_experiment

    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    plan = _plan(args)
    writable_dir(args.out, "--out")
    for dataset in {d for _, exp, _, _, _ in plan for d in exp.datasets}:
        from sutskever30.data import get_dataset

        get_dataset(dataset).require()
    device = distributed.init(select_device(args.device), sync_bn=args.sync_bn)
    say = print if distributed.is_main() and not args.quiet else (lambda _: None)
    try:
        for paper, exp, cfg, seeds, folder in plan:
            # results/ holds the canonical quick results: runs with other settings stay in runs/
            canonical = (
                args.preset == "quick"
                and cfg == exp.presets["quick"]
                and seeds == list(range(exp.quick_seeds))
            )
            publish = args.results if canonical and not args.no_publish else None
            start = time.time()
            run_dir, results = run_experiment(
                slug=paper.slug,
                experiment=exp.name,
                preset=args.preset,
                cfg=cfg,
                body=exp.run,
                seeds=seeds,
                device=device,
                out=args.out,
                resume=bool(args.resume),
                run_dir=folder,
                quiet=args.quiet,
                publish_dir=publish,
                jobs=args.jobs,
                announce=say,
            )
            if not distributed.is_main():
                continue
            asserted = [c for c in results["claims"] if c["asserted"]]
            held = sum(c["holds"] for c in asserted)
            n = len(seeds)
            print(
                f"{paper.slug}:{exp.name} [{args.preset}] {held}/{len(asserted)} claims hold "
                f"over {n} seed{'s' if n > 1 else ''} ({time.time() - start:.0f} s) -> {run_dir}"
            )
            for c in results["claims"]:
                mark = ("ok " if c["holds"] else "NO ") if c["asserted"] else "-- "
                held_in = f" [{seeds_text(c)}]" if seeds_text(c) else ""
                print(f"  {mark} {c['id']}{held_in}: {fmt_measured(c)}")
    finally:
        distributed.shutdown()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sutskever30.core.report import PAPERS_DIR, build_report, load_results

    if not args.results.is_dir():
        raise UsageError(
            f"no results folder {args.results} (run `s30 run all` first, or pass --results)"
        )
    if not load_results(args.results):
        raise UsageError(f"{args.results} holds no results.json files; nothing to report")
    readme = papers = None
    if not args.no_readme:
        if not args.readme.is_file():
            raise UsageError(f"no README at {args.readme} (pass --readme or --no-readme)")
        readme = args.readme
        # the paper READMEs are rewritten only inside the checkout that holds this README
        if PAPERS_DIR.resolve().is_relative_to(args.readme.resolve().parent):
            papers = PAPERS_DIR
    writable_dir(args.out, "--out")
    page = build_report(args.results, args.out, readme, papers_dir=papers)
    print(f"report written to {page}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from sutskever30.core.registry import check_sample_args, get_paper

    paper = get_paper(args.paper)
    if paper.sample is None:
        raise UsageError(f"paper {paper.slug!r} has no sampler")
    check_sample_args(args)
    text = paper.sample(args)
    for chunk in [text] if isinstance(text, str) else text:  # a sampler may stream
        sys.stdout.write(chunk)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from sutskever30.data import all_datasets, data_dir, fetch_missing, get_dataset

    if args.data_command == "list":
        print(f"data directory: {data_dir()}")
        for ds in all_datasets():
            found = "present" if ds.find() else "missing" if ds.required else "absent"
            need = "" if ds.required else " (optional)"
            print(f"  {ds.name:17} {found:8} {ds.description}{need}")
        return 0
    if args.data_command == "fetch" and args.name != "all":
        path = get_dataset(args.name).fetch(args.url)
        print(f"{args.name}: {path}")
        return 0
    if args.data_command == "fetch":
        if args.url:
            raise UsageError("--url names one dataset's file: use it with a dataset, not all")
        print(f"data directory: {data_dir()}")
        results = ((ds.name, state, message) for ds, state, message in fetch_missing())
    else:
        names = [args.name] if args.name else [d.name for d in all_datasets()]
        results = ((name, *get_dataset(name).verify()) for name in names)
    bad = 0
    for name, state, message in results:
        bad += state == "FAIL"
        print(f"  {name:17} {state:8} {message}", flush=True)
    return 1 if bad else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from sutskever30.core.bench import TAX_BAR, bench_paper
    from sutskever30.core.registry import all_papers, get_paper

    papers = all_papers() if args.target == "all" else [get_paper(args.target)]
    import torch

    print(
        f"ratio: fit over its own steps' time (a bare loop beside), blocks of ≥ {args.steps} "
        f"steps and ≥ 2 s x {args.repeats}, {torch.get_num_threads()} threads "
        f"(bar: ratio <= {TAX_BAR})"
    )
    above = 0
    for paper in papers:
        for result in bench_paper(paper, steps=args.steps, repeats=args.repeats, quiet=False):
            above += result.ratio > TAX_BAR
            print(f"{paper.slug:20} {result.line()}", flush=True)
    return 1 if above else 0


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "report": cmd_report,
    "sample": cmd_sample,
    "data": cmd_data,
    "bench": cmd_bench,
}


def _clear_bars() -> None:
    """Close live progress bars so an error starts on a fresh line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", [])):
        bar.close()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        epilog = ""
        if argv[:1] == ["run"] and ("-h" in argv or "--help" in argv):
            epilog = _run_help_epilog(argv)
        parser = build_parser(epilog)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return COMMANDS[args.command](args)
    except S30Error as err:
        _clear_bars()
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        from sutskever30.core.run import interrupted_message

        _clear_bars()
        print(f"error: {interrupted_message()}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a file system refusal no check above foresaw: one line
        _clear_bars()
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
