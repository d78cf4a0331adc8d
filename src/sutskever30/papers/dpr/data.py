"""Questions, passages and training examples for DPR: the Wikipedia shard here, or the
paper's own files where a user has them.

Here (DATA.md): the 100-word passages of ``data.wikipedia`` and the question sets of
``data.wiki_questions``, split by article: training questions come from train articles, hard
negatives are retrieved among train-article passages only, and evaluation questions come
from val or test articles while the index holds every passage of every split.

The paper's formats (Karpukhin et al.'s repository, facebookresearch/DPR):
- ``psgs_w100.tsv``: the 21M-passage Wikipedia, a header ``id  text  title`` and one
  tab-separated passage a line;
- the retriever training files (``biencoder-nq-train.json``): a JSON list of
  ``{"question", "answers", "positive_ctxs": [{"title", "text", ...}],
  "hard_negative_ctxs": [...], "negative_ctxs": [...]}``;
- the evaluation questions (``nq-test.qa.csv``): tab-separated ``question`` and a Python
  list of answer strings; a passage is relevant when it contains an answer (§5.1).
"""

from __future__ import annotations

import ast
import csv
import json
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data.wikipedia import Passage
from sutskever30.papers.dpr.bm25 import BM25
from sutskever30.papers.dpr.model import passage_text


@dataclass(frozen=True)
class TrainExample:
    """A question, its positive passage and its hard negatives, as E_P reads them
    (:func:`~sutskever30.papers.dpr.model.passage_text`); ``pid``s identify duplicates in a
    batch (−1: unknown)."""

    question: str
    positive: str
    hard: tuple[str, ...] = ()
    pid: int = -1
    hard_pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class EvalSet:
    """Questions and what makes a retrieved passage relevant: its pid is ``gold[i]``, or
    (DPR's qa files) its text contains one of ``answers[i]``."""

    name: str
    questions: list[str]
    gold: list[int] | None = None
    answers: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.questions)


def with_bm25_negatives(
    queries: Sequence[tuple[str, str, int]],
    passages: Sequence[Passage],
    n: int,
    *,
    k1: float = 0.9,
    b: float = 0.4,
) -> list[TrainExample]:
    """Training examples from (question, positive text, gold pid) triples, each with the
    ``n`` highest-ranked BM25 passages of ``passages`` that are not its gold passage (§3.2:
    "top passages returned by BM25 which ... do not contain the answer")."""
    if n == 0:
        return [TrainExample(q, pos, (), pid) for q, pos, pid in queries]
    bm25 = BM25([f"{p.title} {p.text}" for p in passages], k1=k1, b=b)
    _, top = bm25.search([q for q, _, _ in queries], n + 1)
    out = []
    for (q, pos, pid), row in zip(queries, top, strict=True):
        negs = [passages[j] for j in row if passages[j].pid != pid][:n]
        out.append(
            TrainExample(
                q,
                pos,
                tuple(passage_text(p.title, p.text) for p in negs),
                pid,
                tuple(p.pid for p in negs),
            )
        )
    return out


# -- the paper's file formats ----------------------------------------------------------------


def _need(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataMissingError(f"no such file: {path}")
    return path


def read_psgs_tsv(path: Path, limit: int | None = None) -> list[Passage]:
    """DPR's ``psgs_w100.tsv`` (``id``, ``text``, ``title``) as Passages, ``pid`` = its id."""
    csv.field_size_limit(sys.maxsize)
    out = []
    with _need(path).open(newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t")
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:3]] != ["id", "text", "title"]:
            raise DataCorruptError(f"{path}: expected the header id, text, title")
        for n, row in enumerate(rows):
            if limit is not None and n >= limit:
                break
            try:
                out.append(Passage(int(row[0]), row[2], row[1]))
            except (IndexError, ValueError):
                raise DataCorruptError(f"{path}: line {n + 2} is not id, text, title") from None
    return out


def read_dpr_json(path: Path, hard: int = 1) -> list[TrainExample]:
    """DPR's retriever training JSON: the first positive context and the first ``hard``
    hard negatives of each question (questions without a positive are skipped)."""
    try:
        rows = json.loads(_need(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataCorruptError(f"{path} is not JSON: {err}") from None

    def ctx(c: dict) -> str:
        return passage_text(c.get("title", ""), c["text"])

    def pid(c: dict) -> int:
        return int(c.get("passage_id", c.get("psg_id", -1)))

    out = []
    try:
        for row in rows:
            if not row.get("positive_ctxs"):
                continue
            pos, negs = row["positive_ctxs"][0], row.get("hard_negative_ctxs", [])[:hard]
            out.append(
                TrainExample(
                    row["question"],
                    ctx(pos),
                    tuple(ctx(c) for c in negs),
                    pid(pos),
                    tuple(pid(c) for c in negs),
                )
            )
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise DataCorruptError(f"{path}: not DPR's question format ({err!r})") from None
    return out


def read_qa_csv(path: Path, name: str = "qa") -> EvalSet:
    """DPR's ``*.qa.csv``: a question and a Python list of answers a line, tab-separated."""
    questions, answers = [], []
    with _need(path).open(newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t")):
            try:
                found = ast.literal_eval(row[1])
                if not isinstance(found, list):
                    raise ValueError(row[1])
            except (IndexError, ValueError, SyntaxError):
                raise DataCorruptError(
                    f"{path}: line {n + 1} is not question<TAB>[answers]"
                ) from None
            questions.append(row[0])
            answers.append([str(a) for a in found])
    return EvalSet(name, questions, answers=answers)


def _normalize(text: str) -> str:
    """Lowercase NFD words joined by single spaces, for answer matching."""
    text = unicodedata.normalize("NFD", text).lower()
    return " " + " ".join(re.findall(r"\w+", text)) + " "


def answer_hits(ranked: torch.Tensor, texts: dict[int, str], answers: list[list[str]]):
    """(Q, K) bool: ranked passage j of question i contains one of its answers as a
    sequence of whole words (case, accents and punctuation ignored). DPR's own matcher
    compares its tokenizer's tokens; whole-word matching on ``\\w+`` words is close to it."""
    hits = torch.zeros(ranked.shape, dtype=torch.bool)
    for i, row in enumerate(ranked.tolist()):
        wanted = [_normalize(a) for a in answers[i] if _normalize(a).strip()]
        for j, pid in enumerate(row):
            text = _normalize(texts[pid])
            hits[i, j] = any(a in text for a in wanted)
    return hits
