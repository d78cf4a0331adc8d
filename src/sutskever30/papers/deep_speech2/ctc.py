"""Connectionist temporal classification (Graves et al. 2006) as Deep Speech 2 uses it:
the loss, greedy and prefix beam decoding, and the edit-distance error rates.

CTC sums over every frame-level alignment pi of the labels l (characters with blanks
inserted anywhere and repeats allowed) that collapses to l:
    p(l | x) = sum_{pi in B^-1(l)} prod_t y_t(pi_t)
computed by the forward recursion over the extended labels l' = (_, l_1, _, l_2, ..., _):
    alpha_t(s) = y_t(l'_s) * (alpha_{t-1}(s) + alpha_{t-1}(s-1) + [l'_s != _, l'_s != l'_{s-2}]
                              alpha_{t-1}(s-2))
    p(l | x) = alpha_T(|l'|) + alpha_T(|l'| - 1)
here in log space. Training uses ``F.ctc_loss`` (a fused kernel with an analytic backward,
several times faster on CPU than autograd through this loop); the tests check the two agree.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

NEG_INF = float("-inf")


def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    *,
    blank: int = 0,
) -> torch.Tensor:
    """-log p(l | x) per utterance, (B,).

    log_probs (B, T, V) log-softmax outputs; targets (B, S) label ids, padded; lengths (B,).
    """
    B, T, _ = log_probs.shape
    S = targets.shape[1]
    L = 2 * S + 1
    ext = torch.full((B, L), blank, dtype=torch.long, device=targets.device)  # l'
    ext[:, 1::2] = targets
    # l'_s may take the skip from s-2: not a blank and not equal to l'_{s-2}.
    skip = torch.zeros(B, L, dtype=torch.bool, device=targets.device)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    # A finite "log 0": logsumexp over all -inf entries has a NaN gradient.
    neg = torch.full((B, L), -1e30, dtype=log_probs.dtype, device=log_probs.device)
    emit = log_probs.gather(2, ext[:, None, :].expand(B, T, L))  # (B, T, L): log y_t(l'_s)
    alpha = neg.clone()
    alpha[:, :2] = emit[:, 0, :2]
    for t in range(1, T):
        stay = alpha
        step = torch.cat([neg[:, :1], alpha[:, :-1]], 1)  # from s - 1
        jump = torch.where(skip, torch.cat([neg[:, :2], alpha[:, :-2]], 1), neg)  # from s - 2
        new = torch.logsumexp(torch.stack([stay, step, jump]), 0) + emit[:, t]
        alpha = torch.where((t < input_lengths)[:, None], new, alpha)  # (B, L)
    end = 2 * target_lengths  # the final blank of l' for each utterance
    last = alpha.gather(1, end[:, None])[:, 0]
    before = alpha.gather(1, (end - 1).clamp(min=0)[:, None])[:, 0]
    before = torch.where(target_lengths > 0, before, torch.full_like(before, -1e30))
    return -torch.logaddexp(last, before)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, *, blank: int = 0) -> list:
    """Best path: argmax per frame, merge repeats, drop blanks. (B, T, V) → B label lists."""
    best = log_probs.argmax(-1).tolist()  # (B, T)
    out = []
    for path, n in zip(best, lengths.tolist(), strict=True):
        labels, prev = [], blank
        for c in path[:n]:
            if c != prev and c != blank:
                labels.append(c)
            prev = c
        out.append(labels)
    return out


def prefix_beam_decode(
    log_probs: torch.Tensor,
    length: int,
    *,
    beam_width: int = 8,
    blank: int = 0,
    prune: float = 1e-3,
) -> list[int]:
    """CTC prefix beam search without a language model, for one utterance (T, V).

    Each prefix keeps log p(prefix, ends in blank) and log p(prefix, ends in a label), so all
    alignments of a prefix are summed. Labels below probability ``prune`` at a frame are
    skipped (0 keeps all).
    """
    lp = log_probs[:length].detach().double().cpu().numpy()  # (T, V)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    floor = math.log(prune) if prune > 0 else NEG_INF
    for frame in lp:
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        candidates = [c for c in np.flatnonzero(frame >= floor).tolist() if c != blank]
        for prefix, (p_b, p_nb) in beams.items():
            total = np.logaddexp(p_b, p_nb)
            entry = nxt[prefix]
            entry[0] = np.logaddexp(entry[0], total + frame[blank])
            last = prefix[-1] if prefix else None
            for c in candidates:
                p = frame[c]
                ext = nxt[(*prefix, c)]
                if c == last:  # a repeat extends only after a blank; otherwise it merges
                    ext[1] = np.logaddexp(ext[1], p_b + p)
                    entry[1] = np.logaddexp(entry[1], p_nb + p)
                else:
                    ext[1] = np.logaddexp(ext[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))
        beams = {k: (v[0], v[1]) for k, v in ranked[:beam_width]}
    return list(max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))[0])


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance: fewest substitutions, insertions and deletions."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """Corpus CER (edits / reference characters) and WER (edits / reference words)."""
    char_edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    word_edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True))
    return {
        "cer": char_edits / max(sum(len(r) for r in refs), 1),
        "wer": word_edits / max(sum(len(r.split()) for r in refs), 1),
    }
