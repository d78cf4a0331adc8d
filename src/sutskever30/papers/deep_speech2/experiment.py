"""Deep Speech 2 on spoken digit strings: error rates, BN and SortaGrad ablations, and the
data-scaling curve.

One experiment, ``digit_strings``. Utterances are 1-4 real FSDD recordings concatenated
(task.py); models train on utterances built from the official training recordings
(repetitions 5-49) and are scored on utterances built from the held-out recordings
(repetitions 0-4). Every model trains for the same number of steps on a fixed set of
training utterances; the data-scaling models build that set from a nested fraction of the
training recordings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core import plots
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit
from sutskever30.data.fsdd import Recordings, load_fsdd
from sutskever30.papers.deep_speech2.ctc import error_rates, greedy_decode, prefix_beam_decode
from sutskever30.papers.deep_speech2.model import DeepSpeech2, DS2Config, log_spectrogram
from sutskever30.papers.deep_speech2.task import (
    ALPHABET,
    DIGIT_WORDS,
    compose,
    decode,
    pad_audio,
    pad_targets,
)


@dataclass(frozen=True)
class DigitsConfig:
    model: DS2Config = field(default_factory=DS2Config)
    steps: int = 400
    batch_size: int = 32
    lr: float = 4e-3
    warmup: int = 20
    clip: float = 10.0
    max_digits: int = 3
    train_utterances: int = 2000
    test_utterances: int = 300
    fractions: tuple[float, ...] = (1 / 45, 1 / 9, 1.0)  # 1, 5, 45 recordings per digit+speaker
    ablations: bool = True  # also train no-BN and no-SortaGrad models on all the data
    beam_width: int = 8
    eval_every: int = 100

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_digits", "train_utterances", "test_utterances"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.clip <= 0 or self.warmup < 0:
            raise ValueError("lr and clip must be > 0 and warmup >= 0")
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must be in (0, 1], got {self.fractions}")
        if 1.0 not in self.fractions:
            raise ValueError("fractions must include 1.0 (the full-data baseline)")
        if self.beam_width < 1 or self.eval_every < 0:
            raise ValueError("beam_width must be >= 1 and eval_every >= 0")


class Featurized:
    """A fixed set of utterances as spectrograms (list of (F, T_i)) and transcripts."""

    def __init__(self, audio: list[np.ndarray], texts: list[str], cfg: DS2Config):
        self.texts = texts
        self.specs: list[torch.Tensor] = []
        for start in range(0, len(audio), 64):
            wave, n = pad_audio(audio[start : start + 64])
            spec, frames = log_spectrogram(wave, n, n_fft=cfg.n_fft, hop=cfg.hop)
            self.specs += [s[:, :f] for s, f in zip(spec, frames.tolist(), strict=True)]
        self.frames = torch.tensor([s.shape[1] for s in self.specs])

    def __len__(self) -> int:
        return len(self.texts)

    def batch(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F, T_max) zero-padded spectrograms and (B,) frame counts."""
        lengths = self.frames[idx]
        out = torch.zeros(len(idx), self.specs[0].shape[0], int(lengths.max()))
        for row, i in zip(out, idx, strict=True):
            row[:, : self.frames[i]] = self.specs[i]
        return out, lengths


def training_pool(recs: Recordings, fraction: float, seed: int) -> np.ndarray:
    """Training recordings whose repetition number is among the first ``fraction`` of a
    seeded permutation of 5..49: nested across fractions, every speaker and digit kept."""
    reps = np.random.default_rng(seed).permutation(np.arange(5, 50))
    keep = reps[: max(1, math.ceil(fraction * len(reps) - 1e-9))]
    train = recs.split("train")
    return train[np.isin(recs.index[train], keep)]


def evaluate(model: DeepSpeech2, data: Featurized, *, beam_width: int = 0) -> dict[str, float]:
    """Greedy (and, with ``beam_width``, prefix beam) CER/WER over ``data``."""
    model.eval()
    greedy, beam = [], []
    with torch.no_grad():
        for start in range(0, len(data), 100):
            idx = list(range(start, min(start + 100, len(data))))
            log_probs, lengths = model(*data.batch(idx))
            greedy += [decode(ids) for ids in greedy_decode(log_probs, lengths)]
            if beam_width:
                beam += [
                    decode(prefix_beam_decode(lp, n, beam_width=beam_width))
                    for lp, n in zip(log_probs, lengths.tolist(), strict=True)
                ]
    out = error_rates(data.texts, greedy)
    if beam_width:
        out.update({f"beam_{k}": v for k, v in error_rates(data.texts, beam).items()})
    return out


def train_model(
    run: Run,
    key: str,
    cfg: DigitsConfig,
    train: Featurized,
    test: Featurized,
    *,
    batch_norm: bool,
    sortagrad: bool,
) -> tuple[DeepSpeech2, list[dict[str, float]]]:
    torch.manual_seed(run.seed)  # every variant starts from the same draw
    model_cfg = replace(cfg.model, batch_norm=batch_norm)
    model = DeepSpeech2(n_freq=cfg.model.n_fft // 2 + 1, vocab=len(ALPHABET), cfg=model_cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda i: (
            min(1.0, (i + 1) / max(cfg.warmup, 1))
            * 0.5
            * (1 + math.cos(math.pi * min(i, cfg.steps) / cfg.steps))
        ),
    )
    per_epoch = len(train) // cfg.batch_size
    by_length = torch.argsort(train.frames, stable=True)

    def step(i: int) -> dict[str, float]:
        if sortagrad and i < per_epoch:  # SortaGrad: the first epoch in order of length
            idx = by_length[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        else:
            idx = batch_indices(len(train), cfg.batch_size, i, run.seed)
        idx = idx.tolist()
        spec, frames = train.batch(idx)
        targets, target_lengths = pad_targets([train.texts[j] for j in idx])
        log_probs, out_lengths = model(spec, frames)
        loss = F.ctc_loss(
            log_probs.transpose(0, 1), targets, out_lengths, target_lengths, zero_infinity=True
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimizer.step()
        return {"loss": loss.item(), "grad_norm": float(grad_norm)}

    history = fit(
        run,
        key,
        model=model,
        optimizer=optimizer,
        steps=cfg.steps,
        step=step,
        scheduler=scheduler,
        evaluate=lambda i: evaluate(model, test),
        eval_every=cfg.eval_every,
    )
    return model, history


def chance_wer(texts: list[str], seed: int) -> float:
    """WER of guessing uniformly random digits, as many as the reference has."""
    rng = np.random.default_rng(seed)
    guesses = [" ".join(rng.choice(DIGIT_WORDS, size=len(t.split()))) for t in texts]
    return error_rates(texts, guesses)["wer"]


def run_digits(run: Run, cfg: DigitsConfig) -> None:
    recs = load_fsdd()
    rng = np.random.default_rng(run.seed)
    test = Featurized(
        *compose(recs, recs.split("test"), cfg.test_utterances, max_digits=cfg.max_digits, rng=rng),
        cfg.model,
    )
    pools = {f: training_pool(recs, f, run.seed) for f in sorted(cfg.fractions)}
    ns = [len(pool) for pool in pools.values()]  # training recordings, ascending
    full = f"recs{ns[-1]}"
    variants = [(f"recs{len(pool)}", pool, True, True) for pool in pools.values()]
    if cfg.ablations:
        variants += [("no_bn", pools[1.0], False, True), ("no_sortagrad", pools[1.0], True, False)]
    results: dict[str, dict[str, float]] = {}
    curves: dict[str, tuple[list[int], list[float]]] = {}
    sets: dict[int, Featurized] = {}
    for key, pool, batch_norm, sortagrad in variants:
        if len(pool) not in sets:
            data_rng = np.random.default_rng([run.seed, len(pool)])
            sets[len(pool)] = Featurized(
                *compose(recs, pool, cfg.train_utterances, max_digits=cfg.max_digits, rng=data_rng),
                cfg.model,
            )
        model, history = train_model(
            run, key, cfg, sets[len(pool)], test, batch_norm=batch_norm, sortagrad=sortagrad
        )
        results[key] = evaluate(model, test, beam_width=cfg.beam_width if key == full else 0)
        evals = [h for h in history if "wer" in h]
        curves[key] = ([h["step"] + 1 for h in evals], [h["wer"] for h in evals])
        run.info(f"{key}: {len(pool)} training recordings, {results[key]}")
        run.summary[f"{key}_wer"] = results[key]["wer"]

    base = results[full]
    chance = chance_wer(test.texts, run.seed)
    run.summary.update(
        {
            "test_wer": base["wer"],
            "test_cer": base["cer"],
            "test_beam_wer": base["beam_wer"],
            "chance_wer": chance,
        }
    )
    run.claim(
        "below_chance",
        "greedy WER on held-out recordings is below a third of chance (random digit words)",
        "a 9-layer DS2 with BN and SortaGrad reaches dev WER 9.52 on 12,000 h of English",
        {"wer": base["wer"], "cer": base["cer"], "chance_wer": chance},
        "wer < chance_wer / 3",
    )

    # Data scaling: WER vs number of training recordings, power law WER = a * n^b.
    wers = [results[f"recs{n}"]["wer"] for n in ns]
    slope, intercept = np.polyfit(np.log(ns), np.log(np.maximum(wers, 1e-4)), 1)
    run.summary["scaling_exponent"] = float(slope)
    run.claim(
        "more_data_lower_wer",
        "WER falls as the training data grows: the full set beats the smallest fraction and "
        "the fitted power-law exponent is negative",
        "WER falls ~40% relative for each 10x more training data",
        {"recordings": ns, "wer": wers, "power_law_exponent": float(slope)},
        "wer[-1] < wer[0] and power_law_exponent < 0",
    )
    fit_n = np.geomspace(ns[0], ns[-1], 20)
    plots.line_plot(
        run.plot_path("data_scaling.png"),
        {
            "held-out WER": (ns, wers),
            f"fit: WER ∝ n^{slope:.2f}": (list(fit_n), list(np.exp(intercept) * fit_n**slope)),
        },
        xlabel="training recordings (log)",
        ylabel="greedy WER (log)",
        title="WER vs training data, equal steps",
        logx=True,
        logy=True,
    )

    if cfg.ablations:
        for key, what, paper in (
            (
                "no_bn",
                "sequence-wise BatchNorm",
                "9-layer dev WER 10.83 without BN vs 9.52 with BN",
            ),
            (
                "no_sortagrad",
                "SortaGrad",
                "dev WER 11.96 without SortaGrad vs 10.83 with it (no-BN nets)",
            ),
        ):
            run.report(
                f"{key}_worse",
                f"without {what} the held-out WER at equal steps is higher",
                paper,
                {"wer": base["wer"], f"{key}_wer": results[key]["wer"]},
            )
        plots.line_plot(
            run.plot_path("ablations.png"),
            {
                "BN + SortaGrad": curves[full],
                "no BN": curves["no_bn"],
                "no SortaGrad": curves["no_sortagrad"],
            },
            xlabel="step",
            ylabel="held-out greedy WER",
            title="BN and SortaGrad ablations (all training recordings)",
        )
    run.notes.append(
        "Training uses F.ctc_loss; ctc.ctc_loss (our log-space forward) is tested equal to it "
        "and to brute-force alignment enumeration. Single seed: the ablations are reported, "
        "not asserted."
    )


SMOKE = DigitsConfig(
    model=DS2Config(conv_channels=4, hidden=16, rnn_layers=1),
    steps=6,
    batch_size=8,
    max_digits=2,
    train_utterances=40,
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
    test_utterances=1000,
    fractions=(1 / 45, 1 / 15, 1 / 5, 1.0),
    eval_every=500,
)

PAPER = Paper(
    slug="deep_speech2",
    title="Deep Speech 2: End-to-End Speech Recognition in English and Mandarin",
    authors="Amodei, Anubhai, Battenberg, et al.",
    year=2015,
    arxiv="1512.02595",
    experiments=(
        Experiment(
            name="digit_strings",
            description="CTC on spoken digit strings (FSDD): WER vs chance, data scaling, "
            "BN and SortaGrad ablations",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_digits,
            quick_minutes=4.1,
            datasets=("fsdd",),
        ),
    ),
)
