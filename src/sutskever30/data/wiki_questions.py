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


QG_VERSION = 1  # part of the cache key: bump it when the prompt or decoding changes
MIN_QUESTION_WORDS = 5
_RESTATED = re.compile(r"^(what is the answer to (this|the following) question\s*[:?]\s*)+", re.I)
QG_INSTRUCTION = (
    "Write one question that is answered by the passage below. "
    "Reply with the question only.\n\nPassage: "
)


def generated_questions(
    passages: list[Passage], *, batch_size: int = 32, bf16: bool = True, progress=None
) -> list[Query]:
    """One question per passage written by SmolLM2-135M-Instruct (greedy, at most 40
    tokens), cleaned by :func:`clean_question`; passages whose reply is no question get
    none. Cached by the passages' text and the model file: later runs read them back."""
    import hashlib

    from sutskever30.data.cache import cached_json
    from sutskever30.nn.llama import find_gguf

    digest = hashlib.sha256(
        "\n".join(f"{p.pid}\t{p.title}\t{p.text}" for p in passages).encode()
    ).hexdigest()
    rows = cached_json(
        f"wiki-questions-{len(passages)}",
        lambda: _write_questions(passages, batch_size=batch_size, bf16=bf16, progress=progress),
        sources=[find_gguf()],
        salt=f"v{QG_VERSION} {digest}",
    )
    return [Query(text, pid) for pid, text in rows]


def clean_question(reply: str) -> str | None:
    """The question of a generated reply, or None: its first line, without the small
    model's habit of restating the task ("What is the answer to this question: …"); kept
    when it ends with "?" and has at least ``MIN_QUESTION_WORDS`` words."""
    lines = reply.strip().splitlines()
    question = _RESTATED.sub("", lines[0]).strip() if lines else ""
    if not question.endswith("?") or len(question.split()) < MIN_QUESTION_WORDS:
        return None
    return question


def _write_questions(passages, *, batch_size: int, bf16: bool, progress) -> list[list]:
    import contextlib

    import torch

    from sutskever30.nn.llama import generate, load_gguf

    model, tok = load_gguf()
    prompts = [
        tok.encode(tok.chat([{"role": "user", "content": f"{QG_INSTRUCTION}{p.title}: {p.text}"}]))
        for p in passages
    ]
    order = sorted(range(len(passages)), key=lambda i: len(prompts[i]))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    rows = []
    with autocast:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            gen = generate(
                model,
                [prompts[i] for i in batch],
                max_new_tokens=40,
                stop_ids=tok.stop_ids(),
                pad_id=tok.pad_id,
            )
            for i, tokens in zip(batch, gen.tokens, strict=True):
                question = clean_question(tok.decode(tokens))
                if question is not None:
                    rows.append([passages[i].pid, question])
            if progress is not None:
                progress.update(len(batch))
    return sorted(rows)
