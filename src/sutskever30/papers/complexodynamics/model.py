"""The First Law of Complexodynamics (Scott Aaronson, 2011), measured on elementary
cellular automata.

Scott Aaronson, "The First Law of Complexodynamics", blog post, Shtetl-Optimized, 2011
(https://scottaaronson.blog/?p=762). No arXiv id.

**Idea.** In a closed system entropy rises monotonically while the "complextropy" of its state
rises and then falls. A deterministic system is a sharp test of what a compressor can tell:
the state after t steps is printed by a tiny program (the rule, the initial state and t), so

    K(x_t) ≤ K(x_0) + K(t) + O(1) ≤ K(x_0) + log2 t + 2 log2 log2 t + O(1),

yet for a chaotic rule a real compressor C finds nothing to exploit and |C(x_t)| climbs to
the size of an incompressible string. Compressor-based estimates of K can be wildly loose.

**System.** An elementary cellular automaton (Wolfram 1983): a ring of n cells x_i ∈ {0, 1},
updated all at once by

    x_i(t+1) = bit number (4·x_{i-1}(t) + 2·x_i(t) + x_{i+1}(t)) of the rule number,

started from one live cell. Rule 30 is chaotic (its centre column is OEIS A051023, used as
a random number generator); rule 90 is XOR of the two neighbours, Pascal's triangle mod 2.

**Measures.** The compressed size |C(x_t)| of the state packed 8 cells a byte, for zlib, bz2
and lzma (:mod:`sutskever30.nn.compression`); the incompressible bound n bits; and the
length of an explicit generating program: :data:`GENERATOR` (a complete Python program
that prints x_t) plus the Elias-δ codes of its three arguments rule, n and t. The program is
the "O(1) + log t" of the bound made concrete.

Deviations from the paper:
- The blog post gives the argument, not an experiment; the automaton, sizes and thresholds
  are ours (PAPERS.md asks for rule 30 from one cell).
- A ring (periodic boundary) of fixed width n, so that the state has a fixed incompressible
  bound; the pattern from one cell wraps around after n/2 steps.
- "Complextropy" itself (a resource-bounded sophistication) is not estimated here; the
  coffee automaton paper (``coffee_automaton``) takes that up with coarse-graining.
"""

from __future__ import annotations

import numpy as np

from sutskever30.nn.compression import COMPRESSORS, compressed_bits, pack_bits

# A complete program that prints the state x_t of elementary rule r on a ring of n cells
# started from one live cell at n // 2, as a string of 0s and 1s. Its length in bits plus the
# codes of (r, n, t) bounds K(x_t) from above. ``x[i + 1 - n]`` is the right neighbour on
# the ring (a negative index wraps), ``x[i - 1]`` the left one.
GENERATOR = """import sys
r, n, t = map(int, sys.argv[1:])
x = [0] * n
x[n // 2] = 1
for _ in range(t):
    x = [r >> (4 * x[i - 1] + 2 * x[i] + x[i + 1 - n]) & 1 for i in range(n)]
print("".join(map(str, x)))
"""


def rule_table(rule: int) -> np.ndarray:
    """Wolfram's code: entry k (k = 4·left + 2·centre + right) is bit k of ``rule``. (8,)"""
    if not 0 <= rule <= 255:
        raise ValueError(f"an elementary rule is a number in 0..255, got {rule}")
    return ((rule >> np.arange(8)) & 1).astype(np.uint8)


def single_cell(width: int) -> np.ndarray:
    """The initial state x_0: one live cell at ``width // 2`` on an empty ring. (width,)"""
    if width < 3:
        raise ValueError(f"a ring needs at least 3 cells, got {width}")
    x = np.zeros(width, dtype=np.uint8)
    x[width // 2] = 1
    return x


def step(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """One synchronous update of every cell of the ring. (n,) → (n,)"""
    neighbourhood = 4 * np.roll(x, 1) + 2 * x + np.roll(x, -1)  # (n,) values 0..7
    return np.take(table, neighbourhood)  # twice as fast as table[neighbourhood]


def states_at(rule: int, width: int, times: list[int]) -> np.ndarray:
    """The states x_t for the given (sorted, distinct) times, from one live cell.
    (len(times), width)"""
    if list(times) != sorted(set(times)) or (times and times[0] < 0):
        raise ValueError("times must be distinct, sorted and ≥ 0")
    table = rule_table(rule)
    out = np.empty((len(times), width), dtype=np.uint8)
    x, t = single_cell(width), 0
    for k, target in enumerate(times):
        for _ in range(target - t):
            x = step(x, table)
        t = target
        out[k] = x
    return out


def space_time(rule: int, width: int, steps: int) -> np.ndarray:
    """The whole history x_0 … x_steps (rows are times). (steps + 1, width)"""
    return states_at(rule, width, list(range(steps + 1)))


def elias_delta_bits(n: int) -> int:
    """Length of the Elias-δ code of an integer n ≥ 1: ⌊log2 n⌋ + 2⌊log2(⌊log2 n⌋ + 1)⌋ + 1,
    a self-delimiting code of log2 n + O(log log n) bits."""
    if n < 1:
        raise ValueError("Elias-δ codes integers ≥ 1")
    length = n.bit_length()  # ⌊log2 n⌋ + 1
    return (length - 1) + 2 * (length.bit_length() - 1) + 1


def program_bits(rule: int, width: int, t: int) -> int:
    """Bits of an explicit program printing x_t: :data:`GENERATOR` (8 bits a character)
    and its arguments r, n, t each as an Elias-δ code (t + 1 and r + 1, so that 0 is
    codable). Grows as log2 t: the "K(x_0) + log t + O(1)" of the bound."""
    args = elias_delta_bits(rule + 1) + elias_delta_bits(width) + elias_delta_bits(t + 1)
    return 8 * len(GENERATOR.encode()) + args


def compressed_sizes(state: np.ndarray) -> dict[str, int]:
    """|C(x)| in bits for every compressor of :data:`COMPRESSORS` (cells packed 8 a byte)."""
    data = pack_bits(state)
    return {name: compressed_bits(data, name) for name in COMPRESSORS}
