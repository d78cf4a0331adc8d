"""Long-range synthetic tasks (Hochreiter & Schmidhuber 1997): the answer depends on inputs
T steps back, so a model must carry information across the whole sequence.

Each generator is a pure function of a ``torch.Generator``: the same generator state gives
the same batch.
"""

from __future__ import annotations

import torch


def first_bit_batch(gen: torch.Generator, batch: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Remember the first bit (after Hochreiter & Schmidhuber 1997, Exp. 2): step 0 shows a
    random bit (±1) on channel 0; steps 1..T−1 show random distractor bits (±1) on channel 1.
    The label, read after step T−1, is the first bit: it must survive T − 1 updates.

    Returns x: (batch, T, 2) float and y: (batch,) int64 in {0, 1}. Chance is 50%.
    """
    bits = torch.randint(0, 2, (batch, T), generator=gen)
    signs = (2 * bits - 1).float()  # (B, T)
    x = torch.zeros(batch, T, 2)
    x[:, 0, 0] = signs[:, 0]
    x[:, 1:, 1] = signs[:, 1:]
    return x, bits[:, 0]
