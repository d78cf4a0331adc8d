"""Multi30k, task 1 (Elliott, Frank, Sima'an, Specia 2016): English image captions of
Flickr30k with their German and French translations, aligned line by line.

Official files (https://github.com/multi30k/dataset, ``data/task1/raw/``):
``{train,val,test_2016_flickr}.{en,de,fr}.gz``, gzip text, one sentence a line, 29,000 /
1,014 / 1,000 lines; read from ``<data>/multi30k/``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.download import download
from sutskever30.data.paths import data_dir
from sutskever30.data.registry import Dataset, register

BASE_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/"
LANGUAGES = ("en", "de", "fr")
SPLITS = {"train": 29_000, "val": 1_014, "test_2016_flickr": 1_000}
# md5 of each official file (the raw files of the dataset repository, as torchtext reads them)
FILES = {
    "train.en.gz": "0065d13af80720a55ca8153d126e6627",
    "train.de.gz": "81ff90b99829c0cd4b1b587d394afd39",
    "train.fr.gz": "6cb767741dcad3931f966fefbc05203f",
    "val.en.gz": "2b69aa9253948ac9f67e94917272dd40",
    "val.de.gz": "6e0e229eb049e3fc99a1ef02fb2d5f91",
    "val.fr.gz": "93fc564584b7e5ba410c761ea5a1c682",
    "test_2016_flickr.en.gz": "ff2c0fcb4893a13bd73414306bc250ae",
    "test_2016_flickr.de.gz": "efd67d314d98489b716b145475101932",
    "test_2016_flickr.fr.gz": "08dc7cd4a662f31718412de95ca9bfe3",
}


def _locate(root: Path) -> Path | None:
    folder = root / "multi30k"
    return folder if all((folder / name).is_file() for name in FILES) else None


def read_lines(folder: Path, split: str, language: str) -> list[str]:
    """The sentences of one split in one language, in the official order."""
    if split not in SPLITS or language not in LANGUAGES:
        raise ValueError(f"split in {list(SPLITS)} and language in {list(LANGUAGES)}")
    path = folder / f"{split}.{language}.gz"
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise DataCorruptError(f"cannot read {path}: {err}") from None
    if len(lines) != SPLITS[split]:
        raise DataCorruptError(f"{path}: expected {SPLITS[split]} lines, found {len(lines)}")
    return lines


def check(folder: Path) -> None:
    """Every file is readable gzip text with the official number of lines."""
    for split in SPLITS:
        for language in LANGUAGES:
            read_lines(folder, split, language)


def fetch(base_url: str) -> Path:
    """Download the nine official files from ``base_url`` into ``<data>/multi30k/``, each
    checked against its md5."""
    folder = data_dir() / "multi30k"
    for name, md5 in FILES.items():
        if not (folder / name).is_file():
            download(base_url.rstrip("/") + "/" + name, folder / name, md5)
    check(folder)
    return folder


MULTI30K = register(
    Dataset(
        name="multi30k",
        description="Multi30k task 1: 29k/1k/1k captions in English, German and French",
        url=BASE_URL,
        filename=None,
        md5=None,  # one file each: see FILES
        locate=_locate,
        hint="run `s30 data fetch multi30k` (or put the nine {train,val,test_2016_flickr}."
        "{en,de,fr}.gz files in <data>/multi30k/)",
        fetcher=fetch,
        check=check,
    )
)


def load_multi30k(split: str = "train") -> dict[str, list[str]]:
    """{language: sentences} of one split, aligned by index."""
    folder = MULTI30K.require()
    return {language: read_lines(folder, split, language) for language in LANGUAGES}
