"""A simple neural network module for relational reasoning.

Adam Santoro, David Raposo, David G.T. Barrett, Mateusz Malinowski, Razvan Pascanu,
Peter Battaglia, Timothy Lillicrap, 2017 (NeurIPS 2017), arXiv:1706.01427.

The idea: a Relation Network (RN) is a composite function over a set of "objects" that
considers every pair of them with one shared function and sums the results,

    RN(O) = f_φ( Σ_{i,j} g_θ(o_i, o_j, q) )                              (eq. 1, 2)

so it infers relations by construction, shares the relation function across all N² pairs
(data-efficient), and is invariant to the order of the objects. g_θ and f_φ are MLPs;
conditioning g_θ on the question embedding q makes the relations question-dependent.

Objects from pixels (§3, Sort-of-CLEVR): a CNN of 4 convolutional layers (24 kernels,
stride 2, batch normalisation, ReLU) maps the image to a k × k grid of 24-d feature
cells; each cell, tagged with its (x, y) coordinates, is an object,

    o_c = [CNN(x)_{:, row(c), col(c)} ; x(c) ; y(c)]                     (24 + 2 values)

g_θ's first layer is linear in its input [o_i ; o_j ; q], so it is computed once per object
(W_i o_i and W_j o_j) and broadcast over the N × N grid of pairs; every later layer of
g_θ is applied to each pair (all N² at once as one batched matmul), then summed over i, j.

The baseline CNN+MLP (§4): the same CNN, its feature map flattened and concatenated
with q, an MLP to the answer logits. It sees the same pixels and question, without the
pairwise structure.

Deviations from the paper
-------------------------
- Sizes (README): the quick preset uses 48-pixel images (a 3 × 3 grid, 9 objects,
  81 pairs; the paper's 75 pixels give 5 × 5 = 25 objects) and g_θ / f_φ of width 64
  instead of 256 (g_θ 4 layers, f_φ 3 layers as in the paper). The question is the
  paper's 11-value binary vector, fed to g_θ directly (no question encoder).
- f_φ's dropout (50% in the paper's Sort-of-CLEVR model) is a config option, 0 at quick.
- Coordinates are in [−1, 1] (the paper does not say which scale).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Arch = Literal["rn", "cnn_mlp"]


@dataclass(frozen=True)
class RNConfig:
    image_size: int = 75  # pixels per side
    q_dim: int = 11  # question vector length
    n_answers: int = 10
    conv_channels: int = 24  # kernels per conv layer (the paper's 24)
    conv_layers: int = 4
    d_g: int = 256  # g_θ width (paper: 4 layers of 256)
    g_layers: int = 4
    d_f: int = 256  # f_φ width (paper: 256, 256, then the answer layer)
    f_layers: int = 3
    d_mlp: int = 256  # CNN+MLP head width
    mlp_layers: int = 4  # CNN+MLP head depth (the last is the answer layer)
    dropout: float = 0.0  # before f_φ's (and the MLP head's) last layer

    def __post_init__(self) -> None:
        if min(self.image_size, self.q_dim, self.conv_channels, self.d_g, self.d_f) < 1:
            raise ValueError("image_size, q_dim, conv_channels, d_g and d_f must be >= 1")
        if self.n_answers < 2:
            raise ValueError("n_answers must be >= 2")
        if min(self.conv_layers, self.g_layers, self.f_layers, self.mlp_layers) < 1:
            raise ValueError("conv_layers, g_layers, f_layers and mlp_layers must be >= 1")
        if self.image_size < 2**self.conv_layers:
            raise ValueError(f"image_size must be >= 2**conv_layers = {2**self.conv_layers}")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def k(self) -> int:
        """Side of the CNN's output grid (3 × 3 kernels, stride 2, padding 1)."""
        side = self.image_size
        for _ in range(self.conv_layers):
            side = (side - 1) // 2 + 1
        return side

    @property
    def n_objects(self) -> int:
        return self.k * self.k

    @property
    def d_o(self) -> int:
        """An object's length: the cell's features and its (x, y)."""
        return self.conv_channels + 2


def mlp(dims: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last); dropout before the last."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims[:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(dims[-2], dims[-1]))
    return nn.Sequential(*layers)


class ConvObjects(nn.Module):
    """The paper's CNN: ``conv_layers`` × [conv 3 × 3 stride 2, BatchNorm, ReLU]."""

    def __init__(self, cfg: RNConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for _ in range(cfg.conv_layers):
            layers += [
                nn.Conv2d(c_in, cfg.conv_channels, 3, stride=2, padding=1),
                nn.BatchNorm2d(cfg.conv_channels),
                nn.ReLU(),
            ]
            c_in = cfg.conv_channels
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] → feature map (B, C, k, k)."""
        return self.net(x)


def cell_coordinates(k: int) -> torch.Tensor:
    """(k², 2): (x, y) of each cell in [−1, 1], row-major (cell c = row · k + col)."""
    ticks = torch.linspace(-1.0, 1.0, k) if k > 1 else torch.zeros(1)
    y, x = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], dim=-1)


def objects_from_features(fmap: torch.Tensor) -> torch.Tensor:
    """Feature map (B, C, k, k) → objects (B, k², C + 2): each cell tagged with its (x, y)."""
    B, _, k, _ = fmap.shape
    cells = fmap.flatten(2).transpose(1, 2)  # (B, k², C)
    xy = cell_coordinates(k).to(fmap)  # (k², 2)
    return torch.cat([cells, xy.expand(B, -1, -1)], dim=-1)


class RelationModule(nn.Module):
    """RN(O, q) = f_φ(Σ_{i,j} g_θ(o_i, o_j, q)) over a set of objects O (B, N, d_o)."""

    def __init__(self, cfg: RNConfig) -> None:
        super().__init__()
        d_o, d_g = cfg.d_o, cfg.d_g
        # g_θ's first layer on [o_i ; o_j ; q], split by input block (same function)
        self.g_in_i = nn.Linear(d_o, d_g)
        self.g_in_j = nn.Linear(d_o, d_g, bias=False)
        self.g_in_q = nn.Linear(cfg.q_dim, d_g, bias=False)
        self.g_rest = nn.Sequential(
            *[m for _ in range(cfg.g_layers - 1) for m in (nn.ReLU(), nn.Linear(d_g, d_g))],
            nn.ReLU(),
        )
        self.f_phi = mlp([d_g] + [cfg.d_f] * (cfg.f_layers - 1) + [cfg.n_answers], cfg.dropout)

    def g_theta(self, o_i: torch.Tensor, o_j: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """g_θ(o_i, o_j, q) for any broadcastable o_i (..., d_o), o_j (..., d_o), q (..., q)."""
        return self.g_rest(self.g_in_i(o_i) + self.g_in_j(o_j) + self.g_in_q(q))

    def relations(self, objects: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Σ_{i,j} g_θ(o_i, o_j, q) over all N² ordered pairs (i = j included): (B, d_g)."""
        a = self.g_in_i(objects).unsqueeze(2)  # (B, N, 1, d_g): the o_i part
        b = self.g_in_j(objects).unsqueeze(1)  # (B, 1, N, d_g): the o_j part
        c = self.g_in_q(q)[:, None, None, :]  # (B, 1, 1, d_g)
        pairs = self.g_rest(a + b + c)  # (B, N, N, d_g): g_θ of every pair
        return pairs.sum(dim=(1, 2))

    def forward(self, objects: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """objects (B, N, d_o), q (B, q_dim) → answer logits (B, n_answers)."""
        return self.f_phi(self.relations(objects, q))


class RelationNetwork(nn.Module):
    """CNN → k² objects with coordinates → RN → answer logits."""

    def __init__(self, cfg: RNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.cnn = ConvObjects(cfg)
        self.rn = RelationModule(cfg)

    def objects(self, image: torch.Tensor) -> torch.Tensor:
        return objects_from_features(self.cnn(image))  # (B, k², d_o)

    def forward(self, image: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.rn(self.objects(image), q)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class CNNMLP(nn.Module):
    """The baseline: the same CNN, its feature map flattened and joined with q, an MLP."""

    def __init__(self, cfg: RNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.cnn = ConvObjects(cfg)
        d_in = cfg.conv_channels * cfg.n_objects + cfg.q_dim
        self.head = mlp([d_in] + [cfg.d_mlp] * (cfg.mlp_layers - 1) + [cfg.n_answers], cfg.dropout)

    def forward(self, image: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        features = self.cnn(image).flatten(1)  # (B, C · k²)
        return self.head(torch.cat([features, q], dim=-1))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build(arch: Arch, cfg: RNConfig) -> RelationNetwork | CNNMLP:
    if arch == "rn":
        return RelationNetwork(cfg)
    if arch == "cnn_mlp":
        return CNNMLP(cfg)
    raise ValueError(f"arch must be 'rn' or 'cnn_mlp', got {arch!r}")


def answer_loss(logits: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the answer class, averaged over the batch."""
    return F.cross_entropy(logits, answers)
