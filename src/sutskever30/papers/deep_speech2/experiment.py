"""Deep Speech 2 on spoken digit strings: error rates on unseen speakers, the BatchNorm and
SortaGrad ablations, and the data-scaling curve.

One experiment, ``digit_strings``. Seed k leaves FSDD speaker k mod 6 out entirely, so the
quick preset's 3 seeds are 3 folds of a leave-one-speaker-out cross-validation and
``--seeds 6`` is the complete one. Per seed (splits in task.py):

1. Train on 2,000 utterances composed from repetitions 10-49 of the five other speakers.
2. Each variant (BN + SortaGrad, no BN, no SortaGrad) trains once per learning rate of
   the same grid, for the same steps from the same initial draw; it keeps the rate whose
   model has the lowest WER (then CTC loss) on the validation utterances (repetitions 5-9
   of the five training speakers). No test set is read before every rate is chosen.
3. Data scaling: BN + SortaGrad at its chosen rate, on nested fractions of the training
   recordings (same steps, same number of composed utterances).
4. Every chosen model is scored on the unseen speaker (the claims) and on the official
   test recordings (repetitions 0-4) of the five training speakers, reported beside it.

Deviations from the paper: digit strings from 6 speakers instead of 12,000 h of English;
Adam with warm-up and cosine decay instead of Nesterov SGD; the rate grid is searched per
variant on a validation split (the paper tunes on its dev set); minibatches are sorted
by length within chunks of ``bucket`` minibatches after the first epoch (the paper buckets
by length throughout). Model deviations: model.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.papers.deep_speech2.model import DS2Config
from sutskever30.papers.deep_speech2.training import (
    VARIANTS,
    Data,
    Trained,
    chance_wer,
    evaluate,
    load_data,
    select_rate,
    train_one,
    trainer,
)


@dataclass(frozen=True)
class DigitsConfig:
    model: DS2Config = field(default_factory=DS2Config)
    steps: int = 250
    batch_size: int = 32
    lrs: tuple[float, ...] = (3e-3, 1e-2, 3e-2)  # every variant's grid, chosen on validation
    warmup: int = 20
    clip: float = 10.0
    max_digits: int = 3
    train_utterances: int = 2000
    val_utterances: int = 200
    test_utterances: int = 300
    fractions: tuple[float, ...] = (1 / 40, 1 / 8, 1.0)  # 1, 5, 40 repetitions per digit+speaker
    ablations: bool = True  # also the no-BN and no-SortaGrad variants
    bucket: int = 8  # minibatches per length-sorted chunk after the first epoch
    held_out_speaker: int = -1  # -1: speaker (seed mod 6), leave-one-speaker-out over seeds
    beam_width: int = 8
    eval_every: int = 100

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_digits", "val_utterances", "test_utterances"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.train_utterances < self.batch_size:
            raise ValueError("train_utterances must be >= batch_size (one minibatch an epoch)")
        if not self.lrs or min(self.lrs) <= 0 or self.clip <= 0 or self.warmup < 0:
            raise ValueError("lrs must be non-empty and > 0, clip > 0, warmup >= 0")
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must be in (0, 1], got {self.fractions}")
        if 1.0 not in self.fractions:
            raise ValueError("fractions must include 1.0 (the full-data baseline)")
        if self.beam_width < 1 or self.eval_every < 0 or self.bucket < 1:
            raise ValueError("beam_width and bucket must be >= 1 and eval_every >= 0")


def score(run: Run, cfg: DigitsConfig, data: Data, models: dict[str, Trained]) -> dict:
    """Each chosen model on the unseen speaker and on the seen speakers' test recordings."""
    return {
        name: {
            "unseen": evaluate(
                t.model,
                data.test_unseen,
                run.device,
                beam_width=cfg.beam_width if name == "ds2" else 0,
            ),
            "seen": evaluate(t.model, data.test_seen, run.device),
        }
        for name, t in models.items()
    }


PAPER_WER = "a 9-layer DS2 with BN and SortaGrad reaches dev WER 9.52 on 12,000 h of English"


def error_claims(run: Run, data: Data, tests: dict) -> None:
    for where, held_out in (
        ("unseen", "digit strings of the held-out speaker (speaker-independent)"),
        ("seen", "the official test recordings (repetitions 0-4) of the training speakers"),
    ):
        r = tests[where]
        chance = chance_wer(getattr(data, f"test_{where}").texts, run.seed)
        measured = {"wer": r["wer"], "cer": r["cer"], "chance_wer": chance}
        if "beam_wer" in r:
            measured["beam_wer"] = r["beam_wer"]
        run.claim(
            f"below_chance_{where}",
            f"greedy WER on {held_out} is below a third of chance (random digit words)",
            PAPER_WER,
            measured,
            "wer < chance_wer / 3",
        )


def ablation_claims(run: Run, chosen: dict[str, Trained], tests: dict) -> None:
    for name, what, paper in (
        ("no_bn", "sequence-wise BatchNorm", "9-layer dev WER 10.83 without BN vs 9.52 with BN"),
        ("no_sortagrad", "SortaGrad", "dev WER 11.96 without SortaGrad vs 10.83 with it"),
    ):
        run.claim(
            f"{name}_worse",
            f"without {what}, each at its own rate chosen on validation, the held-out "
            "speaker's WER at equal steps is higher (by more than the seed-to-seed spread)",
            paper,
            {
                "wer": tests["ds2"]["unseen"]["wer"],
                f"{name}_wer": tests[name]["unseen"]["wer"],
                "seen_wer": tests["ds2"]["seen"]["wer"],
                f"{name}_seen_wer": tests[name]["seen"]["wer"],
                "lr": chosen["ds2"].lr,
                f"{name}_lr": chosen[name].lr,
                f"{name}_val_wer": chosen[name].val["wer"],
                # grid rates whose model decodes something: 0 = never left the blank plateau
                f"{name}_rates_off_plateau": sum(
                    m["empty"] < 1 for m in chosen[name].grid.values()
                ),
            },
            f"{name}_wer > wer + spread",
        )


def scaling_claim(run: Run, wers: dict[int, float]) -> tuple[float, float]:
    """WER vs training recordings: the claim; returns the power-law fit (slope, intercept)."""
    ns = sorted(wers)
    w = [wers[n] for n in ns]
    slope, intercept = np.polyfit(np.log(ns), np.log(np.maximum(w, 1e-4)), 1)
    run.claim(
        "more_data_lower_wer",
        "the held-out speaker's WER falls as the training data grows: the full set beats "
        "the smallest fraction and the fitted power-law exponent is negative (each by more "
        "than the seed-to-seed spread)",
        "WER falls ~40% relative for each 10x more training data (exponent about -0.22)",
        {
            "recordings": ns,
            "wer": w,
            "wer_smallest": w[0],
            "wer_full": w[-1],
            "power_law_exponent": float(slope),
        },
        "wer_full + spread < wer_smallest and power_law_exponent + spread < 0",
    )
    return float(slope), float(intercept)


def plot_scaling(run: Run, wers: dict[int, float], fit_line: tuple[float, float]) -> None:
    ns = sorted(wers)
    slope, intercept = fit_line
    fit_n = np.geomspace(ns[0], ns[-1], 20)
    plots.line_plot(
        run.plot_path("data_scaling.png"),
        {
            "held-out speaker WER": (ns, [wers[n] for n in ns]),
            f"fit: WER ∝ n^{slope:.2f}": (list(fit_n), list(np.exp(intercept) * fit_n**slope)),
        },
        xlabel="training recordings (log)",
        ylabel="greedy WER (log)",
        title="WER vs training data, equal steps",
        logx=True,
        logy=True,
    )


def plot_ablations(run: Run, chosen: dict[str, Trained]) -> None:
    labels = {"ds2": "BN + SortaGrad", "no_bn": "no BN", "no_sortagrad": "no SortaGrad"}
    curves = {}
    for name, t in chosen.items():
        evals = [h for h in t.history if "val_wer" in h]
        curves[f"{labels[name]} (lr {t.lr:g})"] = (
            [h["step"] + 1 for h in evals],
            [h["val_wer"] for h in evals],
        )
    plots.line_plot(
        run.plot_path("ablations.png"),
        curves,
        xlabel="step",
        ylabel="validation greedy WER",
        title="BN and SortaGrad ablations, each at its chosen rate",
    )
    plots.line_plot(
        run.plot_path("rate_grid.png"),
        {
            labels[name]: (list(t.grid), [m["wer"] for m in t.grid.values()])
            for name, t in chosen.items()
        },
        xlabel="peak learning rate (log)",
        ylabel="validation greedy WER",
        title="Rate grid: final validation WER",
        logx=True,
    )


def run_digits(run: Run, cfg: DigitsConfig) -> None:
    data = load_data(run, cfg)
    run.info(f"held-out speaker: {data.speaker}")
    names = list(VARIANTS) if cfg.ablations else ["ds2"]
    chosen = {name: select_rate(run, cfg, data, name) for name in names}
    full = max(data.train)
    smaller = {
        n: train_one(
            run, cfg, f"recs{n}", data, n, batch_norm=True, sortagrad=True, lr=chosen["ds2"].lr
        )
        for n in data.train
        if n != full
    }

    tests = score(run, cfg, data, chosen)
    wers = {n: evaluate(t.model, data.test_unseen, run.device)["wer"] for n, t in smaller.items()}
    wers[full] = tests["ds2"]["unseen"]["wer"]
    run.summary.update(
        {
            "held_out_speaker": data.speaker,
            **{f"{name}_lr": t.lr for name, t in chosen.items()},
            **{
                f"{name}_val_wer_by_lr": {f"{lr:g}": m["wer"] for lr, m in t.grid.items()}
                for name, t in chosen.items()
            },
            **{f"{name}_{where}": r for name, by in tests.items() for where, r in by.items()},
            "unseen_wer_by_recordings": wers,
        }
    )

    error_claims(run, data, tests["ds2"])
    fit_line = scaling_claim(run, wers)
    if cfg.ablations:
        ablation_claims(run, chosen, tests)

    plot_scaling(run, wers, fit_line)
    if cfg.ablations:
        plot_ablations(run, chosen)
    run.notes.append(
        "Training uses F.ctc_loss; ctc.ctc_loss (our log-space forward) is tested equal to it "
        "and to brute-force alignment enumeration. Seed k holds out speaker k mod 6."
    )


def bench(run: Run) -> list[BenchCase]:
    """The three networks the quick preset trains, each with its own training step on the
    full training set (at the grid's middle rate)."""
    cfg = replace(run.cfg, fractions=(1.0,))
    data = load_data(run, cfg)
    cases = []
    for name, (batch_norm, sortagrad) in VARIANTS.items():
        model, opt, _, step = trainer(
            run,
            cfg,
            data.train[max(data.train)],
            batch_norm=batch_norm,
            sortagrad=sortagrad,
            lr=cfg.lrs[len(cfg.lrs) // 2],
        )
        cases.append(BenchCase(name, model, opt, step, cfg.batch_size))
    return cases


SMOKE = DigitsConfig(
    model=DS2Config(conv_channels=4, hidden=16, rnn_layers=1),
    steps=6,
    batch_size=8,
    lrs=(3e-3,),
    max_digits=2,
    train_utterances=40,
    val_utterances=16,
    test_utterances=16,
    fractions=(0.5, 1.0),
    beam_width=2,
    eval_every=0,
)
QUICK = DigitsConfig()
FULL = DigitsConfig(
    model=DS2Config(conv_channels=32, hidden=256, rnn_layers=3),
    steps=3000,
    max_digits=7,
    train_utterances=10000,
    val_utterances=500,
    test_utterances=1000,
    fractions=(1 / 40, 1 / 8, 1 / 4, 1.0),
    eval_every=500,
)

PAPER = Paper(
    slug="deep_speech2",
    title="Deep Speech 2: End-to-End Speech Recognition in English and Mandarin",
    authors="Amodei, Anubhai, Battenberg, et al.",
    year=2015,
    arxiv="1512.02595",
    bench=bench,
    experiments=(
        Experiment(
            name="digit_strings",
            description="CTC on spoken digit strings (FSDD), unseen speakers: WER vs chance, "
            "data scaling, BN and SortaGrad ablations with rates chosen on validation",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_digits,
            quick_minutes=8.8,
            datasets=("fsdd",),
            quick_seeds=3,
        ),
    ),
)
