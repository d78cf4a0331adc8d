"""Variational Lossy Autoencoder.

Xi Chen, Diederik P. Kingma, Tim Salimans, Yan Duan, Prafulla Dhariwal, John Schulman,
Ilya Sutskever, Pieter Abbeel, 2017 (ICLR), arXiv:1611.02731.

**Idea.** A VAE whose decoder is autoregressive, p(x|z) = Π_i p(x_i | x_<i, z), puts into
the latent code z only the information the decoder cannot model by itself (the bits-back
argument, Sec. 2.2): anything the decoder can predict from the pixels it sees costs nats in
KL(q(z|x) ‖ p(z)) and saves none. So the decoder's *receptive field* decides what z keeps.
A factorized decoder (no context) pushes everything, texture included, into z; a PixelCNN
that sees only a small window around each pixel models local texture itself and leaves z
the global shape (a *lossy* code); a decoder that sees far enough needs z for little.

**Equations.** With q(z|x) = N(μ(x), diag σ²(x)) and p(z) = N(0, I):

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))                              (VAE bound)
    log p(x|z) = Σ_i x_i log π_i + (1 − x_i) log(1 − π_i),
        π_i = σ(f_i(x_<i, z))            (PixelCNN: f_i sees a masked window of x_<i)
    log p(x) ≈ log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x),  z_j ~ q(z|x)   (IS estimate)

The IS estimate is a lower bound on log p(x) in expectation that tightens as k grows and
equals the ELBO at k = 1 (Burda et al. 2016); −(IS estimate) is the reported NLL.
Free bits (Kingma et al. 2016, IAF paper): the latent dimensions are split into K groups
and training maximizes

    L_λ = E_x E_q[log p(x|z)] − Σ_{j=1..K} max(λ, E_x[KL(q(z_j|x) ‖ p(z_j))])

(the KL of a group averaged over the minibatch), which equals the ELBO wherever every
group's KL is at least λ and stops pushing a group's KL below λ.

**Masked convolutions** (PixelCNN, van den Oord et al. 2016): a k×k kernel whose taps at
and after the centre (raster order) are zero (type A, first layer: a pixel never sees
itself) or after the centre (type B, later layers: a feature may see its own position,
which already holds only earlier pixels). The receptive field of a stack is the Minkowski
sum of the kernels' tap offsets (:func:`receptive_field`), blind spot included.

Deviations from the paper:
- Prior p(z) = N(0, I), not the paper's autoregressive-flow prior (its best MNIST numbers
  use one); decoder a plain masked-convolution PixelCNN with z mapped by an MLP and two
  transposed convolutions to a per-pixel feature map added to every layer, not the
  paper's ResNet encoder/decoder; encoder a two-hidden-layer MLP.
- Widths are small (latent 32, 16 channels) so that training fits CPU minutes.
- Free bits are applied to every arm alike (the paper uses them to train its VLAEs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)
SIDE = 28  # MNIST images are SIDE × SIDE binary pixels


# -- masked convolutions and their receptive field ----------------------------------------


def mask_offsets(kernel: int, mask_type: str) -> set[tuple[int, int]]:
    """(dy, dx) offsets of the pixels a masked k×k kernel reads, relative to its centre:
    the rows above, and the pixels left of the centre in its row (type B: the centre too)."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"a masked kernel needs an odd size ≥ 1, got {kernel}")
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    r = kernel // 2
    above = {(dy, dx) for dy in range(-r, 0) for dx in range(-r, r + 1)}
    left = {(0, dx) for dx in range(-r, 0)}
    return above | left | ({(0, 0)} if mask_type == "B" else set())


def receptive_field(kernels: Sequence[int]) -> set[tuple[int, int]]:
    """Offsets of the input pixels that a PixelCNN output at (0, 0) can depend on: the
    Minkowski sum of the layers' tap sets (first layer type A, the rest type B)."""
    field: set[tuple[int, int]] = {(0, 0)}
    for layer, kernel in enumerate(kernels):
        taps = mask_offsets(kernel, "A" if layer == 0 else "B")
        field = {(y + dy, x + dx) for y, x in field for dy, dx in taps}
    return field if kernels else set()


class MaskedConv2d(nn.Conv2d):
    """A same-padded k×k convolution whose weights outside :func:`mask_offsets` are zero."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int, mask_type: str) -> None:
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        mask = torch.zeros(kernel, kernel)
        r = kernel // 2
        for dy, dx in mask_offsets(kernel, mask_type):
            mask[r + dy, r + dx] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


# -- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VLAEConfig:
    """``kernels``: the masked layers' kernel sizes, the first type A, the rest type B;
    empty for the factorized Bernoulli decoder (each pixel from z alone)."""

    z_dim: int = 32
    hidden: int = 300  # encoder MLP width, and z's MLP in the decoder
    map_channels: int = 2  # z's MLP ends in this many values per pixel
    channels: int = 16  # PixelCNN feature maps (and c(z)'s, a 1×1 convolution of z's map)
    kernels: tuple[int, ...] = (3, 3)

    def __post_init__(self) -> None:
        if min(self.z_dim, self.hidden, self.map_channels, self.channels) < 1:
            raise ValueError("z_dim, hidden, map_channels and channels must be positive")
        for k in self.kernels:
            mask_offsets(k, "B")


class Encoder(nn.Module):
    """q(z|x) = N(μ(x), diag σ²(x)) from a two-hidden-layer MLP."""

    def __init__(self, *, z_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(SIDE * SIDE, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * z_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x.flatten(1)).chunk(2, dim=1)  # (B, z_dim) each
        return mu, logvar


class Decoder(nn.Module):
    """p(x|z): z → per-pixel feature map c(z) → (masked convolutions over x) → logits."""

    def __init__(
        self, *, z_dim: int, hidden: int, map_channels: int, channels: int, kernels: Sequence[int]
    ) -> None:
        super().__init__()
        self.kernels = tuple(kernels)
        self.to_map = nn.Sequential(
            nn.Linear(z_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, map_channels * SIDE * SIDE),
            nn.Unflatten(1, (map_channels, SIDE, SIDE)),  # (B, M, 28, 28)
            nn.Conv2d(map_channels, channels, 1),  # (B, C, 28, 28)
        )
        self.masked = nn.ModuleList(
            MaskedConv2d(
                1 if i == 0 else channels, channels, kernel=k, mask_type="A" if i == 0 else "B"
            )
            for i, k in enumerate(self.kernels)
        )
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1)
        )

    def condition(self, z: torch.Tensor) -> torch.Tensor:
        """c(z): the (B, C, 28, 28) feature map every layer adds at each pixel."""
        return self.to_map(z)

    def logits(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits (B, 1, 28, 28) of every pixel given the earlier ones and c(z)."""
        h = F.relu(c)  # the factorized decoder: each pixel from z alone
        for layer, conv in enumerate(self.masked):
            h = F.relu(conv(x if layer == 0 else h) + c)  # (B, C, 28, 28)
        return self.head(h)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image, (B,)."""
        logits = self.logits(x, self.condition(z))
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


class VLAE(nn.Module):
    """Encoder q(z|x), standard normal prior p(z), decoder p(x|z) (factorized or PixelCNN)."""

    def __init__(self, *, config: VLAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(z_dim=config.z_dim, hidden=config.hidden)
        self.decoder = Decoder(
            z_dim=config.z_dim,
            hidden=config.hidden,
            map_channels=config.map_channels,
            channels=config.channels,
            kernels=config.kernels,
        )

    def terms(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|z) (B,), KL(q(z_d|x) ‖ p(z_d)) per dimension (B, z_dim)) with
        z = μ + σ·eps (the reparameterization). ``x``: (B, 1, 28, 28) binary."""
        mu, logvar = self.encoder(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, z_dim), closed form
        return self.decoder(x, z), kl


# -- objectives and the likelihood estimate ------------------------------------------------


def elbo(log_px_z: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
    """The evidence lower bound per image, (B,)."""
    return log_px_z - kl.sum(1)


def free_bits_objective(
    log_px_z: torch.Tensor, kl: torch.Tensor, *, lam: float, groups: int
) -> torch.Tensor:
    """L_λ (scalar, per image): the minibatch mean of log p(x|z) minus, for each of
    ``groups`` contiguous groups of latent dimensions, max(λ, the group's minibatch-mean KL).
    """
    z_dim = kl.shape[1]
    if groups < 1 or z_dim % groups:
        raise ValueError(f"groups must divide z_dim = {z_dim}, got {groups}")
    group_kl = kl.mean(0).view(groups, z_dim // groups).sum(1)  # (K,)
    return log_px_z.mean() - torch.clamp(group_kl, min=lam).sum()


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, diag exp(logvar)) summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def log_weights(
    model: VLAE, x: torch.Tensor, k: int, *, generator: torch.Generator, chunk: int = 2048
) -> torch.Tensor:
    """log p(x, z_j) − log q(z_j|x) for k draws z_j ~ q(z|x): (k, B). The decoder runs on at
    most ``chunk`` (image, draw) pairs at a time."""
    mu, logvar = model.encoder(x)  # (B, d)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn((k, *mu.shape), generator=generator).to(mu)
    z = mu + std * eps  # (k, B, d)
    log_q = log_normal(z, mu, logvar)  # (k, B)
    log_p = log_normal(z, torch.zeros_like(mu), torch.zeros_like(logvar))
    xs = x.expand(k, *x.shape).reshape(k * x.shape[0], *x.shape[1:])  # (k·B, 1, 28, 28)
    flat_z = z.reshape(k * x.shape[0], -1)
    log_px_z = torch.cat(
        [model.decoder(xs[i : i + chunk], flat_z[i : i + chunk]) for i in range(0, len(xs), chunk)]
    ).view(k, x.shape[0])
    return log_px_z + log_p - log_q


def importance_nll(log_w: torch.Tensor) -> torch.Tensor:
    """−log (1/k) Σ_j w_j per image from log-weights (k, B): the IS estimate of −log p(x)."""
    k = log_w.shape[0]
    return -(torch.logsumexp(log_w, 0) - math.log(k))


def row_logits(decoder: Decoder, x: torch.Tensor, c: torch.Tensor, row: int) -> torch.Tensor:
    """The logits (B, 28) of one row, computed on only the rows its receptive field reaches:
    a pixel depends on nothing above that band, so the zero padding there changes nothing."""
    reach = sum(k // 2 for k in decoder.kernels)  # rows above a pixel that it can see
    top = max(0, row - reach)
    return decoder.logits(x[:, :, top : row + 1], c[:, :, top : row + 1])[:, 0, -1]


@torch.no_grad()
def sample(model: VLAE, z: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Images (B, 1, 28, 28) drawn pixel by pixel in raster order from p(x|z) (a factorized
    decoder draws every pixel at once). ``generator`` is a CPU generator."""
    c = model.decoder.condition(z)
    x = torch.zeros(z.shape[0], 1, SIDE, SIDE, device=z.device)
    if not model.decoder.kernels:
        probs = torch.sigmoid(model.decoder.logits(x, c))
        return torch.bernoulli(probs.cpu(), generator=generator).to(x)
    for row in range(SIDE):
        for col in range(SIDE):
            p = torch.sigmoid(row_logits(model.decoder, x, c, row)[:, col])  # (B,)
            x[:, 0, row, col] = torch.bernoulli(p.cpu(), generator=generator).to(x)
    return x
