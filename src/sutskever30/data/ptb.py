"""Penn Treebank, word level, in Mikolov's preprocessing (the language-modelling benchmark of
Zaremba et al. 2014 and most LSTM LM papers), and the PTB-style word pipeline other corpora
reuse.

Official files: ``simple-examples.tgz`` from Tomas Mikolov's RNNLM page, holding
``simple-examples/data/ptb.{train,valid,test}.txt`` (929k / 73k / 82k words, one sentence a
line, lowercased, numbers as ``N``, rare words already ``<unk>``, 10,000 distinct words with
``<eos>``). Accepted copies, in order: the three text files in ``<data>/ptb/`` or
``<data>/simple-examples/data/``, or the tarball ``<data>/simple-examples.tgz`` itself.

Word pipeline (as the TensorFlow/PyTorch PTB readers do): each line becomes its words plus
``<eos>``; the vocabulary is the most frequent words of the training split (ties
alphabetical), ``<unk>`` and ``<eos>`` included in its size; other words map to ``<unk>``.
"""

from __future__ import annotations

import re
import tarfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.cache import cached_arrays
from sutskever30.data.download import md5sum
from sutskever30.data.registry import Dataset, register

PTB_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
PTB_MD5 = "30177ea32e27c525793142b6bf2c8e2d"
SPLITS = ("train", "valid", "test")
EOS, UNK = "<eos>", "<unk>"


def _locate(root: Path) -> Path | None:
    for folder in (root / "ptb", root / "simple-examples" / "data"):
        if all((folder / f"ptb.{s}.txt").is_file() for s in SPLITS):
            return folder
    tgz = root / "simple-examples.tgz"
    return tgz if tgz.is_file() else None


PTB = register(
    Dataset(
        name="ptb",
        description="Penn Treebank, Mikolov's word-level version (929k/73k/82k words, 10k vocab)",
        url=PTB_URL,
        filename="simple-examples.tgz",
        md5=PTB_MD5,
        locate=_locate,
        hint=(
            "run `s30 data fetch ptb` (Mikolov's simple-examples.tgz) or put "
            "ptb.train.txt, ptb.valid.txt, ptb.test.txt in <data>/ptb/"
        ),
        required=False,  # only rnn_regularization's full preset reads it
    )
)


def read_ptb_lines(split: str, source: Path | None = None) -> list[str]:
    """The lines of ``ptb.<split>.txt`` from a folder of the three files or the tarball."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    source = source or PTB.require()
    name = f"ptb.{split}.txt"
    if source.is_dir():
        return (source / name).read_text(encoding="utf-8").splitlines()
    if md5sum(source) != PTB_MD5:
        raise DataCorruptError(f"{source}: md5 differs from simple-examples.tgz's {PTB_MD5}")
    try:
        with tarfile.open(source, "r:gz") as tar:
            member = tar.extractfile(f"./simple-examples/data/{name}")
            if member is None:
                raise KeyError(name)
            return member.read().decode("utf-8").splitlines()
    except (tarfile.TarError, KeyError, OSError) as err:
        raise DataCorruptError(f"cannot read {name} from {source}: {err}") from None


# -- the PTB-style word pipeline ------------------------------------------------------------
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
_NUMBER = re.compile(r"[0-9]")


def tokenize_line(text: str) -> list[str]:
    """Raw text → PTB-style words: lowercase, words with inner apostrophes kept whole,
    punctuation dropped, any token containing a digit becomes ``N``."""
    return ["N" if _NUMBER.search(w) else w for w in _WORD.findall(text.lower())]


def line_words(lines: Iterable[str]) -> list[str]:
    """Whitespace-tokenized lines, each followed by ``<eos>`` (blank lines skipped)."""
    words: list[str] = []
    for line in lines:
        tokens = line.split()
        if tokens:
            words.extend(tokens)
            words.append(EOS)
    return words


def build_vocab(words: Iterable[str], size: int) -> list[str]:
    """The ``size`` most frequent words (ties alphabetical), always with ``<unk>``/``<eos>``."""
    counts = Counter(words)
    counts.pop(UNK, None)
    counts.pop(EOS, None)
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return [EOS, UNK, *ranked[: size - 2]]


def encode(words: Iterable[str], vocab: list[str]) -> np.ndarray:
    """Word ids (int64); words outside ``vocab`` become ``<unk>``."""
    index = {w: i for i, w in enumerate(vocab)}
    unk = index[UNK]
    return np.fromiter((index.get(w, unk) for w in words), dtype=np.int64)


@dataclass(frozen=True)
class WordCorpus:
    """A word-level corpus as id streams over a fixed vocabulary."""

    train: np.ndarray  # (N_train,) int64
    valid: np.ndarray
    test: np.ndarray
    vocab: list[str]


def corpus_from_words(splits: dict[str, list[str]], vocab_size: int) -> WordCorpus:
    vocab = build_vocab(splits["train"], vocab_size)
    return WordCorpus(*(encode(splits[s], vocab) for s in SPLITS), vocab=vocab)


def cached_corpus(name: str, build, *, sources: list[Path]) -> WordCorpus:
    """A WordCorpus built once by ``build()`` from ``sources`` and cached as arrays under
    ``name`` (rebuilt when a source changes)."""

    def arrays() -> dict[str, np.ndarray]:
        corpus = build()
        return {
            "train": corpus.train,
            "valid": corpus.valid,
            "test": corpus.test,
            "vocab": np.array(corpus.vocab),
        }

    a = cached_arrays(name, arrays, sources=sources)
    return WordCorpus(a["train"], a["valid"], a["test"], [str(w) for w in a["vocab"]])


def load_ptb(vocab_size: int = 10000) -> WordCorpus:
    """PTB train/valid/test as word ids (Mikolov's files already have a 10k vocabulary)."""
    source = PTB.require()

    def build() -> WordCorpus:
        return corpus_from_words(
            {s: line_words(read_ptb_lines(s, source)) for s in SPLITS}, vocab_size
        )

    return cached_corpus(f"ptb_words_v{vocab_size}", build, sources=[source])
