"""The paper's network, data pipeline and schedule on an ImageNet-format tree (Secs. 2–5).

Training images are rescaled to a shorter side of 256 and centre-cropped to 256×256, the
mean image of the training set is subtracted, and every step takes random 224×224 patches,
reflects half of them and shifts their colours along the RGB eigenvectors (Sec. 4.1).
SGD: batch 128, momentum 0.9, weight decay 5e-4, lr 0.01 divided by 10 three times
(Sec. 5). Test predictions average the softmax over ten patches. The network's parameter
count at 1000 classes is checked against 60,965,224 on every run.

ImageNet is not available on the machines this project is tested on (DATA.md): ``full``
reads the user's tree (``<data>/imagenet/{train,val}/<wnid>/*.JPEG``, or ``--set
tree=/path``); ``smoke`` and ``quick`` run the same pipeline for a few steps on the
CIFAR-10 image-folder copy, which has the same layout (its 32×32 images rescaled to 256),
with fc6/fc7 of 256 units instead of 4096 (a 435 MB checkpoint per smoke run otherwise),
to show that the pipeline runs, not what it reaches.

Deviations from the paper: the lr drops at fixed steps (the paper: "when the validation
error rate stopped improving with the current learning rate"); the mean image, the RGB
covariance and the test error use subsets (``stats_images``, ``val_images``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit, step_generator
from sutskever30.data.imagefolder import ImageFolder
from sutskever30.data.paths import data_dir
from sutskever30.papers.alexnet.model import (
    PCA_SIGMA,
    AlexNet,
    AlexNetConfig,
    center_crop,
    count_neurons,
    count_parameters,
    pca_jitter,
    random_crop_flip,
    rgb_eigen,
    ten_crop_probabilities,
)

PAPER_PARAMS = 60_965_224  # the paper's "60 million", counted for 1000 classes at 224×224
PAPER_NEURONS = 650_000
PIXELS_PER_IMAGE = 256  # pixels sampled from each image for the RGB covariance


@dataclass(frozen=True)
class ImageNetConfig:
    tree: str = "imagenet"  # a folder in the data directory (S30_DATA_DIR) or an absolute path
    train_split: str = "train"
    val_split: str = "val"
    resize: int = 256
    crop: int = 224
    hidden: int = 4096  # fc6, fc7 (the paper's; smaller only to keep smoke runs light)
    steps: int = 900_000  # ~90 passes over ILSVRC-2012's 1.28M images at batch 128
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_drops: tuple[int, ...] = (300_000, 600_000, 800_000)  # lr ÷ 10 at each
    stats_images: int = 10_000  # training images for the mean image and RGB covariance
    val_images: int = 50_000  # validation images the test error is measured on
    workers: int = 8  # image-decoding processes
    checkpoint_every: int = 5_000

    def __post_init__(self) -> None:
        if not 0 < self.crop <= self.resize:
            raise ValueError("need 0 < crop ≤ resize")
        AlexNetConfig(image_size=self.crop)
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.hidden < 1:
            raise ValueError("steps, batch_size, lr and hidden must be positive")
        if self.stats_images < 1 or self.val_images < 1 or self.workers < 0:
            raise ValueError("need stats_images ≥ 1, val_images ≥ 1 and workers ≥ 0")
        if self.checkpoint_every < 0:
            raise ValueError("checkpoint_every must be ≥ 0")

    @property
    def root(self) -> Path:
        path = Path(self.tree).expanduser()
        return path if path.is_absolute() else data_dir() / path


class StepBatches:
    """Batch sampler: the indices of steps ``start``, ``start + 1``, … ``steps − 1``, each a
    function of its step (``batch_indices``), so loading ahead in workers and resuming
    give the batches an uninterrupted run gets."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, steps: int) -> None:
        self.n, self.batch_size, self.seed, self.start, self.steps = (
            n,
            batch_size,
            seed,
            start,
            steps,
        )

    def __iter__(self) -> Iterator[list[int]]:
        for i in range(self.start, self.steps):
            yield batch_indices(self.n, self.batch_size, i, self.seed).tolist()

    def __len__(self) -> int:
        return self.steps - self.start


def pixel_statistics(
    dataset: ImageFolder, n: int, workers: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean image (3, S, S) in [0, 1] and the RGB eigenvalues/vectors of ``n`` training
    images drawn through a fixed permutation (``PIXELS_PER_IMAGE`` pixels of each)."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:n]
    loader = DataLoader(Subset(dataset, order.tolist()), batch_size=64, num_workers=workers)
    gen = torch.Generator().manual_seed(1)
    total, count, pixels = None, 0, []
    for images, _ in loader:
        x = images.double() / 255  # (B, 3, S, S)
        total = x.sum(0) if total is None else total + x.sum(0)
        count += len(x)
        flat = x.flatten(2).transpose(1, 2)  # (B, S·S, 3)
        pick = torch.randint(0, flat.shape[1], (len(x), PIXELS_PER_IMAGE), generator=gen)
        pixels.append(flat.gather(1, pick[..., None].expand(-1, -1, 3)).reshape(-1, 3))
    eigvals, eigvecs = rgb_eigen(torch.cat(pixels))
    return (total / count).float(), eigvals, eigvecs


def architecture_claims(run: Run) -> None:
    with torch.device("meta"):  # the count needs the shapes, not 244 MB of weights
        paper_net = AlexNet(config=AlexNetConfig())
    cfg = paper_net.config
    run.claim(
        "parameter_count",
        "the two-tower network for 1000 classes at 224×224 has 60,965,224 parameters and "
        "6×6×256 maps after pool5",
        "Sec. 3.5 / abstract: 60 million parameters; Fig. 2: 6×6×256 into fc6",
        {"params": count_parameters(paper_net), "pool5_side": cfg.feature_size},
        f"params == {PAPER_PARAMS} and pool5_side == 6",
    )
    run.report(
        "neurons",
        "output units of the eight learned layers (conv1 counted at 55×55×96)",
        "abstract: 650,000 neurons (Sec. 3.5 lists 253,440 for conv1, which 55×55×96 is not)",
        {"neurons": count_neurons(cfg)},
    )


@torch.no_grad()
def evaluate(model, dataset: ImageFolder, cfg: ImageNetConfig, mean: torch.Tensor, device):
    """Top-1/top-5 error with ten-crop averaging and top-1 of the centre crop alone, on
    ``val_images`` validation images drawn through a fixed permutation."""
    model.eval()
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
    subset = Subset(dataset, order[: cfg.val_images].tolist())
    k = min(5, model.config.num_classes)
    top1 = top5 = centre = seen = 0
    for images, labels in DataLoader(subset, batch_size=32, num_workers=cfg.workers):
        x = images.to(device).float().div_(255) - mean
        labels = labels.to(device)
        probs = ten_crop_probabilities(model, x, cfg.crop)  # (B, classes)
        best = probs.topk(k, dim=1).indices  # (B, k)
        top1 += (best[:, 0] != labels).sum().item()
        top5 += (best != labels[:, None]).all(1).sum().item()
        centre += (model(center_crop(x, cfg.crop)).argmax(1) != labels).sum().item()
        seen += len(labels)
    return {"top1_err": top1 / seen, "top5_err": top5 / seen, "top1_err_centre": centre / seen}


def run_imagenet(run: Run, cfg: ImageNetConfig) -> None:
    architecture_claims(run)
    train = ImageFolder(cfg.root, cfg.train_split, size=cfg.resize)
    val = ImageFolder(cfg.root, cfg.val_split, size=cfg.resize, classes=train.classes)
    mean, eigvals, eigvecs = pixel_statistics(train, cfg.stats_images, cfg.workers)
    device = run.device
    mean, eigvals, eigvecs = mean.to(device), eigvals.to(device), eigvecs.to(device)
    torch.manual_seed(run.seed)
    net = AlexNetConfig(num_classes=len(train.classes), image_size=cfg.crop, hidden=cfg.hidden)
    model = AlexNet(config=net).to(device)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 ** sum(s >= m for m in cfg.lr_drops)
    )
    batches: dict[str, Iterator] = {}

    def step(i: int) -> dict[str, float]:
        if "it" not in batches:  # the first step of this process: load from here on
            sampler = StepBatches(len(train), cfg.batch_size, run.seed, i, cfg.steps)
            loader = DataLoader(train, batch_sampler=sampler, num_workers=cfg.workers)
            batches["it"] = iter(loader)
        images, labels = next(batches["it"])
        gen = step_generator(run.seed, i)
        x = images.to(device).float().div_(255) - mean  # (B, 3, 256, 256)
        x = random_crop_flip(x, cfg.crop, gen)  # (B, 3, 224, 224)
        alpha = torch.randn(len(x), 3, generator=gen) * PCA_SIGMA
        x = pca_jitter(x, eigvals, eigvecs, alpha.to(device))
        labels = labels.to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {
            "loss": loss.item(),
            "train_err": (logits.argmax(1) != labels).float().mean().item(),
        }

    run.nets_total = 1
    history = fit(
        run,
        "alexnet",
        model=model,
        optimizer=opt,
        scheduler=sched,
        steps=cfg.steps,
        step=step,
        checkpoint_every=cfg.checkpoint_every,
    )
    scores = evaluate(model, val, cfg, mean, device)
    run.summary.update(scores, classes=len(train.classes), final_loss=history[-1]["loss"])
    run.report(
        "val_error",
        f"top-1/top-5 error (%) with ten-crop averaging and top-1 of the centre crop, "
        f"{min(cfg.val_images, len(val))} images of {cfg.root / cfg.val_split} "
        f"({len(train.classes)} classes) after {cfg.steps} steps",
        "Table 2: one CNN, ILSVRC-2012 val 40.7 / 18.2 (ILSVRC-2010 test 37.5 / 17.0)",
        {k: 100 * v for k, v in scores.items()},
    )


SMOKE = ImageNetConfig(
    tree="cifar10-images",
    val_split="test",
    hidden=256,
    steps=2,
    batch_size=2,
    lr_drops=(),
    stats_images=8,
    val_images=2,
    workers=0,
    checkpoint_every=0,
)
QUICK = ImageNetConfig(
    tree="cifar10-images",
    val_split="test",
    hidden=256,
    steps=4,
    batch_size=8,
    lr_drops=(),
    stats_images=64,
    val_images=8,
    workers=0,
    checkpoint_every=0,
)
FULL = ImageNetConfig()

EXPERIMENT = Experiment(
    name="imagenet",
    description="the 60,965,224-parameter network and its ImageNet pipeline (image folders)",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_imagenet,
    quick_minutes=0.3,
    datasets=("cifar10",),
)
