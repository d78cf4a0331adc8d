"""What the experiments share: the GPT of a config on tiny-shakespeare characters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from sutskever30.nn.gpt import GPT
from sutskever30.papers.gpipe.pipeline import CharBatches, build_gpt


@dataclass(frozen=True)
class GPTSize:
    """The GPT and mini-batch an experiment pipelines."""

    batch_size: int = 16  # N, sequences per mini-batch
    context: int = 32  # T, characters per sequence
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 32

    def __post_init__(self) -> None:
        if min(self.batch_size, self.context, self.n_layer, self.n_head, self.d_model) < 1:
            raise ValueError("batch_size, context, n_layer, n_head and d_model must be ≥ 1")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_head {self.n_head}")


def check_grid(size: GPTSize, stages: tuple[int, ...], micro_batches: tuple[int, ...]) -> None:
    """Every K must cut the n_layer + 2 layers of ``GPT.sequential()``, every M split N."""
    if not stages or not micro_batches:
        raise ValueError("stages and micro_batches must be non-empty")
    if not all(1 <= k <= size.n_layer + 2 for k in stages):
        raise ValueError(f"stages must be in [1, n_layer + 2 = {size.n_layer + 2}], got {stages}")
    if not all(1 <= m <= size.batch_size for m in micro_batches):
        raise ValueError(f"micro_batches must be in [1, batch_size], got {micro_batches}")


def gpt_and_batch(
    size: GPTSize, seed: int, dtype: torch.dtype = torch.float32
) -> tuple[GPT, torch.Tensor, torch.Tensor]:
    """The GPT (seeded) and one mini-batch of real text: x, y (N, T) character ids."""
    batches = CharBatches(size.context, size.batch_size, seed)
    gpt = build_gpt(
        vocab_size=len(batches.vocab),
        context=size.context,
        n_layer=size.n_layer,
        n_head=size.n_head,
        d_model=size.d_model,
        seed=seed,
        dtype=dtype,
    )
    x, y = batches(0)
    return gpt, x, y


@contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread: every pipeline task runs, and is timed, as the work of one core
    (one "device"). Several threads per small micro-batch on a 2-core machine shared with
    other jobs spend their time waiting for each other, which the bubble would measure."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
