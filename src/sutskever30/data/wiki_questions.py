"""Questions built from Wikipedia passages by published methods, with held-out articles.

No question set of the papers (Natural Questions, TriviaQA, SQuAD) is available here, so the
retrieval and RAG experiments build theirs from the passages of ``data.wikipedia``:

- **Article split.** Every article goes to train, val or test by a checksum of its title
  (``TEST_PERCENT`` / ``VAL_PERCENT``), so evaluation questions and their passages come from
  articles no training question was built from.
- **Inverse cloze task** (Lee, Chang, Toutanova 2019, ORQA §5): a sentence of a passage is the
  pseudo-query and the passage is its context; in training the sentence is removed from the
  context 90% of the time. As an evaluation set these are lexical-overlap queries: the query's
  words are in its passage.
- **Generated questions** (query generation, Nogueira et al. 2019 doc2query; Bonifacio et al.
  2022 InPars): an instruction-tuned LM (SmolLM2-135M-Instruct) reads a passage and writes one
  question it answers. The questions are cached in the cache directory.
- **Cloze questions** (Lewis, Denoyer, Riedel 2019, unsupervised QA by cloze translation, with
  its temporal answer type): a sentence holding exactly one year, the year masked; the answer
  is the year, which its passage states.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from sutskever30.data.wikipedia import Passage

TEST_PERCENT = 20
VAL_PERCENT = 10
MIN_SENTENCE_WORDS = 6
BLANK = "____"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-2][0-9])\b")


@dataclass(frozen=True)
class Query:
    """A question whose gold passage is ``pid``. ``context`` is the ICT training context (the
    passage, its sentence removed or not); ``answer`` the short answer of a cloze question."""

    text: str
    pid: int
    context: str | None = None
    answer: str | None = None


def split_of(title: str) -> str:
    """``train``, ``val`` or ``test``: fixed by the title's CRC-32, not by corpus order."""
    bucket = zlib.crc32(title.encode()) % 100
    if bucket < TEST_PERCENT:
        return "test"
    return "val" if bucket < TEST_PERCENT + VAL_PERCENT else "train"


def passages_of(passages: Iterable[Passage], split: str) -> list[Passage]:
    """The passages of the articles in ``split``."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, not {split!r}")
    return [p for p in passages if split_of(p.title) == split]


def sentences(text: str) -> list[str]:
    """The complete sentences of a passage: a 100-word block starts and ends mid-sentence, so
    the first and last pieces count only if they look whole."""
    pieces = _SENTENCE_END.split(text)
    whole = [
        s
        for i, s in enumerate(pieces)
        if (i > 0 or s[:1].isupper()) and (i < len(pieces) - 1 or s.endswith((".", "!", "?")))
    ]
    return [s for s in whole if len(s.split()) >= MIN_SENTENCE_WORDS]


def ict_queries(passages: Iterable[Passage], *, seed: int, remove_prob: float = 0.9) -> list[Query]:
    """One inverse-cloze query per passage with a whole sentence: the query is a random
    sentence; the context is the passage without it with probability ``remove_prob``."""
    rng = random.Random(seed)
    queries = []
    for p in passages:
        candidates = sentences(p.text)
        if not candidates:
            continue
        sentence = rng.choice(candidates)
        context = p.text
        if rng.random() < remove_prob:
            context = " ".join(p.text.replace(sentence, " ").split())
        queries.append(Query(sentence, p.pid, context=context))
    return queries


def cloze_queries(passages: Iterable[Passage], *, seed: int) -> list[Query]:
    """At most one cloze question per passage: a sentence with exactly one year, the year
    replaced by ``BLANK``, prefixed by the article's title (the question's topic)."""
    rng = random.Random(seed)
    queries = []
    for p in passages:
        candidates = [s for s in sentences(p.text) if len(_YEAR.findall(s)) == 1]
        if not candidates:
            continue
        sentence = rng.choice(candidates)
        year = _YEAR.search(sentence).group(0)
        cloze = _YEAR.sub(BLANK, sentence)
        queries.append(Query(f"{p.title}: {cloze}", p.pid, answer=year))
    return queries
