"""Decoding a sequence model's output: greedy search and beam search with a length penalty,
shared by the translation papers (``bahdanau_attention``, ``transformer``).

Both drive a model through one interface, ``step(tokens, state) -> (log_probs, state)``:
``tokens`` (N,) is the last token of each of N hypotheses, ``log_probs`` (N, V) the model's
log p(next token | source, prefix), ``state`` whatever the model carries between steps (an
RNN's hidden state, a Transformer's :class:`~sutskever30.nn.attention.AttentionCache` list,
or the whole prefix). The first call gets ``bos`` for every row.

Beam search keeps the ``beam_size`` best prefixes per source and ranks finished hypotheses
by the length-normalized score of Wu et al. 2016 (GNMT, arXiv:1609.08144, §7):

    s(Y, X) = log P(Y | X) / lp(Y),  lp(Y) = (5 + |Y|)^α / (5 + 1)^α

|Y| counts the scored tokens, EOS included (a hypothesis cut at ``max_len`` has
|Y| = max_len). α = 0 ranks by log-probability alone; the Transformer paper uses beam 4 and
α = 0.6 (Vaswani et al. 2017, §6.1). GNMT's coverage penalty is not used.

Beam search, per step: every live hypothesis is extended by every token; of the 2·beam best
extensions, those ending in EOS among the first ``beam_size`` are finished, and the best
``beam_size`` not ending in EOS live on (so beam 1 is greedy search). A source is done
when no live hypothesis can still beat its best finished one: log-probabilities only fall
as a hypothesis grows and lp only rises, so a live one's score is at most
log P / lp(max_len).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

S = TypeVar("S")
Step = Callable[[torch.Tensor, S], tuple[torch.Tensor, S]]


@dataclass(frozen=True)
class Hypothesis:
    tokens: list[int]  # without BOS and EOS
    log_prob: float  # log P(Y | X), EOS included when it was emitted
    score: float  # log_prob / lp(Y); equal to log_prob for α = 0 and for greedy search


def length_penalty(length: int, alpha: float) -> float:
    """lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, §7)."""
    return ((5 + length) / 6) ** alpha


def select_rows(state: Any, index: torch.Tensor) -> Any:
    """Keep rows ``index`` of a decoder state: tensors along dim 0; tuples, lists and dicts
    element by element; an object with a ``reorder(index)`` method (an attention cache) is
    reordered in place; ``None`` stays ``None``. A state of any other kind needs its own
    ``reorder`` argument to :func:`beam_search`."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index)
    if isinstance(state, (tuple, list)):
        return type(state)(select_rows(s, index) for s in state)
    if isinstance(state, dict):
        return {key: select_rows(s, index) for key, s in state.items()}
    if hasattr(state, "reorder"):
        state.reorder(index)
        return state
    raise TypeError(f"cannot select rows of a {type(state).__name__}; pass reorder=")


def _check(batch_size: int, max_len: int) -> None:
    if batch_size < 1 or max_len < 1:
        raise ValueError(f"need batch_size ≥ 1 and max_len ≥ 1, got {batch_size}, {max_len}")


def greedy_search(
    step: Step,
    state: S,
    *,
    batch_size: int,
    bos: int,
    eos: int,
    max_len: int,
    device: torch.device | str = "cpu",
) -> list[Hypothesis]:
    """The most likely next token at every step, until EOS or ``max_len`` tokens, for each
    of ``batch_size`` sources (the rows of ``state``)."""
    _check(batch_size, max_len)
    tokens = torch.full((batch_size,), bos, dtype=torch.long, device=device)
    log_prob = torch.zeros(batch_size, dtype=torch.float64, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_len):
        logp, state = step(tokens, state)  # (B, V)
        best, tokens = logp.max(dim=-1)
        log_prob += torch.where(done, 0.0, best.double())
        out.append(torch.where(done, eos, tokens))
        done |= tokens == eos
        if done.all():
            break
    seqs = torch.stack(out, dim=1).tolist()  # (B, T)
    hyps = []
    for seq, lp in zip(seqs, log_prob.tolist(), strict=True):
        body = seq[: seq.index(eos)] if eos in seq else seq
        hyps.append(Hypothesis(tokens=body, log_prob=lp, score=lp))
    return hyps


def beam_search(
    step: Step,
    state: S,
    *,
    batch_size: int,
    bos: int,
    eos: int,
    max_len: int,
    beam_size: int = 4,
    alpha: float = 0.6,
    reorder: Callable[[S, torch.Tensor], S] = select_rows,
    device: torch.device | str = "cpu",
) -> list[Hypothesis]:
    """The best hypothesis by s(Y, X) = log P(Y | X) / lp(Y) found by a beam of
    ``beam_size``, for each of ``batch_size`` sources (the rows of ``state``, repeated
    ``beam_size`` times through ``reorder``). Defaults: beam 4, α = 0.6 (Vaswani et al.)."""
    _check(batch_size, max_len)
    if beam_size < 1 or alpha < 0:
        raise ValueError(f"need beam_size ≥ 1 and alpha ≥ 0, got {beam_size}, {alpha}")
    b, k = batch_size, beam_size
    rows = torch.arange(b, device=device)
    state = reorder(state, rows.repeat_interleave(k))  # row b·k + j: beam j of source b
    tokens = torch.full((b * k,), bos, dtype=torch.long, device=device)
    # only beam 0 starts alive, so the first step does not fill the beam with copies
    scores = torch.full((b, k), float("-inf"), dtype=torch.float64, device=device)
    scores[:, 0] = 0.0
    prefixes = torch.zeros(b, k, 0, dtype=torch.long, device=device)  # (B, K, t)
    best: list[Hypothesis | None] = [None] * b
    done = [False] * b
    bound = length_penalty(max_len, alpha)
    for t in range(1, max_len + 1):
        logp, state = step(tokens, state)  # (B·K, V)
        vocab = logp.shape[-1]
        cand = scores[:, :, None] + logp.view(b, k, vocab).double()  # (B, K, V)
        top, idx = cand.view(b, k * vocab).topk(min(2 * k, k * vocab), dim=-1)  # (B, 2K)
        beam, token = idx // vocab, idx % vocab
        is_eos = token == eos
        lp = length_penalty(t, alpha)
        rank = torch.arange(top.shape[1], device=device).expand_as(top)
        for i, j in (is_eos & (rank < k) & top.isfinite()).nonzero().tolist():
            if not done[i]:
                ended = prefixes[i, beam[i, j]].tolist()
                _offer(best, i, Hypothesis(ended, top[i, j].item(), top[i, j].item() / lp))
        # the best K extensions not ending in EOS live on (at most K of the 2K end in EOS)
        order = torch.where(is_eos, rank + top.shape[1], rank).argsort(dim=-1)[:, :k]
        scores, beam, token = top.gather(1, order), beam.gather(1, order), token.gather(1, order)
        scores = scores.masked_fill(token == eos, float("-inf"))  # only if V = 1
        kept = prefixes.gather(1, beam[:, :, None].expand_as(prefixes))  # (B, K, t − 1)
        prefixes = torch.cat([kept, token[:, :, None]], dim=2)  # (B, K, t)
        state = reorder(state, (rows[:, None] * k + beam).view(-1))
        tokens = token.view(-1)
        alive, where = scores.max(dim=1)
        for i, (live, j) in enumerate(zip(alive.tolist(), where.tolist(), strict=True)):
            if t == max_len and live > float("-inf") and not done[i]:
                _offer(best, i, Hypothesis(prefixes[i, j].tolist(), live, live / lp))
            cur = best[i]
            done[i] = done[i] or (cur is not None and cur.score >= live / bound)
        if all(done):
            break
    return [h if h is not None else Hypothesis([], float("-inf"), float("-inf")) for h in best]


def _offer(best: list[Hypothesis | None], i: int, hyp: Hypothesis) -> None:
    """Keep ``hyp`` as source i's best if it scores higher than the one kept so far."""
    cur = best[i]
    if cur is None or hyp.score > cur.score:
        best[i] = hyp


@torch.no_grad()
def search_sentences(
    start: Callable[[torch.Tensor, torch.Tensor], Any],
    step: Step,
    sources: list[list[int]],
    *,
    pad: int,
    bos: int,
    eos: int,
    beam_size: int = 1,
    alpha: float = 0.6,
    device: torch.device | str = "cpu",
) -> list[list[int]]:
    """Decode every source (token ids) and return the output ids of each, in the order given.

    Sources are sorted by length and decoded in batches of similar length (256 sentences
    for greedy search, 64 for beam search); ``start(src (B, T) padded with ``pad``, lengths
    (B,))`` returns the decoder state of a batch. Greedy search for ``beam_size`` 1, else
    beam search with length penalty ``alpha``; outputs may run to 2·|source| + 10 tokens."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[list[int]] = [[] for _ in sources]
    size = 256 if beam_size == 1 else 64
    for first in range(0, len(order), size):
        rows = order[first : first + size]
        lens = torch.tensor([len(sources[i]) for i in rows])
        src = torch.full((len(rows), int(lens.max())), pad)
        for r, i in enumerate(rows):
            src[r, : len(sources[i])] = torch.tensor(sources[i])
        state = start(src.to(device), lens.to(device))
        common = dict(
            batch_size=len(rows), bos=bos, eos=eos, max_len=2 * int(lens.max()) + 10, device=device
        )
        if beam_size == 1:
            hyps = greedy_search(step, state, **common)
        else:
            hyps = beam_search(step, state, beam_size=beam_size, alpha=alpha, **common)
        for i, hyp in zip(rows, hyps, strict=True):
            out[i] = hyp.tokens
    return out
