"""Keeping Neural Networks Simple by Minimizing the Description Length of the Weights.

Geoffrey E. Hinton and Drew van Camp, COLT 1993
(https://www.cs.toronto.edu/~hinton/absps/colt93.pdf).

**Idea.** A network generalizes when its weights hold much less information than the
training targets. Make each weight a Gaussian Q_i = N(μ_i, σ_i²) that the sender draws from;
with the "bits back" argument, communicating such a noisy weight under a prior P costs
KL(Q_i ‖ P), so noise makes weights cheap, and training minimises the total description
length: the bits of the weights plus the bits of the data misfits that the noisy network
leaves. With one hidden layer of logistic units and linear outputs the expected squared
error under the weight noise, and its derivatives, are computed exactly: no sampling.

**Equations** (nats; bits = nats / ln 2). A case has inputs a_i, target d.

- Hidden unit h: its total input x_h = Σ_i a_i w_ih + b_h is a sum of independent Gaussians,
  x_h ~ N(M_h, V_h) with M_h = Σ_i a_i μ_ih + μ_bh and V_h = Σ_i a_i² σ_ih² + σ_bh².
  Its output z_h = logistic(x_h) has mean E[z_h] and second moment E[z_h²], two
  one-dimensional Gaussian integrals (:func:`logistic_gaussian_moments`).
- Output y = Σ_h w_h z_h + b (linear). The z_h are independent of each other (disjoint
  incoming weights) and of the output weights, so
  E[y] = Σ_h μ_h E[z_h] + μ_b and Var[y] = Σ_h (σ_h² E[z_h²] + μ_h² Var[z_h]) + σ_b²,
  and the expected squared error is E[(d − y)²] = (d − E[y])² + Var[y].
- Data misfit: residuals coded with N(0, σ_d²) at quantization width t cost
  −ln t + ½ ln(2π σ_d²) + E[(d − y)²] / (2σ_d²) per case; at the best σ_d² (the mean
  expected squared error Ē over the N cases) that is L_D = N/2 · ln(2πe Ē) − N ln t.
- Weight cost: a noisy weight costs KL(Q_i ‖ P) with bits back. The prior is an adaptive
  mixture of Gaussians P(w) = Σ_k π_k N(w; m_k, s_k²) whose means, variances and mixing
  proportions are learned with the weights. Each weight is sent with a two-part code: a
  component k, chosen with probability r_ik and sent at −ln π_k (bits back: −ln r_ik), then
  the weight under N(m_k, s_k²) at KL(Q_i ‖ N_k). With the best r_ik ∝ π_k e^{−KL(Q_i‖N_k)}
  its length is L_i = −ln Σ_k π_k exp(−KL(Q_i ‖ N_k)) ≥ KL(Q_i ‖ P), with equality for one
  component and near-equality when Q_i overlaps one component only; L_W = Σ_i L_i.
- Training minimises L_D + β L_W; the cost coefficient β is annealed up to its true value 1,
  so that the reported description length L_D + L_W is the quantity finally minimised.

**Deviations from the paper**
- The paper, as we read it, takes the hidden units' output mean and variance from
  precomputed tables; here both Gaussian integrals are evaluated by quadrature accurate to
  ~1e-9 (Gauss–Hermite in the standardized input for V < 1; for V ≥ 1 the identity
  logistic(x) = P(L ≤ x), L a logistic variable, turns them into smooth integrals of the
  normal CDF over L's density).
- KL(Q ‖ mixture) has no closed form. Rather than approximating it, the weight cost here is
  the exact length of the explicit two-part code above (an upper bound on KL(Q ‖ P), tested
  against a Monte Carlo estimate of the KL), so the reported bits are those of a code that
  exists. The paper's own treatment of the mixture's cost may differ.
- Biases are noisy weights too and are coded like the others.
- Predictions on new cases are the network's expected output E_Q[y] under the weight noise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

# Gauss–Hermite rule: ∫ e^{−t²} f(t) dt ≈ Σ_j W_j f(t_j), so E f(M + √V u), u ~ N(0, 1), is
# Σ_j W_j f(M + √(2V) t_j) / √π (used for V < 1).
_GH_T, _GH_W = (torch.from_numpy(v) for v in np.polynomial.hermite.hermgauss(32))
# For V ≥ 1: trapezoid nodes on the logistic variable L (its density σ'(l) and the density
# 2σ(l)σ'(l) of the larger of two such variables are analytic in a strip of half-width π, so
# the rule converges geometrically; beyond |l| = 24 they are below 4e-11). Both rules agree
# with a 4-million-point reference to 1e-10 over M ∈ [−8, 6], V ∈ [1e-6, 1e4] (tests).
_L = torch.linspace(-24.0, 24.0, 97, dtype=torch.float64)
_DL = float(_L[1] - _L[0])
_DENSITY_1 = torch.sigmoid(_L) * torch.sigmoid(-_L) * _DL  # P(L ∈ dl)
_DENSITY_2 = 2 * torch.sigmoid(_L) * _DENSITY_1  # P(max(L1, L2) ∈ dl)
_SMALL_VARIANCE = 1.0


def _moments_by_hermite(mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t, w = _GH_T.to(mean.dtype), _GH_W.to(mean.dtype) / math.sqrt(math.pi)
    s = torch.sigmoid(mean[..., None] + (2 * var).sqrt()[..., None] * t)  # (..., 32)
    return (s * w).sum(-1), (s * s * w).sum(-1)


def _moments_by_logistic_variable(
    mean: torch.Tensor, var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    cdf = torch.special.ndtr((mean[..., None] - _L.to(mean.dtype)) / var.sqrt()[..., None])
    return (cdf * _DENSITY_1.to(mean.dtype)).sum(-1), (cdf * _DENSITY_2.to(mean.dtype)).sum(-1)


def logistic_gaussian_moments(
    mean: torch.Tensor, var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(E[σ(x)], E[σ(x)²]) for x ~ N(mean, var), elementwise, differentiable in both.

    For var < 1, Gauss–Hermite quadrature in the standardized variable. For var ≥ 1, where
    σ(M + √V u) is too steep in u for that rule, σ(x) = P(L ≤ x) and σ(x)² = P(max(L1, L2)
    ≤ x) for independent logistic L, L1, L2 give E[σ(x)] = E_L Φ((M − L)/√V) and
    E[σ(x)²] = E_max Φ((M − max)/√V): smooth integrands, integrated by the trapezoid rule.
    Each element is computed by its own rule only.
    """
    var = var.clamp_min(1e-12)
    small = var < _SMALL_VARIANCE
    m1, m2 = torch.zeros_like(mean), torch.zeros_like(mean)
    for rule, where in ((_moments_by_hermite, small), (_moments_by_logistic_variable, ~small)):
        if bool(where.any()):
            r1, r2 = rule(mean[where], var[where])
            m1, m2 = m1.index_put((where,), r1), m2.index_put((where,), r2)
    return m1, m2


def _positive_log(value: float) -> float:
    if value <= 0:
        raise ValueError(f"expected a positive value, got {value}")
    return math.log(value)


class NoisyWeightNet(nn.Module):
    """One hidden layer of logistic units, one linear output; every weight and bias is a
    Gaussian N(μ, σ²) with σ = exp(log_sigma)."""

    def __init__(
        self,
        *,
        n_inputs: int,
        n_hidden: int,
        init_scale: float = 0.1,
        init_sigma: float = 0.05,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        log_sigma = _positive_log(init_sigma)

        def mean(*shape: int, scale: float) -> nn.Parameter:
            return nn.Parameter(scale * torch.randn(*shape, generator=generator, dtype=dtype))

        def noise(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.full(shape, log_sigma, dtype=dtype))

        self.mu_w1, self.log_sigma_w1 = (
            mean(n_inputs, n_hidden, scale=init_scale),
            noise(n_inputs, n_hidden),
        )
        self.mu_b1, self.log_sigma_b1 = mean(n_hidden, scale=0.0), noise(n_hidden)
        self.mu_w2, self.log_sigma_w2 = mean(n_hidden, scale=init_scale), noise(n_hidden)
        self.mu_b2, self.log_sigma_b2 = mean(1, scale=0.0), noise(1)

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ) of every weight and bias, flattened: (P,), (P,)."""
        mu = torch.cat([self.mu_w1.ravel(), self.mu_b1, self.mu_w2, self.mu_b2])
        log_sigma = torch.cat(
            [self.log_sigma_w1.ravel(), self.log_sigma_b1, self.log_sigma_w2, self.log_sigma_b2]
        )
        return mu, log_sigma.exp()

    def hidden_moments(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(E[z], E[z²]) of the hidden outputs for inputs a: (N, D) → (N, H), (N, H)."""
        M = a @ self.mu_w1 + self.mu_b1  # (N, H)
        V = (a * a) @ (2 * self.log_sigma_w1).exp() + (2 * self.log_sigma_b1).exp()  # (N, H)
        return logistic_gaussian_moments(M, V)

    def output_moments(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(E[y], Var[y]) of the output under the weight noise: (N,), (N,)."""
        ez, ez2 = self.hidden_moments(a)
        var_z = (ez2 - ez * ez).clamp_min(0.0)
        sigma2_w2, sigma2_b2 = (2 * self.log_sigma_w2).exp(), (2 * self.log_sigma_b2).exp()
        mean_y = ez @ self.mu_w2 + self.mu_b2  # (N,)
        var_y = ez2 @ sigma2_w2 + var_z @ (self.mu_w2 * self.mu_w2) + sigma2_b2  # (N,)
        return mean_y, var_y

    def expected_squared_error(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """E_Q[(d − y)²] per case, exactly: (d − E[y])² + Var[y]. (N,)"""
        mean_y, var_y = self.output_moments(a)
        return (d - mean_y) ** 2 + var_y

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """The prediction: the expected output E_Q[y]. (N,)"""
        return self.output_moments(a)[0]

    def sampled_outputs(
        self, a: torch.Tensor, n_samples: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Outputs of ``n_samples`` networks with weights drawn from Q: (S, N). For the Monte
        Carlo check of the exact moments."""

        def draw(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
            eps = torch.randn(n_samples, *mu.shape, generator=generator, dtype=mu.dtype)
            return mu + log_sigma.exp() * eps  # (S, *shape)

        w1, b1 = draw(self.mu_w1, self.log_sigma_w1), draw(self.mu_b1, self.log_sigma_b1)
        w2, b2 = draw(self.mu_w2, self.log_sigma_w2), draw(self.mu_b2, self.log_sigma_b2)
        z = torch.sigmoid(torch.einsum("nd,sdh->snh", a, w1) + b1[:, None, :])  # (S, N, H)
        return torch.einsum("snh,sh->sn", z, w2) + b2  # (S, N)


class MixturePrior(nn.Module):
    """The adaptive prior P(w) = Σ_k π_k N(w; m_k, s_k²); π = softmax(logits), s = exp(log_s)."""

    def __init__(self, *, means: torch.Tensor, stds: torch.Tensor) -> None:
        super().__init__()
        if means.shape != stds.shape or means.ndim != 1 or not bool((stds > 0).all()):
            raise ValueError("means and stds must be 1-D of the same length, stds > 0")
        self.logits = nn.Parameter(torch.zeros_like(means))
        self.m = nn.Parameter(means.clone())
        self.log_s = nn.Parameter(stds.log())

    def mixing(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)

    def log_components(self, w: torch.Tensor) -> torch.Tensor:
        """ln π_k + ln N(w; m_k, s_k²) for every component, elementwise: (..., K)."""
        z = (w[..., None] - self.m) / self.log_s.exp()
        log_normal = -0.5 * z * z - self.log_s - 0.5 * math.log(2 * math.pi)
        return torch.log_softmax(self.logits, 0) + log_normal

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        """ln P(w), elementwise over any shape."""
        return torch.logsumexp(self.log_components(w), dim=-1)

    def weight_cost(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The cost in nats of each weight Q_i = N(μ_i, σ_i²) under the mixture: the length
        of the two-part code (component with bits back, then the weight),
        −ln Σ_k π_k exp(−KL(Q_i ‖ N(m_k, s_k²))) ≥ KL(Q_i ‖ P). (P,)"""
        kl_k = gaussian_kl(mu[:, None], sigma[:, None], self.m, self.log_s.exp())  # (P, K)
        return -torch.logsumexp(torch.log_softmax(self.logits, 0) - kl_k, dim=-1)

    def responsibilities(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """r_ik ∝ π_k exp(−KL(Q_i ‖ N_k)): the best probabilities of sending component k
        for weight i. (P, K)"""
        kl_k = gaussian_kl(mu[:, None], sigma[:, None], self.m, self.log_s.exp())
        return torch.softmax(torch.log_softmax(self.logits, 0) - kl_k, dim=-1)


def gaussian_kl(
    mu: torch.Tensor, sigma: torch.Tensor, m: torch.Tensor, s: torch.Tensor
) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(m, s²)) = ln(s/σ) + (σ² + (μ − m)²) / (2s²) − ½, in nats: the
    paper's cost of a noisy weight under a single Gaussian prior."""
    return torch.log(s / sigma) + (sigma**2 + (mu - m) ** 2) / (2 * s**2) - 0.5


def misfit_nats(expected_sq_err: torch.Tensor, quantum: float) -> torch.Tensor:
    """L_D = N/2 · ln(2πe Ē) − N ln t: the cost of the N targets coded, to width ``quantum``,
    with the Gaussian N(0, Ē) that is best for residuals of mean square Ē."""
    n = expected_sq_err.numel()
    mean_err = expected_sq_err.mean()
    return 0.5 * n * torch.log(2 * math.pi * math.e * mean_err) - n * math.log(quantum)


def description_length(
    net: NoisyWeightNet, prior: MixturePrior, a: torch.Tensor, d: torch.Tensor, quantum: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(data misfit L_D, weight cost L_W), both in nats, of the targets ``d`` given ``a``."""
    misfit = misfit_nats(net.expected_squared_error(a, d), quantum)
    return misfit, prior.weight_cost(*net.posterior()).sum()


class LogisticMLP(nn.Module):
    """E independent copies of the same architecture with ordinary (noise-free) weights:
    one hidden layer of logistic units, one linear output. The baselines of the paper (no
    penalty; weight decay), batched so that a cross-validation grid trains as one."""

    def __init__(
        self,
        *,
        n_inputs: int,
        n_hidden: int,
        n_nets: int = 1,
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()

        def draw(*shape: int) -> nn.Parameter:
            return nn.Parameter(init_scale * torch.randn(*shape, generator=generator, dtype=dtype))

        self.w1 = draw(n_nets, n_inputs, n_hidden)
        self.b1 = nn.Parameter(torch.zeros(n_nets, n_hidden, dtype=dtype))
        self.w2 = draw(n_nets, n_hidden)
        self.b2 = nn.Parameter(torch.zeros(n_nets, dtype=dtype))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Outputs of every net for inputs a (N, D): (E, N)."""
        n_nets, n_inputs, n_hidden = self.w1.shape
        # One (N, D) @ (D, E·H) product instead of E small ones.
        w1 = self.w1.transpose(0, 1).reshape(n_inputs, n_nets * n_hidden)
        x = (a @ w1).view(-1, n_nets, n_hidden) + self.b1  # (N, E, H)
        return (torch.sigmoid(x) * self.w2).sum(-1).T + self.b2[:, None]  # (E, N)

    def sum_squared_weights(self) -> torch.Tensor:
        """Σ w² over every weight and bias of each net: (E,)."""
        return sum(p.pow(2).flatten(1).sum(1) for p in (self.w1, self.b1, self.w2)) + self.b2**2
