"""Deep Residual Learning for Image Recognition.

Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun, 2015. arXiv:1512.03385.

The idea: instead of asking a stack of layers to fit a mapping H(x) directly, let it fit the
residual F(x) = H(x) − x and add the input back through an identity shortcut,

    y = F(x, {W_i}) + x                      (Eq. 1)
    y = F(x, {W_i}) + W_s x                  (Eq. 2, projection when dimensions change)

so that a deeper network can always fall back to the shallower one by driving F to zero.
Without shortcuts ("plain" nets) deeper networks have *higher training error*: the
degradation problem (Fig. 1, Fig. 6).

CIFAR-10 networks (Sec. 4.2): a 3×3 conv, then 3 stages of n basic blocks (2 conv layers each)
on 32×32, 16×16, 8×8 maps with 16, 32, 64 filters, global average pooling, a 10-way FC:
6n + 2 weighted layers. Shortcuts are identities everywhere; where the stage changes width
the shortcut subsamples by 2 and zero-pads the new channels (option A), adding no
parameters. ImageNet networks (Table 1) use basic blocks (18, 34 layers) or bottleneck
blocks (1×1, 3×3, 1×1; 50, 101, 152 layers) with projection shortcuts (option B: only where
dimensions change; option C: everywhere).

Deviations from the paper:
- Convolution weights use He initialization in its forward (fan-in) form, Eq. (10) of
  He et al. 2015 "Delving deep"; the FC layer keeps PyTorch's default initialization (the
  paper does not specify it).
- The ImageNet stride-2 sits on the 3×3 conv of a bottleneck ("ResNet v1.5"), where the
  original paper puts it on the first 1×1 conv; parameter counts are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Shortcut = Literal["A", "B", "C"]


@dataclass(frozen=True)
class ResNetConfig:
    depth: int = 20  # 6n + 2 for CIFAR
    residual: bool = True  # False → the plain counterpart (no shortcuts)
    shortcut: Shortcut = "A"
    width: int = 16  # filters of the first stage; 16 in the paper
    num_classes: int = 10

    def __post_init__(self) -> None:
        if self.depth < 8 or (self.depth - 2) % 6:
            raise ValueError(
                f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110, ...), got {self.depth}"
            )


class BasicBlock(nn.Module):
    """Two 3×3 convs: F(x) = BN(W2 ReLU(BN(W1 x))); output ReLU(F(x) + shortcut(x))."""

    def __init__(
        self, *, c_in: int, c_out: int, stride: int, residual: bool, shortcut: Shortcut
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.residual = residual
        self.stride = stride
        self.pad = c_out - c_in
        self.proj: nn.Module | None = None
        needs_proj = shortcut == "C" or (shortcut == "B" and (stride != 1 or c_in != c_out))
        if residual and needs_proj:
            self.proj = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            return self.proj(x)  # W_s x, Eq. (2)
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/2, W/2)
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))  # option A: zero-pad new channels
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))  # F(x)
        if self.residual:
            out = out + self.shortcut(x)  # y = F(x) + x, Eq. (1)
        return F.relu(out)


class Bottleneck(nn.Module):
    """1×1 (reduce) → 3×3 → 1×1 (restore ×4), with a projection where dimensions change."""

    expansion = 4

    def __init__(self, *, c_in: int, width: int, stride: int, shortcut: Shortcut) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.proj: nn.Module | None = None
        if shortcut == "C" or stride != 1 or c_in != c_out:
            self.proj = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.proj is None else self.proj(x)))


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class CifarResNet(nn.Module):
    """The 6n+2-layer CIFAR-10 network of Sec. 4.2 (residual, or plain with residual=False)."""

    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        n = (cfg.depth - 2) // 6
        w = cfg.width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        c_in = w
        for stage, c_out in enumerate((w, 2 * w, 4 * w)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(
                    BasicBlock(
                        c_in=c_in,
                        c_out=c_out,
                        stride=stride,
                        residual=cfg.residual,
                        shortcut=cfg.shortcut,
                    )
                )
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, cfg.num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))  # (B, 4w, 8, 8)
        return self.fc(h.mean(dim=(2, 3)))  # global average pool → (B, classes)


IMAGENET_LAYERS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


class ImageNetResNet(nn.Module):
    """Table 1's ImageNet architectures (224×224 input, 1000 classes)."""

    def __init__(self, *, depth: int = 50, shortcut: Shortcut = "B", num_classes: int = 1000):
        super().__init__()
        if depth not in IMAGENET_LAYERS:
            raise ValueError(f"ImageNet ResNet depth must be one of {sorted(IMAGENET_LAYERS)}")
        kind, counts = IMAGENET_LAYERS[depth]
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks: list[nn.Module] = []
        c_in = 64
        for stage, (count, width) in enumerate(zip(counts, (64, 128, 256, 512), strict=True)):
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                if kind == "basic":
                    # Option A is CIFAR-only; ImageNet basic nets project where needed.
                    sc: Shortcut = "C" if shortcut == "C" else "B"
                    blocks.append(
                        BasicBlock(
                            c_in=c_in, c_out=width, stride=stride, residual=True, shortcut=sc
                        )
                    )
                    c_in = width
                else:
                    blocks.append(
                        Bottleneck(c_in=c_in, width=width, stride=stride, shortcut=shortcut)
                    )
                    c_in = width * Bottleneck.expansion
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))  # (B, C, 7, 7)
        return self.fc(h.mean(dim=(2, 3)))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
