"""CIFAR-10 (Krizhevsky 2009): 50,000 training and 10,000 test 32×32 colour images.

Reads either the official python archive ``cifar-10-python.tar.gz`` (pickled batches,
straight from the tar file, or its extracted ``cifar-10-batches-py/`` folder) or an
image-folder tree ``cifar10-images/{train,test}/<class>/*.jpg``. Either is decoded once into
``<cache>/cifar10-<source>-<split>.<fingerprint>.npz``, rebuilt when the source changes.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.cache import cached_arrays
from sutskever30.data.registry import Dataset, register

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)


def _locate(root: Path) -> Path | None:
    for path in (root / ARCHIVE, root / "cifar-10-batches-py", root / "cifar10-images"):
        if path.exists():
            return path
    return None


def check_image_tree(root: Path, splits: tuple[str, ...] = ("train", "test")) -> None:
    """Raise DataCorruptError unless every ``root/<split>/<class>/`` folder holds a file."""
    for split in splits:
        for name in CLASSES:
            folder = root / split / name
            if not folder.is_dir() or not any(folder.iterdir()):
                raise DataCorruptError(
                    f"{folder} is missing or empty: expected images of every CIFAR-10 class"
                )


def _check(found: Path) -> None:
    if found.name == "cifar10-images":
        check_image_tree(found)
    elif found.is_dir():
        missing = [n for n in (*TRAIN_BATCHES, *TEST_BATCHES) if not (found / n).is_file()]
        if missing:
            raise DataCorruptError(f"{found} lacks {', '.join(missing)}")


CIFAR10 = register(
    Dataset(
        name="cifar10",
        description="CIFAR-10, 50k train / 10k test 32x32 images, 10 classes",
        url=f"https://www.cs.toronto.edu/~kriz/{ARCHIVE}",
        filename=ARCHIVE,
        md5=ARCHIVE_MD5,
        locate=_locate,
        check=_check,
    )
)


def _unpickle_batches(read, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    xs, ys = [], []
    for name in names:
        try:
            batch = pickle.loads(read(name), encoding="bytes")
            data, labels = batch[b"data"], batch[b"labels"]
        except (pickle.UnpicklingError, KeyError, EOFError, TypeError) as err:
            raise DataCorruptError(
                f"CIFAR-10 batch {name} is not in the official format: {err}"
            ) from None
        xs.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(labels, dtype=np.int64))
    return {"x": np.ascontiguousarray(np.concatenate(xs)), "y": np.concatenate(ys)}


def read_archive(path: Path, split: str) -> dict[str, np.ndarray]:
    """Decode the official archive (``.tar.gz`` or extracted folder) into uint8 (N,32,32,3)."""
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    if path.is_dir():
        return _unpickle_batches(lambda n: (path / n).read_bytes(), names)
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                if name not in members:
                    raise DataCorruptError(f"{path} has no member {name}")
                return tar.extractfile(members[name]).read()

            return _unpickle_batches(read, names)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataCorruptError(f"cannot read {path}: {err}") from None


def read_image_folder(root: Path, split: str) -> dict[str, np.ndarray]:
    """Decode ``root/<split>/<class>/*`` images, in a fixed shuffled order (seed 0).

    The folders hold one class after another; the official arrays are mixed. Shuffling once,
    deterministically, keeps a prefix (``x[:n]``) a fair sample of every class, as it is for
    the official archive.
    """
    check_image_tree(root, (split,))
    xs, ys = [], []
    for label, name in enumerate(CLASSES):
        for file in sorted((root / split / name).iterdir()):
            try:
                with Image.open(file) as img:
                    xs.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
                reason = str(err).strip() or type(err).__name__
                raise DataCorruptError(f"corrupt image {file}: {reason}") from None
            ys.append(label)
    x = np.stack(xs)
    if x.shape[1:] != (32, 32, 3):
        raise DataCorruptError(f"{root / split}: images are {x.shape[1:]}, expected 32x32x3")
    order = np.random.default_rng(0).permutation(len(x))
    return {"x": x[order], "y": np.asarray(ys, dtype=np.int64)[order]}


def load_cifar10(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels int64 (N,)) for ``split`` in {train, test}."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    source = CIFAR10.require()
    if source.name == "cifar10-images":
        arrays = cached_arrays(
            f"cifar10-images-shuffled-{split}",
            lambda: read_image_folder(source, split),
            sources=[source / split],
        )
    else:
        arrays = cached_arrays(
            f"cifar10-official-{split}", lambda: read_archive(source, split), sources=[source]
        )
    return arrays["x"], arrays["y"]


def pad_crop_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The CIFAR-10 augmentation of He et al. 2015 (Sec. 4.2): 4-pixel zero pad, a random
    32×32 crop, a random horizontal flip. x: (B, 3, 32, 32); the draws come from ``gen``."""
    b = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))  # (B, 3, 40, 40)
    dy = torch.randint(0, 9, (b,), generator=gen)
    dx = torch.randint(0, 9, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(32))[:, None, :, None]  # (B, 1, 32, 1)
    cols = (dx[:, None] + torch.arange(32))[:, None, None, :]  # (B, 1, 1, 32)
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(b)[:, None, None, None]
    chans = torch.arange(3)[None, :, None, None]
    return padded[batch, chans, rows, cols]
