"""Neural Message Passing for Quantum Chemistry.

Gilmer, Schoenholz, Riley, Vinyals, Dahl, 2017 (ICML), arXiv:1704.01212.

**Idea.** Many graph networks for molecules are one scheme, the message passing neural
network (MPNN): for T steps every atom v sums messages from its neighbours w and updates its
state; a readout then maps the set of final states to the molecule's property:

    m_v^{t+1} = Σ_{w ∈ N(v)} M_t(h_v^t, h_w^t, e_vw)                        (1)
    h_v^{t+1} = U_t(h_v^t, m_v^{t+1})                                         (2)
    ŷ = R({h_v^T | v ∈ G})                                                     (3)

The paper's best variant (enn-s2s) takes

- the *edge network* message M(h_v, h_w, e_vw) = A(e_vw) h_w, A a neural network mapping the
  edge's feature vector to a d×d matrix (Sec. 5.1);
- the GRU update h_v^{t+1} = GRU(h_v^t, m_v^{t+1}) of gated graph networks, with one set of
  weights for all T steps (weight tying; the message weights are tied too);
- the *set2set* readout (Vinyals et al. 2015, "Order Matters"): M steps of an LSTM whose
  query q_t attends over the node set, a_v = softmax_v(x_v · q_t), r_t = Σ_v a_v x_v,
  q*_t = [q_t, r_t]; the last q* (2d numbers, independent of the order of the atoms) goes
  through a small network to ŷ. Its input set is a linear projection of the tuples
  (h_v^T, x_v) (Sec. 5.3).

The initial state h_v^0 is the atom's input feature vector x_v padded with zeros to d.

Baselines of the experiment, in the same file so they share the graph batch format:
``GCNSum`` (Kipf & Welling 2017: H' = ReLU(D^-½ (A + I) D^-½ H W), T layers of their own,
no edge features, sum readout) and ``FingerprintMLP`` (a two-hidden-layer MLP on Morgan
fingerprint bits).

Deviations from the paper:
- Graph-only setting on organic molecules (FreeSolv, aqueous solubility) instead of QM9:
  no distances, no explicit hydrogens (their count is an atom feature), no virtual edges
  or master node. Edge features are the four bond types only, so A(e_vw) takes at most four
  values per molecule; the message sum is computed per distinct edge vector (exact, see
  ``EdgeNetwork``).
- The atomic number enters divided by 10 (so that it has the scale of the other inputs).
- One graph-level target per model, smaller widths (d = 64 at quick), Adam with a constant
  learning rate and selection of the epoch on validation instead of the paper's random
  hyperparameter search and linear learning-rate decay.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GraphBatch:
    """Molecules as one disjoint graph: B graphs, N atoms, E directed edges."""

    x: torch.Tensor  # (N, node_dim) atom features
    edge_index: torch.Tensor  # (2, E) int64: row 0 the sender w, row 1 the receiver v
    edge_attr: torch.Tensor  # (E, edge_dim) bond features
    batch: torch.Tensor  # (N,) int64: the graph each atom belongs to
    n_graphs: int

    def permute_atoms(self, perm: torch.Tensor) -> GraphBatch:
        """The same molecules with atom ``perm[i]`` renumbered as atom i."""
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(len(perm))
        return GraphBatch(
            x=self.x[perm],
            edge_index=inverse[self.edge_index],
            edge_attr=self.edge_attr,
            batch=self.batch[perm],
            n_graphs=self.n_graphs,
        )


def sum_by(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """out[k] = Σ_{i: index[i] = k} values[i]; (size, *values.shape[1:])."""
    out = values.new_zeros((size, *values.shape[1:]))
    return out.index_add_(0, index, values)


def distinct_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the distinct rows of ``rows`` (K, F), each row's index among them (R,)), as
    ``torch.unique(rows, dim=0, return_inverse=True)`` computes them, by stable sorts column
    by column (``unique`` with ``dim`` compares the rows one pair at a time)."""
    order = torch.arange(len(rows))
    for j in reversed(range(rows.shape[1])):
        order = order[torch.sort(rows[order, j], stable=True).indices]
    ordered = rows[order]
    first = torch.ones(len(rows), dtype=torch.bool)  # where a new distinct row starts
    first[1:] = (ordered[1:] != ordered[:-1]).any(dim=1)
    inverse = torch.empty_like(order)
    inverse[order] = torch.cumsum(first, 0) - 1
    return ordered[first], inverse


def softmax_by(scores: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Softmax of ``scores`` (N,) within each group of equal ``index`` (N,)."""
    top = scores.new_full((size,), float("-inf")).scatter_reduce(
        0, index, scores, reduce="amax", include_self=True
    )
    exp = (scores - top[index]).exp()
    return exp / sum_by(exp, index, size)[index]


class EdgeNetwork(nn.Module):
    """The edge network message summed over neighbours: m_v = Σ_w A(e_vw) h_w, with
    A: R^edge_dim → R^{d×d} a one-hidden-layer ReLU network (Gilmer et al., Sec. 5.1).

    A(e) is evaluated once per distinct edge vector ε_k, and since A(e_vw) h_w is linear in
    h_w, m_v = Σ_k A(ε_k) s_vk with s_vk = Σ_{w: e_vw = ε_k} h_w: the same sum as edge by
    edge, at N·K·d² instead of E·d² operations on E×d×d memory (K = 4 bond types here)."""

    def __init__(self, *, edge_dim: int, d: int, hidden: int) -> None:
        super().__init__()
        self.d = d
        self.A = nn.Sequential(nn.Linear(edge_dim, hidden), nn.ReLU(), nn.Linear(hidden, d * d))

    def matrices(self, edge_attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A(ε_k) for the K distinct edge vectors (K, d, d), each edge's k (E,))."""
        distinct, kind = distinct_rows(edge_attr)
        return self.A(distinct).view(-1, self.d, self.d), kind

    def forward(
        self,
        h: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        matrices: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """m (N, d) from node states h (N, d); ``matrices`` reuses A computed before."""
        A, kind = self.matrices(edge_attr) if matrices is None else matrices
        n, k = h.shape[0], A.shape[0]
        w, v = edge_index
        s = sum_by(h[w], v * k + kind, n * k).view(n, k * self.d)  # s_vk, (N, K·d)
        return s @ A.transpose(1, 2).reshape(k * self.d, self.d)  # Σ_k A_k s_vk, (N, d)


class Set2Set(nn.Module):
    """Order-invariant readout of a set of vectors (Vinyals et al. 2015, Sec. 4.2): for M
    steps, q_t = LSTM(q*_{t-1}), a_v = softmax_v(x_v · q_t), r_t = Σ_v a_v x_v,
    q*_t = [q_t, r_t], starting from q*_0 = 0. Returns q*_M, (B, 2d)."""

    def __init__(self, *, d: int, steps: int) -> None:
        super().__init__()
        self.d, self.steps = d, steps
        self.lstm = nn.LSTMCell(2 * d, d)

    def forward(self, x: torch.Tensor, batch: torch.Tensor, n_graphs: int) -> torch.Tensor:
        q_star = x.new_zeros(n_graphs, 2 * self.d)
        state = (x.new_zeros(n_graphs, self.d), x.new_zeros(n_graphs, self.d))
        for _ in range(self.steps):
            q, c = self.lstm(q_star, state)  # (B, d)
            state = (q, c)
            a = softmax_by((x * q[batch]).sum(-1), batch, n_graphs)  # (N,) attention
            r = sum_by(a[:, None] * x, batch, n_graphs)  # (B, d)
            q_star = torch.cat([q, r], dim=-1)  # (B, 2d)
        return q_star


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MPNN(nn.Module):
    """enn-s2s: edge-network messages, one GRU for all T updates, set2set readout; ŷ (B,)."""

    def __init__(
        self,
        *,
        node_dim: int,
        edge_dim: int,
        d: int = 64,
        T: int = 3,
        M: int = 3,
        edge_hidden: int = 32,
        readout_hidden: int = 128,
    ) -> None:
        super().__init__()
        if node_dim > d:
            raise ValueError(f"d = {d} must be ≥ the {node_dim} atom features (h^0 pads x_v)")
        self.d, self.T = d, T
        self.message = EdgeNetwork(edge_dim=edge_dim, d=d, hidden=edge_hidden)
        self.update = nn.GRUCell(d, d)  # U: the same weights at every step t
        self.project = nn.Linear(d + node_dim, d)  # the tuples (h_v^T, x_v) → set2set
        self.readout = Set2Set(d=d, steps=M)
        self.output = mlp([2 * d, readout_hidden, 1])

    def node_states(self, g: GraphBatch) -> torch.Tensor:
        """h^T (N, d) after T steps of (1) and (2) from h^0 = x padded with zeros."""
        h = F.pad(g.x, (0, self.d - g.x.shape[1]))  # (N, d)
        matrices = self.message.matrices(g.edge_attr)  # A is the same at every step
        for _ in range(self.T):
            m = self.message(h, g.edge_index, g.edge_attr, matrices)  # (N, d)
            h = self.update(m, h)
        return h

    def forward(self, g: GraphBatch) -> torch.Tensor:
        tuples = self.project(torch.cat([self.node_states(g), g.x], dim=-1))  # (N, d)
        return self.output(self.readout(tuples, g.batch, g.n_graphs)).squeeze(-1)  # (B,)


class GCNSum(nn.Module):
    """Graph convolutional baseline (Kipf & Welling 2017) with a sum readout; ŷ (B,).
    Each layer: H' = ReLU(Â H W), Â = D^-½ (A + I) D^-½ over the bond graph (bond types
    unused); ``layers`` untied layers; the readout sums the final atom states."""

    def __init__(
        self, *, node_dim: int, d: int = 64, layers: int = 3, readout_hidden: int = 128
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(node_dim, d)
        self.layers = nn.ModuleList(nn.Linear(d, d) for _ in range(layers))
        self.output = mlp([d, readout_hidden, 1])

    def node_states(self, g: GraphBatch) -> torch.Tensor:
        n = g.x.shape[0]
        w, v = g.edge_index
        degree = 1.0 + sum_by(torch.ones_like(v, dtype=g.x.dtype), v, n)  # (N,) with self-loop
        norm = (degree[w] * degree[v]).rsqrt()[:, None]  # (E, 1)
        h = self.embed(g.x)  # (N, d)
        for layer in self.layers:
            hw = layer(h)
            h = F.relu(hw / degree[:, None] + sum_by(norm * hw[w], v, n))
        return h

    def forward(self, g: GraphBatch) -> torch.Tensor:
        pooled = sum_by(self.node_states(g), g.batch, g.n_graphs)  # (B, d)
        return self.output(pooled).squeeze(-1)


class FingerprintMLP(nn.Module):
    """Baseline on Morgan fingerprint bits: two ReLU hidden layers; ŷ (B,)."""

    def __init__(self, *, n_bits: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = mlp([n_bits, hidden, hidden, 1])

    def forward(self, fingerprints: torch.Tensor) -> torch.Tensor:
        return self.net(fingerprints).squeeze(-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
