"""Drawing the next token from a language model's logits: temperature, top-k, top-p (nucleus)
and best-of-n. One place for every sampler of the project (``char_rnn``, the GPT papers).

- temperature τ: p ∝ softmax(logits / τ); τ → 0 is greedy decoding, τ = 1 the model's own
  distribution, τ > 1 flatter.
- top-k (Fan et al. 2018): only the k most likely tokens keep their mass.
- top-p (Holtzman et al. 2020, "The curious case of neural text degeneration"): only the
  smallest set of most likely tokens whose total probability reaches p keeps its mass.
- best-of-n: draw n continuations, keep the one the model finds most likely (highest total
  log-probability of its drawn tokens).
"""

from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, *, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Keep the ``top_k`` most likely tokens (top_k > 0) and/or the smallest set whose
    probability reaches ``top_p``; the rest get −inf. logits: (..., V), filtered per row."""
    if top_k < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need top_k ≥ 0 and 0 < top_p ≤ 1, got {top_k} and {top_p}")
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # the mass before this token already ≥ p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return logits


def draw(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row of logits (..., V) → (...,). Temperature 0 is greedy (argmax)."""
    if temperature < 0:
        raise ValueError(f"temperature must be ≥ 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(-1)
    scaled = filter_logits(logits.double() / temperature, top_k=top_k, top_p=top_p)
    flat = scaled.reshape(-1, scaled.shape[-1]).softmax(-1)  # (rows, V)
    return torch.multinomial(flat, 1, generator=generator).reshape(logits.shape[:-1])


def best_of(candidates: list[list[int]], log_probs: list[float]) -> tuple[list[int], float]:
    """Best-of-n: the candidate whose drawn tokens have the highest total log-probability
    under the model (ties: the first)."""
    if not candidates or len(candidates) != len(log_probs):
        raise ValueError("need one log-probability per candidate, at least one candidate")
    i = max(range(len(candidates)), key=lambda j: log_probs[j])
    return candidates[i], log_probs[i]
