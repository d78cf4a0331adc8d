"""The scale of random initialization: deep MLPs, random-matrix products and RNN state norms.

Source: Ilya Sutskever, interview on deep learning (2015; no arXiv id). The idea, in his
words: with too-small random weights the signal "decays" layer by layer so no gradient can
"latch on"; too large and it "explodes"; in between is a "sweet spot" where the eigenvalues
of the random matrices are "around one". Ten-layer nets were believed untrainable; the
mistake was the scale of the initialization. The initializations written out here are the
ones that put a network at that sweet spot:

- Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
  networks": ``W ~ U(-a, a)`` or ``N(0, s²)`` with ``s = gain · sqrt(2 / (fan_in + fan_out))``
  and ``a = sqrt(3) · s``.
- He, Zhang, Ren, Sun (2015), "Delving deep into rectifiers", arXiv:1502.01852:
  ``s = gain / sqrt(fan_in)`` with ``gain = sqrt(2)`` for ReLU.
- Saxe, McClelland, Ganguli (2014), "Exact solutions to the nonlinear dynamics of learning
  in deep linear neural networks", arXiv:1312.6120: ``W = gain · Q``, Q a Haar-random
  orthogonal matrix, so every singular value of every product of layers is exactly ``gain^L``.

Key equations (square layers of width n, weights of standard deviation ``gain / sqrt(n)``,
zero biases; Poole et al. 2016, arXiv:1606.05340, for the mean-field recursion):

    h_1 = W_1 x_0,   h_{l+1} = W_{l+1} φ(h_l)
    q_l = E[h_l²],   q_{l+1} = gain² · E_{z~N(0,1)}[φ(sqrt(q_l) z)²]
    ReLU: E[relu(sqrt(q) z)²] = q / 2, so  std(h_{l+1}) = sqrt(gain² / 2) · std(h_l)

The ReLU recursion is exact in expectation over the weights at any width (``h`` is
symmetric given the previous layer); He's ``gain = sqrt(2)`` makes the factor one. Gradients
obey the mirror recursion backwards. ReLU is positively homogeneous, so scaling every layer
of an L-layer net (readout included) by ``m = gain/sqrt(2)`` scales h_l by m^l and every
weight gradient by m^L (m^(L-l+1) backwards times m^(l-1) forwards): 0.5^50 ≈ 8.9e-16.

For a recurrent net ``h_t = φ(W h_{t-1} + U x_t)`` the same matrix is applied every step,
so for linear φ the state norm grows like ``ρ(W)^t`` (ρ the spectral radius) once the
components on the smaller eigenvalues have died out.

Deviations from the paper:
- An interview states no experiment; the networks, widths and gains here are ours.
- Biases start at zero everywhere (the recursions above assume it).
- The mean-field recursion is an infinite-width statement; measured finite-width nets
  fluctuate around it (each width-n ReLU layer adds ≈ 5/(4n) to the variance of the
  log-norm).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

Activation = Literal["relu", "tanh", "linear"]
InitScheme = Literal["he", "glorot", "orthogonal"]

# The recommended gain per nonlinearity (torch's ``calculate_gain``): sqrt(2) for ReLU (He et
# al.), 5/3 for tanh (an empirical choice), 1 for linear layers.
DEFAULT_GAIN: dict[str, float] = {"relu": math.sqrt(2.0), "tanh": 5.0 / 3.0, "linear": 1.0}

PHI: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "linear": lambda h: h,
}


# -- initializations, written out ----------------------------------------------------------
def fan_in_and_fan_out(w: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel): inputs and outputs per unit."""
    if w.dim() < 2:
        raise ValueError("fan-in and fan-out need a weight with at least 2 dimensions")
    receptive_field = math.prod(w.shape[2:])
    return w.shape[1] * receptive_field, w.shape[0] * receptive_field


def glorot_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Glorot & Bengio: the std that averages forward and backward variance preservation."""
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def he_std(fan_in: int, gain: float = DEFAULT_GAIN["relu"]) -> float:
    """He et al.: std = gain / sqrt(fan_in), gain = sqrt(2) for ReLU."""
    return gain / math.sqrt(fan_in)


@torch.no_grad()
def glorot_normal_(
    w: torch.Tensor, *, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    return w.normal_(0.0, glorot_std(*fan_in_and_fan_out(w), gain), generator=generator)


@torch.no_grad()
def glorot_uniform_(
    w: torch.Tensor, *, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    a = math.sqrt(3.0) * glorot_std(*fan_in_and_fan_out(w), gain)  # U(-a, a) has std a/sqrt(3)
    return w.uniform_(-a, a, generator=generator)


@torch.no_grad()
def he_normal_(
    w: torch.Tensor,
    *,
    gain: float = DEFAULT_GAIN["relu"],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    return w.normal_(0.0, he_std(fan_in_and_fan_out(w)[0], gain), generator=generator)


@torch.no_grad()
def he_uniform_(
    w: torch.Tensor,
    *,
    gain: float = DEFAULT_GAIN["relu"],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    a = math.sqrt(3.0) * he_std(fan_in_and_fan_out(w)[0], gain)
    return w.uniform_(-a, a, generator=generator)


@torch.no_grad()
def orthogonal_(
    w: torch.Tensor, *, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """gain · Q with Q Haar-distributed: the QR factor of a Gaussian matrix, with the signs of
    R's diagonal moved into Q (Mezzadri 2007, math-ph/0609050); rows or columns orthonormal."""
    if w.dim() < 2:
        raise ValueError("orthogonal init needs a weight with at least 2 dimensions")
    rows, cols = w.shape[0], w.numel() // w.shape[0]
    a = w.new_empty((rows, cols)).normal_(0.0, 1.0, generator=generator)  # (rows, cols)
    if rows < cols:
        a.t_()  # (cols, rows): QR needs a tall matrix
    q, r = torch.linalg.qr(a)
    q *= torch.diagonal(r).sign()
    if rows < cols:
        q.t_()  # (rows, cols)
    w.view_as(q).copy_(q)
    return w.mul_(gain)


def init_std(scheme: InitScheme, fan_in: int, fan_out: int, gain: float) -> float:
    """The weight std of a Gaussian scheme (he or glorot)."""
    if scheme == "he":
        return he_std(fan_in, gain)
    if scheme == "glorot":
        return glorot_std(fan_in, fan_out, gain)
    raise ValueError(f"{scheme!r} is not a Gaussian scheme")


def init_weight_(
    w: torch.Tensor,
    *,
    scheme: InitScheme,
    gain: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Normal-distributed Glorot or He, or orthogonal, at the given gain."""
    if scheme == "he":
        return he_normal_(w, gain=gain, generator=generator)
    if scheme == "glorot":
        return glorot_normal_(w, gain=gain, generator=generator)
    if scheme == "orthogonal":
        return orthogonal_(w, gain=gain, generator=generator)
    raise ValueError(f"unknown init scheme {scheme!r}")


# -- the mean-field recursion --------------------------------------------------------------
def gaussian_expectation(
    f: Callable[[torch.Tensor], torch.Tensor], q: float, points: int = 101
) -> float:
    """E_{z~N(0,1)}[f(sqrt(q) z)] by Gauss–Hermite quadrature (probabilists' weights)."""
    z, w = (torch.from_numpy(a) for a in np.polynomial.hermite_e.hermegauss(points))
    return float((w * f(math.sqrt(q) * z)).sum()) / math.sqrt(2.0 * math.pi)


def relu_std_factor(gain: float) -> float:
    """The per-layer factor of std(h_l) in a ReLU net: sqrt(gain² / 2)."""
    return math.sqrt(gain**2 / 2.0)


def mean_field_std(activation: Activation, *, gain: float, q1: float, depth: int) -> np.ndarray:
    """Predicted std(h_l) for l = 1..depth, from q_1 = E[h_1²] and the mean-field recursion
    q_{l+1} = gain² E[φ(sqrt(q_l) z)²]; closed form for ReLU and linear nets."""
    if activation == "relu":
        return math.sqrt(q1) * relu_std_factor(gain) ** np.arange(depth)
    if activation == "linear":
        return math.sqrt(q1) * gain ** np.arange(depth, dtype=float)
    q = [q1]
    for _ in range(depth - 1):
        q.append(gain**2 * gaussian_expectation(lambda h: PHI[activation](h) ** 2, q[-1]))
    return np.sqrt(np.array(q))


# -- deep MLP --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MLPConfig:
    in_dim: int = 784
    width: int = 256
    depth: int = 20  # hidden layers (weight matrices followed by φ); a linear readout follows
    out_dim: int = 10
    activation: Activation = "relu"
    init: InitScheme = "he"
    gain: float | None = None  # None: DEFAULT_GAIN[activation]; the same gain for every layer

    def __post_init__(self) -> None:
        if min(self.in_dim, self.width, self.depth, self.out_dim) < 1:
            raise ValueError("in_dim, width, depth and out_dim must be positive")
        if self.activation not in PHI:
            raise ValueError(f"activation must be one of {', '.join(PHI)}")
        if self.init not in ("he", "glorot", "orthogonal"):
            raise ValueError("init must be he, glorot or orthogonal")
        if self.gain is not None and self.gain <= 0:
            raise ValueError("gain must be positive")

    @property
    def resolved_gain(self) -> float:
        return DEFAULT_GAIN[self.activation] if self.gain is None else self.gain


class DeepMLP(nn.Module):
    """``depth`` layers h_l = W_l φ(h_{l-1}) of width ``width``, then a linear readout."""

    def __init__(self, *, config: MLPConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        dims = [config.in_dim] + [config.width] * config.depth
        # skip_init: nn.Linear's own default init would be thrown away at once
        self.hidden = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, a, b) for a, b in itertools.pairwise(dims)
        )
        self.readout = nn.utils.skip_init(nn.Linear, config.width, config.out_dim)
        self.phi = PHI[config.activation]
        for layer in [*self.hidden, self.readout]:
            init_weight_(
                layer.weight, scheme=config.init, gain=config.resolved_gain, generator=generator
            )
            nn.init.zeros_(layer.bias)

    def forward_trace(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (B, in_dim) → (logits (B, out_dim), [h_1, ..., h_depth] each (B, width))."""
        preacts = []
        for layer in self.hidden:
            h = layer(x)  # (B, width)
            preacts.append(h)
            x = self.phi(h)
        return self.readout(x), preacts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_trace(x)[0]


# -- products of random matrices -------------------------------------------------------------
def random_square(
    n: int, *, kind: Literal["gaussian", "orthogonal"], generator: torch.Generator | None = None
) -> torch.Tensor:
    """An n×n matrix with E||Wx||² = ||x||²: Gaussian entries of std 1/sqrt(n), or Haar
    orthogonal."""
    w = torch.empty(n, n, dtype=torch.float64)
    if kind == "gaussian":
        return w.normal_(0.0, 1.0 / math.sqrt(n), generator=generator)
    return orthogonal_(w, generator=generator)


def product_singular_values(
    n: int,
    depths: tuple[int, ...],
    *,
    kind: Literal["gaussian", "orthogonal"],
    generator: torch.Generator | None = None,
) -> dict[int, torch.Tensor]:
    """Singular values (descending, float64) of W_L ⋯ W_1 for each L in ``depths``."""
    product = torch.eye(n, dtype=torch.float64)
    out = {}
    for depth in range(1, max(depths) + 1):
        product = random_square(n, kind=kind, generator=generator) @ product  # (n, n)
        if depth in depths:
            out[depth] = torch.linalg.svdvals(product)
    return out


def lyapunov_exponents(n: int) -> torch.Tensor:
    """Newman (1986): for products of n×n matrices with N(0, 1/n) entries, the i-th singular
    value of a depth-L product grows like exp(L λ_i), λ_i = ½[ψ((n-i+1)/2) + ln(2/n)]."""
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return 0.5 * (torch.special.digamma((n - i + 1) / 2) + math.log(2.0 / n))


# -- recurrent net ---------------------------------------------------------------------------
def spectral_radius(w: torch.Tensor) -> float:
    """max |λ| over the eigenvalues of a square matrix."""
    return float(torch.linalg.eigvals(w).abs().max())


def recurrent_matrix(
    n: int,
    *,
    rho: float,
    kind: Literal["gaussian", "orthogonal"] = "gaussian",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A random n×n recurrent matrix rescaled to spectral radius exactly ``rho``."""
    w = random_square(n, kind=kind, generator=generator)
    return w * (rho / spectral_radius(w))


class ElmanRNN(nn.Module):
    """h_t = φ(W h_{t-1} + U x_t + b): the recurrent matrix W is applied at every step."""

    def __init__(self, *, w_hh: torch.Tensor, input_size: int, activation: Activation) -> None:
        super().__init__()
        hidden_size = w_hh.shape[0]
        self.w_hh = nn.Parameter(w_hh.clone())  # (H, H)
        w_xh = torch.empty(hidden_size, input_size, dtype=w_hh.dtype)
        self.w_xh = nn.Parameter(glorot_normal_(w_xh))  # (H, I)
        self.b = nn.Parameter(torch.zeros(hidden_size, dtype=w_hh.dtype))
        self.phi = PHI[activation]

    def states(self, x: torch.Tensor, h0: torch.Tensor) -> list[torch.Tensor]:
        """x: (T, B, I), h0: (B, H) → [h_0, ..., h_T], each (B, H)."""
        hs = [h0]
        for x_t in x:  # x_t: (B, I)
            hs.append(self.phi(hs[-1] @ self.w_hh.T + x_t @ self.w_xh.T + self.b))
        return hs

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.states(x, h0))  # (T+1, B, H)
