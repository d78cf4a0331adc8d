"""Multi-Scale Context Aggregation by Dilated Convolutions.

Fisher Yu and Vladlen Koltun, ICLR 2016, arXiv:1511.07122.

**Idea.** Dense prediction needs context without losing resolution. A stack of 3×3
convolutions whose dilation doubles from layer to layer grows its receptive field
exponentially while every layer keeps the full resolution and covers every input pixel.
The *context module* is such a stack: it takes C score maps and returns C refined score
maps of the same size, so it can be put on top of any dense-prediction front end.

**Dilated convolution** (Sec. 2). For a dilation factor l,

    (F ∗_l k)(p) = Σ_{s + l·t = p} F(s) k(t),

so a 3×3 filter with dilation l reads the pixels p + l·t, t ∈ {−1, 0, 1}²; l = 1 is the
ordinary convolution.

**The context module** (Sec. 3, Table 1): seven 3×3 layers with dilations 1, 1, 2, 4, 8,
16, 1, each followed by the truncation max(·, 0), then a 1×1 layer with no truncation.
Receptive field after each layer: 3, 5, 9, 17, 33, 65, 67, 67. Output channels: C in every
layer for the *basic* module (64 C² weights), 2C, 2C, 4C, 8C, 16C, 32C, 32C, C for the
*large* one. Inputs are padded so that the output has the input's size.

**Identity initialization** (Sec. 3). Standard random initializations "did not readily"
train the module; instead every layer starts by passing its input through:

    basic (Eq. 4):  k^b(t, a) = 1[t = 0] · 1[a = b]
    large (Eq. 5):  k^b(t, a) = C / c_{i+1}   if t = 0 and ⌊aC / c_i⌋ = ⌊bC / c_{i+1}⌋,
                                ε ~ N(0, σ²)  otherwise,  σ ≪ C / c_{i+1},

with a the input map, b the output map, t the filter tap (t = 0 the centre) and c_i the
width of layer i. Eq. 5 copies each input map, scaled by C/c_{i+1}, into a group of output
maps, so the composed module is again the identity on non-negative inputs; the noise breaks
the symmetry between the copies.

**Front end.** The paper's front end is VGG-16 with its last two pooling layers removed and
the following convolutions dilated by 2 and 4; it outputs C class-score maps at 64×64.

Deviations from the paper:
- The front end here is a small CNN (a few 3×3 layers, receptive field 2·depth + 1) that
  maps a 64×64 canvas of MNIST digits to C = 11 class-score maps at full resolution; the
  paper's VGG front end and VOC images need a GPU and ImageNet weights. A small front end
  leaves the context to the module, which is the part under test.
- σ of Eq. 5 is not given in the paper beyond σ ≪ C/c_{i+1}; the large module here uses
  σ = 0.01 · C/c_{i+1} (``noise``). The basic module gets Eq. 4 exactly (no noise).
- Biases start at zero (the paper does not say).
- The "random" initialization of the contrast is He (fan-in) normal with zero biases, the
  standard choice for ReLU networks; the paper does not name the procedures it tried.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

DILATIONS: tuple[int, ...] = (1, 1, 2, 4, 8, 16, 1)  # Table 1, the seven 3×3 layers
TABLE1_RECEPTIVE_FIELD: tuple[int, ...] = (3, 5, 9, 17, 33, 65, 67, 67)  # after each layer
UNDILATED: tuple[int, ...] = (1,) * len(DILATIONS)  # the equal-parameter plain stack


def basic_widths(C: int) -> tuple[int, ...]:
    """Output channels of the eight layers of the basic module (Table 1)."""
    return (C,) * 8


def large_widths(C: int) -> tuple[int, ...]:
    """Output channels of the eight layers of the large module (Table 1)."""
    return (2 * C, 2 * C, 4 * C, 8 * C, 16 * C, 32 * C, 32 * C, C)


class ContextModule(nn.Module):
    """Seven padded 3×3 convolutions with ``dilations`` and ReLU, then a 1×1 convolution.

    ``widths`` are the output channels of all eight layers (last = C); ``dilations`` the
    seven 3×3 layers' factors (``UNDILATED`` gives the plain stack with the same weights).
    """

    def __init__(
        self,
        *,
        C: int,
        widths: Sequence[int] | None = None,
        dilations: Sequence[int] = DILATIONS,
    ) -> None:
        super().__init__()
        widths = tuple(widths) if widths is not None else basic_widths(C)
        if len(widths) != len(dilations) + 1 or widths[-1] != C:
            raise ValueError(
                f"need {len(dilations) + 1} widths ending in C={C}, got {widths} "
                f"for {len(dilations)} dilations"
            )
        if C < 1 or min(widths) < 1 or min(dilations) < 1:
            raise ValueError("C, widths and dilations must be positive")
        self.C = C
        self.widths = widths
        self.dilations = tuple(dilations)
        c_in = (C, *widths[:-1])
        self.layers = nn.ModuleList(
            nn.Conv2d(c_in[i], widths[i], 3, padding=d, dilation=d) for i, d in enumerate(dilations)
        )
        self.final = nn.Conv2d(widths[-2], C, 1)

    def convs(self) -> list[nn.Conv2d]:
        return [*self.layers, self.final]

    def prefix(self, n: int) -> nn.Sequential:
        """The module's first ``n`` layers (sharing their weights), for Table 1's row of
        receptive fields after each layer."""
        if not 1 <= n <= len(self.layers) + 1:
            raise ValueError(f"n must be in [1, {len(self.layers) + 1}], got {n}")
        parts: list[nn.Module] = [m for conv in self.layers[:n] for m in (conv, nn.ReLU())]
        if n > len(self.layers):
            parts.append(self.final)
        return nn.Sequential(*parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) score maps → (B, C, H, W) refined score maps."""
        for conv in self.layers:
            x = torch.relu(conv(x))  # truncation max(·, 0)
        return self.final(x)


@torch.no_grad()
def identity_init_(module: ContextModule, *, noise: float = 0.0, generator=None) -> None:
    """Eq. 5 in every layer: the centre tap is C/c_{i+1} between matching groups of maps,
    every other weight N(0, (noise · C/c_{i+1})²); biases zero. With ``noise`` = 0 and equal
    widths this is Eq. 4 exactly (the basic module); the large module uses ``noise`` > 0."""
    C = module.C
    for conv in module.convs():
        c_out, c_in, kh, kw = conv.weight.shape
        a = torch.arange(c_in)
        b = torch.arange(c_out)
        match = (b[:, None] * C // c_out) == (a[None, :] * C // c_in)  # (c_out, c_in)
        scale = C / c_out
        weight = torch.zeros_like(conv.weight)  # (c_out, c_in, kh, kw)
        if noise > 0:
            weight.normal_(0.0, noise * scale, generator=generator)
        centre = weight[:, :, kh // 2, kw // 2]
        weight[:, :, kh // 2, kw // 2] = torch.where(match, torch.full_like(centre, scale), centre)
        conv.weight.copy_(weight)
        nn.init.zeros_(conv.bias)


@torch.no_grad()
def random_init_(module: nn.Module, *, generator=None) -> None:
    """He (fan-in) normal weights, zero biases: the standard initialization for ReLU nets."""
    for conv in (m for m in module.modules() if isinstance(m, nn.Conv2d)):
        fan_in = conv.weight[0].numel()
        conv.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
        nn.init.zeros_(conv.bias)


class FrontEnd(nn.Module):
    """A small dense-prediction front end: ``depth`` padded 3×3 conv + ReLU layers of
    ``width`` channels, then a 1×1 layer to C class scores (receptive field 2·depth + 1)."""

    def __init__(self, *, C: int, width: int = 16, depth: int = 2, in_channels: int = 1) -> None:
        super().__init__()
        if min(C, width, depth, in_channels) < 1:
            raise ValueError("C, width, depth and in_channels must be positive")
        chans = (in_channels, *(width,) * depth)
        self.body = nn.Sequential(
            *(
                layer
                for i in range(depth)
                for layer in (nn.Conv2d(chans[i], chans[i + 1], 3, padding=1), nn.ReLU())
            )
        )
        self.head = nn.Conv2d(width, C, 1)
        self.receptive_field = 2 * depth + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, H, W) image → (B, C, H, W) class scores."""
        return self.head(self.body(x))


def count_weights(module: nn.Module) -> int:
    """Filter weights only (the paper's 64 C² for the basic module counts no biases)."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def input_gradient(net: nn.Module, *, channels: int, size: int) -> torch.Tensor:
    """|∂ Σ_c y_c(centre) / ∂ x| summed over the input channels: a (size, size) map of how
    much the centre output pixel depends on each input pixel (float64).

    The caller gives ``net`` positive weights (:func:`positive_weights_`); with a positive
    input every pre-activation is then positive, no ReLU is cut off and no two paths cancel,
    so the non-zero support is the whole receptive field and nothing else."""
    x = torch.rand(1, channels, size, size, dtype=torch.float64).add_(0.5).requires_grad_()
    y = net.double()(x)  # (1, C, size, size)
    y[0, :, size // 2, size // 2].sum().backward()
    return x.grad[0].abs().sum(dim=0)  # (size, size)


def receptive_field(support: torch.Tensor) -> tuple[int, int]:
    """Height and width of the bounding box of a support mask (e.g. ``input_gradient > 0``)."""
    rows = torch.nonzero(support.any(dim=1)).flatten()
    cols = torch.nonzero(support.any(dim=0)).flatten()
    if rows.numel() == 0:
        return 0, 0
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


@torch.no_grad()
def positive_weights_(module: nn.Module, *, generator=None) -> nn.Module:
    """Weights uniform in [0.5, 1.5) / fan-in and zero biases (for :func:`input_gradient`)."""
    for conv in (m for m in module.modules() if isinstance(m, nn.Conv2d)):
        fan_in = conv.weight[0].numel()
        conv.weight.uniform_(0.5, 1.5, generator=generator).div_(fan_in)
        nn.init.zeros_(conv.bias)
    return module
