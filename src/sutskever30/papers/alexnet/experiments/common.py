"""What the CIFAR-10 experiments share: the data (held-out subsets, mean image, RGB
eigenvectors), the CIFAR-sized network's recipe and training step, and its evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, step_generator
from sutskever30.data.cifar10 import load_cifar10
from sutskever30.papers.alexnet.model import (
    PCA_SIGMA,
    AlexNet,
    AlexNetConfig,
    center_crop,
    cifar_config,
    pca_jitter,
    random_crop_flip,
    rgb_eigen,
    ten_crop_probabilities,
)

CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000


@dataclass(frozen=True)
class CifarNetConfig:
    """The CIFAR-sized AlexNet (``model.cifar_config``) and the paper's recipe (Sec. 5):
    SGD, momentum 0.9, weight decay 5e-4, lr 0.01, batch 128 (the batch is ours to set)."""

    channels: tuple[int, int, int, int, int] = (32, 64, 96, 96, 64)
    hidden: int = 1024
    steps: int = 20_000
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    train_size: int = 50_000  # training images trained on
    val_size: int = 0  # training images held out (never trained on)
    test_size: int = 10_000  # images of the CIFAR-10 test split
    eval_train_size: int = 10_000  # training images the training accuracy is measured on

    def __post_init__(self) -> None:
        self.net()
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size and lr must be positive")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError("need 0 ≤ momentum < 1 and weight_decay ≥ 0")
        if self.val_size < 0 or not 0 < self.train_size <= CIFAR_TRAIN - self.val_size:
            raise ValueError("need val_size ≥ 0 and 1 ≤ train_size ≤ 50000 − val_size")
        if not 0 < self.test_size <= CIFAR_TEST or self.eval_train_size < 1:
            raise ValueError("test_size must be in [1, 10000] and eval_train_size ≥ 1")

    def net(self, **overrides) -> AlexNetConfig:
        return cifar_config(channels=self.channels, hidden=self.hidden, **overrides)


@dataclass
class CifarData:
    """Images (N, 3, 32, 32) as floats in [0, 1] minus the training subset's mean image
    (Sec. 2), labels (N,), and the eigenvalues/vectors of the training pixels' RGB covariance."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    eigvals: torch.Tensor
    eigvecs: torch.Tensor


def load_data(train_size: int, val_size: int, test_size: int) -> CifarData:
    """Subsets through one fixed permutation of each split, the same in every run and seed
    (the image-folder copy stores the classes one after another): the first ``train_size``
    training images, the last ``val_size`` (disjoint), the first ``test_size`` test images."""
    x, y = load_cifar10("train")
    x_test, y_test = load_cifar10("test")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    test = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(0))[:test_size]
    train, val = order[:train_size], order[len(x) - val_size :]
    split = {
        "train": (_images(x, train), torch.from_numpy(y)[train]),
        "val": (_images(x, val), torch.from_numpy(y)[val]),
        "test": (_images(x_test, test), torch.from_numpy(y_test)[test]),
    }
    pixels = split["train"][0].permute(0, 2, 3, 1).reshape(-1, 3)  # (N·32·32, 3)
    eigvals, eigvecs = rgb_eigen(pixels)
    mean = split["train"][0].mean(dim=0, keepdim=True)  # (1, 3, 32, 32)
    out = {k: (images - mean, labels) for k, (images, labels) in split.items()}
    return CifarData(**out, eigvals=eigvals, eigvecs=eigvecs)


def _images(x: np.ndarray, idx: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 32, 32, 3) → the chosen images as float (n, 3, 32, 32) in [0, 1]."""
    return torch.from_numpy(x[idx.numpy()]).permute(0, 3, 1, 2).float().div_(255)


def augment(
    xb: torch.Tensor, crop: int, gen: torch.Generator, data: CifarData, *, pca: bool
) -> torch.Tensor:
    """Sec. 4.1: a random crop with a random reflection, then (``pca``) the colour shift
    along the RGB eigenvectors, α ~ N(0, 0.1) per image."""
    xb = random_crop_flip(xb, crop, gen)
    if pca:
        alpha = torch.randn(xb.shape[0], 3, generator=gen) * PCA_SIGMA
        xb = pca_jitter(xb, data.eigvals, data.eigvecs, alpha)
    return xb


def cifar_trainer(
    run: Run,
    cfg: CifarNetConfig,
    net: AlexNetConfig,
    data: CifarData,
    *,
    augmented: bool,
    pca: bool = True,
):
    """The network, its SGD optimizer and ``step(i)``: one update on the i-th minibatch,
    augmented (crop + reflection + PCA colour) or centre-cropped (what ``fit`` runs and
    ``s30 bench`` times)."""
    x_train, y_train = data.train
    torch.manual_seed(run.seed)
    model = AlexNet(config=net).to(run.device)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(len(x_train), cfg.batch_size, i, run.seed)
        xb, yb = x_train[idx], y_train[idx]
        if augmented:
            xb = augment(xb, net.image_size, step_generator(run.seed, i), data, pca=pca)
        else:
            xb = center_crop(xb, net.image_size)
        xb, yb = xb.to(run.device), yb.to(run.device)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "train_err": (logits.argmax(1) != yb).float().mean().item()}

    return model, opt, step


@torch.no_grad()
def error_rate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    crop: int,
    *,
    ten_crop: bool = False,
    bs: int = 500,
) -> float:
    """Top-1 error of ``model`` (eval mode) on centre crops, or on the average of the
    softmax outputs of ten crops (Sec. 4.1)."""
    model.eval()
    device = next(model.parameters()).device
    wrong = 0
    for i in range(0, len(x), bs):
        xb = x[i : i + bs].to(device)
        if ten_crop:
            pred = ten_crop_probabilities(model, xb, crop).argmax(1)
        else:
            pred = model(center_crop(xb, crop)).argmax(1)
        wrong += (pred.cpu() != y[i : i + bs]).sum().item()
    return wrong / len(x)
