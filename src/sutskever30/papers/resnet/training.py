"""Training and evaluating the degradation experiment's networks: CIFAR-10 subsets, the
paper's augmentation, one SGD step, and evaluation with recomputed BatchNorm statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, step_generator
from sutskever30.data.cifar10 import load_cifar10, pad_crop_flip
from sutskever30.papers.resnet.model import CifarResNet, ResNetConfig

if TYPE_CHECKING:
    from sutskever30.papers.resnet.experiment import DegradationConfig


def load_data(cfg: DegradationConfig) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(images (N, 3, 32, 32), labels (N,)) for train, val (held out from the training
    images) and test, minus the per-pixel mean of the training images (Sec. 4.2).

    Subsets are drawn through one fixed permutation of each split (the same images in every
    run and seed): the image-folder copy of CIFAR-10 is stored class by class, so its first
    2,000 test images are all airplanes and automobiles."""
    x, y = load_cifar10("train")
    x_test, y_test = load_cifar10("test")
    train, val, test = subsets(cfg, len(x), len(x_test))
    split = {
        "train": (_images(x, train), torch.from_numpy(y)[train]),
        "val": (_images(x, val), torch.from_numpy(y)[val]),
        "test": (_images(x_test, test), torch.from_numpy(y_test)[test]),
    }
    mean = split["train"][0].mean(dim=0, keepdim=True)  # (1, 3, 32, 32)
    return {k: (images - mean, labels) for k, (images, labels) in split.items()}


def subsets(cfg: DegradationConfig, n_train: int, n_test: int) -> tuple[torch.Tensor, ...]:
    """Indices of the train, val and test images: the first ``train_size`` and the last
    ``val_size`` of one fixed permutation of the training images (disjoint), and the first
    ``test_size`` of one of the test images."""
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(0))
    test = torch.randperm(n_test, generator=torch.Generator().manual_seed(0))
    return order[: cfg.train_size], order[n_train - cfg.val_size :], test[: cfg.test_size]


def _images(x: np.ndarray, idx: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 32, 32, 3) → the chosen images as float (n, 3, 32, 32) in [0, 1]."""
    return torch.from_numpy(x[idx.numpy()]).permute(0, 3, 1, 2).float().div_(255)


def trainer(run: Run, cfg: DegradationConfig, depth: int, residual: bool, data):
    """The network, its SGD optimizer and schedule, and ``step(i)``: one update on the i-th
    augmented minibatch (what ``fit`` runs and ``s30 bench`` times)."""
    x_train, y_train = data["train"]
    torch.manual_seed(run.seed)
    model = CifarResNet(ResNetConfig(depth=depth, residual=residual)).to(
        run.device, memory_format=torch.channels_last
    )
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    warm = cfg.warmup_steps if depth >= cfg.warmup_depth else 0

    def lr_factor(step: int) -> float:
        if step < warm:
            return 0.1
        return 0.1 ** sum(step >= m for m in cfg.lr_milestones)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(len(x_train), cfg.batch_size, i, run.seed)
        xb, yb = x_train[idx], y_train[idx]
        if cfg.augment:
            xb = pad_crop_flip(xb, step_generator(run.seed, i))
        xb = xb.to(run.device, memory_format=torch.channels_last)
        yb = yb.to(run.device)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "train_err": (logits.argmax(1) != yb).float().mean().item()}

    return model, opt, sched, step
