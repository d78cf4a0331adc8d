"""Plain-text corpora: tiny-shakespeare (the char-rnn / nanoGPT benchmark)."""

from __future__ import annotations

from pathlib import Path

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.download import md5sum
from sutskever30.data.registry import Dataset, register

TINY_SHAKESPEARE_MD5 = "6fb458f1232090904fb40fe944165e91"


def _locate_shakespeare(root: Path) -> Path | None:
    for path in (root / "tinyshakespeare" / "input.txt", root / "input.txt"):
        if path.is_file():
            return path
    return None


TINY_SHAKESPEARE = register(
    Dataset(
        name="tinyshakespeare",
        description="tiny-shakespeare, 1,115,394 characters (Karpathy's char-rnn corpus)",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        filename="tinyshakespeare/input.txt",
        md5=TINY_SHAKESPEARE_MD5,
        locate=_locate_shakespeare,
    )
)


def load_tiny_shakespeare(val_fraction: float = 0.1) -> tuple[str, str]:
    """(train, val) text: the first 90% and the last 10% of the file, as char-rnn does."""
    path = TINY_SHAKESPEARE.require()
    if md5sum(path) != TINY_SHAKESPEARE_MD5:
        raise DataCorruptError(
            f"{path}: md5 differs from tiny-shakespeare's {TINY_SHAKESPEARE_MD5}"
        )
    text = path.read_text(encoding="utf-8")
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]
