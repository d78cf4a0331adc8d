"""The dense-labelling task: real MNIST digits scattered on a canvas, one class per pixel.

Each canvas (``size`` × ``size``, black) holds ``digits`` MNIST digits (28×28) pasted at
random places such that their 20×20 ink boxes (MNIST centres each digit in a 20×20 box)
do not overlap. A pixel's label is the class of the digit whose ink covers it (pixel value
> ``ink``), else background (class 10). A 3×3 patch of a stroke looks the same in many
digits, so a pixel's class is read from the shape of the whole digit (~20 pixels across):
context decides it.

Training canvases are drawn afresh at every step from the 50k training digits; validation
and test canvases are fixed sets drawn from MNIST's validation and test digits, so no test
digit is ever seen in training and hyperparameters are chosen on digits the test never uses.
"""

from __future__ import annotations

import torch

from sutskever30.data.mnist import load_mnist

BACKGROUND = 10
N_CLASSES = 11  # ten digits + background: the module's C
DIGIT = 28
INK_BOX = 20  # MNIST digits are centred in a 20×20 box inside the 28×28 image
MARGIN = (DIGIT - INK_BOX) // 2


def load_digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` as (images (N, 28, 28) float in [0, 1), labels (N,) int64)."""
    x, y = load_mnist(split)
    return torch.from_numpy(x).view(-1, DIGIT, DIGIT), torch.from_numpy(y)


def place(
    n: int, digits: int, size: int, gen: torch.Generator, tries: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners (n, digits, 2) of digits whose ink boxes do not overlap, and which
    digits were placed (n, digits): one for which none of ``tries`` random candidates is
    free is left out."""
    cand = torch.randint(
        -MARGIN, size - DIGIT + MARGIN + 1, (n, digits, tries, 2), generator=gen
    )  # ink stays inside the canvas
    far = -4 * size  # where an unplaced digit "is": it clashes with nothing
    corners = torch.full((n, digits, 2), far, dtype=torch.long)
    for k in range(digits):
        # (n, tries, k): does candidate t of digit k overlap the ink box of digit j < k?
        gap = (cand[:, k, :, None, :] - corners[:, None, :k, :]).abs()  # (n, tries, k, 2)
        clash = (gap < INK_BOX).all(dim=-1).any(dim=-1)  # (n, tries)
        free = ~clash
        first = free.float().argmax(dim=1)  # (n,) the first free candidate
        ok = free.any(dim=1)
        chosen = cand[torch.arange(n), k, first]  # (n, 2)
        corners[:, k] = torch.where(ok[:, None], chosen, torch.full_like(chosen, far))
    return corners, corners[..., 0] != far


def make_canvases(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    n: int,
    digits: int,
    size: int,
    ink: float,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` canvases from random digits of (images, labels): (x (n, 1, size, size) float,
    y (n, size, size) int64 with classes 0–9 on ink and ``BACKGROUND`` elsewhere)."""
    which = torch.randint(0, len(images), (n, digits), generator=gen)
    corners, placed = place(n, digits, size, gen)  # (n, digits, 2), (n, digits)
    pad = DIGIT  # paste into a padded canvas, so a digit may overhang by its blank margin
    x = torch.zeros(n, size + 2 * pad, size + 2 * pad)
    y = torch.full((n, size + 2 * pad, size + 2 * pad), BACKGROUND, dtype=torch.long)
    # (n·digits, 28, 28) pixel coordinates of every pasted digit in the padded canvas
    idx_n, idx_k = torch.nonzero(placed, as_tuple=True)
    r0 = corners[idx_n, idx_k, 0] + pad
    c0 = corners[idx_n, idx_k, 1] + pad
    rows = (r0[:, None] + torch.arange(DIGIT))[:, :, None].expand(-1, DIGIT, DIGIT)
    cols = (c0[:, None] + torch.arange(DIGIT))[:, None, :].expand(-1, DIGIT, DIGIT)
    canvas = idx_n[:, None, None].expand(-1, DIGIT, DIGIT)
    img = images[which[idx_n, idx_k]]  # (m, 28, 28)
    x.index_put_((canvas, rows, cols), img, accumulate=True)  # ink boxes are disjoint
    on = img > ink
    y[canvas[on], rows[on], cols[on]] = labels[which[idx_n, idx_k]][:, None, None].expand_as(on)[on]
    inner = slice(pad, pad + size)
    return x[:, None, inner, inner].clamp_(max=1.0).contiguous(), y[:, inner, inner].contiguous()


def confusion(pred: torch.Tensor, target: torch.Tensor, classes: int = N_CLASSES) -> torch.Tensor:
    """Per-canvas counts (N, classes, classes), rows = true class, columns = predicted, for
    labels (N, H, W); ``.sum(0)`` is the confusion matrix of the whole set."""
    n = target.shape[0]
    canvas = torch.arange(n)[:, None] * classes * classes  # (N, 1)
    flat = canvas + (target.reshape(n, -1) * classes + pred.reshape(n, -1))  # (N, H·W)
    counts = torch.bincount(flat.flatten(), minlength=n * classes * classes)
    return counts.view(n, classes, classes)


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """IoU_k = TP / (TP + FP + FN) per class (NaN for a class absent from both)."""
    tp = cm.diagonal().double()
    union = cm.sum(dim=0).double() + cm.sum(dim=1).double() - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(cm: torch.Tensor) -> float:
    """The VOC measure: the mean of the per-class IoUs over the classes that occur."""
    return float(iou_per_class(cm).nanmean())
