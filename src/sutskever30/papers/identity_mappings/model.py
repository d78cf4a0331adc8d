"""Identity Mappings in Deep Residual Networks.

Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun, 2016. arXiv:1603.05027 (ECCV 2016).

The idea: a Residual Unit computes

    y_l = h(x_l) + F(x_l, W_l),    x_{l+1} = f(y_l)                        (Eq. 1, 2)

If both the shortcut h and the after-addition activation f are identities, any deeper unit
is the shallower one plus a sum of residuals, and the gradient splits into a term that
reaches x_l untouched and one that passes through the weight layers:

    x_L = x_l + Σ_{i=l}^{L-1} F(x_i, W_i)                                  (Eq. 4)
    ∂E/∂x_l = ∂E/∂x_L · (1 + ∂/∂x_l Σ_{i=l}^{L-1} F(x_i, W_i))             (Eq. 5)

With a scaled shortcut h(x_l) = λ_l x_l the first term becomes ∏ λ_i (Eq. 6–8): with
λ = 0.5 over 100 units it is 0.5^100, and the signal must cross the weight layers instead.
So the shortcut should be a clean identity (Fig. 2: scaling, gating, 1×1 conv and dropout
shortcuts all train worse), and f should be an identity too, which puts BN and ReLU *before*
the weights of the residual branch: the full pre-activation unit (Fig. 4e)

    x_{l+1} = x_l + W_2 · ReLU(BN(W_1 · ReLU(BN(x_l)))).

Unit orderings (Fig. 4), with W a 3×3 conv:

    original          F = BN W ReLU BN W x,        x_{l+1} = ReLU(h(x) + F)   (a)
    bn_after_add      F = W ReLU BN W x,           x_{l+1} = ReLU(BN(h(x) + F))  (b)
    relu_before_add   F = ReLU BN W ReLU BN W x,   x_{l+1} = h(x) + F         (c)
    relu_preact       F = BN W ReLU BN W ReLU x,   x_{l+1} = h(x) + F         (d)
    full_preact       F = W ReLU BN W ReLU BN x,   x_{l+1} = h(x) + F         (e)

Shortcuts (Fig. 2), g(x) = σ(W_g x + b_g) a 1×1 conv gate:

    identity          h(x) = x                                                (a)
    scaling           h(x) = λ x, F scaled by μ (Table 1: λ = 0.5, μ = 1 or 0.5)  (b)
    exclusive_gating  y = (1 − g(x)) · x + g(x) · F(x)                        (c)
    shortcut_gating   y = (1 − g(x)) · x + F(x)                               (d)
    conv1x1           h(x) = W_s x, a 1×1 conv                                (e)
    dropout           h(x) = dropout(x, p = 0.5)                              (f)

CIFAR networks (Sec. 4, as in ResNet): a 3×3 conv, three stages of n units on 32/16/8 maps
with 16/32/64 filters, global average pooling, a 10-way FC: 6n + 2 weighted layers. Where a
stage changes width the identity shortcut subsamples by 2 and zero-pads the new channels.
In the pre-activation nets the first unit takes the activation of conv1 before splitting
into its two paths, and an extra BN-ReLU follows the last addition (Sec. 4.1).

Deviations from the paper:
- Where a stage starts, every shortcut variant acts on the zero-padded, subsampled input
  (option A of ResNet): the paper's code projects there with a 1×1 conv in some variants.
- The extra final BN-ReLU and the shared first activation are applied to both
  pre-activation orderings (d, e); the paper describes them for the full pre-activation net.
- Bottleneck units (ResNet-164) are implemented for the full preset only (three convs
  1×1, 3×3, 1×1 with 4× expansion), in the same orderings.
- Convolutions use He (fan-in) normal initialization; the FC layer keeps PyTorch's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

Ordering = Literal["original", "bn_after_add", "relu_before_add", "relu_preact", "full_preact"]
ShortcutKind = Literal[
    "identity", "scaling", "exclusive_gating", "shortcut_gating", "conv1x1", "dropout"
]
ORDERINGS: tuple[str, ...] = get_args(Ordering)
SHORTCUTS: tuple[str, ...] = get_args(ShortcutKind)
PREACT: tuple[str, ...] = ("relu_preact", "full_preact")  # f = identity, activation first


@dataclass(frozen=True)
class UnitConfig:
    """How one Residual Unit is wired: its ordering (Fig. 4) and shortcut (Fig. 2)."""

    ordering: Ordering = "full_preact"
    shortcut: ShortcutKind = "identity"
    shortcut_scale: float = 0.5  # λ of the scaling shortcut
    residual_scale: float = 1.0  # μ: F scaled by it under the scaling shortcut
    gate_bias: float = -6.0  # b_g, the gates' initial bias (Table 1: 0, −6, −7)
    dropout: float = 0.5  # p of the dropout shortcut
    bottleneck: bool = False

    def __post_init__(self) -> None:
        if self.ordering not in ORDERINGS:
            raise ValueError(f"ordering must be one of {ORDERINGS}, got {self.ordering!r}")
        if self.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}")
        if not 0 < self.dropout < 1:
            raise ValueError(f"dropout must be in (0, 1), got {self.dropout}")


class ResidualUnit(nn.Module):
    """x_{l+1} = f(h(x_l) + F(x_l)) with the ordering and shortcut of ``unit`` (Eq. 1, 2).

    ``preactivated``: the input is already the output of the unit's leading activation
    (the first unit of a pre-activation net, whose activation follows conv1 and feeds both
    paths), so the residual branch starts at its first weight layer.
    """

    def __init__(
        self,
        *,
        c_in: int,
        c_out: int,
        stride: int = 1,
        unit: UnitConfig = UnitConfig(),
        preactivated: bool = False,
    ) -> None:
        super().__init__()
        self.unit = unit
        self.stride = stride
        self.pad = c_out - c_in
        self.preactivated = preactivated
        order = unit.ordering
        mid = c_out // 4 if unit.bottleneck else c_out
        shapes = (  # (in, out, kernel, stride) of each weight layer
            [(c_in, mid, 1, 1), (mid, mid, 3, stride), (mid, c_out, 1, 1)]
            if unit.bottleneck
            else [(c_in, c_out, 3, stride), (c_out, c_out, 3, 1)]
        )
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, stride=s, padding=k // 2, bias=False) for i, o, k, s in shapes
        )
        # One BN per weight layer, placed by the ordering: before each weight, on its input
        # (e); after each weight (a, c, d); after all but the last (b).
        if order == "full_preact":
            bn_channels = [i for i, _, _, _ in shapes]
        else:
            n_bn = len(shapes) - 1 if order == "bn_after_add" else len(shapes)
            bn_channels = [o for _, o, _, _ in shapes[:n_bn]]
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in bn_channels)
        self.bn_out = nn.BatchNorm2d(c_out) if order == "bn_after_add" else None
        self.gate: nn.Conv2d | None = None
        if unit.shortcut in ("exclusive_gating", "shortcut_gating"):
            self.gate = nn.Conv2d(c_in, c_out, 1, stride=stride)  # W_g, b_g
            nn.init.constant_(self.gate.bias, unit.gate_bias)
        self.proj = (
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            if unit.shortcut == "conv1x1"
            else None
        )

    # -- the two paths -------------------------------------------------------------------
    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """F(x_l, W_l), in the order of Fig. 4."""
        order, convs, bns = self.unit.ordering, self.convs, self.bns
        last = len(convs) - 1
        h = x
        for i, conv in enumerate(convs):
            if order == "full_preact":
                if i > 0 or not self.preactivated:
                    h = F.relu(bns[i](h))
                h = conv(h)
            elif order == "relu_preact":
                if i > 0 or not self.preactivated:
                    h = F.relu(h)
                h = bns[i](conv(h))
            else:  # post-activation: weight → BN → ReLU, the last ReLU placed by the ordering
                h = conv(h)
                if i < len(bns):
                    h = bns[i](h)
                if i < last or order == "relu_before_add":
                    h = F.relu(h)
        return h

    def identity(self, x: torch.Tensor) -> torch.Tensor:
        """x, subsampled and zero-padded where the unit changes size (option A)."""
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/s, W/s)
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))  # (B, C_out, H/s, W/s)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.unit
        r = self.residual(x)  # F(x_l)
        s = self.identity(x)
        if u.shortcut == "scaling":
            y = u.shortcut_scale * s + u.residual_scale * r  # Fig. 2b
        elif u.shortcut in ("exclusive_gating", "shortcut_gating"):
            g = torch.sigmoid(self.gate(x))  # g(x) = σ(W_g x + b_g)
            y = (1 - g) * s + (g * r if u.shortcut == "exclusive_gating" else r)  # Fig. 2c, d
        elif u.shortcut == "conv1x1":
            y = self.proj(x) + r  # Fig. 2e
        elif u.shortcut == "dropout":
            y = F.dropout(s, p=u.dropout, training=self.training) + r  # Fig. 2f
        else:
            y = s + r  # Eq. (1) with h = identity
        if u.ordering == "bn_after_add":
            return F.relu(self.bn_out(y))
        if u.ordering == "original":
            return F.relu(y)
        return y  # f = identity (c, d, e)


@dataclass(frozen=True)
class NetConfig:
    """A CIFAR ResNet of ``depth`` weighted layers: conv1, ``stages`` stages of n units
    (2 or 3 weight layers each: 6n+2 or 9n+2 with three stages), the FC; ``width`` filters in
    the first stage, doubling per stage (×4 at the output of bottleneck units)."""

    depth: int = 110
    unit: UnitConfig = UnitConfig()
    width: int = 16
    num_classes: int = 10
    stages: int = 3

    def __post_init__(self) -> None:
        per_unit = 3 if self.unit.bottleneck else 2
        if self.depth < 2 + self.stages * per_unit or (self.depth - 2) % (self.stages * per_unit):
            kind = "9n+2 (bottleneck)" if self.unit.bottleneck else "6n+2"
            raise ValueError(f"depth must be {kind} for {self.stages} stages, got {self.depth}")
        if self.width < 1 or self.stages < 1 or self.num_classes < 2:
            raise ValueError("width and stages must be ≥ 1, num_classes ≥ 2")

    @property
    def units_per_stage(self) -> int:
        return (self.depth - 2) // (self.stages * (3 if self.unit.bottleneck else 2))


class CifarResNet(nn.Module):
    """conv1 → stages of Residual Units → (BN-ReLU for pre-activation) → pool → FC."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        w, preact = cfg.width, cfg.unit.ordering in PREACT
        # conv1's activation: for post-activation nets conv-BN-ReLU as in ResNet; for
        # pre-activation nets it is the first unit's leading activation, before the split.
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()
        )
        expansion = 4 if cfg.unit.bottleneck else 1
        units: list[ResidualUnit] = []
        c_in = w
        for stage in range(cfg.stages):
            c_out = w * 2**stage * expansion
            for i in range(cfg.units_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                first = stage == 0 and i == 0
                units.append(
                    ResidualUnit(
                        c_in=c_in,
                        c_out=c_out,
                        stride=stride,
                        unit=cfg.unit,
                        preactivated=preact and first,
                    )
                )
                c_in = c_out
        self.units = nn.Sequential(*units)
        self.final = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU()) if preact else nn.Identity()
        self.fc = nn.Linear(c_in, cfg.num_classes)
        _init_weights(self)

    def trace(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the unit inputs/outputs x_0 … x_L (x_0: conv1's activation)."""
        xs = [self.stem(x)]  # x_0: (B, w, 32, 32)
        for unit in self.units:
            xs.append(unit(xs[-1]))
        h = self.final(xs[-1]).mean(dim=(2, 3))  # global average pool: (B, C)
        return self.fc(h), xs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.final(self.units(self.stem(x)))
        return self.fc(h.mean(dim=(2, 3)))


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.bias is None:  # weight layers; gates keep default
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# The units the paper trains, by name: Fig. 4's orderings with identity shortcuts, and
# Fig. 2's shortcuts on the original ordering (as in Table 1). Gates start at b_g = −6,
# the better of the paper's initializations for both gating variants.
VARIANTS: dict[str, UnitConfig] = {
    **{o: UnitConfig(ordering=o) for o in ORDERINGS},  # type: ignore[arg-type]
    "scaling": UnitConfig(ordering="original", shortcut="scaling"),
    "scaling_both": UnitConfig(ordering="original", shortcut="scaling", residual_scale=0.5),
    "exclusive_gating": UnitConfig(ordering="original", shortcut="exclusive_gating"),
    "shortcut_gating": UnitConfig(ordering="original", shortcut="shortcut_gating"),
    "conv1x1": UnitConfig(ordering="original", shortcut="conv1x1"),
    "dropout": UnitConfig(ordering="original", shortcut="dropout"),
    # λ = 0.5 on the full pre-activation unit: Eq. (6)'s setting, f = identity.
    "full_preact_scaling": UnitConfig(ordering="full_preact", shortcut="scaling"),
}
