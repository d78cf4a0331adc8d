"""The coffee automaton: entropy and apparent complexity of cream mixing into coffee.

Scott Aaronson, Sean M. Carroll, Lauren Ouellette, "Quantifying the Rise and Fall of
Complexity in Closed Systems: The Coffee Automaton", 2014, arXiv:1405.6903.

**Idea.** Entropy of a closed system rises monotonically, but its "interestingness" seems to
rise and then fall. Estimate both with a real compressor: the entropy by the compressed size
of the fine-grained state, the *apparent complexity* by the compressed size of a
coarse-grained state that keeps only the macroscopic picture,

    entropy(x) ≈ |gzip(x)|,      apparent complexity(x) ≈ |gzip(f(x))|.

**Models** (an n × n grid, cream (1) in the top half, coffee (0) in the bottom half):
- *interacting*: at each step a uniformly random pair of horizontally or vertically adjacent
  cells is swapped (a swap of equal cells changes nothing), the symmetric exclusion process;
- *non-interacting*: cream particles are independent random walkers, any number of them
  may share a cell; coffee is an inert background.

**Coarse-graining f** (Sec. 5): each cell is replaced by the average over the g × g square
centred on it (cut off at the walls), then thresholded into 3 buckets (mostly coffee,
mixed, mostly cream). **Adjusted** (Sec. 6): cells near a bucket boundary flicker between
buckets and add spurious "border pixel" complexity, so the average is first thresholded
into 7 finer buckets, every cell within one fine bucket of its row's most common one is
set to that one (the initial state is uniform along rows), and the 7 buckets are then
merged into the 3.

**Later correction** (Aaronson's blog, June 2014): the interacting automaton is *not* an
example of large apparent complexity (a corollary of Liggett's results on the symmetric
exclusion process); the small bump the paper saw (Fig. 10a) is likely left-over border
pixel artifacts. The experiment reports that bump and asserts nothing about it.

Deviations from the paper:
- Interacting model, vectorized: one *sub-step* picks one of the 4 disjoint matchings of the
  grid (horizontal or vertical pairs, even or odd offset) at random and swaps each of its
  pairs with probability 1/2. Swaps of disjoint pairs commute, so this is the paper's move
  applied in batches; a sub-step counts as n(n − 1)/4 of the paper's steps (the expected
  number of swap attempts per pair matches).
- Non-interacting model: one *sweep* moves every particle one cell up, down, left or right
  (a move into a wall is refused), i.e. n²/2 single-particle moves.
- The grain g is not given per grid size in the paper; ours is the odd number nearest n/10
  (at least 3), for both models alike.
- The fine-grained non-interacting state (particle counts) is compressed as one byte per
  cell; binary states and the two bit-planes of a 3-level array are packed 8 cells a byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sutskever30.nn.compression import compressed_bits, pack_bits

BUCKETS = 3  # the paper's thresholding: mostly coffee / mixed / mostly cream
FINE_BUCKETS = 7  # the adjusted method's finer thresholding, merged back into BUCKETS


def initial_grid(n: int) -> np.ndarray:
    """Cream (1) in the top n/2 rows, coffee (0) below. (n, n) uint8"""
    if n < 4 or n % 2:
        raise ValueError(f"the grid side must be even and ≥ 4, got {n}")
    grid = np.zeros((n, n), dtype=np.uint8)
    grid[: n // 2] = 1
    return grid


@dataclass
class InteractingAutomaton:
    """The swap model: a binary grid whose adjacent cells swap at random."""

    grid: np.ndarray  # (n, n) uint8, 1 = cream
    steps: float = 0.0  # elapsed time in the paper's steps (single swap attempts)

    @classmethod
    def start(cls, n: int) -> InteractingAutomaton:
        return cls(initial_grid(n))

    @property
    def n(self) -> int:
        return self.grid.shape[0]

    def sub_step(self, rng: np.random.Generator) -> None:
        """Swap each pair of one random matching with probability 1/2 (in place)."""
        vertical, offset = rng.integers(2), rng.integers(2)
        g = self.grid.T if vertical else self.grid  # view: vertical pairs are rows of .T
        left = g[:, offset : self.n - 1 : 2]  # (n, pairs) left cell of each pair
        right = g[:, offset + 1 : self.n : 2]  # (n, pairs) its right neighbour
        swap = rng.random(left.shape) < 0.5
        a, b = left[swap], right[swap]
        left[swap], right[swap] = b, a
        self.steps += self.n * (self.n - 1) / 4

    def advance(self, rng: np.random.Generator, sub_steps: int) -> None:
        for _ in range(sub_steps):
            self.sub_step(rng)

    def density(self) -> np.ndarray:
        """Cream per cell (0 or 1). (n, n)"""
        return self.grid.astype(np.float64)

    def fine_bytes(self) -> bytes:
        """The fine-grained state, 8 cells a byte."""
        return pack_bits(self.grid)


@dataclass
class NonInteractingAutomaton:
    """The control: cream particles as independent random walkers on the grid."""

    n: int
    pos: np.ndarray  # (particles, 2) int64 row, column of each cream particle
    steps: float = 0.0  # elapsed single-particle moves

    @classmethod
    def start(cls, n: int) -> NonInteractingAutomaton:
        rows, cols = np.nonzero(initial_grid(n))
        return cls(n, np.stack([rows, cols], axis=1).astype(np.int64))

    def sweep(self, rng: np.random.Generator) -> None:
        """Every particle tries one move up, down, left or right; walls refuse it."""
        moves = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])
        new = self.pos + moves[rng.integers(4, size=len(self.pos))]  # (P, 2)
        inside = ((new >= 0) & (new < self.n)).all(axis=1)
        self.pos[inside] = new[inside]
        self.steps += len(self.pos)

    def advance(self, rng: np.random.Generator, sweeps: int) -> None:
        for _ in range(sweeps):
            self.sweep(rng)

    def counts(self) -> np.ndarray:
        """Particles per cell. (n, n) int64"""
        flat = self.pos[:, 0] * self.n + self.pos[:, 1]
        return np.bincount(flat, minlength=self.n * self.n).reshape(self.n, self.n)

    def density(self) -> np.ndarray:
        """Cream per cell (a count; 1 everywhere in the initial top half). (n, n)"""
        return self.counts().astype(np.float64)

    def fine_bytes(self) -> bytes:
        """The fine-grained state, one byte (the count, at most 255) a cell."""
        return np.minimum(self.counts(), 255).astype(np.uint8).tobytes()


def relaxation_time(model: str, n: int) -> float:
    """Decay time of the slowest density mode, cos(πy/n), in the model's own units.

    A cream unit's vertical displacement has variance v per unit of time, so the mode decays
    as exp(−(π/n)² v t / 2), with time constant τ = 2n²/(π² v). Interacting: a sub-step
    moves a cell's content vertically with probability 1/2 · 1/2, v = 1/4 (sub-steps);
    non-interacting: a sweep moves each particle vertically with probability 1/2, v = 1/2
    (sweeps). The symmetric exclusion process has the density dynamics of independent walkers.
    """
    v = {"interacting": 0.25, "non_interacting": 0.5}[model]
    return 2 * n**2 / (np.pi**2 * v)


def grain_for(n: int) -> int:
    """Our grain size g for an n × n grid: the odd number nearest n/10, at least 3."""
    g = max(3, round(n / 10))
    return g if g % 2 else g + 1


def window_mean(density: np.ndarray, g: int) -> np.ndarray:
    """Mean of ``density`` over the g × g square centred on each cell, cut off at the walls
    (the mean over the cells that exist). (n, n) → (n, n)"""
    if g < 1 or g % 2 == 0:
        raise ValueError(f"the grain g must be odd and ≥ 1, got {g}")
    n_rows, n_cols = density.shape
    h = g // 2
    # Summed-area table with a zero row/column in front: S[i, j] = sum of density[:i, :j].
    s = np.zeros((n_rows + 1, n_cols + 1))
    s[1:, 1:] = density.cumsum(0).cumsum(1)
    r0 = np.clip(np.arange(n_rows) - h, 0, n_rows)  # (n,) first row of each window
    r1 = np.clip(np.arange(n_rows) + h + 1, 0, n_rows)  # (n,) one past its last row
    c0 = np.clip(np.arange(n_cols) - h, 0, n_cols)
    c1 = np.clip(np.arange(n_cols) + h + 1, 0, n_cols)
    total = s[r1][:, c1] - s[r0][:, c1] - s[r1][:, c0] + s[r0][:, c0]  # (n, n)
    area = np.outer(r1 - r0, c1 - c0)
    return total / area


def threshold(mean: np.ndarray, buckets: int) -> np.ndarray:
    """Equal-width buckets of [0, 1]: bucket k holds k/b ≤ mean < (k+1)/b; means ≥ 1 (several
    particles a cell) go to the top bucket. (n, n) uint8 values 0..buckets−1"""
    return np.clip(np.floor(mean * buckets), 0, buckets - 1).astype(np.uint8)


def row_majority(levels: np.ndarray, tolerance: int = 1) -> np.ndarray:
    """Set every cell within ``tolerance`` levels of its row's most common level to that
    level (the adjustment of Sec. 6). (n, n) → (n, n)"""
    n_levels = int(levels.max()) + 1
    rows = np.arange(levels.shape[0])[:, None]
    hist = np.zeros((levels.shape[0], n_levels), dtype=np.int64)
    np.add.at(hist, (np.broadcast_to(rows, levels.shape), levels), 1)
    mode = hist.argmax(axis=1)[:, None].astype(levels.dtype)  # (n, 1) ties: the lowest
    near = np.abs(levels.astype(np.int64) - mode) <= tolerance
    return np.where(near, mode, levels)


def coarse_grain(density: np.ndarray, g: int, *, adjusted: bool) -> np.ndarray:
    """The paper's f: g × g window means thresholded into 3 buckets, or (``adjusted``)
    into 7 buckets, snapped to the row majority and merged into 3. (n, n) uint8 0..2"""
    mean = window_mean(density, g)
    if not adjusted:
        return threshold(mean, BUCKETS)
    fine = row_majority(threshold(mean, FINE_BUCKETS))
    # Fine bucket k has centre (k + ½)/7; it joins the coarse bucket holding that centre.
    merge = np.floor((np.arange(FINE_BUCKETS) + 0.5) / FINE_BUCKETS * BUCKETS).astype(np.uint8)
    return merge[fine]


def coarse_bytes(levels: np.ndarray) -> bytes:
    """A 3-level array as its two bit-planes (level ≥ 1, level ≥ 2), 8 cells a byte."""
    return pack_bits(np.stack([levels >= 1, levels >= 2]))


def entropy_bits(state: InteractingAutomaton | NonInteractingAutomaton) -> int:
    """Entropy estimate: gzip size of the fine-grained state, in bits."""
    return compressed_bits(state.fine_bytes(), "zlib")


def complexity_bits(density: np.ndarray, g: int, *, adjusted: bool) -> int:
    """Apparent complexity: gzip size of the coarse-grained state, in bits."""
    return compressed_bits(coarse_bytes(coarse_grain(density, g, adjusted=adjusted)), "zlib")
