"""Symbol-sequence tasks for a small Transformer, after the Annotated Transformer's first
example: the source is 10 random symbols, the target a function of it (``copy``: itself,
``reverse``: reversed). Shared by the ``copy`` and ``reversal`` experiments.

Vocabulary V = 11 as in the Annotated Transformer: 0 is padding (never a target, so it
doubles as the end symbol no trained model emits), 1 is the start symbol ``<s>`` and the
symbols are 2 … 10 (the Annotated Transformer draws 1 … 10 and overwrites the first with
``<s>``). Every batch is a function of (seed, step), so a resumed run sees the same data;
the test sequences come from a generator no training batch uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch

from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.nn.search import greedy_search
from sutskever30.papers.transformer.model import (
    Transformer,
    TransformerConfig,
    label_smoothed_loss,
    noam_optimizer,
)

PAD, BOS, FIRST_SYMBOL = 0, 1, 2
# Generator seeds of the held-out sets, far from any training batch's (seed·1,000,003 + step).
HELD_OUT = {"test": 10**9, "val": 2 * 10**9}
Task = Literal["copy", "reverse"]


@dataclass(frozen=True)
class SymbolsConfig:
    vocab: int = 11  # V
    length: int = 10  # symbols per sequence
    d_model: int = 128
    n_heads: int = 4
    d_ff: int = 256
    n_layers: int = 2  # N, as the Annotated Transformer's copy model
    dropout: float = 0.1
    pre_norm: bool = False
    batch_size: int = 80  # the Annotated Transformer's
    steps: int = 1200  # chosen on val (README); the Annotated Transformer's: 400
    warmup: int = 400
    # The schedule's constant: 0.5 makes it peak at 2.2e-3 with d_model 128, the Annotated
    # Transformer's peak with d_model 512 and factor 1 (chosen on val, README).
    factor: float = 0.5
    smoothing: float = 0.0  # the Annotated Transformer's for copy
    test_size: int = 1000  # held-out sequences
    split: Literal["test", "val"] = "test"  # val: choosing the step budget

    def __post_init__(self) -> None:
        if self.vocab < FIRST_SYMBOL + 2 or self.length < 2:
            raise ValueError("vocab must leave >= 2 symbols after <pad> and <s>; length >= 2")
        if min(self.batch_size, self.steps, self.warmup, self.test_size) < 1:
            raise ValueError("batch_size, steps, warmup and test_size must be >= 1")
        if self.factor <= 0 or not 0 <= self.smoothing < 1:
            raise ValueError("factor must be > 0 and smoothing in [0, 1)")

    def model(self, *, positions: bool = True) -> TransformerConfig:
        return TransformerConfig(
            src_vocab=self.vocab,
            tgt_vocab=self.vocab,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_ff=self.d_ff,
            n_layers=self.n_layers,
            dropout=self.dropout,
            max_len=self.length + 1,
            pre_norm=self.pre_norm,
            positions=positions,
            pad_id=PAD,
        )


def make_batch(
    task: Task, n: int, cfg: SymbolsConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sources (n, L) of symbols and their targets (n, L + 1) = <s> then the task's
    output (the decoder reads target[:, :-1] and predicts target[:, 1:])."""
    src = torch.randint(FIRST_SYMBOL, cfg.vocab, (n, cfg.length), generator=generator)
    out = src if task == "copy" else src.flip(1)
    return src, torch.cat([torch.full((n, 1), BOS), out], dim=1)


def test_set(task: Task, cfg: SymbolsConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``cfg.test_size`` held-out sequences of ``cfg.split``."""
    g = torch.Generator().manual_seed(HELD_OUT[cfg.split] + seed)
    return make_batch(task, cfg.test_size, cfg, g)


def train(run: Run, key: str, cfg: SymbolsConfig, task: Task, *, positions: bool = True):
    """A Transformer trained on ``task`` through ``fit``: Adam with the Noam schedule, one
    fresh batch per step. Returns the model (eval mode), its history and the training time."""
    torch.manual_seed(run.seed)
    model = Transformer(cfg.model(positions=positions)).to(run.device)
    opt, sched = noam_optimizer(model, warmup=cfg.warmup, factor=cfg.factor)

    def step(s: int) -> dict[str, float]:
        g = torch.Generator().manual_seed(run.seed * 1_000_003 + s)
        src, tgt = (t.to(run.device) for t in make_batch(task, cfg.batch_size, cfg, g))
        model.train()
        loss = label_smoothed_loss(
            model(src, tgt[:, :-1]), tgt[:, 1:], pad_id=PAD, smoothing=cfg.smoothing
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "lr": sched.get_last_lr()[0]}

    t = time.perf_counter()
    history = fit(run, key, model=model, optimizer=opt, scheduler=sched, steps=cfg.steps, step=step)
    return model.eval(), history, time.perf_counter() - t


@torch.no_grad()
def greedy_outputs(model: Transformer, src: torch.Tensor, length: int) -> torch.Tensor:
    """Greedy decoding with cached keys and values from <s>, ``length`` tokens per source
    (n, length); a row that emits the end symbol early is padded with it."""
    model.eval()
    hyps = greedy_search(
        model.step,
        model.start(src),
        batch_size=len(src),
        bos=BOS,
        eos=PAD,
        max_len=length,
        device=src.device,
    )
    out = torch.full((len(src), length), PAD)
    for i, h in enumerate(hyps):
        out[i, : len(h.tokens)] = torch.tensor(h.tokens, dtype=torch.long)
    return out


def accuracy(model: Transformer, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, float]:
    """Sequence exact match and per-symbol accuracy of greedy decoding."""
    want = tgt[:, 1:]
    got = greedy_outputs(model, src, want.shape[1])
    right = got == want
    return {"exact": right.all(1).float().mean().item(), "token": right.float().mean().item()}


@torch.no_grad()
def cross_attention(model: Transformer, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
    """The last decoder layer's encoder–decoder attention weights, averaged over heads:
    (B, T_y, T_x). A hook asks that layer's attention for its weights during one
    teacher-forced pass."""
    layer = model.decoder[-1].cross_attn
    seen: list[torch.Tensor] = []
    pre = layer.register_forward_pre_hook(
        lambda _m, args, kwargs: (args, {**kwargs, "need_weights": True}), with_kwargs=True
    )
    post = layer.register_forward_hook(lambda _m, _a, out: seen.append(out[1]))
    try:
        model.eval()(src, tgt_in)
    finally:
        pre.remove()
        post.remove()
    return seen[0].mean(dim=1)
