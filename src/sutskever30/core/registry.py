"""Papers and their experiments: what ``s30 list`` shows and ``s30 run`` finds."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sutskever30.core.errors import UsageError

if TYPE_CHECKING:
    from sutskever30.core.bench import BenchCase
    from sutskever30.core.run import Run


@dataclass(frozen=True)
class Experiment:
    """One measured claim (or group of claims) of a paper.

    ``presets`` maps ``smoke``/``quick``/``full`` to a frozen config instance; ``run`` trains
    and measures, logging metrics and claims through the :class:`Run` it is given.
    ``quick_minutes`` is the measured wall-clock of the quick preset on the 2-core
    reference machine (stated in the paper's README too), all its seeds together.
    ``quick_seeds`` is how many seeds the quick preset runs by default (``--seeds``
    overrides it); a knife-edge comparison needs at least 3.
    """

    name: str
    description: str
    presets: Mapping[str, Any]
    run: Callable[[Run, Any], None]
    quick_minutes: float
    datasets: tuple[str, ...] = ()
    quick_seeds: int = 1


MAX_BEST_OF = 64  # best-of-n candidates per ``s30 sample``
MAX_SAMPLE_LENGTH = 100_000  # per ``s30 sample`` command: ~1 min on one core for char_rnn


def check_sample_args(args: argparse.Namespace) -> None:
    """The sampling options every ``s30 sample`` paper shares, each bad value one clear line."""
    if not args.temperature > 0:
        raise UsageError(f"--temperature must be > 0, got {args.temperature}")
    if not 1 <= args.length <= MAX_SAMPLE_LENGTH:
        raise UsageError(f"--length must be in [1, {MAX_SAMPLE_LENGTH:,}], got {args.length:,}")
    if not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0, got {args.top_k}")
    if not 1 <= getattr(args, "n", 1) <= MAX_BEST_OF:
        raise UsageError(f"--n must be in [1, {MAX_BEST_OF}], got {args.n}")


@dataclass(frozen=True)
class Paper:
    slug: str
    title: str
    authors: str
    year: int
    arxiv: str
    experiments: tuple[Experiment, ...]
    # ``s30 sample <slug>``: takes the parsed CLI arguments (checked by
    # :func:`check_sample_args`), returns the text to print or an iterator of its pieces.
    sample: Callable[[argparse.Namespace], str | Iterator[str]] | None = None
    # ``s30 bench <slug>``: given a scratch Run at the quick preset of the experiment defined
    # in the same module (the first experiment otherwise; ``core.bench.bench_experiment``),
    # returns the BenchCases (model, optimizer, the experiment's own step) to time.
    bench: Callable[[Run], list[BenchCase]] | None = None

    def experiment(self, name: str) -> Experiment:
        for exp in self.experiments:
            if exp.name == name:
                return exp
        names = ", ".join(e.name for e in self.experiments)
        raise UsageError(f"paper {self.slug!r} has no experiment {name!r}; choose from: {names}")


# The reading list in order (PAPERS.md). Each implemented slug is a package
# ``sutskever30.papers.<slug>`` whose ``experiment`` module defines ``PAPER``.
SLUGS: tuple[str, ...] = (
    "initialization_scale",
    "alexnet",
    "resnet",
    "identity_mappings",
    "dilated_convolutions",
    "cs231n",
    "double_descent",
    "mpnn",
    "char_rnn",
    "lstm",
    "rnn_regularization",
    "deep_speech2",
    "bahdanau_attention",
    "transformer",
    "pointer_networks",
    "order_matters",
    "ntm",
    "relational_rnn",
    "relation_networks",
    "gpt2_sampling",
    "scaling_laws",
    "multi_token_prediction",
    "gpipe",
    "dpr",
    "rag",
    "zephyr",
    "complexodynamics",
    "coffee_automaton",
    "kolmogorov_complexity",
    "mdl_tutorial",
    "mdl_weights",
    "vlae",
    "universal_intelligence",
)
_PAPERS_DIR = Path(__file__).resolve().parent.parent / "papers"


def implemented() -> list[str]:
    """Slugs whose package exists, in reading-list order."""
    return [s for s in SLUGS if (_PAPERS_DIR / s / "experiment.py").is_file()]


def get_paper(slug: str) -> Paper:
    if slug not in implemented():
        if slug in SLUGS:
            raise UsageError(f"paper {slug!r} is on the list but not implemented yet")
        raise UsageError(f"unknown paper {slug!r}; choose from: {', '.join(implemented())}")
    module = importlib.import_module(f"sutskever30.papers.{slug}.experiment")
    return module.PAPER


def all_papers() -> list[Paper]:
    return [get_paper(slug) for slug in implemented()]


def resolve(target: str) -> list[tuple[Paper, Experiment]]:
    """``all`` | ``<slug>`` | ``<slug>:<experiment>`` → the experiments to run, in order."""
    if target == "all":
        return [(p, e) for p in all_papers() for e in p.experiments]
    slug, _, name = target.partition(":")
    paper = get_paper(slug)
    if name:
        return [(paper, paper.experiment(name))]
    return [(paper, e) for e in paper.experiments]
