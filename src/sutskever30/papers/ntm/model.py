"""Neural Turing Machines.

Alex Graves, Greg Wayne, Ivo Danihelka, 2014, arXiv:1410.5401.

The idea: couple a neural network controller to an external memory matrix through
differentiable "blurry" read and write operations, addressed both by content and by
location, so that the whole machine trains by gradient descent and can learn simple
algorithms (copy, associative recall) that generalize beyond the training lengths.

Memory M_t is an N×M matrix (N locations of M values). A head emits a weighting w_t over
the N locations, Σ_i w_t(i) = 1, 0 ≤ w_t(i) ≤ 1.

Reading (§3.1):                      r_t = Σ_i w_t(i) M_t(i)                           (2)
Writing (§3.2), erase then add:      M̃_t(i) = M_{t−1}(i) [1 − w_t(i) e_t]              (3)
                                     M_t(i) = M̃_t(i) + w_t(i) a_t                       (4)

Addressing (§3.3, Fig. 2), from the head's key k_t, key strength β_t > 0, interpolation
gate g_t ∈ (0, 1), shift weighting s_t over the shifts {−1, 0, +1}, sharpening γ_t ≥ 1:

    K[u, v] = u·v / (‖u‖ ‖v‖)                                                     (6)
    w^c_t(i) = exp(β_t K[k_t, M_t(i)]) / Σ_j exp(β_t K[k_t, M_t(j)])              (5)
    w^g_t = g_t w^c_t + (1 − g_t) w_{t−1}                                         (7)
    w̃_t(i) = Σ_{j=0}^{N−1} w^g_t(j) s_t(i − j)          (indices modulo N)        (8)
    w_t(i) = w̃_t(i)^γ_t / Σ_j w̃_t(j)^γ_t                                         (9)

The controller (§4) is an LSTM; at step t it reads the input x_t and the previous read
vector r_{t−1}. One linear layer of its output h_t gives every head's parameters, with the
paper's constraints enforced by the squashing functions below; the read head's r_t and
h_t give the output y_t. The baseline is an LSTM alone (``nn.LSTM``, §4).

Deviations from the paper
-------------------------
- The paper leaves initialization open; we follow Collier & Beel 2018 ("Implementing
  Neural Turing Machines", ICANN, arXiv:1807.08518), who found it decides whether training
  converges: memory initialised to a small constant (1e-6), learned initial read vector
  r_0 and learned initial head weightings w_0 (softmax of a learned bias), controller
  outputs clipped to [−20, 20]. Our own choice: w_0's logits start focused on location 0
  (``focused_logits``), not near-uniform: with every memory row equal, content addressing
  cannot tell the rows apart, so only w_0 can break the symmetry. In one matched pair of
  development runs the two starts learned equally fast; we keep the focused one as the
  explicit symmetry breaker, with no evidence that it matters.
- Key activations: k_t = tanh(·) (memory contents live in roughly [−1, 1] under
  a_t = tanh(·)), β_t = softplus(·), g_t = sigmoid(·), s_t = softmax(·),
  γ_t = 1 + softplus(·), e_t = sigmoid(·), a_t = tanh(·) (the paper gives the ranges, not
  the functions; these are the usual ones, as in Collier & Beel).
- Each step the read head reads M_{t−1}, then the write head writes M_t (the paper does
  not fix the order of heads within a step).
- The output y_t = W_y [h_t; r_t] + b (sigmoid applied inside the loss), as in most
  implementations; the paper says only that the controller emits the output.
- 𝜀 = 1e-8 in the cosine's denominator and in eq. 9's normalizer, for numerical safety.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SHIFTS = (-1, 0, 1)  # the shift range of eq. 8 (the paper's copy experiments)
MEMORY_INIT = 1e-6  # Collier & Beel 2018: a small constant memory
CLIP = 20.0  # Collier & Beel 2018: controller outputs clipped to [−20, 20]
EPS = 1e-8
W0_FOCUS = 10.0  # initial logit of location 0 in w_0 (softmax ≈ 0.997 there when N = 64)


# -- addressing (§3.3) -----------------------------------------------------------------------


def cosine_similarity(k: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """K[k, M(i)] (eq. 6) for each location: k (B, M), memory (B, N, M) → (B, N)."""
    dot = torch.einsum("bm,bnm->bn", k, memory)
    return dot / (k.norm(dim=-1, keepdim=True) * memory.norm(dim=-1) + EPS)


def content_weighting(k: torch.Tensor, beta: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """w^c (eq. 5): softmax over locations of β K[k, M(i)]; beta (B, 1) → (B, N)."""
    return torch.softmax(beta * cosine_similarity(k, memory), dim=-1)


def interpolate(w_c: torch.Tensor, w_prev: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """w^g (eq. 7): g (B, 1) blends the content weighting with the previous weighting."""
    return g * w_c + (1 - g) * w_prev


def shift(w_g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """w̃(i) = Σ_j w^g(j) s(i − j), circular in i (eq. 8); s (B, len(SHIFTS)) weights the
    shifts in ``SHIFTS``: s for +1 moves the focus from location j to j + 1."""
    return sum(s[:, k : k + 1] * torch.roll(w_g, d, dims=-1) for k, d in enumerate(SHIFTS))


def sharpen(w_tilde: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """w(i) = w̃(i)^γ / Σ_j w̃(j)^γ (eq. 9); gamma (B, 1) ≥ 1."""
    w = w_tilde.clamp_min(0.0) ** gamma
    return w / (w.sum(-1, keepdim=True) + EPS)


def address(
    memory: torch.Tensor,
    w_prev: torch.Tensor,
    k: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor,
    s: torch.Tensor,
    gamma: torch.Tensor,
) -> torch.Tensor:
    """The addressing pipeline of Fig. 2: content → interpolation → shift → sharpening."""
    w_c = content_weighting(k, beta, memory)
    return sharpen(shift(interpolate(w_c, w_prev, g), s), gamma)


# -- reading and writing (§3.1, §3.2) --------------------------------------------------------


def read(memory: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """r = Σ_i w(i) M(i) (eq. 2): (B, N, M), (B, N) → (B, M)."""
    return torch.einsum("bn,bnm->bm", w, memory)


def write(memory: torch.Tensor, w: torch.Tensor, e: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Erase (eq. 3) then add (eq. 4): w (B, N), e and a (B, M) → the new memory (B, N, M)."""
    erased = memory * (1 - w.unsqueeze(-1) * e.unsqueeze(1))
    return erased + w.unsqueeze(-1) * a.unsqueeze(1)


# -- the machine ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NTMConfig:
    input_size: int  # bits + delimiter channel
    output_size: int  # bits
    controller_size: int = 100  # LSTM controller units (the paper's copy NTM: 100)
    N: int = 128  # memory locations (the paper: 128)
    M: int = 20  # values per location (the paper: 20)

    def __post_init__(self) -> None:
        if min(self.input_size, self.output_size, self.controller_size, self.N, self.M) < 1:
            raise ValueError("input_size, output_size, controller_size, N and M must be >= 1")


def focused_logits(N: int) -> torch.Tensor:
    """Logits of an initial weighting focused on location 0 (learned from there on): all
    memory rows start equal, so content addressing cannot tell them apart; a focused w_0
    gives the shifts a single location to move from."""
    logits = torch.zeros(N)
    logits[0] = W0_FOCUS
    return logits


def split_head(raw: torch.Tensor, M: int, writes: bool) -> dict[str, torch.Tensor]:
    """A head's raw controller outputs (B, M + 6 [+ 2M]) → its constrained parameters."""
    sizes = [M, 1, 1, len(SHIFTS), 1] + ([M, M] if writes else [])
    k, beta, g, s, gamma, *erase_add = raw.split(sizes, dim=-1)
    params = {
        "k": torch.tanh(k),  # key, in the range of the memory's contents
        "beta": F.softplus(beta),  # key strength β > 0
        "g": torch.sigmoid(g),  # interpolation gate g ∈ (0, 1)
        "s": torch.softmax(s, dim=-1),  # shift weighting over SHIFTS
        "gamma": 1 + F.softplus(gamma),  # sharpening γ ≥ 1
    }
    if writes:
        params["e"] = torch.sigmoid(erase_add[0])  # erase vector e ∈ (0, 1)^M
        params["a"] = torch.tanh(erase_add[1])  # add vector a
    return params


class NTM(nn.Module):
    """An LSTM controller with one read head and one write head over an N×M memory."""

    def __init__(self, cfg: NTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        N, M = cfg.N, cfg.M
        self.read_size, self.write_size = M + 6, 3 * M + 6  # k β g s(3) γ [e a]
        self.controller = nn.LSTMCell(cfg.input_size + M, cfg.controller_size)
        self.heads = nn.Linear(cfg.controller_size, self.read_size + self.write_size)
        self.output = nn.Linear(cfg.controller_size + M, cfg.output_size)
        # Learned initial state (Collier & Beel 2018): r_0 and the heads' w_0 = softmax(bias)
        self.r0 = nn.Parameter(torch.randn(M) * 0.01)
        self.w0_read = nn.Parameter(focused_logits(N))
        self.w0_write = nn.Parameter(focused_logits(N))
        self.h0 = nn.Parameter(torch.zeros(cfg.controller_size))
        self.c0 = nn.Parameter(torch.zeros(cfg.controller_size))

    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        N, M = self.cfg.N, self.cfg.M
        return {
            "memory": torch.full((batch, N, M), MEMORY_INIT, device=self.r0.device),
            "r": self.r0.expand(batch, M),
            "w_read": torch.softmax(self.w0_read, -1).expand(batch, N),
            "w_write": torch.softmax(self.w0_write, -1).expand(batch, N),
            "h": self.h0.expand(batch, -1),
            "c": self.c0.expand(batch, -1),
        }

    def step(
        self, x: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One time step: x (B, input_size) → logits (B, output_size) and the new state."""
        M = self.cfg.M
        h, c = self.controller(torch.cat([x, state["r"]], -1), (state["h"], state["c"]))
        raw = self.heads(h).clamp(-CLIP, CLIP)  # (B, read_size + write_size)
        rp = split_head(raw[:, : self.read_size], M, writes=False)
        wp = split_head(raw[:, self.read_size :], M, writes=True)
        memory = state["memory"]
        w_read = address(
            memory, state["w_read"], rp["k"], rp["beta"], rp["g"], rp["s"], rp["gamma"]
        )
        r = read(memory, w_read)
        w_write = address(
            memory, state["w_write"], wp["k"], wp["beta"], wp["g"], wp["s"], wp["gamma"]
        )
        memory = write(memory, w_write, wp["e"], wp["a"])
        logits = self.output(torch.cat([h, r], -1))
        state = {"memory": memory, "r": r, "w_read": w_read, "w_write": w_write, "h": h, "c": c}
        return logits, state | {"a": wp["a"]}  # a_t: drawn in Fig. 6, not carried forward

    def forward(
        self, x: torch.Tensor, record: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x (B, T, input_size) → logits (B, T, output_size); with ``record`` also the read
        and write weightings (B, T, N), the add vectors a_t and read vectors r_t (B, T, M),
        for Fig. 6."""
        state = self.initial_state(x.shape[0])
        logits, trace = [], {"w_read": [], "w_write": [], "a": [], "r": []}
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], state)
            logits.append(y)
            if record:
                for key in trace:
                    trace[key].append(state[key])
        out = {k: torch.stack(v, 1) for k, v in trace.items()} if record else {}
        return torch.stack(logits, 1), out

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


@dataclass(frozen=True)
class LSTMConfig:
    input_size: int
    output_size: int
    hidden_size: int = 128
    layers: int = 1

    def __post_init__(self) -> None:
        if min(self.input_size, self.output_size, self.hidden_size, self.layers) < 1:
            raise ValueError("input_size, output_size, hidden_size and layers must be >= 1")


class LSTMBaseline(nn.Module):
    """The paper's baseline: an LSTM network with no external memory, y_t = W h_t + b."""

    def __init__(self, cfg: LSTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(cfg.input_size, cfg.hidden_size, cfg.layers, batch_first=True)
        self.output = nn.Linear(cfg.hidden_size, cfg.output_size)

    def forward(
        self, x: torch.Tensor, record: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h, _ = self.lstm(x)  # (B, T, hidden)
        return self.output(h), {}

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def bits_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy (nats per bit) over the output phase only: logits and target
    (B, T, bits), mask (B, T) true where the machine must emit a target vector."""
    per_bit = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_bit * mask.unsqueeze(-1)).sum() / (mask.sum() * target.shape[-1])
