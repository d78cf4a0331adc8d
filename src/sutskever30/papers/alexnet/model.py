"""ImageNet Classification with Deep Convolutional Neural Networks (AlexNet).

Krizhevsky, Sutskever, Hinton, NeurIPS 2012
(https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks).

**Idea.** A large, deep convolutional network (5 convolutional + 3 fully-connected layers,
60M parameters, 650k neurons) trained on 1.2M ImageNet images with plain SGD is made
practical by non-saturating neurons (ReLU, Sec. 3.1), training split over two GPUs
(Sec. 3.2), local response normalization (Sec. 3.3) and overlapping pooling (Sec. 3.4), and
kept from overfitting by label-preserving augmentation and dropout (Sec. 4).

**Architecture** (Sec. 3.5, Fig. 2). Two towers, one per GPU, each with half the kernels.
The kernels of conv2, conv4 and conv5 see only the maps of their own tower (here: grouped
convolutions with ``groups=2``); conv3 and the fully-connected layers see both towers.

    224×224×3 → conv1 96@11×11/4 → ReLU → LRN → maxpool 3/2    → 27×27×96
              → conv2 256@5×5 (2 groups) → ReLU → LRN → maxpool → 13×13×256
              → conv3 384@3×3 → conv4 384@3×3 (2 groups) → conv5 256@3×3 (2 groups)
              → maxpool 3/2 → 6×6×256 = 9216 → fc6 4096 → fc7 4096 → fc8 1000 → softmax
    ReLU after every conv and fc layer but fc8; dropout 0.5 on the outputs of fc6 and fc7.

**Local response normalization** (Sec. 3.3), over n adjacent kernel maps at the same place:

    b^i_{x,y} = a^i_{x,y} / (k + α Σ_{j=max(0, i−n/2)}^{min(N−1, i+n/2)} (a^j_{x,y})²)^β,
    k = 2, n = 5, α = 1e-4, β = 0.75.

``torch.nn.LocalResponseNorm`` divides α by n (it averages the squares, the paper sums them):
the paper's layer is ``nn.LocalResponseNorm(size=n, alpha=n·α, beta=β, k=k)`` (tested).

**PCA colour augmentation** (Sec. 4.1). With p_i, λ_i the eigenvectors and eigenvalues of the
3×3 covariance of the training set's RGB pixel values, every pixel of an image gets
[p1 p2 p3][α1λ1 α2λ2 α3λ3]ᵀ added, α_i ~ N(0, 0.1) drawn once per image and presentation.

**Test time** (Sec. 4.1): the softmax outputs on ten 224×224 patches (four corners, centre
and their horizontal reflections) are averaged.

**Initialization** (Sec. 5): weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the
hidden fully-connected layers (fc6, fc7), 0 elsewhere.

Deviations from the paper:
- The paper's 224×224 input does not give conv1's 55×55 maps with an 11×11 kernel at stride
  4 ((224 − 11)/4 + 1 = 54.25); we pad conv1 by 2 (equivalently, the 227×227 input of the
  original cuda-convnet code). Every later size and the parameter count, 60,965,224, are
  the paper's.
- The two GPUs are one device here: the towers are convolution groups and per-tower LRN,
  which compute exactly what the split network computes.
- Dropout is PyTorch's inverted dropout (outputs ×2 while training) instead of multiplying
  the outputs by 0.5 at test time; the two agree in expectation and at test time.
- The CIFAR-sized variant (``cifar_config``) and the Fig. 1 four-layer network are our
  scaled-down stand-ins for the experiments; their sizes and initialization are stated in
  the README. The paper does not give the Fig. 1 network: ours takes the layer pattern and
  the per-layer initialization (``FIG1_INIT_STD``) of cuda-convnet's CIFAR-10 layer file
  with four weight layers, without its response normalization. The CIFAR-sized variant is
  initialized He normal with zero biases: its layers are 4–40× narrower than the paper's,
  and N(0, 0.01) through eight of them shrinks the input's signal ~10⁶-fold, while bias 1
  on top of a fan-in-scaled init makes the activations grow layer by layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

TOWERS = 2  # Sec. 3.2: the network is split over two GPUs
LRN_K, LRN_N, LRN_ALPHA, LRN_BETA = 2.0, 5, 1e-4, 0.75  # Sec. 3.3
PCA_SIGMA = 0.1  # Sec. 4.1: α_i ~ N(0, 0.1)
INIT_STD = 0.01  # Sec. 5
ONE_BIAS_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")  # Sec. 5: biases set to 1
GROUPED_LAYERS = ("conv2", "conv4", "conv5")  # Sec. 3.5: kernels see their own tower only


# -- local response normalization (Sec. 3.3) ------------------------------------------------


def local_response_norm(
    a: torch.Tensor,
    *,
    n: int = LRN_N,
    k: float = LRN_K,
    alpha: float = LRN_ALPHA,
    beta: float = LRN_BETA,
    groups: int = 1,
) -> torch.Tensor:
    """The paper's LRN of ``a`` (B, N, H, W): each map divided by (k + α · the sum of the
    squares of the n maps centred on it)^β, the sum clipped at the edges of its group of
    N/groups adjacent maps (one group per tower: the towers never share a neighbourhood)."""
    if n < 1 or n % 2 == 0:
        raise ValueError(f"n must be a positive odd number (the window i−n/2…i+n/2), got {n}")
    b, c, h, w = a.shape
    half = n // 2
    sq = a.pow(2).reshape(b, groups, c // groups, h, w)  # (B, G, N/G, H, W)
    padded = F.pad(sq, (0, 0, 0, 0, half, half))  # zeros beyond the group's edge maps
    window = padded.unfold(2, n, 1).sum(-1)  # (B, G, N/G, H, W): Σ over j = i−n/2 … i+n/2
    return a / (k + alpha * window.reshape(b, c, h, w)).pow(beta)


class LocalResponseNorm(nn.Module):
    """:func:`local_response_norm` as a layer."""

    def __init__(
        self,
        *,
        n: int = LRN_N,
        k: float = LRN_K,
        alpha: float = LRN_ALPHA,
        beta: float = LRN_BETA,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.n, self.k, self.alpha, self.beta, self.groups = n, k, alpha, beta, groups

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return local_response_norm(
            a, n=self.n, k=self.k, alpha=self.alpha, beta=self.beta, groups=self.groups
        )

    def extra_repr(self) -> str:
        return f"n={self.n}, k={self.k}, alpha={self.alpha}, beta={self.beta}, groups={self.groups}"


def torch_lrn_equivalent(
    *, n: int = LRN_N, k: float = LRN_K, alpha: float = LRN_ALPHA, beta: float = LRN_BETA
) -> nn.LocalResponseNorm:
    """The ``nn.LocalResponseNorm`` that computes the paper's LRN (one group): PyTorch
    averages the n squares (α/n), the paper sums them (α)."""
    return nn.LocalResponseNorm(size=n, alpha=n * alpha, beta=beta, k=k)


# -- the network (Sec. 3.5) ------------------------------------------------------------------


@dataclass(frozen=True)
class AlexNetConfig:
    """The paper's network by default; ``cifar_config`` gives the CIFAR-sized variant."""

    num_classes: int = 1000
    image_size: int = 224
    in_channels: int = 3
    channels: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256)  # conv1 … conv5
    kernels: tuple[int, int, int, int, int] = (11, 5, 3, 3, 3)
    strides: tuple[int, int, int, int, int] = (4, 1, 1, 1, 1)
    paddings: tuple[int, int, int, int, int] = (2, 2, 1, 1, 1)
    hidden: int = 4096  # fc6, fc7
    towers: int = TOWERS
    activation: str = "relu"  # or "tanh" (Sec. 3.1's saturating alternative)
    lrn: bool = True
    overlapping_pool: bool = True  # max-pool 3/2 (Sec. 3.4); False: 2/2, non-overlapping
    dropout: float = 0.5  # on fc6's and fc7's outputs (Sec. 4.2); 0 disables it
    init_std: float = INIT_STD  # weights N(0, init_std); 0 → He normal, std √(2/fan-in)

    def __post_init__(self) -> None:
        if self.num_classes < 2 or self.hidden < 1 or self.in_channels < 1:
            raise ValueError("need num_classes ≥ 2, hidden ≥ 1 and in_channels ≥ 1")
        if len(self.channels) != 5 or len(self.kernels) != 5 or len(self.strides) != 5:
            raise ValueError("channels, kernels and strides name the five conv layers")
        if len(self.paddings) != 5 or min(self.paddings) < 0:
            raise ValueError("paddings: five values ≥ 0")
        if self.towers < 1 or any(c % self.towers for c in self.channels):
            raise ValueError(f"every conv layer's channels must split into {self.towers} towers")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.init_std < 0:
            raise ValueError("init_std must be ≥ 0 (0: He normal)")
        if self.feature_size < 1:
            raise ValueError(f"image_size {self.image_size} leaves no map after pool5")

    @property
    def pool(self) -> tuple[int, int]:
        """(window z, stride s) of the max-pooling layers."""
        return (3, 2) if self.overlapping_pool else (2, 2)

    @property
    def map_sizes(self) -> tuple[int, ...]:
        """Side of the maps after conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5."""
        z, s = self.pool

        def conv(size: int, i: int) -> int:
            return (size + 2 * self.paddings[i] - self.kernels[i]) // self.strides[i] + 1

        def pool(size: int) -> int:
            return (size - z) // s + 1 if size >= z else 0

        c1 = conv(self.image_size, 0)
        p1 = pool(c1)
        c2 = conv(p1, 1)
        p2 = pool(c2)
        c3 = conv(p2, 2)
        c4 = conv(c3, 3)
        c5 = conv(c4, 4)
        return (c1, p1, c2, p2, c3, c4, c5, pool(c5))

    @property
    def feature_size(self) -> int:
        """Side of pool5's maps (6 for the paper's network)."""
        return min(self.map_sizes)


def cifar_config(**overrides) -> AlexNetConfig:
    """The CIFAR-sized variant: the same layer pattern on 27×27 crops of 32×32 images.

    27 is chosen so that every pooled map is odd-sized (27 → 13 → 5 → 2 with 3/2 pooling),
    where overlapping (3/2) and non-overlapping (2/2) pooling give maps of equal size, as
    in the paper's comparison (Sec. 3.4)."""
    base = dict(
        num_classes=10,
        image_size=27,
        channels=(32, 64, 96, 96, 64),
        kernels=(5, 5, 3, 3, 3),
        strides=(1, 1, 1, 1, 1),
        paddings=(2, 1, 1, 1, 1),
        hidden=1024,
        init_std=0.0,
    )
    return AlexNetConfig(**{**base, **overrides})


ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh}


class AlexNet(nn.Module):
    """The two-tower network of Fig. 2 (towers as convolution groups)."""

    def __init__(self, *, config: AlexNetConfig = AlexNetConfig()) -> None:
        super().__init__()
        self.config = cfg = config
        c1, c2, c3, c4, c5 = cfg.channels
        k, s, p, t = cfg.kernels, cfg.strides, cfg.paddings, cfg.towers
        self.conv1 = nn.Conv2d(cfg.in_channels, c1, k[0], stride=s[0], padding=p[0])
        self.conv2 = nn.Conv2d(c1, c2, k[1], stride=s[1], padding=p[1], groups=t)
        self.conv3 = nn.Conv2d(c2, c3, k[2], stride=s[2], padding=p[2])
        self.conv4 = nn.Conv2d(c3, c4, k[3], stride=s[3], padding=p[3], groups=t)
        self.conv5 = nn.Conv2d(c4, c5, k[4], stride=s[4], padding=p[4], groups=t)
        self.norm = LocalResponseNorm(groups=t) if cfg.lrn else nn.Identity()
        self.pool = nn.MaxPool2d(*cfg.pool)
        self.fc6 = nn.Linear(c5 * cfg.feature_size**2, cfg.hidden)
        self.fc7 = nn.Linear(cfg.hidden, cfg.hidden)
        self.fc8 = nn.Linear(cfg.hidden, cfg.num_classes)
        self.drop = nn.Dropout(cfg.dropout)
        self.act = ACTIVATIONS[cfg.activation]
        init_paper_(self, std=cfg.init_std)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → pool5's maps (B, c5, f, f); f = 6 for the paper's network."""
        x = self.pool(self.norm(self.act(self.conv1(x))))  # (B, 96, 27, 27)
        x = self.pool(self.norm(self.act(self.conv2(x))))  # (B, 256, 13, 13)
        x = self.act(self.conv3(x))  # (B, 384, 13, 13)
        x = self.act(self.conv4(x))  # (B, 384, 13, 13)
        return self.pool(self.act(self.conv5(x)))  # (B, 256, 6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(1)  # (B, 9216)
        h = self.drop(self.act(self.fc6(h)))  # (B, 4096)
        h = self.drop(self.act(self.fc7(h)))  # (B, 4096)
        return self.fc8(h)  # (B, classes): logits of the softmax


@torch.no_grad()
def init_paper_(model: nn.Module, *, std: float = INIT_STD) -> None:
    """Sec. 5: every conv/fc weight ~ N(0, std), biases 1 in conv2, conv4, conv5, fc6 and
    fc7 and 0 in the other layers. ``std`` 0: He normal weights (std √(2/fan-in)) and all
    biases 0, for the narrow CIFAR-sized nets (README: Deviations)."""
    for name, module in model.named_children():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        if std > 0:
            module.weight.normal_(0.0, std)
            module.bias.fill_(1.0 if name in ONE_BIAS_LAYERS else 0.0)
        else:
            module.weight.normal_(0.0, math.sqrt(2.0 / module.weight[0].numel()))
            module.bias.zero_()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_neurons(config: AlexNetConfig) -> int:
    """Output units of conv1 … conv5 and fc6 … fc8 (the paper's "650,000 neurons")."""
    c1, _, c2, _, c3, c4, c5, _ = config.map_sizes
    maps = zip((c1, c2, c3, c4, c5), config.channels, strict=True)
    return sum(ch * side**2 for side, ch in maps) + 2 * config.hidden + config.num_classes


# -- the Fig. 1 network ---------------------------------------------------------------------

# σ of the N(0, σ²) weights of conv1, conv2, conv3 and the softmax layer in cuda-convnet's
# CIFAR-10 layer file with four weight layers (layers-18pct.cfg, ``initW``). Its inputs are
# 0–255 pixels minus the mean image; ours are [0, 1] pixels minus the mean, so conv1's σ of
# 1e-4 becomes 255 × 1e-4 (the same first-layer responses at initialization).
FIG1_INIT_STD = (255 * 1e-4, 0.01, 0.01, 0.01)


@dataclass(frozen=True)
class Fig1Config:
    """Fig. 1's "four-layer convolutional neural network" on CIFAR-10: three 5×5 conv
    layers and a softmax layer, pooled as in the cuda-convnet CIFAR-10 layer files (max,
    average, average; 3×3 windows, stride 2). The same network with tanh is the dashed
    curve. No regularization of any kind (the figure's caption)."""

    widths: tuple[int, int, int] = (32, 32, 64)
    activation: str = "relu"
    num_classes: int = 10
    init_std: tuple[float, float, float, float] = FIG1_INIT_STD  # conv1, conv2, conv3, fc

    def __post_init__(self) -> None:
        if len(self.widths) != 3 or min(self.widths) < 1:
            raise ValueError("widths: three positive conv widths")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")
        if len(self.init_std) != 4 or min(self.init_std) <= 0:
            raise ValueError("init_std: four positive standard deviations")


class Fig1Net(nn.Module):
    """32×32×3 → conv 5×5 → pool 16×16 → conv 5×5 → pool 8×8 → conv 5×5 → pool 4×4 → fc.

    Weights N(0, σ²) with each layer's σ from ``config.init_std`` (by default cuda-convnet's,
    ``FIG1_INIT_STD``), biases 0, the same for both activations: the paper does not state
    Fig. 1's."""

    def __init__(self, *, config: Fig1Config = Fig1Config()) -> None:
        super().__init__()
        self.config = config
        w1, w2, w3 = config.widths
        self.conv1 = nn.Conv2d(3, w1, 5, padding=2)
        self.conv2 = nn.Conv2d(w1, w2, 5, padding=2)
        self.conv3 = nn.Conv2d(w2, w3, 5, padding=2)
        self.fc = nn.Linear(w3 * 4 * 4, config.num_classes)
        self.act = ACTIVATIONS[config.activation]
        with torch.no_grad():
            layers = (self.conv1, self.conv2, self.conv3, self.fc)
            for layer, std in zip(layers, config.init_std, strict=True):
                layer.weight.normal_(0.0, std)
                layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.act(self.conv1(x)), 3, 2, ceil_mode=True)  # (B, w1, 16, 16)
        x = F.avg_pool2d(self.act(self.conv2(x)), 3, 2, ceil_mode=True)  # (B, w2, 8, 8)
        x = F.avg_pool2d(self.act(self.conv3(x)), 3, 2, ceil_mode=True)  # (B, w3, 4, 4)
        return self.fc(x.flatten(1))  # (B, classes)


# -- augmentation and test-time averaging (Sec. 4.1) ----------------------------------------


def rgb_eigen(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues λ (3,) and eigenvectors p (3, 3), one per column, of the covariance of
    RGB pixel values ``pixels`` (P, 3), largest eigenvalue first."""
    cov = torch.cov(pixels.T.double())  # (3, 3)
    eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
    return eigvals.flip(0).float(), eigvecs.flip(1).float()


def pca_jitter(
    images: torch.Tensor, eigvals: torch.Tensor, eigvecs: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """Add [p1 p2 p3][α1λ1 α2λ2 α3λ3]ᵀ to every pixel of each image. images (B, 3, H, W),
    alpha (B, 3): one draw per image, shared by all its pixels."""
    shift = (alpha * eigvals) @ eigvecs.T  # (B, 3): Σ_i α_i λ_i p_i
    return images + shift[:, :, None, None].to(images.dtype)


def random_crop_flip(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """A random ``size``×``size`` patch of each image, horizontally reflected with probability
    1/2 (Sec. 4.1's translations and reflections). images (B, C, H, W)."""
    b, c, h, w = images.shape
    dy = torch.randint(0, h - size + 1, (b,), generator=gen)
    dx = torch.randint(0, w - size + 1, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(size))[:, None, :, None]  # (B, 1, size, 1)
    cols = (dx[:, None] + torch.arange(size))[:, None, None, :]  # (B, 1, 1, size)
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(b)[:, None, None, None]
    chans = torch.arange(c)[None, :, None, None]
    dev = images.device
    return images[batch.to(dev), chans.to(dev), rows.to(dev), cols.to(dev)]


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    h, w = images.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


def ten_crops(images: torch.Tensor, size: int) -> torch.Tensor:
    """(10, B, C, size, size): the top-left, top-right, bottom-left, bottom-right and centre
    patches of (B, C, H, W) images, then the same five reflected horizontally."""
    h, w = images.shape[-2:]
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size)]
    five = [images[..., y : y + size, x : x + size] for y, x in corners]
    five.append(center_crop(images, size))
    return torch.stack(five + [p.flip(-1) for p in five])


@torch.no_grad()
def ten_crop_probabilities(model: nn.Module, images: torch.Tensor, size: int) -> torch.Tensor:
    """The softmax outputs on the ten patches, averaged (B, classes)."""
    crops = ten_crops(images, size)  # (10, B, C, s, s)
    logits = model(crops.flatten(0, 1))  # (10·B, classes)
    return logits.softmax(-1).view(10, images.shape[0], -1).mean(0)
