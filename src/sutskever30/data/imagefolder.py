"""Image-folder trees in the ImageNet layout: ``<root>/<split>/<class>/<image>``.

ILSVRC-2012 is read as users keep it: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (the
validation images sorted into one folder per class, as ``torchvision.datasets.ImageFolder``
expects). ImageNet cannot be downloaded here (DATA.md): the tree is the user's, by default
``<data>/imagenet``. The CIFAR-10 copy ``cifar10-images/{train,test}/<class>/*.jpg`` has the
same layout, which is how the loader is exercised where ImageNet is absent.

Each image is rescaled so that its shorter side is ``size`` and its central ``size``×``size``
patch is kept (AlexNet, Sec. 2: 256), as uint8 (3, size, size); augmentation is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data.paths import data_dir
from sutskever30.data.registry import Dataset, register

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".ppm"})
LAYOUT = "(ILSVRC-2012: train/ and val/, one folder per wnid, validation images sorted in)"


def imagenet_dir() -> Path:
    """Where an ImageNet tree is looked for when none is named: ``<data>/imagenet``."""
    return data_dir() / "imagenet"


def _locate(root: Path) -> Path | None:
    tree = root / "imagenet"
    return tree if (tree / "train").is_dir() and (tree / "val").is_dir() else None


IMAGENET = register(
    Dataset(
        name="imagenet",
        description="ILSVRC-2012 images in an image-folder tree (1.28M train, 50k val)",
        url=None,
        filename=None,
        md5=None,
        locate=_locate,
        hint=(
            "bring your own copy (image-net.org, after accepting its terms): put train/<wnid>/ "
            "and val/<wnid>/ image folders in <data>/imagenet/ or pass the folder with "
            "`s30 run alexnet:imagenet --preset full --set tree=PATH`"
        ),
        required=False,  # only alexnet's full preset reads it
    )
)


def load_image(path: Path, size: int) -> np.ndarray:
    """The image at ``path``, shorter side rescaled to ``size`` (bilinear), central
    ``size``×``size`` patch, as uint8 (size, size, 3)."""
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        reason = str(err).strip() or type(err).__name__
        raise DataCorruptError(f"corrupt image {path}: {reason}") from None
    w, h = rgb.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    rgb = rgb.resize((new_w, new_h), Image.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.array(rgb.crop((left, top, left + size, top + size)), dtype=np.uint8)


class ImageFolder(torch.utils.data.Dataset):
    """The images of ``root/split/<class>/`` with labels in the sorted order of the class
    folders (or of ``classes``, to give a validation split the training split's labels).
    Item ``i``: (uint8 tensor (3, size, size), label)."""

    def __init__(
        self, root: Path, split: str, *, size: int = 256, classes: Sequence[str] | None = None
    ) -> None:
        folder = Path(root) / split
        if not folder.is_dir():
            raise DataMissingError(
                f"no image folder at {folder}: put the images there as "
                f"{folder}/<wnid>/<image>.JPEG {LAYOUT}"
            )
        found = sorted(d.name for d in folder.iterdir() if d.is_dir())
        self.classes = list(classes) if classes is not None else found
        missing = sorted(set(found) - set(self.classes))
        if missing:
            raise DataCorruptError(f"{folder} has classes the training split lacks: {missing[:5]}")
        index = {name: i for i, name in enumerate(self.classes)}
        self.samples = [
            (path, index[name])
            for name in found
            for path in sorted((folder / name).iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.samples:
            raise DataMissingError(
                f"{folder} holds no images: expected {folder}/<wnid>/<image>.JPEG {LAYOUT}"
            )
        self.size = size
        self.folder = folder

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([label for _, label in self.samples])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        image = torch.from_numpy(load_image(path, self.size)).permute(2, 0, 1)  # (3, S, S)
        return image.contiguous(), label
