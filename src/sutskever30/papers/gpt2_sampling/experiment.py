"""GPT-2 at character level on tiny-shakespeare: the reference CPU GPT (4 layers, 4 heads,
width 128, context 64) reaches validation loss ≤ 1.88 nats/char within 90 s of training;
three sizes trained on the same characters rank by size (GPT-2 Fig. 4: held-out loss falls
with model size); each size continues GPT-2's unicorn prompt with five samplers. ``s30
sample gpt2_sampling`` (``sample.py``) reads the reference size's checkpoint.

Deviations from the paper (README: Deviations): characters and tiny-shakespeare instead of
BPE and WebText; CPU-minute models; the training recipe is nanoGPT's with a tuned lr.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.checkpoint import save_checkpoint
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import fit, step_generator
from sutskever30.data.text import load_tiny_shakespeare
from sutskever30.nn.gpt import GPT, GPTConfig
from sutskever30.nn.lm import adamw, warmup_cosine
from sutskever30.papers.gpt2_sampling.model import (
    SAMPLERS,
    UNICORN_PROMPT,
    CharVocab,
    continue_text,
    lm_loss,
    shifted_windows,
    split_loss,
)
from sutskever30.papers.gpt2_sampling.sample import CHECKPOINT, sample_command

SCORED = {"val": "validation loss", "tune": "tuning-split loss"}  # what the loss is over
SIZE_FACTS = ("params", "non_embedding_params", "val_loss", "train_s", "tokens_per_s")


@dataclass(frozen=True)
class ShakespeareConfig:
    sizes: tuple[str, ...] = ("4x64", "4x128", "4x192")  # n_layer x d_model, smallest first
    reference: str = "4x128"  # the reference GPT: the timed claim, `s30 sample`'s checkpoint
    n_head: int = 4
    context: int = 64  # n_ctx, characters
    dropout: float = 0.0
    batch_size: int = 32  # windows per step; every size sees the same characters
    steps: int = 650  # the reference's ~65 s on the idle 2-core machine (README: budget)
    lr: float = 4e-3  # chosen on the tuning split from {2e-3, 4e-3} (README: the search)
    warmup: int = 100
    min_lr_frac: float = 0.1  # the cosine ends at lr · min_lr_frac
    weight_decay: float = 0.1
    beta2: float = 0.99
    clip: float = 1.0  # gradient-norm clipping
    split: Literal["val", "tune"] = "val"  # tune: train on train[:-tune_chars], score the rest
    tune_chars: int = 50_000
    eval_every: int = 250  # validation curve on `curve_windows` windows
    curve_windows: int = 128
    max_train_s: float = 90.0  # the claim's time limit for the reference GPT (s)
    max_val_loss: float = 1.88  # the claim's loss threshold (nats/char), fixed beforehand
    sample_length: int = 200  # characters each sampler adds to the unicorn prompt

    def __post_init__(self) -> None:
        if not self.sizes or not all(re.fullmatch(r"[1-9]\d*x[1-9]\d*", s) for s in self.sizes):
            raise ValueError(f"sizes must be n_layer x d_model like 4x128, got {self.sizes}")
        if self.reference not in self.sizes:
            raise ValueError(f"reference {self.reference!r} is not one of sizes {self.sizes}")
        params = [self.gpt(i, vocab_size=1).non_embedding_params for i in range(len(self.sizes))]
        if any(a >= b for a, b in itertools.pairwise(params)):
            raise ValueError("sizes must grow strictly (non-embedding parameters), smallest first")
        if min(self.batch_size, self.steps, self.warmup, self.curve_windows) < 1:
            raise ValueError("batch_size, steps, warmup and curve_windows must be >= 1")
        if self.lr <= 0 or not 0 < self.min_lr_frac <= 1 or self.weight_decay < 0:
            raise ValueError("lr > 0, min_lr_frac in (0, 1] and weight_decay >= 0 required")
        if not 0 <= self.beta2 < 1 or self.clip <= 0 or self.eval_every < 0:
            raise ValueError("beta2 in [0, 1), clip > 0 and eval_every >= 0 required")
        if self.max_train_s <= 0 or self.max_val_loss <= 0 or self.sample_length < 1:
            raise ValueError("max_train_s, max_val_loss and sample_length must be positive")
        if self.tune_chars <= self.context:
            raise ValueError("tune_chars must exceed the context")

    def gpt(self, i: int, *, vocab_size: int) -> GPTConfig:
        """The GPT of size ``i`` (GPTConfig checks width against heads)."""
        n_layer, d_model = map(int, self.sizes[i].split("x"))
        return GPTConfig(
            vocab_size=vocab_size,
            context=self.context,
            n_layer=n_layer,
            n_head=self.n_head,
            d_model=d_model,
            dropout=self.dropout,
        )

    @property
    def ref(self) -> int:
        """The reference size's index."""
        return self.sizes.index(self.reference)


def load_text(cfg: ShakespeareConfig) -> tuple[CharVocab, torch.Tensor, torch.Tensor]:
    """The vocabulary (every character of the file) and the int64 ids of the training text
    and of the text scored: the validation split (the last 10% of the file), or with
    ``split="tune"`` the last ``tune_chars`` of the training part, then left out of training."""
    train_text, val_text = load_tiny_shakespeare()
    vocab = CharVocab.of(train_text + val_text)
    train, val = vocab.encode(train_text), vocab.encode(val_text)
    if cfg.split == "tune":
        train, val = train[: -cfg.tune_chars], train[-cfg.tune_chars :]
    return vocab, train, val


def trainer(run: Run, cfg: ShakespeareConfig, i: int, train: torch.Tensor, vocab_size: int):
    """Size ``i``'s GPT, AdamW with warmup + cosine, and ``step(s)``: B random windows of the
    training text (one gather; the same windows for every size, seeded by (seed, step)),
    forward, backward, clip, update. What ``fit`` runs and ``s30 bench`` times."""
    torch.manual_seed(run.seed)
    model = GPT(cfg.gpt(i, vocab_size=vocab_size)).to(run.device)
    opt = adamw(model, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, cfg.beta2))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: warmup_cosine(s, steps=cfg.steps, warmup=cfg.warmup, min_frac=cfg.min_lr_frac),
    )
    last_start = len(train) - cfg.context - 1

    def step(s: int) -> dict[str, float]:
        starts = torch.randint(
            0, last_start + 1, (cfg.batch_size,), generator=step_generator(run.seed, s)
        )
        x, y = shifted_windows(train, starts, cfg.context)  # (B, T) each
        loss = lm_loss(model, x.to(run.device), y.to(run.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        return {"loss": loss.item(), "lr": sched.get_last_lr()[0]}

    return model, opt, sched, step


def train_size(run: Run, cfg: ShakespeareConfig, i: int, train, val, vocab_size: int) -> dict:
    """Train size ``i`` through ``fit``; its training time (fit's wall-clock less the time of
    the validation-curve evaluations inside it), loss on the whole scored split, history."""
    model, opt, sched, step = trainer(run, cfg, i, train, vocab_size)
    starts = torch.linspace(0, len(val) - cfg.context - 1, cfg.curve_windows).long()
    xv, yv = shifted_windows(val, starts, cfg.context)
    eval_s = [0.0]

    def evaluate(_: int) -> dict[str, float]:
        t = time.perf_counter()
        loss = lm_loss(model, xv, yv).item()
        eval_s[0] += time.perf_counter() - t
        return {"val_loss_curve": loss}

    t = time.perf_counter()
    history = fit(
        run,
        cfg.sizes[i],
        model=model,
        optimizer=opt,
        scheduler=sched,
        steps=cfg.steps,
        step=step,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
    )
    train_s = time.perf_counter() - t - eval_s[0]
    model = model.cpu().eval()
    tokens = cfg.steps * cfg.batch_size * cfg.context
    return {
        "model": model,
        "history": history,
        "train_s": train_s,
        "tokens": tokens,
        "tokens_per_s": tokens / train_s,
        "val_loss": split_loss(model, val.cpu()),
        "params": model.num_params(),
        "non_embedding_params": model.cfg.non_embedding_params,
    }


def size_claims(run: Run, cfg: ShakespeareConfig, trained: list[dict]) -> None:
    ref = trained[cfg.ref]
    run.claim(
        "reference_in_90s",
        f"the reference GPT ({ref['model'].cfg.n_layer} layers, {cfg.n_head} heads, width "
        f"{ref['model'].cfg.d_model}, context {cfg.context}) reaches {SCORED[cfg.split]} ≤ "
        f"{cfg.max_val_loss} nats/char in ≤ {cfg.max_train_s:g} s of training "
        f"({torch.get_num_threads()} threads)",
        "nanoGPT's CPU recipe for this GPT: val loss 1.88 after 2,000 steps of 12×64 "
        "characters (~3 min on a laptop); GPT-2 itself: 117M-1542M params, no char-level loss",
        {
            "train_s": ref["train_s"],
            "val_loss": ref["val_loss"],
            "max_train_s": cfg.max_train_s,
            "max_val_loss": cfg.max_val_loss,
            "tokens_per_s": ref["tokens_per_s"],
        },
        "train_s <= max_train_s and val_loss <= max_val_loss",
    )
    if len(trained) < 2:  # a one-size run (the learning-rate search) ranks nothing
        return
    names = [f"val_loss_{cfg.sizes[i]}" for i in range(len(trained))]
    run.claim(
        "bigger_is_better",
        f"{SCORED[cfg.split]} falls strictly with model size ("
        + ", ".join(cfg.sizes[i] for i in range(len(trained)))
        + " layers×width), every size trained on the same characters",
        "GPT-2 Fig. 4 / Table 3: held-out perplexity falls with size, 117M → 1542M",
        {name: t["val_loss"] for name, t in zip(names, trained, strict=True)},
        " and ".join(f"{a} > {b} + spread" for a, b in itertools.pairwise(names)),
    )


def write_samples(run: Run, cfg: ShakespeareConfig, trained: list[dict], vocab) -> None:
    """Each size continues the unicorn prompt with each sampler (seeded by the run's seed);
    the texts go to the summary (the report shows them), headed by the size's loss."""
    prompt = vocab.encode(UNICORN_PROMPT)
    samples: dict[str, dict[str, str]] = {}
    lines = []
    for i, t in enumerate(trained):
        samples[cfg.sizes[i]] = {}
        for sampler in SAMPLERS:
            gen = torch.Generator().manual_seed(run.seed)
            tokens, logp = continue_text(
                t["model"], prompt, cfg.sample_length, sampler, generator=gen
            )
            head = (
                f"[{cfg.sizes[i]} ({t['params'] / 1e6:.2f}M params), validation loss "
                f"{t['val_loss']:.3f} nats/char; {sampler.name}; log p = {logp:.1f} nats]"
            )
            text = f"{head}\n...{UNICORN_PROMPT[-cfg.context :]}{vocab.decode(tokens)}"
            samples[cfg.sizes[i]][sampler.name] = text
            lines.append(text + "\n")
    run.summary["unicorn_samples"] = samples
    (run.dir / "samples.txt").write_text(f"prompt: {UNICORN_PROMPT}\n\n" + "\n".join(lines))


def plot_sizes(run: Run, cfg: ShakespeareConfig, trained: list[dict]) -> None:
    per_step = cfg.batch_size * cfg.context
    curves = {}
    for i, t in enumerate(trained):
        evals = [r for r in t["history"] if "val_loss_curve" in r]
        curves[f"{cfg.sizes[i]} ({t['params'] / 1e6:.2f}M)"] = (
            [(r["step"] + 1) * per_step for r in evals],
            [r["val_loss_curve"] for r in evals],
        )
    fig, (ax_curve, ax_size) = plots.figure(ncols=2)
    plots.draw_lines(
        ax_curve,
        curves,
        xlabel="training characters",
        ylabel=f"validation loss ({cfg.curve_windows} windows)",
        title="Char-level GPT, tiny-shakespeare",
    )
    ax_curve.axhline(cfg.max_val_loss, color="grey", linestyle=":", linewidth=1)
    plots.draw_lines(
        ax_size,
        {
            "whole validation split": (
                [t["non_embedding_params"] for t in trained],
                [t["val_loss"] for t in trained],
            )
        },
        xlabel="non-embedding parameters N",
        ylabel="validation loss (nats/char)",
        title="Loss vs model size (same characters)",
        logx=True,
        styles={"whole validation split": "o-"},
    )
    plots.save(fig, run.plot_path("loss_by_size.png"))


def run_shakespeare(run: Run, cfg: ShakespeareConfig) -> None:
    vocab, train, val = load_text(cfg)
    missing = vocab.missing(UNICORN_PROMPT)
    if missing:
        raise ValueError(f"unicorn prompt characters {missing!r} are not in tiny-shakespeare")
    run.nets_total = len(cfg.sizes)
    trained = [train_size(run, cfg, i, train, val, len(vocab)) for i in range(len(cfg.sizes))]
    ref = trained[cfg.ref]
    save_checkpoint(
        run.dir / CHECKPOINT,
        {
            "model": ref["model"].state_dict(),
            "vocab": vocab.chars,
            "config": asdict(ref["model"].cfg),
        },
    )
    run.summary.update(
        {
            "scored": SCORED[cfg.split],
            "threads": torch.get_num_threads(),
            "sizes": {cfg.sizes[i]: {k: t[k] for k in SIZE_FACTS} for i, t in enumerate(trained)},
            "tokens_per_size": ref["tokens"],
            "val_bits_per_char": ref["val_loss"] / math.log(2),
        }
    )
    size_claims(run, cfg, trained)
    plot_sizes(run, cfg, trained)
    write_samples(run, cfg, trained, vocab)


def bench(run: Run) -> list[BenchCase]:
    """The reference GPT's training step (the one the 90-s claim times) on tiny-shakespeare."""
    cfg = run.cfg
    vocab, train, _ = load_text(cfg)
    model, opt, _, step = trainer(run, cfg, cfg.ref, train, len(vocab))
    name = f"gpt {cfg.reference} ctx {cfg.context} (tokens/s)"
    return [BenchCase(name, model, opt, step, cfg.batch_size * cfg.context)]


SMOKE = ShakespeareConfig(
    sizes=("1x16", "1x32", "1x48"),
    reference="1x32",
    context=32,
    batch_size=8,
    steps=20,
    warmup=5,
    eval_every=10,
    curve_windows=16,
    max_val_loss=4.2,
    sample_length=20,
)
QUICK = ShakespeareConfig()
# nanoGPT's shakespeare-char GPU configuration as the reference (6 layers, 6 heads, width
# 384, context 256, dropout 0.2, 5,000 steps of 64 windows), a size below and above it.
FULL = ShakespeareConfig(
    sizes=("6x192", "6x384", "6x576"),
    reference="6x384",
    n_head=6,
    context=256,
    dropout=0.2,
    steps=5000,
    lr=1e-3,
    eval_every=250,
    curve_windows=256,
    max_train_s=3600.0,
    max_val_loss=1.55,
    sample_length=500,
)

EXPERIMENTS = (
    Experiment(
        name="shakespeare",
        description="char-level GPT at three sizes (same characters), the reference in 90 s; "
        "unicorn-prompt samples: greedy, τ 0.8, top-k 10, top-p 0.9, best-of-4",
        presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
        run=run_shakespeare,
        quick_minutes=4.4,
        datasets=("tinyshakespeare",),
    ),
)

PAPER = Paper(
    slug="gpt2_sampling",
    title="Language Models are Unsupervised Multitask Learners",
    authors="Alec Radford, Jeffrey Wu, Rewon Child, David Luan, Dario Amodei, Ilya Sutskever",
    year=2019,
    arxiv="",  # an OpenAI report, not on arXiv (the URL is in model.py)
    experiments=EXPERIMENTS,
    sample=sample_command,
    bench=bench,
)
