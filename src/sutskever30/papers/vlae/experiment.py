"""VLAE's information-placement experiment: the decoder's receptive field decides what the
latent code keeps (Sec. 3–4 of the paper), on dynamically binarized MNIST.

Three VAEs share the encoder, the prior, the objective (free bits) and the budget and differ
only in the decoder: factorized Bernoulli (each pixel from z alone), a PixelCNN with a small
receptive field, and one with a large receptive field. Measured on held-out test images:
KL(q(z|x) ‖ p(z)) (the nats z carries) and the importance-sampled NLL (k draws per image).

Deviations from the paper (README: Deviations): small networks and a short budget (CPU
minutes), N(0, I) prior instead of the autoregressive-flow prior, 2,000/200 test images
for KL/NLL rather than all 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit, step_generator
from sutskever30.data.mnist import load_mnist
from sutskever30.papers.vlae.model import (
    SIDE,
    VLAE,
    VLAEConfig,
    elbo,
    free_bits_objective,
    importance_nll,
    log_weights,
    receptive_field,
    sample,
)

ARMS = ("factorized", "small", "large")
TEST_BINARIZATION_SEED = 20_170_211  # the held-out images are binarized once, for every run
PAPER_NLL_DYNAMIC = 78.53  # Table 2: VLAE, dynamically binarized MNIST (AF prior)
PAPER_KL = {"factorized": 37.3, "small": 13.3}  # Sec. 5.1: nats in z, by decoder


@dataclass(frozen=True)
class InformationConfig:
    z_dim: int = 32
    hidden: int = 300
    map_channels: int = 2
    channels: int = 16
    small_kernels: tuple[int, ...] = (3, 3)  # PixelCNN layers: type-A 3×3, type-B 3×3
    large_kernels: tuple[int, ...] = (7, 3, 3, 3, 3)
    steps: int = 1_000
    batch_size: int = 64
    lr: float = 1e-3
    free_bits: float = 0.5  # λ, nats per group of latent dimensions
    groups: int = 8  # free-bits groups (must divide z_dim)
    train_size: int = 50_000
    val_size: int = 1_000  # validation images: the ELBO that chose lr
    test_size: int = 2_000  # test images for KL and the ELBO
    is_size: int = 200  # the first of them, for the importance-sampled NLL
    is_k: int = 100  # importance samples per image
    n_images: int = 8  # samples and reconstructions drawn per decoder
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        for kernels in (self.small_kernels, self.large_kernels):
            if not kernels:
                raise ValueError("small_kernels and large_kernels need at least one layer")
            VLAEConfig(z_dim=self.z_dim, channels=self.channels, kernels=kernels)
        if len(receptive_field(self.small_kernels)) >= len(receptive_field(self.large_kernels)):
            raise ValueError("large_kernels must see more pixels than small_kernels")
        if self.groups < 1 or self.z_dim % self.groups:
            raise ValueError(f"groups must divide z_dim = {self.z_dim}")
        if self.free_bits < 0:
            raise ValueError("free_bits (λ) must be ≥ 0")
        if not 0 < self.train_size <= 50_000 or not 0 < self.val_size <= 10_000:
            raise ValueError("train_size must be in [1, 50000] and val_size in [1, 10000]")
        if not 0 < self.is_size <= self.test_size <= 10_000:
            raise ValueError("need 1 ≤ is_size ≤ test_size ≤ 10000")
        if self.is_k < 1 or self.n_images < 1 or self.checkpoint_every < 0:
            raise ValueError("is_k and n_images must be ≥ 1, checkpoint_every ≥ 0")

    def kernels(self, arm: str) -> tuple[int, ...]:
        return {"factorized": (), "small": self.small_kernels, "large": self.large_kernels}[arm]

    def model_config(self, arm: str) -> VLAEConfig:
        return VLAEConfig(
            z_dim=self.z_dim,
            hidden=self.hidden,
            map_channels=self.map_channels,
            channels=self.channels,
            kernels=self.kernels(arm),
        )


def load_data(cfg: InformationConfig) -> dict[str, torch.Tensor]:
    """Grey levels in [0, 1) as (N, 1, 28, 28): train and val stay grey (binarized afresh at
    every use, dynamic binarization); test is binarized once with a fixed seed."""

    def images(split: str, n: int) -> torch.Tensor:
        return torch.from_numpy(load_mnist(split)[0][:n]).view(-1, 1, SIDE, SIDE)

    fixed = torch.Generator().manual_seed(TEST_BINARIZATION_SEED)
    return {
        "train": images("train", cfg.train_size),
        "val": images("val", cfg.val_size),
        "test": torch.bernoulli(images("test", cfg.test_size), generator=fixed),
    }


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """The memory layout the small convolutions run fastest in on CPU (~2× at 16 channels)."""
    return x.contiguous(memory_format=torch.channels_last)


def trainer(run: Run, cfg: InformationConfig, arm: str, x_train: torch.Tensor):
    """One arm's model, its Adam optimizer and ``step(i)``: a freshly binarized minibatch,
    one reparameterized draw of z, one update of −L_λ (what ``fit`` runs and ``s30 bench``
    times)."""
    torch.manual_seed(run.seed)
    model = VLAE(config=cfg.model_config(arm)).to(run.device, memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(len(x_train), cfg.batch_size, i, run.seed)
        gen = step_generator(run.seed, i)
        x = channels_last(torch.bernoulli(x_train[idx], generator=gen)).to(run.device)
        eps = torch.randn(len(idx), cfg.z_dim, generator=gen).to(run.device)
        log_px_z, kl = model.terms(x, eps)
        loss = -free_bits_objective(log_px_z, kl, lam=cfg.free_bits, groups=cfg.groups)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {
            "loss": loss.item(),
            "elbo": elbo(log_px_z, kl).mean().item(),
            "kl": kl.sum(1).mean().item(),
        }

    return model, opt, step


@torch.no_grad()
def bound_terms(
    model: VLAE, x: torch.Tensor, generator: torch.Generator, batch: int = 500
) -> dict[str, float]:
    """Mean KL(q(z|x) ‖ p(z)) (closed form) and ELBO (one draw of z per image) on ``x``."""
    device = next(model.parameters()).device
    kls, elbos = [], []
    for i in range(0, len(x), batch):
        xb = channels_last(x[i : i + batch]).to(device)
        eps = torch.randn(len(xb), model.config.z_dim, generator=generator).to(xb)
        log_px_z, kl = model.terms(xb, eps)
        kls.append(kl.sum(1))
        elbos.append(elbo(log_px_z, kl))
    return {"kl": torch.cat(kls).mean().item(), "elbo": torch.cat(elbos).mean().item()}


def importance_log_weights(
    model: VLAE, x: torch.Tensor, k: int, generator: torch.Generator
) -> torch.Tensor:
    """:func:`log_weights` (k, N) of ``x``, in batches of images that keep ~20k decoder passes
    in memory at once."""
    device = next(model.parameters()).device
    batch = max(1, 20_000 // k)
    return torch.cat(
        [
            log_weights(model, channels_last(x[i : i + batch]).to(device), k, generator=generator)
            for i in range(0, len(x), batch)
        ],
        dim=1,
    )


def nll_by_k(log_w: torch.Tensor, ks: tuple[int, ...]) -> dict[int, float]:
    """Mean IS estimate of −log p(x) with k draws, for each k dividing the draws held in
    ``log_w`` (k_max, B): the mean over the k_max/k disjoint groups of k draws."""
    k_max, b = log_w.shape
    out = {}
    for k in ks:
        groups = log_w[: k_max // k * k].view(k_max // k, k, b).transpose(0, 1)  # (k, G, B)
        out[k] = importance_nll(groups.reshape(k, -1)).mean().item()
    return out


def train_arm(run: Run, cfg: InformationConfig, arm: str, data) -> dict:
    """Train one decoder; measure KL, ELBO and the IS-NLL on held-out images."""
    model, opt, step = trainer(run, cfg, arm, data["train"])
    val_gen = torch.Generator().manual_seed(run.seed)

    def evaluate(_: int) -> dict[str, float]:
        x_val = torch.bernoulli(data["val"], generator=torch.Generator().manual_seed(1))
        return {f"val_{k}": v for k, v in bound_terms(model, x_val, val_gen).items()}

    history = fit(
        run,
        arm,
        model=model,
        optimizer=opt,
        steps=cfg.steps,
        step=step,
        evaluate=evaluate,
        checkpoint_every=cfg.checkpoint_every,
    )
    model.eval()
    gen = torch.Generator().manual_seed(run.seed * 7 + 1)
    test = bound_terms(model, data["test"], gen)
    log_w = importance_log_weights(model, data["test"][: cfg.is_size], cfg.is_k, gen)
    ks = tuple(k for k in (1, 10, 100, 1000) if k <= cfg.is_k)
    nll_k = nll_by_k(log_w, ks)
    result = {
        "arm": arm,
        "kernels": cfg.kernels(arm),
        "rf_pixels": len(receptive_field(cfg.kernels(arm))),
        "history": history,
        "model": model,
        "kl": test["kl"],
        "elbo": test["elbo"],
        "nll_is": importance_nll(log_w).mean().item(),
        "elbo_is_subset": -nll_k[1],
        "nll_by_k": nll_k,
        "val_elbo": history[-1]["val_elbo"],
    }
    run.info(
        f"{arm}: KL {result['kl']:.2f} nats, ELBO {result['elbo']:.2f}, "
        f"IS-NLL (k={cfg.is_k}) {result['nll_is']:.2f}"
    )
    return result


def information_claims(run: Run, cfg: InformationConfig, by: dict[str, dict]) -> None:
    small, large = (len(receptive_field(cfg.kernels(a))) for a in ("small", "large"))
    kl = {f"kl_{arm}": by[arm]["kl"] for arm in ARMS}
    run.claim(
        "kl_falls_with_receptive_field",
        f"KL(q(z|x) ‖ p(z)) on test images: factorized decoder > PixelCNN seeing {small} "
        f"pixels > PixelCNN seeing {large} pixels (each gap beyond the seed-to-seed spread)",
        f"Sec. 5.1: {PAPER_KL['factorized']} with a factorized decoder vs "
        f"{PAPER_KL['small']} with a local PixelCNN; a decoder that sees more leaves z less",
        kl,
        "kl_factorized > kl_small + spread and kl_small > kl_large + spread",
    )
    nll = {"nll_small": by["small"]["nll_is"], "nll_factorized": by["factorized"]["nll_is"]}
    run.claim(
        "small_window_beats_factorized",
        f"importance-sampled NLL (k = {cfg.is_k}, {cfg.is_size} test images): the "
        "small-window VLAE below the factorized VAE (beyond the seed-to-seed spread)",
        f"Table 2: VLAE {PAPER_NLL_DYNAMIC} nats on dynamically binarized MNIST, below "
        "every VAE with a factorized decoder",
        nll,
        "nll_small + spread < nll_factorized",
    )
    for arm in ARMS:
        r = by[arm]
        run.report(
            f"nll_{arm}",
            f"{arm} decoder ({r['rf_pixels']} pixels seen): IS-NLL with k = 1, 10, "
            f"{cfg.is_k} draws (k = 1 is −ELBO) on {cfg.is_size} test images, "
            f"after {cfg.steps} steps",
            f"Table 2: {PAPER_NLL_DYNAMIC} (VLAE, dynamic binarization, full training)",
            {f"nll_k{k}": v for k, v in r["nll_by_k"].items()} | {"kl": r["kl"]},
        )


def image_grid(ax, rows: list[torch.Tensor], labels: list[str], title: str) -> None:
    """Rows of 28×28 images side by side, each row labelled on the left."""
    grid = torch.cat([torch.cat(list(r[:, 0].cpu()), dim=1) for r in rows], dim=0)
    ax.imshow(grid.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([SIDE * (i + 0.5) for i in range(len(rows))], labels)
    ax.set_xticks([])
    ax.set_title(title)


def plot_images(run: Run, cfg: InformationConfig, by: dict[str, dict], x: torch.Tensor) -> None:
    """Samples from the prior, and reconstructions x ~ p(x | z = μ(x)) of test digits: what z
    keeps shows in how much of the digit the reconstruction preserves."""
    gen = torch.Generator().manual_seed(run.seed)
    samples, recons = [], []
    threads = torch.get_num_threads()
    # 784 steps of tiny convolutions each: a second thread only adds waiting (on a busy
    # machine, 30× slower)
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for arm in ARMS:
                model = by[arm]["model"]
                z = torch.randn(cfg.n_images, cfg.z_dim, generator=gen).to(run.device)
                samples.append(sample(model, z, generator=gen))
                mu, _ = model.encoder(channels_last(x).to(run.device))
                recons.append(sample(model, mu, generator=gen))
    finally:
        torch.set_num_threads(threads)
    labels = [f"{a} ({by[a]['rf_pixels']} px)" for a in ARMS]
    fig, (ax,) = plots.figure(width=6.5, height=3.0)
    image_grid(ax, samples, labels, "samples: z ~ N(0, I), x ~ p(x|z)")
    plots.save(fig, run.plot_path("samples.png"))
    fig, (ax,) = plots.figure(width=6.5, height=3.8)
    image_grid(
        ax, [x, *recons], ["test digit", *labels], "reconstructions: x ~ p(x | z = μ(test digit))"
    )
    plots.save(fig, run.plot_path("reconstructions.png"))


def plot_kl_vs_field(run: Run, cfg: InformationConfig, by: dict[str, dict]) -> None:
    """The paper's point in one panel: nats in z against the pixels the decoder sees."""
    rf = [by[a]["rf_pixels"] for a in ARMS]
    fig, (ax_kl, ax_nll) = plots.figure(ncols=2, width=4.5)
    for ax, key, ylabel in (
        (ax_kl, "kl", "KL(q(z|x) ‖ p(z)) (nats)"),
        (ax_nll, "nll_is", "IS-NLL (nats)"),
    ):
        ax.plot(rf, [by[a][key] for a in ARMS], "o-", linewidth=1.5)
        for a, x in zip(ARMS, rf, strict=True):
            ax.annotate(a, (x, by[a][key]), textcoords="offset points", xytext=(4, 6))
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("receptive field (pixels the decoder sees)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.margins(x=0.12, y=0.15)
    floor = cfg.groups * cfg.free_bits
    ax_kl.axhline(floor, color="gray", linestyle=":", linewidth=1)
    ax_kl.annotate("free-bits floor K·λ", (0, floor), textcoords="offset points", xytext=(2, -12))
    ax_kl.set_title("information kept in z")
    ax_nll.set_title("test NLL")
    plots.save(fig, run.plot_path("kl_vs_receptive_field.png"))


def plot_curves(run: Run, by: dict[str, dict]) -> None:
    fig, (ax_elbo, ax_kl) = plots.figure(ncols=2, width=4.5)
    for arm in ARMS:
        h = [r for r in by[arm]["history"] if "elbo" in r]
        k = max(1, min(10, len(h) // 5))  # moving average over k logged steps
        steps = [r["step"] for r in h][k - 1 :]
        for ax, key in ((ax_elbo, "elbo"), (ax_kl, "kl")):
            values = np.convolve([r[key] for r in h], np.ones(k) / k, mode="valid")
            ax.plot(steps, values, label=arm, linewidth=1.5)
    for ax, ylabel in ((ax_elbo, "training ELBO (nats)"), (ax_kl, "training KL (nats)")):
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax_kl.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    plots.save(fig, run.plot_path("training_curves.png"))


def run_information(run: Run, cfg: InformationConfig) -> None:
    data = load_data(cfg)
    run.nets_total = len(ARMS)
    by = {arm: train_arm(run, cfg, arm, data) for arm in ARMS}
    run.summary["by_decoder"] = {
        arm: {
            k: r[k]
            for k in ("kernels", "rf_pixels", "kl", "elbo", "nll_is", "elbo_is_subset", "val_elbo")
        }
        for arm, r in by.items()
    }
    information_claims(run, cfg, by)
    plot_kl_vs_field(run, cfg, by)
    plot_curves(run, by)
    plot_images(run, cfg, by, data["test"][: cfg.n_images])


def bench(run: Run) -> list[BenchCase]:
    """The quick preset's three decoders, each with its own training step."""
    cfg = run.cfg
    x_train = load_data(cfg)["train"]
    cases = []
    for arm in ARMS:
        model, opt, step = trainer(run, cfg, arm, x_train)
        cases.append(BenchCase(f"vlae {arm}", model, opt, step, cfg.batch_size))
    return cases


SMOKE = InformationConfig(
    hidden=32,
    channels=4,
    large_kernels=(5, 3),
    steps=6,
    batch_size=16,
    train_size=256,
    val_size=32,
    test_size=32,
    is_size=8,
    is_k=10,
    n_images=2,
    checkpoint_every=3,
)
# lr from {5e-4, 1e-3, 2e-3, 4e-3} by mean validation ELBO of the three decoders, seed 10
# (README: Learning rate).
QUICK = InformationConfig(lr=4e-3)
FULL = InformationConfig(
    channels=64,
    large_kernels=(7, 5, 5, 5, 5, 5, 5),
    steps=100_000,
    test_size=10_000,
    is_size=10_000,
    is_k=1_000,
    checkpoint_every=5_000,
)

PAPER = Paper(
    slug="vlae",
    title="Variational Lossy Autoencoder",
    authors="Chen, Kingma, Salimans, Duan, Dhariwal, Schulman, Sutskever, Abbeel",
    year=2017,
    arxiv="1611.02731",
    bench=bench,
    experiments=(
        Experiment(
            name="information_placement",
            description="factorized vs small- vs large-window PixelCNN decoders: KL and "
            "IS-NLL on dynamically binarized MNIST",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_information,
            quick_minutes=4.0,  # measured, idle 2-core machine, 3 seeds side by side
            datasets=("mnist",),
            quick_seeds=3,
        ),
    ),
)
