"""Retrieval-Augmented Generation for knowledge-intensive NLP tasks.

Lewis, Perez, Piktus, Petroni, Karpukhin, Goyal, Küttler, Lewis, Yih, Rocktäschel, Riedel,
Kiela 2020, arXiv:2005.11401.

A retriever p_η(z | x) returns the top-k passages z of an index for the input x; a generator
p_θ(y_i | x, z, y_<i) writes the output reading one passage at a time; the passage is a
latent variable, marginalized out (§2.1):

    p_η(z | x) ∝ exp(d(z)ᵀ q(x))          d = BERT_d (fixed), q = BERT_q (trained)  (§2.2)
    RAG-Sequence:  p(y | x) ≈ Σ_{z ∈ top-k} p_η(z | x) Π_i p_θ(y_i | x, z, y_<i)
    RAG-Token:     p(y | x) ≈ Π_i Σ_{z ∈ top-k} p_η(z | x) p_θ(y_i | x, z, y_<i)

Training minimizes −log p(y | x) of input–output pairs: no passage is labelled, the gradient
reaches the query encoder through p_η(z | x) and the generator through p_θ. The passage
encoder and index stay fixed (§2.4), so the index can be replaced — new passages encoded by
the same d(·) — without retraining anything ("hot-swapping", §4.5).

Decoding (§2.5): RAG-Token is a standard decoder whose next-token distribution is the
mixture Σ_z p_η(z | x) p_θ(· | x, z, y_<i). RAG-Sequence uses the paper's "fast decoding":
each passage's generator proposes its greedy answer y, scored by Σ_z p_η(z | x) p_θ(y | x, z)
over the passages that proposed it (p_θ(y | x, z) taken as 0 where z did not).

The retriever is ``dpr``'s (the dual encoder's question and passage encoders and its exact
inner-product index): RAG builds on DPR.

Deviations from the paper:
- Generator: SmolLM2-135M-Instruct (a decoder-only Llama, ``nn/llama.py``), not BART-large;
  x and z are given to it as one chat turn (passage, then question), y is its reply. Only its
  top ``train_layers`` blocks and final norm are trained (the CPU budget); the rest, with the
  tied embedding, stays frozen.
- Retriever: initialized from all-MiniLM-L6-v2 (``dpr``'s initialization), not from DPR
  trained on Natural Questions.
- Task: cloze questions about years built from held-out Wikipedia articles, not Natural
  Questions; top-k = 3 (the paper: 5 or 10); RAG-Sequence decodes greedily per passage (the
  paper: beam search per passage).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.data.wiki_questions import BLANK
from sutskever30.data.wikipedia import Passage
from sutskever30.nn.llama import Llama, LlamaTokenizer, generate, left_pad, log_probs
from sutskever30.papers.dpr.model import DualEncoder, Index, build_index, passage_text, search

INSTRUCTION = f"Fill in the blank ({BLANK}) with a year. Answer with the year only."


# -- the two marginalizations ---------------------------------------------------------------


def doc_log_prior(q: torch.Tensor, d: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """log p_η(z | x) over the retrieved passages: q (B, C), d (B, k, C) → (B, k), the
    softmax of the inner products ``scale`` · d(z)ᵀ q(x) over the top k."""
    return (scale * torch.einsum("bc,bkc->bk", q, d)).log_softmax(-1)


def rag_sequence_log_likelihood(
    doc_logp: torch.Tensor, token_logp: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """log p_RAG-Sequence(y | x) (B,): doc_logp (B, k); token_logp (B, k, T) holds
    log p_θ(y_i | x, z, y_<i); mask (B, T) marks y's real tokens."""
    seq = (token_logp * mask[:, None, :]).sum(-1)  # (B, k): log p_θ(y | x, z)
    return torch.logsumexp(doc_logp + seq, dim=-1)


def rag_token_log_likelihood(
    doc_logp: torch.Tensor, token_logp: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """log p_RAG-Token(y | x) (B,): the passages are marginalized at every token."""
    per_token = torch.logsumexp(doc_logp[:, :, None] + token_logp, dim=1)  # (B, T)
    return (per_token * mask).sum(-1)


MARGINALIZE = {"sequence": rag_sequence_log_likelihood, "token": rag_token_log_likelihood}


# -- the model -----------------------------------------------------------------------------


@dataclass
class Retrieved:
    """The top-k passages of each question: ids (B, k) and log p_η(z | x) (B, k)."""

    ids: torch.Tensor
    doc_logp: torch.Tensor


class RAG(nn.Module):
    """``dpr``'s dual encoder (its question encoder q(·) trained, its passage encoder and the
    index fixed) + a generator. ``k = 0`` is the closed-book generator: the question alone."""

    def __init__(
        self,
        *,
        retriever: DualEncoder,
        index: Index,
        passages: list[Passage],
        generator: Llama,
        tokenizer: LlamaTokenizer,
        k: int,
        bf16: bool = False,
    ) -> None:
        super().__init__()
        self.retriever = retriever
        self.index = index
        self.passages = list(passages)
        self.generator = generator
        self.tokenizer = tokenizer
        self.k = k
        self.bf16 = bf16

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.generator.embed.weight.device.type, dtype=torch.bfloat16)

    # -- retrieval ------------------------------------------------------------------------
    def retrieve(self, questions: list[str]) -> Retrieved:
        """Top-k passages by maximum inner product; log p_η(z | x) carries the gradient of
        the query encoder (the passage vectors are fixed)."""
        q = self.retriever.embed_questions(questions)  # (B, C)
        _, top = search(self.index, q, self.k)  # (B, k)
        d = self.index.vectors[top]  # (B, k, C): ids are rows (build_index's default)
        return Retrieved(top, doc_log_prior(q, d, self.retriever.cfg.scale))

    def replace_passages(self, new: list[Passage]) -> None:
        """Hot-swap: the passages of ``new`` (by pid) get their new text, and their rows of
        the index new vectors from the same fixed passage encoder; nothing is retrained."""
        vectors = self.index.vectors.clone()
        vectors[[p.pid for p in new]] = self.retriever.encode_passages(
            [passage_text(p.title, p.text) for p in new]
        )
        for p in new:
            self.passages[p.pid] = p
        self.index = build_index(vectors, backend=self.index.backend)

    # -- the generator's inputs -----------------------------------------------------------
    def prompt(self, question: str, passage: Passage | None) -> list[int]:
        """The chat turn the generator reads: the passage (if any), the instruction, the
        question; then the assistant's turn begins."""
        context = f"{passage.title}: {passage.text}\n\n" if passage is not None else ""
        message = f"{context}{INSTRUCTION}\n{question}"
        return self.tokenizer.encode(self.tokenizer.chat([{"role": "user", "content": message}]))

    def answer_ids(self, answer: str) -> list[int]:
        return [*self.tokenizer.encode(answer), self.tokenizer.token_id("<|im_end|>")]

    def _rows(self, questions: list[str], retrieved: Retrieved | None) -> list[list[int]]:
        """One prompt per (question, passage): B·k rows, question-major (B rows closed-book)."""
        if retrieved is None:
            return [self.prompt(q, None) for q in questions]
        return [
            self.prompt(q, self.passages[pid])
            for q, row in zip(questions, retrieved.ids.tolist(), strict=True)
            for pid in row
        ]

    # -- likelihood -----------------------------------------------------------------------
    def answer_log_probs(
        self, questions: list[str], answers: list[str], retrieved: Retrieved | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log p_θ(y_i | x, z, y_<i) (B, k, T) (k = 1 closed-book) and y's mask (B, T)."""
        ys = [self.answer_ids(a) for a in answers]
        k = 1 if retrieved is None else retrieved.ids.shape[1]
        rows = self._rows(questions, retrieved)
        y_rows = [y for y in ys for _ in range(k)]
        full = [r + y for r, y in zip(rows, y_rows, strict=True)]
        ids, mask = left_pad(full, self.tokenizer.pad_id)  # answers end every row
        t = max(len(y) for y in ys)
        lengths = torch.tensor([len(y) for y in y_rows])
        is_answer = torch.arange(ids.shape[1]) >= ids.shape[1] - lengths[:, None]  # (B·k, T_all)
        with self.autocast():
            lp = log_probs(self.generator, ids, mask, where=is_answer)  # (B·k, T_all)
        token_logp = lp[:, -t:].reshape(len(questions), k, t)
        y_mask = is_answer[:, -t:].reshape(len(questions), k, t)[:, 0].float()  # (B, T)
        return token_logp, y_mask

    def log_likelihood(
        self, questions: list[str], answers: list[str], marginal: str = "token"
    ) -> torch.Tensor:
        """log p(y | x) (B,) under RAG-Sequence or RAG-Token (closed-book when k = 0)."""
        if self.k == 0:
            token_logp, mask = self.answer_log_probs(questions, answers, None)
            return (token_logp[:, 0] * mask).sum(-1)
        retrieved = self.retrieve(questions)
        token_logp, mask = self.answer_log_probs(questions, answers, retrieved)
        return MARGINALIZE[marginal](retrieved.doc_logp, token_logp, mask)

    # -- decoding -------------------------------------------------------------------------
    @torch.no_grad()
    def answer(self, questions: list[str], marginal: str = "token", max_tokens: int = 8):
        """Greedy answers (strings) under RAG-Token or RAG-Sequence (fast decoding)."""
        if self.k == 0:
            return self._decode_rows(self._rows(questions, None), max_tokens)[0]
        retrieved = self.retrieve(questions)
        rows = self._rows(questions, retrieved)
        if marginal == "token":
            return self._decode_token(rows, retrieved.doc_logp, max_tokens)
        texts, seq_logp = self._decode_rows(rows, max_tokens)
        b, k = retrieved.ids.shape
        answers = []
        for i in range(b):
            score: dict[str, torch.Tensor] = {}
            for j in range(k):
                y, s = texts[i * k + j], retrieved.doc_logp[i, j] + seq_logp[i * k + j]
                score[y] = torch.logaddexp(score[y], s) if y in score else s
            answers.append(max(score, key=lambda y: score[y].item()))
        return answers

    def _decode_rows(self, rows: list[list[int]], max_tokens: int):
        """Each row's greedy answer and its log-probability."""
        with self.autocast():
            gen = generate(
                self.generator,
                rows,
                max_new_tokens=max_tokens,
                stop_ids=self.tokenizer.stop_ids(),
                pad_id=self.tokenizer.pad_id,
            )
        texts = [self.tokenizer.decode(t).strip() for t in gen.tokens]
        return texts, torch.tensor([sum(lp) for lp in gen.log_probs])

    def _decode_token(self, rows, doc_logp: torch.Tensor, max_tokens: int) -> list[str]:
        """Greedy RAG-Token decoding: the k passages' next-token distributions are mixed by
        p_η(z | x); the chosen token is fed to all k of them."""
        model, tok = self.generator, self.tokenizer
        b, k = doc_logp.shape
        stop = torch.tensor(tok.stop_ids())
        ids, mask = left_pad(rows, tok.pad_id)
        cache = model.new_cache()
        alive = torch.ones(b, dtype=torch.bool)
        out: list[torch.Tensor] = []
        with self.autocast():
            logits = model(ids, mask, cache)[:, -1]  # (B·k, V)
            for _ in range(max_tokens):
                mix = torch.logsumexp(
                    doc_logp[:, :, None] + F.log_softmax(logits.float(), -1).view(b, k, -1), 1
                )  # (B, V)
                y = mix.argmax(-1)  # (B,)
                out.append(y)
                alive = alive & ~torch.isin(y, stop)
                if not alive.any():
                    break
                mask = torch.cat([mask, torch.ones(b * k, 1, dtype=torch.bool)], dim=1)
                logits = model(y.repeat_interleave(k)[:, None], mask, cache)[:, -1]
        answers = []
        for row in torch.stack(out, 1).tolist():  # (B, steps): each row up to its stop token
            end = next((i for i, t in enumerate(row) if t in stop.tolist()), len(row))
            answers.append(tok.decode(row[:end]).strip())
        return answers
