"""Kolmogorov complexity, estimated three ways: real compressors (upper bounds), the coding
theorem method on all small Turing machines (short strings), and the normalized compression
distance (similarity of long texts).

Shen, Uspensky, Vereshchagin, *Kolmogorov Complexity and Algorithmic Randomness*, AMS 2017
(Russian edition 2013; https://www.lirmm.fr/~ashen/kolmbook-eng-scan.pdf). The estimators
follow Soler-Toscano, Zenil, Delahaye, Gauvrit 2014, "Calculating Kolmogorov complexity
from the output frequency distributions of small Turing machines", PLoS ONE 9(5): e96223
(arXiv:1211.1302) for the coding theorem method; Zenil et al. 2018, "A decomposition method
for global evaluation of Shannon entropy and local estimations of algorithmic complexity",
Entropy 20(8): 605 (arXiv:1609.00110) for the block decomposition; Cilibrasi & Vitányi
2005, "Clustering by compression", IEEE Trans. Inf. Theory 51(4) (arXiv:cs/0312044) for NCD.

The idea: K(x), the length of the shortest program printing x, is uncomputable, but it can
be bounded from above by any real compressor C, and approximated from the other side by the
algorithmic probability m(x) of x under a universal machine fed random programs.

Key equations (book, chapters 1 and 4):

- Upper bound: K(x) ≤ |C(x)| + O(1) (the decompressor and C(x) print x).
- Counting: there are fewer than 2^(n−c) programs shorter than n − c, so fewer than
  2^(n−c) strings of length n have K(x) < n − c; a fraction below 2^(−c) of them. For a
  compressor whose outputs are self-delimiting (a prefix-free set), Kraft's inequality
  gives the same bound for C(x) ≤ n − c.
- Coding theorem: K(x) = −log2 m(x) + O(1). The coding theorem method (CTM) replaces m by
  D(n), the output distribution of all n-state 2-symbol Turing machines (Radó's busy-beaver
  formalism) started on a blank tape of 0s and on one of 1s:
      D(n)(s) = |{(T, b) : T run on blank b halts with output s}| / |{(T, b) : T(b) halts}|,
      K_m(s)  = −log2 D(n)(s).
  There are (4n + 2)^(2n) machines: each of the 2n (state, read symbol) pairs writes 0 or 1
  and moves left or right into one of n states (4n choices), or writes 0 or 1 and halts
  (2 choices). The output is the contiguous block of cells the head has visited. A machine
  that has not halted after S(n) steps (the busy-beaver time) never halts.
- Block decomposition (BDM): for a string longer than the CTM table covers, cut it into
  blocks r_i of the CTM length, n_i copies each:  BDM(s) = Σ_i CTM(r_i) + log2(n_i).
- NCD(x, y) = (C(xy) − min(C(x), C(y))) / max(C(x), C(y)) (``sutskever30.nn.compression``).

Deviations from the paper (README: Deviations):
- CTM is computed exactly, by enumerating every machine, only for n ≤ 3 (10,000 machines
  for n = 2, 7,529,536 for n = 3); the paper enumerates n = 4 and n = 5 (the latter with
  symmetry reductions and a runtime cutoff, busy-beaver times for n = 5 being unknown).
  Both blanks are run explicitly rather than derived by symmetry, so that the symmetries
  (complement, reversal) are a check of the simulator rather than an assumption.
- BDM's leftover (when the length is not a multiple of the block) is one shorter block
  (the "recursive" boundary rule of the BDM paper), not dropped.
- Clustering (in ``experiments/ncd.py``) is SciPy's average-linkage hierarchical
  clustering of the NCD matrix, not Cilibrasi & Vitányi's quartet-tree method.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sutskever30.nn.compression import COMPRESSORS, compressed_bits, ncd, pack_bits

# S(n) and Σ(n): the most steps a halting n-state 2-symbol machine makes from a blank tape
# (the halting transition counted as a step) and the most 1s it leaves (Radó 1962; Lin &
# Radó 1965; Brady 1983).
BUSY_BEAVER_STEPS = {1: 1, 2: 6, 3: 21, 4: 107}
BUSY_BEAVER_ONES = {1: 1, 2: 4, 3: 6, 4: 13}
LEFT, RIGHT, STAY = -1, 1, 0
HALT = 0  # the halting state; working states are 1..n
MAX_OUTPUT_BITS = 62  # an output string is coded in one int64 (see ``string_code``)


# -- compressor upper bounds and the counting argument ---------------------------------------


def best_compressed_bits(data: bytes, compressors: Sequence[str] = tuple(COMPRESSORS)) -> int:
    """min over ``compressors`` of |C(data)| in bits: the tightest of these upper bounds on
    K(data) (up to the constant for the decompressor)."""
    return min(compressed_bits(data, name) for name in compressors)


def compression_ratios(data: bytes) -> dict[str, float]:
    """|C(data)| / |data| for each compressor (≥ 1 means no compression at all)."""
    return {name: compressed_bits(data, name) / (8 * len(data)) for name in COMPRESSORS}


def compression_savings(
    strings: np.ndarray,
    compressors: Sequence[str] = tuple(COMPRESSORS),
    on_string: Callable[[int], object] | None = None,
) -> np.ndarray:
    """n − |C(x)| in bits for each row x of a (N, n) 0/1 array, C the best of
    ``compressors`` on x packed 8 bits a byte: by how many bits each n-bit string was
    shortened (negative: it grew). ``on_string(1)`` after each string."""
    n = strings.shape[1]
    savings = np.empty(strings.shape[0], dtype=np.int64)
    for i, x in enumerate(strings):
        savings[i] = n - best_compressed_bits(pack_bits(x), compressors)
        if on_string is not None:
            on_string(1)
    return savings


def fraction_compressible(savings: np.ndarray, cs: Sequence[int]) -> np.ndarray:
    """For each c, the fraction of strings compressed by at least c bits (C(x) ≤ n − c); the
    counting argument bounds it by 2^(−c) for uniformly random strings."""
    return np.array([float(np.mean(savings >= c)) for c in cs])


# -- Turing machines of the busy-beaver formalism --------------------------------------------


def n_machines(n_states: int) -> int:
    """(4n + 2)^(2n): the size of the space (n, 2) of n-state 2-symbol machines."""
    return (4 * n_states + 2) ** (2 * n_states)


@dataclass(frozen=True)
class Machines:
    """Transition tables of M machines with n states, each (M, n, 2), indexed by
    [machine, state − 1, read symbol]: the symbol written, the head move (−1, +1, or 0
    when halting) and the next state (1..n, or 0 = halt)."""

    write: np.ndarray
    move: np.ndarray
    next_state: np.ndarray

    @property
    def n_states(self) -> int:
        return self.write.shape[1]

    def __len__(self) -> int:
        return self.write.shape[0]


def machines(n_states: int, start: int = 0, stop: int | None = None) -> Machines:
    """Machines number ``start`` .. ``stop − 1`` of (n, 2), in the order of their index
    written in base 4n + 2: digit 2(q − 1) + r is the transition of state q reading r. A
    digit t < 4n writes t mod 2, moves right if ⌊t/2⌋ is odd (else left) and goes to state
    ⌊t/4⌋ + 1; t = 4n + w writes w and halts."""
    if n_states < 1:
        raise ValueError("n_states must be ≥ 1")
    total = n_machines(n_states)
    stop = total if stop is None else stop
    if not 0 <= start <= stop <= total:
        raise ValueError(f"need 0 ≤ start ≤ stop ≤ {total}")
    base = 4 * n_states + 2
    index = np.arange(start, stop, dtype=np.int64)
    digits = np.empty((index.size, 2 * n_states), dtype=np.int64)  # (M, 2n)
    for k in range(2 * n_states):
        index, digits[:, k] = np.divmod(index, base)
    t = digits.reshape(-1, n_states, 2)  # (M, n, 2): [machine, state − 1, read]
    halting = t >= 4 * n_states
    return Machines(
        write=np.where(halting, t - 4 * n_states, t % 2).astype(np.uint8),
        move=np.where(halting, STAY, np.where((t // 2) % 2 == 1, RIGHT, LEFT)).astype(np.int8),
        next_state=np.where(halting, HALT, t // 4 + 1).astype(np.int8),
    )


def string_code(bits: str) -> int:
    """A binary string as one integer: ``1`` followed by its bits, so that strings of
    different lengths ("0", "00") get different codes."""
    if set(bits) - {"0", "1"}:
        raise ValueError(f"not a binary string: {bits!r}")
    return int("1" + bits, 2)


def code_string(code: int) -> str:
    """The inverse of :func:`string_code`."""
    return bin(int(code))[3:]


@dataclass(frozen=True)
class Runs:
    """What M machines did from one blank tape: whether each halted, after how many steps
    (the halting transition counted), its output (:func:`string_code` of the visited cells;
    −1 if it did not halt) and how many 1s it left on the tape."""

    halted: np.ndarray  # (M,) bool
    steps: np.ndarray  # (M,) int
    output: np.ndarray  # (M,) int64
    ones: np.ndarray  # (M,) int


def run_machines(tm: Machines, *, blank: int, max_steps: int) -> Runs:
    """Run every machine of ``tm`` from state 1 on a tape of ``blank`` for up to
    ``max_steps`` steps, all at once: each step gathers the transition of every machine
    still running, writes, moves, and retires the machines that halted."""
    if blank not in (0, 1):
        raise ValueError("blank must be 0 or 1")
    m = len(tm)
    width = 2 * max_steps + 1  # the head moves at most max_steps cells either way
    tape = np.full((m, width), blank, dtype=np.uint8)  # (M, W)
    pos = np.full(m, max_steps, dtype=np.int64)
    lo, hi = pos.copy(), pos.copy()  # the visited cells are lo..hi
    state = np.ones(m, dtype=np.int64)
    steps = np.zeros(m, dtype=np.int64)
    halted = np.zeros(m, dtype=bool)
    active = np.arange(m)  # machines still running
    for t in range(1, max_steps + 1):
        if active.size == 0:
            break
        p, q = pos[active], state[active] - 1
        read = tape[active, p]
        tape[active, p] = tm.write[active, q, read]
        p = p + tm.move[active, q, read]
        pos[active] = p
        lo[active] = np.minimum(lo[active], p)
        hi[active] = np.maximum(hi[active], p)
        state[active] = tm.next_state[active, q, read]
        stop = state[active] == HALT
        halted[active[stop]] = True
        steps[active[stop]] = t
        active = active[~stop]
    done = np.flatnonzero(halted)
    length = hi[done] - lo[done] + 1
    if np.any(length > MAX_OUTPUT_BITS):
        raise ValueError(f"an output is longer than {MAX_OUTPUT_BITS} cells")
    cols = np.arange(width)[None, :]
    inside = (cols >= lo[done, None]) & (cols <= hi[done, None])  # (H, W)
    shift = np.where(inside, hi[done, None] - cols, 0)
    value = np.where(inside, tape[done].astype(np.int64) << shift, 0).sum(axis=1)
    output = np.full(m, -1, dtype=np.int64)
    output[done] = value | (np.int64(1) << length)
    return Runs(halted=halted, steps=steps, output=output, ones=tape.sum(axis=1, dtype=np.int64))


@dataclass(frozen=True)
class OutputDistribution:
    """D(n): how many halting (machine, blank) runs of (n, 2) produced each string, with the
    statistics the busy-beaver values can be checked against."""

    n_states: int
    codes: np.ndarray  # (S,) sorted string codes
    counts: np.ndarray  # (S,) runs producing each string
    n_runs: int  # machines × blanks
    n_halting: int
    max_steps_halting: int  # the longest halting run found (S(n) if the search is right)
    max_ones: int  # the most 1s a halting run from the 0-tape left (Σ(n))

    @property
    def probability(self) -> np.ndarray:
        return self.counts / self.n_halting

    @property
    def complexity(self) -> np.ndarray:
        """K_m(s) = −log2 D(n)(s) in bits, for each string of :attr:`codes`."""
        return -np.log2(self.probability)

    def ctm(self) -> dict[str, float]:
        """{string: K_m(string)} for every string some machine produced."""
        return {code_string(c): float(k) for c, k in zip(self.codes, self.complexity, strict=True)}

    def complete_length(self) -> int:
        """The largest L such that every string of length 1..L was produced (the CTM table
        is complete up to L; the paper's D(5) is complete up to 12)."""
        lengths = np.array([len(code_string(c)) for c in self.codes])
        length = 0
        while np.sum(lengths == length + 1) == 2 ** (length + 1):
            length += 1
        return length


def output_distribution(
    n_states: int,
    *,
    blanks: Sequence[int] = (0, 1),
    chunk: int = 500_000,
    on_chunk: Callable[[int], object] | None = None,
) -> OutputDistribution:
    """Enumerate all of (n, 2), run each machine from each blank for S(n) steps and count
    the outputs of the halting runs (vectorized over ``chunk`` machines at a time;
    ``on_chunk(k)`` after each chunk of k machines)."""
    if n_states not in BUSY_BEAVER_STEPS:
        raise ValueError(f"busy-beaver times are known for n in {sorted(BUSY_BEAVER_STEPS)}")
    max_steps = BUSY_BEAVER_STEPS[n_states]
    counts: Counter[int] = Counter()
    n_halting = max_run = max_ones = 0
    total = n_machines(n_states)
    for start in range(0, total, chunk):
        tm = machines(n_states, start, min(start + chunk, total))
        for blank in blanks:
            runs = run_machines(tm, blank=blank, max_steps=max_steps)
            codes, k = np.unique(runs.output[runs.halted], return_counts=True)
            counts.update(dict(zip(codes.tolist(), k.tolist(), strict=True)))
            n_halting += int(runs.halted.sum())
            if runs.halted.any():
                max_run = max(max_run, int(runs.steps[runs.halted].max()))
                if blank == 0:
                    max_ones = max(max_ones, int(runs.ones[runs.halted].max()))
        if on_chunk is not None:
            on_chunk(len(tm))
    codes = np.array(sorted(counts), dtype=np.int64)
    return OutputDistribution(
        n_states=n_states,
        codes=codes,
        counts=np.array([counts[c] for c in codes.tolist()], dtype=np.int64),
        n_runs=total * len(blanks),
        n_halting=n_halting,
        max_steps_halting=max_run,
        max_ones=max_ones,
    )


def complement(bits: str) -> str:
    return bits.translate(str.maketrans("01", "10"))


def symmetry_gaps(ctm: Mapping[str, float]) -> dict[str, float]:
    """The largest |K(s) − K(complement s)| and |K(s) − K(reverse s)| over the table (a
    string whose partner is missing counts as an infinite gap)."""

    def gap(partner: Callable[[str], str]) -> float:
        return max(abs(k - ctm.get(partner(s), math.inf)) for s, k in ctm.items())

    return {"complement": gap(complement), "reversal": gap(lambda s: s[::-1])}


# -- block decomposition --------------------------------------------------------------------


def blocks(bits: str, *, block: int, step: int | None = None) -> Iterator[str]:
    """The blocks BDM reads: windows of ``block`` bits every ``step`` bits (``step`` =
    ``block``: a partition, whose leftover tail is one shorter block)."""
    step = block if step is None else step
    if block < 1 or not 1 <= step <= block:
        raise ValueError("need block ≥ 1 and 1 ≤ step ≤ block")
    last = 0
    for i in range(0, len(bits) - block + 1, step):
        yield bits[i : i + block]
        last = i + block
    if step == block and last < len(bits):
        yield bits[last:]


def bdm(bits: str, ctm: Mapping[str, float], *, block: int, step: int | None = None) -> float:
    """BDM(s) = Σ over distinct blocks r of CTM(r) + log2(number of copies of r)."""
    counts = Counter(blocks(bits, block=block, step=step))
    missing = [r for r in counts if r not in ctm]
    if missing:
        raise ValueError(f"block {missing[0]!r} is not in the CTM table; use a smaller block")
    return sum(ctm[r] + math.log2(n) for r, n in counts.items())


# -- normalized compression distance ----------------------------------------------------------


def ncd_matrix(docs: Sequence[bytes], compressor: str = "bz2") -> np.ndarray:
    """(N, N) NCD(x_i, x_j), symmetrized ((d_ij + d_ji) / 2: C(xy) and C(yx) differ a
    little) with a zero diagonal."""
    n = len(docs)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            d[i, j] = d[j, i] = 0.5 * (
                ncd(docs[i], docs[j], compressor) + ncd(docs[j], docs[i], compressor)
            )
    return d


def purity(labels: Sequence[str], clusters: Sequence[int]) -> float:
    """Cluster purity: the fraction of items whose cluster's majority label is their own."""
    if len(labels) != len(clusters):
        raise ValueError("labels and clusters differ in length")
    members: dict[int, Counter[str]] = {}
    for label, cluster in zip(labels, clusters, strict=True):
        members.setdefault(int(cluster), Counter())[label] += 1
    return sum(c.most_common(1)[0][1] for c in members.values()) / len(labels)
