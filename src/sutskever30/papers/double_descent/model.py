"""Double descent: random-features least squares through the interpolation threshold, and a
family of two-layer networks of growing width.

Belkin, Hsu, Ma, Mandal, 2019, "Reconciling modern machine-learning practice and the
classical bias–variance trade-off", PNAS 116(32); arXiv:1812.11118. Nakkiran, Kaplun,
Bansal, Yang, Barak, Sutskever, 2019, "Deep Double Descent: Where Bigger Models and More
Data Hurt", arXiv:1912.02292.

**The idea.** As the number of parameters p of a model fitted by least squares grows past
the number of training points n, the test error first follows the classical U, rises to a
peak at the *interpolation threshold* p = n (where exactly one fit interpolates the data and
its norm explodes), then falls again: among the many interpolating fits, the one of
minimum norm gets smoother as p grows. Regularizing (ridge, λ > 0) removes the peak.

**Random Fourier features** (Rahimi & Recht 2007; Belkin et al. Sec. "Random Fourier
features"). With frequencies w_k ~ N(0, σ⁻² I_d) and phases b_k ~ U[0, 2π),

    φ_p(x) = sqrt(2/p) · (cos(w_1·x + b_1), …, cos(w_p·x + b_p)),
    E[φ_p(x)·φ_p(x')] = exp(−‖x − x'‖² / (2σ²))        (the Gaussian kernel).

The features are *nested*: φ_p uses the first p frequencies of one draw, so a sweep over p
adds features to one model instead of drawing a new one per p.

**Least squares.** Φ (n × p) holds the training features, Y (n × K) the one-hot labels. The
minimum-norm least-squares fit and the ridge fit are, with the thin SVD Φ = U S Vᵀ,

    β₀ = Φ⁺ Y = V S⁻¹ Uᵀ Y,          β_λ = (ΦᵀΦ + λI)⁻¹ Φᵀ Y = V S (S² + λ)⁻¹ Uᵀ Y.

Both equal Φᵀ U g(S) Uᵀ Y with g(s) = 1/s² (on the singular values above the cut-off
eps·max(n, p)·s_max, as ``numpy.linalg.lstsq``) and g(s) = 1/(s² + λ): only U and S are
needed, obtained in float64 from the SVD of Φ (or, for p > n, of the n × n triangular
factor of Φᵀ = QR, which has the same U and S). The K outputs share one feature map, so a
fit interpolates all n·K targets as soon as rank Φ = n, i.e. p ≥ n: the threshold is
p = n features (Belkin et al. count N = n for random features; for networks, whose
parameters are shared by the K outputs, they put it at n·K parameters).

**Networks** (Nakkiran et al. model-wise double descent; Belkin et al. Fig. 3): two-layer
ReLU perceptrons x → W₂ relu(W₁x + b₁) + b₂ of width h, (d + 1)h + (h + 1)K parameters,
trained on the same noisy labels without regularization. :class:`MLPFamily` trains several
widths as one module whose gradients and Adam updates never mix the nets.

Deviations from the paper:
- Real cosine features with random phases instead of Belkin et al.'s complex exponentials
  exp(i w·x) (one real coefficient per feature; the threshold stays at p = n).
- Bandwidth σ = 5 on pixels in [0, 1) (our reading of Belkin et al.'s MNIST setting; it
  was not re-tuned).
- Label noise: a fixed fraction of the training labels is moved to a different class
  (Nakkiran et al.'s model); Belkin et al.'s MNIST random-features run has none.
- The network sweep uses cross-entropy and full-batch Adam from the default initialization
  of every width (Nakkiran et al.), not Belkin et al.'s squared loss with weights reused
  from the next smaller net.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

F64 = torch.float64


# -- data -----------------------------------------------------------------------------------


def flip_labels(
    y: torch.Tensor, *, fraction: float, classes: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label noise: exactly round(fraction · n) labels, chosen uniformly without
    replacement, each moved to one of the other ``classes − 1`` classes uniformly.

    Returns (noisy labels, indices of the flipped labels)."""
    n = len(y)
    flipped = torch.randperm(n, generator=generator)[: round(fraction * n)]
    shift = torch.randint(1, classes, (len(flipped),), generator=generator)
    noisy = y.clone()
    noisy[flipped] = (y[flipped] + shift) % classes  # shift ∈ [1, K−1]: never the same class
    return noisy, flipped


def one_hot(y: torch.Tensor, classes: int) -> torch.Tensor:
    """(n,) labels → (n, K) float64 targets."""
    return F.one_hot(y, classes).to(F64)


# -- random Fourier features ----------------------------------------------------------------


class RandomFourierFeatures:
    """The first ``p`` of ``p_max`` random Fourier features of one draw (nested in p)."""

    def __init__(self, *, d: int, p_max: int, bandwidth: float, generator: torch.Generator):
        self.bandwidth = bandwidth
        self.w = torch.randn(d, p_max, generator=generator, dtype=F64) / bandwidth  # (d, P)
        self.b = 2 * math.pi * torch.rand(p_max, generator=generator, dtype=F64)  # (P,)

    @property
    def p_max(self) -> int:
        return self.w.shape[1]

    def cosines(self, x: torch.Tensor) -> torch.Tensor:
        """cos(w_k·x + b_k) for all p_max features, unscaled: (N, d) → (N, P)."""
        return torch.cos(x.to(F64) @ self.w + self.b)

    @staticmethod
    def scale(p: int) -> float:
        """φ_p = scale(p) · (first p cosines): sqrt(2/p) makes φ_p·φ_p' → the kernel."""
        return math.sqrt(2.0 / p)

    def __call__(self, x: torch.Tensor, p: int) -> torch.Tensor:
        """φ_p(x): (N, d) → (N, p), float64."""
        if not 1 <= p <= self.p_max:
            raise ValueError(f"p must be in [1, {self.p_max}], got {p}")
        return self.scale(p) * self.cosines(x)[:, :p]


def gaussian_kernel(x: torch.Tensor, x2: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """exp(−‖x − x'‖² / (2σ²)): (N, d), (M, d) → (N, M), the limit of φ_p(x)·φ_p(x')."""
    sq = torch.cdist(x.to(F64), x2.to(F64)) ** 2
    return torch.exp(-sq / (2 * bandwidth**2))


# -- least squares --------------------------------------------------------------------------


class LeastSquares:
    """The least-squares fits of targets Y (n × K) on features Φ (n × p), minimum-norm and
    ridge, from one SVD in float64 (module docstring)."""

    def __init__(self, phi: torch.Tensor, y: torch.Tensor):
        self.phi = phi.to(F64)  # (n, p)
        n, p = self.phi.shape
        if p > n:
            # Φᵀ = QR with R (n × n): Φ = Rᵀ Qᵀ has the left singular vectors and singular
            # values of Rᵀ, without the p × n factors of a full SVD of Φ.
            r = torch.linalg.qr(self.phi.T, mode="r").R
            self.u, self.s, _ = torch.linalg.svd(r.T)  # (n, n), (n,)
        else:
            self.u, self.s, _ = torch.linalg.svd(self.phi, full_matrices=False)  # (n, p), (p,)
        self.uty = self.u.T @ y.to(F64)  # (r, K)
        cutoff = torch.finfo(F64).eps * max(n, p) * self.s.max()
        self.rank = int((self.s > cutoff).sum())

    def coefficients(self, lam: float = 0.0) -> torch.Tensor:
        """β (p × K): Φ⁺Y for λ = 0 (minimum norm), (ΦᵀΦ + λI)⁻¹ΦᵀY for λ > 0."""
        if lam < 0:
            raise ValueError(f"lam must be ≥ 0, got {lam}")
        if lam == 0:
            g = torch.zeros_like(self.s)
            g[: self.rank] = self.s[: self.rank] ** -2  # singular values come sorted
        else:
            g = 1.0 / (self.s**2 + lam)
        return self.phi.T @ ((self.u * g) @ self.uty)  # Φᵀ (U g(S) Uᵀ Y): (p, n) @ (n, K)


def min_norm_solution(phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Φ⁺Y: the least-squares fit of smallest ‖β‖ (an interpolator when rank Φ = n)."""
    return LeastSquares(phi, y).coefficients(0.0)


def zero_one_error(scores: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose largest score is not the label's (ties: the first index)."""
    return float((scores.argmax(-1) != y).to(F64).mean())


def squared_loss(scores: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over points of ‖f(x) − onehot(y)‖² (Belkin et al.'s squared loss, summed over
    the K outputs)."""
    return float(((scores.to(F64) - one_hot(y, scores.shape[-1])) ** 2).sum(-1).mean())


# -- networks -------------------------------------------------------------------------------


def mlp_parameters(width: int, *, d: int = 784, classes: int = 10) -> int:
    """Parameters of a two-layer perceptron d → width → classes, biases included."""
    return (d + 1) * width + (width + 1) * classes


class MLPFamily(nn.Module):
    """Two-layer ReLU nets of the given widths as one module: the hidden units of all nets
    side by side in W₁ (d × Σh), and a block-diagonal W₂ (only net k's hidden units feed
    net k's outputs). With the loss summed over nets, each net's gradient is the one it
    would have alone, and an elementwise optimizer (Adam, SGD) moves each net as if it
    trained alone. Each block is initialized as ``nn.Linear`` initializes that width."""

    def __init__(
        self,
        *,
        widths: tuple[int, ...],
        d: int = 784,
        classes: int = 10,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError("widths must be positive")
        self.widths, self.d, self.classes = tuple(widths), d, classes
        total, nets = sum(widths), len(widths)
        owner = torch.repeat_interleave(torch.arange(nets), torch.tensor(widths))  # (H,)
        # mask[j, k, c] = 1 where hidden unit j belongs to net k
        mask = (owner[:, None] == torch.arange(nets)[None, :]).float()  # (H, M)
        self.register_buffer("mask", mask[:, :, None].expand(total, nets, classes).clone())
        bound1 = 1 / math.sqrt(d)  # nn.Linear's default: U(±1/sqrt(fan_in))
        bound2 = 1 / torch.tensor(widths, dtype=torch.float32).sqrt()  # (M,)

        def uniform(*shape: int) -> torch.Tensor:
            return 2 * torch.rand(*shape, generator=generator) - 1

        self.w1 = nn.Parameter(bound1 * uniform(d, total))  # (d, H)
        self.b1 = nn.Parameter(bound1 * uniform(total))  # (H,)
        w2 = bound2[owner, None, None] * uniform(total, nets, classes)  # (H, M, K)
        self.w2 = nn.Parameter(w2 * self.mask)
        self.b2 = nn.Parameter(bound2[:, None] * uniform(nets, classes))  # (M, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d) → logits (B, M, K) of the M nets."""
        hidden = torch.relu(x @ self.w1 + self.b1)  # (B, H)
        return torch.einsum("bh,hmk->bmk", hidden, self.w2 * self.mask) + self.b2

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Σ over nets of each net's mean cross-entropy on (x, y)."""
        logits = self(x)  # (B, M, K)
        per_net = F.cross_entropy(logits.permute(0, 2, 1), y[:, None].expand(-1, len(self.widths)))
        return per_net * len(self.widths)  # mean over (B, M) × M = Σ_m mean_b

    def parameters_per_net(self) -> list[int]:
        return [mlp_parameters(h, d=self.d, classes=self.classes) for h in self.widths]
