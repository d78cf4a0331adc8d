"""Pointer Networks. Oriol Vinyals, Meire Fortunato, Navdeep Jaitly, 2015 (NeurIPS 2015),
arXiv:1506.03134.

The idea: when the output of a sequence model is a sequence of *positions of its input*
(the vertices of a convex hull, the order of a tour), let attention itself be the output.
The decoder's distribution over its next output is the softmax of the attention energies
over the input positions, so the output "dictionary" grows with the input and a model
trained on 5-10 points can be run on 50.

Encoder and decoder are LSTMs; e_1 … e_n are the encoder's states over the points
P_1 … P_n (each a 2-d coordinate), d_i the decoder's state at output step i (eq. 3):

    u^i_j = vᵀ tanh(W1 e_j + W2 d_i),   j ∈ (1, …, n)
    p(C_i | C_1, …, C_{i−1}, P) = softmax(u^i)

Both LSTMs read a point as a linear embedding of its coordinates. The decoder reads, at
step i, the point P_{C_{i−1}} it pointed at before (a learned "go" input at i = 1),
starting from the encoder's final state; it is trained by teacher forcing (the true
C_{i−1}) with the cross-entropy of the true C_i, and decoded greedily (or, for TSP, by a
beam search restricted to valid tours, §4.4).

The energies u^i_j are those of Bahdanau et al.'s alignment model: this file uses
``nn.attention.AdditiveAttention.scores`` (its W is the paper's W2, its U is W1, no biases).

Deviations from the paper:
- End of output: the paper appends an end symbol ⇒ to the output vocabulary; here it is a
  learned encoder state e_0 prepended to e_1 … e_n, so "pointing at position 0" ends the
  output (the usual implementation of the paper's end symbol).
- Input embedding: the LSTMs read x_j = W_x P_j + b (a linear layer 2 → hidden, PyTorch's
  default init) instead of the raw coordinates. With the raw 2-d input, the paper's
  U[−0.08, 0.08] init and Adam 1e-3, our CPU-budget training sat on a loss plateau for
  1,000+ steps; with the embedding it left it within 200 steps (README).
- The paper's LSTMs have 256 or 512 units, trained by SGD (lr 1.0, batch 128, weights
  U[−0.08, 0.08], gradients clipped at norm 2) on 1M examples; here smaller LSTMs, Adam, and
  the paper's initialization and clipping, for CPU budgets (experiment.py).
- Greedy decoding for the convex hull, unconstrained (the paper states no constraint for
  the hull): the model may repeat points or stop early, and such outputs are scored as
  failures. For TSP, greedy and beam search both mask already visited points and forbid
  stopping before every point is visited, so every output is a valid tour (the paper
  restricts its TSP beam search to valid tours, §4.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sutskever30.nn.attention import AdditiveAttention

STOP = 0  # position 0 of the pointer's distribution: the end of the output
IGNORE = -1  # target padding


@dataclass(frozen=True)
class PtrNetConfig:
    hidden: int = 128  # LSTM units of encoder and decoder (paper: 256 or 512)
    attn_dim: int = 128  # size of W1 e_j + W2 d_i (paper: the LSTM size)
    init_scale: float = 0.08  # weights U[−init_scale, init_scale], the paper's §4.1

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.attn_dim < 1:
            raise ValueError("hidden and attn_dim must be >= 1")
        if self.init_scale <= 0:
            raise ValueError("init_scale must be > 0")


class PointerNet(nn.Module):
    def __init__(self, cfg: PtrNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(2, cfg.hidden)  # a point's coordinates → the LSTMs' input
        self.encoder = nn.LSTM(cfg.hidden, cfg.hidden, batch_first=True)
        self.decoder = nn.LSTM(cfg.hidden, cfg.hidden, batch_first=True)
        self.pointer = AdditiveAttention(
            query_dim=cfg.hidden, key_dim=cfg.hidden, attn_dim=cfg.attn_dim
        )  # W2 = pointer.W, W1 = pointer.U, v = pointer.v
        self.e_stop = nn.Parameter(torch.empty(cfg.hidden))  # e_0: pointing here ends
        self.go = nn.Parameter(torch.empty(cfg.hidden))  # first decoder input (the paper's ⇒)
        for name, p in self.named_parameters():
            if not name.startswith("embed."):  # the embedding keeps nn.Linear's init
                nn.init.uniform_(p, -cfg.init_scale, cfg.init_scale)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, points: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """points (B, n, 2), zero-padded after ``lengths`` (B,). Returns e (B, 1 + n, H) with
        e_0 the stop state, the mask (B, 1 + n) (True at the stop and the real points),
        W1 e (B, 1 + n, A), and the encoder's final state (h, c) at each set's last point."""
        B, n, _ = points.shape
        x = self.embed(points)  # (B, n, H)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.encoder(packed)
        e, _ = pad_packed_sequence(out, batch_first=True, total_length=n)  # (B, n, H)
        e = torch.cat([self.e_stop.expand(B, 1, -1), e], dim=1)  # (B, 1 + n, H)
        positions = torch.arange(n + 1, device=points.device)
        mask = positions[None, :] <= lengths[:, None].to(points.device)  # (B, 1 + n)
        return {"e": e, "mask": mask, "W1e": self.pointer.project_keys(e), "h": h, "c": c}

    def pointer_logits(self, enc: dict[str, torch.Tensor], d: torch.Tensor) -> torch.Tensor:
        """u^i_j = vᵀ tanh(W1 e_j + W2 d_i) for decoder states d (B, T, H) → (B, T, 1 + n),
        −inf at padding."""
        B, T, H = d.shape
        keys = enc["W1e"][:, None].expand(B, T, -1, -1).reshape(B * T, -1, enc["W1e"].shape[-1])
        mask = enc["mask"][:, None].expand(B, T, -1).reshape(B * T, -1)  # (B·T, 1 + n)
        h = enc["e"].new_empty(0)  # unused: the keys come projected
        u = self.pointer.scores(d.reshape(B * T, H), h, mask=mask, projected_keys=keys)
        return u.view(B, T, -1)

    def decoder_inputs(self, points: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """The decoder's input at each step: ``go``, then the embedded coordinates of the
        previously pointed position ``previous`` (B, T) (1-based into points; the stop reads
        zeros). Returns (B, T + 1, H)."""
        B = points.shape[0]
        padded = torch.cat([points.new_zeros(B, 1, 2), points], dim=1)  # position 0: stop
        index = previous.clamp(min=0)[..., None].expand(-1, -1, 2)
        coords = padded.gather(1, index)  # (B, T, 2)
        return torch.cat([self.go.expand(B, 1, -1), self.embed(coords)], dim=1)

    def forward(
        self, points: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing: targets (B, T) are positions (1-based points, 0 = stop, −1 =
        padding); the decoder reads the true previous output. Returns logits (B, T, 1 + n)."""
        enc = self.encode(points, lengths)
        x = self.decoder_inputs(points, targets[:, :-1])  # (B, T, H)
        d, _ = self.decoder(x, (enc["h"], enc["c"]))  # (B, T, H)
        return self.pointer_logits(enc, d)

    @torch.no_grad()
    def greedy(
        self, points: torch.Tensor, lengths: torch.Tensor, *, max_steps: int, tour: bool = False
    ) -> list[list[int]]:
        """argmax_j u^i_j at each step until the stop is chosen (or ``max_steps``). With
        ``tour``, visited points are masked and the stop is allowed only after every point.
        Returns each set's output as 0-based point indices (the stop not included)."""
        enc = self.encode(points, lengths)
        B = points.shape[0]
        allowed = enc["mask"].clone()
        if tour:
            allowed[:, STOP] = False
        state = (enc["h"], enc["c"])
        x = self.go.expand(B, 1, -1)
        padded = torch.cat([points.new_zeros(B, 1, 2), points], dim=1)
        done = torch.zeros(B, dtype=torch.bool, device=points.device)
        outputs = []
        for _ in range(max_steps):
            d, state = self.decoder(x, state)
            u = self.pointer_logits(enc, d)[:, 0]  # (B, 1 + n)
            if tour:
                u = u.masked_fill(~allowed, float("-inf"))
            choice = u.argmax(-1).masked_fill(done, STOP)  # (B,)
            outputs.append(choice)
            done |= choice == STOP
            if done.all():
                break
            if tour:
                allowed[torch.arange(B), choice] = False
                allowed[:, STOP] = allowed[:, 1:].sum(1) == 0
            x = self.embed(padded[torch.arange(B), choice][:, None])  # (B, 1, H)
        seq = torch.stack(outputs, 1).tolist()
        return [
            [j - 1 for j in row[: row.index(STOP)]] if STOP in row else [j - 1 for j in row]
            for row in seq
        ]

    @torch.no_grad()
    def beam_tours(
        self, points: torch.Tensor, lengths: torch.Tensor, *, beam: int
    ) -> list[list[int]]:
        """Beam search over valid tours only (§4.4): each hypothesis extends to unvisited
        points; after n steps the most probable full tour of each set wins. Returns 0-based
        point indices."""
        enc = self.encode(points, lengths)
        B, n1, _ = enc["e"].shape
        K = beam
        rep = lambda t: t.repeat_interleave(K, 0)  # noqa: E731  (B, …) → (B·K, …)
        enc_k = {k: rep(v) for k, v in enc.items() if k not in ("h", "c")}
        state = (enc["h"].repeat_interleave(K, 1), enc["c"].repeat_interleave(K, 1))
        allowed = enc_k["mask"].clone()
        allowed[:, STOP] = False
        padded = rep(torch.cat([points.new_zeros(B, 1, 2), points], dim=1))  # (B·K, 1 + n, 2)
        score = torch.full((B, K), float("-inf"), device=points.device)
        score[:, 0] = 0.0  # the K copies start identical: keep one
        history = torch.zeros(B * K, 0, dtype=torch.long, device=points.device)
        x = self.go.expand(B * K, 1, -1)
        rows = torch.arange(B * K, device=points.device)
        for _ in range(int(lengths.max())):
            d, state = self.decoder(x, state)
            logp = self.pointer_logits(enc_k, d)[:, 0].masked_fill(~allowed, float("-inf"))
            logp = logp.log_softmax(-1)
            # a finished set (all its points visited) keeps its hypotheses: "extend" by stop
            finished = allowed[:, 1:].sum(1) == 0
            logp[finished] = float("-inf")
            logp[finished, STOP] = 0.0
            total = (score.view(B * K, 1) + logp).view(B, K * n1)
            score, flat = total.topk(K, dim=-1)  # (B, K)
            parent = (flat // n1) + torch.arange(B, device=points.device)[:, None] * K
            choice = (flat % n1).view(-1)
            parent = parent.view(-1)
            history = torch.cat([history[parent], choice[:, None]], dim=1)
            allowed = allowed[parent]
            allowed[rows, choice] = False
            allowed[:, STOP] = False
            state = (state[0][:, parent], state[1][:, parent])
            x = self.embed(padded[rows, choice][:, None])  # (B·K, 1, H)
        best = history.view(B, K, -1)[:, 0]  # topk sorts: hypothesis 0 is the best
        return [[j - 1 for j in row if j != STOP] for row in best.tolist()]


def pointer_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy −log p(C_i | C_<i, P) over the real output steps (targets ≠ −1)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
