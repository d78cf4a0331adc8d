"""Universal intelligence and its practical approximation (AIQ).

Shane Legg, *Machine Super Intelligence*, PhD thesis, 2008 (Legg & Hutter, "Universal
Intelligence: A Formal Definition of Machine Intelligence", 2007, arXiv:0712.3329); the
estimator is Legg & Veness, "An Approximation of the Universal Intelligence Measure", 2011/2013
(arXiv:1109.5951), the *Algorithmic Intelligence Quotient* (AIQ).

**Idea.** An agent π is intelligent to the degree that it achieves reward in *every*
computable environment, simple ones counting more:

    Υ(π) = Σ_μ 2^{−K(μ)} V_μ^π ,

K(μ) the length of the shortest program of μ on a reference machine, V_μ^π the agent's
expected (bounded) reward in μ. AIQ makes this measurable: environments are programs of a
small Brainfuck-like reference machine, sampled from the length prior; sampling programs in
proportion to 2^{−length} turns the sum into an expectation that a sample mean estimates.

**The reference machine** (Sec. 3 of AIQ). Tape symbols are the signed integers
{−m, …, m} (``symbols`` = 2m + 1), 0 the blank. Three tapes: a work tape (read/write,
circular), an input tape holding the agent's last actions (newest first, read with ``,``)
and an output tape of 1 + ``obs_cells`` symbols: the reward r = 100·x/m and the
observation(s). Instructions::

    <  >    move the work-tape pointer           +  -   add/subtract 1 (mod symbols)
    .       write the cell to the output tape    ,      read the next action of the history
    [  ]    loop while the cell is not blank     %      write a random symbol
    #       stop: the end of the program

In each cycle the agent's action is pushed onto the input tape and the program runs from
its first instruction, with the input and output heads reset, until it has written the
reward and the observation, or reaches ``#``; the work tape carries the environment's
state from cycle to cycle, and an output not written keeps its last value. A program that
needs more than ``step_budget`` instructions in a cycle is discarded (AIQ's "over time").

**Program prior.** Symbols are drawn uniformly from the k = 10 symbols above until the first
``#``: a program of L instructions has prior 10^{−(L+1)} = 2^{−(L+1)·log₂10}, so K(μ) is
replaced by the program's length in bits (an upper bound, as in AIQ). Programs whose
brackets do not match are not programs; the prior is renormalized over the valid ones.

**Variance reduction** (Sec. 4 of AIQ).

- *Antithetic variates:* every environment is run twice, the second time with its rewards
  negated (the agent sees −r and is scored on −r). Environments come in ± pairs of equal
  prior, so Υ is unchanged, and an agent whose actions do not depend on reward scores
  exactly V⁺ + V⁻ = 0 in each pair: its noise is removed.
- *Common random numbers:* the two members of a pair (and all agents) get the same random
  numbers at the same (cycle, step), from a counter-based generator keyed by the pair.
- *Passive programs* (no ``,`` or no ``.``: the rewards cannot depend on the actions)
  contribute exactly 0 to every agent's Υ (their ± pairs cancel), so, as in AIQ, only
  *active* programs are run, and Υ is reported over them: Legg's Υ over all valid programs
  is P(active) times it, the same factor for every agent.
- *Stratified sampling* by program length: Υ = Σ_i p_i Υ_i with p_i the exact prior mass of
  stratum i among active programs; within a stratum programs are sampled from the prior and
  Var(Υ̂) = Σ_i p_i² s_i² / n_i.

**Agents** (as in AIQ's tests): uniformly random; *frequency* (ε-greedy on each action's
average reward so far); tabular Q-learning and Watkins' Q(λ) (Sutton & Barto 1998,
Sec. 7.6) with the observation as the state. Q-learning is Q(λ) with λ = 0.

Deviations from the paper
-------------------------
- Stratification is by program length only (AIQ also sorts programs into behaviour classes
  such as "reward = last action" found by test runs); the stratum weights are the exact
  prior masses from a dynamic program over lengths and bracket depth, not sample fractions.
- Allocation over strata is Neyman's (n_i ∝ p_i s_i) with s_i from the validation runs,
  in one stage; AIQ adapts the allocation over many stages.
- The value of an episode is the plain average reward over ``episode`` cycles (AIQ's
  normalized sum with discount 1); Υ is on AIQ's scale [−100, 100].
- The work tape is circular with ``tape_cells`` cells (AIQ: 100,000); the random ``%``
  symbols are counter-based hashes (for common random numbers) rather than a global stream.
- Programs are not simplified after sampling (AIQ deletes ``+-``, ``<>``, ``[]``), and
  unmatched brackets make a program invalid (AIQ closes or ends it): both keep
  P(program) = 10^{−(L+1)} exact.
- An over-time program is dropped for the agent that met it (AIQ resamples another program
  of the same stratum); the stratum mean is over the programs that completed.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

INSTRUCTIONS = "<>+-.,[]%"
STOP = "#"
ALPHABET = INSTRUCTIONS + STOP  # the k = 10 symbols a program is drawn from
OP = {c: i for i, c in enumerate(ALPHABET)}
LEFT, RIGHT, INC, DEC, OUT, IN, OPEN, CLOSE, RAND, END = range(len(ALPHABET))
REWARD_SCALE = 100.0  # AIQ's rewards lie in [−100, 100]

# Pointer and cell increments of each opcode; which opcodes do I/O; which jump.
_DPTR = np.array([-1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.int64)
_DCELL = np.array([0, 0, 1, -1, 0, 0, 0, 0, 0, 0], dtype=np.int64)
_IO = np.isin(np.arange(len(ALPHABET)), [OUT, IN, RAND])
_JUMP = np.zeros((len(ALPHABET), 2), dtype=bool)  # [opcode, cell is not blank]
_JUMP[OPEN, 0] = _JUMP[CLOSE, 1] = True


# -- the program prior -------------------------------------------------------------------------
def program_bits(length: int | np.ndarray) -> np.ndarray:
    """K(μ) ≈ the code length of a program of ``length`` instructions: (L + 1)·log₂ k bits."""
    return (np.asarray(length) + 1) * np.log2(len(ALPHABET))


def length_prior(max_length: int) -> np.ndarray:
    """P(L) for L = 0 … max_length over *all* strings (valid or not): (1/k)(1 − 1/k)^L.
    It sums to 1 − (1 − 1/k)^(max_length+1)."""
    k = len(ALPHABET)
    lengths = np.arange(max_length + 1)
    return (1.0 / k) * (1.0 - 1.0 / k) ** lengths


@functools.lru_cache(maxsize=8)
def prior_masses(max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior mass of valid programs of each length L = 0 … max_length: ``(valid, active)``.

    ``valid[L]`` = Σ over bracket-balanced programs of L instructions of 10^{−(L+1)};
    ``active[L]`` the part of it whose programs contain both ``,`` and ``.``. A dynamic
    program over (bracket depth, has ``,``, has ``.``), in probabilities (exact counts would
    overflow floats beyond L ≈ 300)."""
    k = len(ALPHABET)
    depth = max_length + 2
    # mass[d, c, o]: prefixes of the current length at depth d, with ',' seen (c), '.' seen (o)
    mass = np.zeros((depth, 2, 2))
    mass[0, 0, 0] = 1.0
    valid = np.zeros(max_length + 1)
    active = np.zeros(max_length + 1)
    for length in range(max_length + 1):
        valid[length] = mass[0].sum() / k  # then the stop symbol
        active[length] = mass[0, 1, 1] / k
        nxt = np.zeros_like(mass)
        nxt += mass * (len(INSTRUCTIONS) - 4) / k  # < > + - %
        nxt[:, 1, :] += mass.sum(axis=1) / k  # ','
        nxt[:, :, 1] += mass.sum(axis=2) / k  # '.'
        nxt[1:] += mass[:-1] / k  # '['
        nxt[:-1] += mass[1:] / k  # ']' (never below depth 0)
        mass = nxt
    valid.flags.writeable = active.flags.writeable = False
    return valid, active


@dataclass(frozen=True)
class Strata:
    """Length strata of the active programs and their exact prior masses.

    ``edges`` (e₀ < e₁ < …) make stratum i = lengths [e_i, e_{i+1}), the last one open.
    ``p[i]`` = P(stratum i | active), summing to 1 (AIQ's weights: its tests run active
    programs only); ``p_active`` = P(active | valid). Passive programs contribute exactly 0 to
    Υ (their ± pairs cancel), so Legg's Υ over all valid programs is ``p_active`` × AIQ's."""

    edges: tuple[int, ...]
    p: np.ndarray  # (I,) P(stratum | active)
    p_active: float

    @classmethod
    def from_edges(cls, edges: tuple[int, ...], max_length: int = 600) -> Strata:
        valid, active = prior_masses(max_length)
        bounds = [*edges, max_length + 1]
        mass = np.array([active[a:b].sum() for a, b in itertools.pairwise(bounds)])
        return cls(
            edges=tuple(edges), p=mass / mass.sum(), p_active=float(mass.sum() / valid.sum())
        )

    def of(self, length: np.ndarray) -> np.ndarray:
        """The stratum index of each program length."""
        return np.searchsorted(np.asarray(self.edges), length, side="right") - 1

    def length_pmf(self, i: int, max_length: int = 600) -> tuple[np.ndarray, np.ndarray]:
        """Lengths of stratum i and P(L | active, stratum i)."""
        _, active = prior_masses(max_length)
        hi = self.edges[i + 1] if i + 1 < len(self.edges) else max_length + 1
        lengths = np.arange(self.edges[i], hi)
        w = active[lengths]
        return lengths, w / w.sum()


def parse(program: str) -> np.ndarray:
    """Opcodes of a program written with :data:`ALPHABET` (a final ``#`` is implied)."""
    return np.array([OP[c] for c in program], dtype=np.int8)


def is_valid(ops: np.ndarray) -> np.ndarray:
    """(n, L) opcodes → whether each row's brackets match (depth never negative, ends at 0)."""
    step = (ops == OPEN).astype(np.int64) - (ops == CLOSE)
    depth = np.cumsum(step, axis=1)
    if ops.shape[1] == 0:
        return np.ones(ops.shape[0], dtype=bool)
    return (depth.min(axis=1) >= 0) & (depth[:, -1] == 0)


def is_active(ops: np.ndarray) -> np.ndarray:
    """Programs that read an action (``,``) and write an output (``.``); the others are
    passive: their rewards cannot depend on what the agent does."""
    return (ops == IN).any(axis=1) & (ops == OUT).any(axis=1)


def sample_programs(
    rng: np.random.Generator, strata: Strata, counts: np.ndarray, max_length: int = 600
) -> tuple[list[np.ndarray], np.ndarray]:
    """``counts[i]`` programs of each active stratum, drawn from the prior: a length from
    P(L | active, stratum), then uniform instruction strings of that length, kept if valid
    and active (all valid programs of one length have the same prior). Returns the programs
    (opcode arrays) and their strata."""
    programs: list[np.ndarray] = []
    labels: list[int] = []
    for i, n in enumerate(counts):
        if n == 0:
            continue
        lengths, pmf = strata.length_pmf(i, max_length)
        drawn = rng.choice(lengths, size=int(n), p=pmf)
        for length, need in zip(*np.unique(drawn, return_counts=True), strict=True):
            kept: list[np.ndarray] = []
            while len(kept) < need:
                ops = rng.integers(0, len(INSTRUCTIONS), size=(max(64, 8 * need), length))
                ok = is_valid(ops) & is_active(ops)
                kept.extend(ops[ok].astype(np.int8))
            programs.extend(kept[:need])
            labels.extend([i] * int(need))
    return programs, np.array(labels, dtype=np.int64)


# -- counter-based random numbers (common random numbers across a pair) -------------------------
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def uniform(keys: np.ndarray, counter: np.ndarray | int, stream: int) -> np.ndarray:
    """U[0, 1) from the splitmix64 finalizer of (key, counter, stream): the same key and
    counter give the same number, whatever else is drawn."""
    with np.errstate(over="ignore"):
        offset = np.asarray(counter, dtype=np.uint64) + np.uint64(stream) * np.uint64(1 << 40)
        z = (keys.astype(np.uint64) * _GOLD) ^ (offset * _M2)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


# -- the reference machine, many environments at once -------------------------------------------
@dataclass(frozen=True)
class MachineConfig:
    symbols: int = 3  # tape symbols {−m, …, m}; actions and observations take these values
    obs_cells: int = 1
    history: int = 25  # actions kept on the input tape (AIQ: 25)
    tape_cells: int = 256  # circular work tape
    step_budget: int = 1000  # instructions per cycle before a program is "over time" (AIQ)

    def __post_init__(self) -> None:
        if not 3 <= self.symbols <= 127 or self.symbols % 2 == 0:
            raise ValueError("symbols must be odd (a blank in the middle) and in [3, 127]")
        if self.obs_cells < 1 or self.history < 1 or self.tape_cells < 2:
            raise ValueError("obs_cells, history ≥ 1 and tape_cells ≥ 2")
        if self.step_budget < 1:
            raise ValueError("step_budget must be positive")

    @property
    def m(self) -> int:
        return (self.symbols - 1) // 2

    @property
    def n_actions(self) -> int:
        return self.symbols

    @property
    def n_obs(self) -> int:
        return self.symbols**self.obs_cells


class Machine:
    """B environments of the reference machine run in lockstep: one NumPy step executes one
    instruction of every environment still in its cycle. Programs, jumps and tapes are kept
    flat (row-major) so that each step is a handful of gathers and scatters."""

    def __init__(self, *, programs: list[np.ndarray], keys: np.ndarray, cfg: MachineConfig):
        self.cfg = cfg
        b = len(programs)
        self.width = max((len(p) for p in programs), default=0) + 1
        prog = np.full((b, self.width), END, dtype=np.int64)  # (B, Lmax + 1), '#' padded
        for j, p in enumerate(programs):
            prog[j, : len(p)] = p
        self.prog = prog.reshape(-1)
        self.jump = _match_brackets(prog).reshape(-1)  # matching bracket of each '[' / ']'
        self.keys = np.asarray(keys, dtype=np.uint64)  # (B,) randomness key of each env
        self.tape = np.zeros(b * cfg.tape_cells, dtype=np.int8)  # (B · tape_cells,)
        self.ptr = np.zeros(b, dtype=np.int64)
        self.inputs = np.zeros((b, cfg.history), dtype=np.int64)  # newest action first
        self.out = np.zeros((b, 1 + cfg.obs_cells), dtype=np.int64)  # reward, observation(s)
        self.over_time = np.zeros(b, dtype=bool)
        self.cycle = 0
        # new cell value of each (opcode, cell): ±1 mod symbols for '+'/'-', unchanged otherwise
        m, s = cfg.m, cfg.symbols
        cells = np.arange(-m, m + 1)
        self._cell_after = ((cells[None, :] + _DCELL[:, None] + m) % s - m).reshape(-1)

    def observation(self) -> np.ndarray:
        """(B,) the observation cells as one state index in [0, symbols^obs_cells)."""
        digits = self.out[:, 1:] + self.cfg.m
        return digits @ (self.cfg.symbols ** np.arange(self.cfg.obs_cells))

    def reward(self) -> np.ndarray:
        """(B,) r = 100·x/m of the reward cell, in [−100, 100]."""
        return REWARD_SCALE * self.out[:, 0] / self.cfg.m

    def act(self, action: np.ndarray) -> None:
        """Push each environment's action (in [0, symbols)) and run one cycle."""
        cfg = self.cfg
        self.inputs[:, 1:] = self.inputs[:, :-1]
        self.inputs[:, 0] = action - cfg.m
        # the state of the environments still in this cycle, aligned with ``env``
        env = np.flatnonzero(~self.over_time)
        pc = np.zeros(len(env), dtype=np.int64)
        n_in, n_out = np.zeros_like(pc), np.zeros_like(pc)
        ptr = self.ptr[env]
        for step in range(cfg.step_budget):
            if env.size == 0:
                break
            at = env * self.width + pc
            op = self.prog[at]
            where = env * cfg.tape_cells + ptr
            cell = self._cell_after[op * cfg.symbols + self.tape[where] + cfg.m]  # + and −
            self.tape[where] = cell
            ptr = (ptr + _DPTR[op]) % cfg.tape_cells  # < and >
            io = np.flatnonzero(_IO[op])
            if io.size:
                self._io(env, op, io, cell, where, n_in, n_out, step)
            jump = _JUMP[op, (cell != 0).astype(np.int64)]  # '[' on a blank, ']' on a non-blank
            pc = np.where(jump, self.jump[at], pc) + 1
            done = (op == END) | (n_out == self.out.shape[1])
            if done.any():
                self.ptr[env[done]] = ptr[done]
                keep = ~done
                env, pc, n_in, n_out, ptr = env[keep], pc[keep], n_in[keep], n_out[keep], ptr[keep]
        self.ptr[env] = ptr
        self.over_time[env] = True  # still running when the budget ran out
        self.cycle += 1

    def _io(self, env, op, io, cell, where, n_in, n_out, step) -> None:
        """',' (read the next action of the history, blank past its end), '%' (a random
        symbol) and '.' (write the cell to the output tape) for the rows ``io``."""
        cfg = self.cfg
        code = op[io]
        read = io[code == IN]
        k = n_in[read]
        value = self.inputs[env[read], np.minimum(k, cfg.history - 1)]
        self.tape[where[read]] = np.where(k < cfg.history, value, 0)
        n_in[read] += 1
        rand = io[code == RAND]
        if rand.size:
            counter = np.uint64(self.cycle * cfg.step_budget + step)
            u = uniform(self.keys[env[rand]], counter, stream=1)
            self.tape[where[rand]] = (u * cfg.symbols).astype(np.int64) - cfg.m
        write = io[code == OUT]
        self.out[env[write], n_out[write]] = cell[write]
        n_out[write] += 1


def _match_brackets(prog: np.ndarray) -> np.ndarray:
    """(B, W) → for each ``[`` the index of its ``]`` and vice versa (0 elsewhere)."""
    jump = np.zeros(prog.shape, dtype=np.int64)
    for j, row in enumerate(prog):
        stack: list[int] = []
        for i in np.flatnonzero((row == OPEN) | (row == CLOSE)):
            if row[i] == OPEN:
                stack.append(i)
            else:
                k = stack.pop()
                jump[j, k], jump[j, i] = i, k
    return jump


# -- agents ------------------------------------------------------------------------------------
def greedy(values: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(B, A) → argmax per row, ties broken uniformly by ``noise`` (B, A) ∈ [0, 1)."""
    best = values == values.max(axis=1, keepdims=True)
    return np.argmax(np.where(best, noise, -1.0), axis=1)


class Agent:
    """B copies of one kind of agent, each with its own hyperparameters. ``perceive`` gets the
    observation and reward of the last cycle and the cycle's uniforms (B, 2 + A) and returns
    the next action."""

    def __init__(self, *, size: int, n_obs: int, n_actions: int):
        self.size, self.n_obs, self.n_actions = size, n_obs, n_actions

    def perceive(self, obs: np.ndarray, reward: np.ndarray, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class RandomAgent(Agent):
    """Uniformly random actions; ignores observations and rewards."""

    def perceive(self, obs, reward, u):
        return (u[:, 1] * self.n_actions).astype(np.int64)


def epsilon_greedy(values: np.ndarray, epsilon: np.ndarray, u: np.ndarray) -> np.ndarray:
    """With probability ε a uniform action (u[:, 1]), otherwise a greedy one (ties: u[:, 2:])."""
    n_actions = values.shape[1]
    explore = u[:, 0] < epsilon
    return np.where(explore, (u[:, 1] * n_actions).astype(np.int64), greedy(values, u[:, 2:]))


class FrequencyAgent(Agent):
    """ε-greedy on each action's average reward so far (AIQ's ``Freq``): value_a =
    total_a / (1 + n_a), so an untried action counts as reward 0."""

    def __init__(self, *, epsilon: np.ndarray, **kw):
        super().__init__(**kw)
        self.epsilon = np.asarray(epsilon, dtype=np.float64)
        self.total = np.zeros((self.size, self.n_actions))
        self.count = np.zeros((self.size, self.n_actions))
        self.action: np.ndarray | None = None

    def perceive(self, obs, reward, u):
        rows = np.arange(self.size)
        if self.action is not None:
            self.total[rows, self.action] += reward
            self.count[rows, self.action] += 1
        self.action = epsilon_greedy(self.total / (1.0 + self.count), self.epsilon, u)
        return self.action


class QLambdaAgent(Agent):
    """Watkins' Q(λ) with accumulating traces, tabular over (observation, action) (Sutton &
    Barto 1998, Sec. 7.6); λ = 0 is one-step Q-learning (Watkins 1989).

        a' ← ε-greedy(Q(s', ·));  a* ← argmax_a Q(s', a)  (a* = a' if a' ties for the max)
        δ  = r + γ Q(s', a*) − Q(s, a);   e(s, a) ← e(s, a) + 1
        Q  ← Q + α δ e;   e ← γλ e if a' = a* else 0
    """

    def __init__(
        self,
        *,
        alpha: np.ndarray,
        epsilon: np.ndarray,
        gamma: np.ndarray,
        lam: np.ndarray,
        q0: float = 0.0,
        **kw,
    ):
        super().__init__(**kw)
        self.alpha, self.epsilon, self.gamma, self.lam = (
            np.broadcast_to(np.asarray(x, dtype=np.float64), (self.size,))
            for x in (alpha, epsilon, gamma, lam)
        )
        self.Q = np.full((self.size, self.n_obs, self.n_actions), float(q0))  # (B, S, A)
        self.E = np.zeros_like(self.Q)  # eligibility traces
        self.state: np.ndarray | None = None
        self.action: np.ndarray | None = None

    def perceive(self, obs, reward, u):
        rows = np.arange(self.size)
        q_next = self.Q[rows, obs]  # (B, A)
        a_next = epsilon_greedy(q_next, self.epsilon, u)
        a_star = np.where(
            q_next[rows, a_next] == q_next.max(axis=1), a_next, greedy(q_next, u[:, 2:])
        )
        if self.state is not None:
            self.update(rows, reward, q_next[rows, a_star])
            cut = a_next != a_star
            decay = np.where(cut, 0.0, self.gamma * self.lam)
            self.E *= decay[:, None, None]
        self.state, self.action = obs, a_next
        return a_next

    def update(self, rows: np.ndarray, reward: np.ndarray, q_star: np.ndarray) -> None:
        """Q ← Q + α δ e after e(s, a) += 1, with δ = r + γ max Q(s', ·) − Q(s, a)."""
        delta = reward + self.gamma * q_star - self.Q[rows, self.state, self.action]
        self.E[rows, self.state, self.action] += 1.0
        self.Q += (self.alpha * delta)[:, None, None] * self.E


# -- the test: run agents on antithetic pairs of environments ----------------------------------
def pair_keys(pair_ids: np.ndarray, seed: int, common: bool) -> np.ndarray:
    """(P,) pair ids → (2P,) randomness keys of the + and − member of each pair: equal with
    ``common`` random numbers, different otherwise."""
    base = np.asarray(pair_ids, dtype=np.uint64) * np.uint64(2) + np.uint64(seed) * np.uint64(
        1 << 33
    )
    keys = np.stack([base, base + np.uint64(0 if common else 1)], axis=1)
    return keys.reshape(-1)


def run_episodes(
    *,
    programs: list[np.ndarray],
    agent: Agent,
    keys: np.ndarray,
    cfg: MachineConfig,
    episode: int,
    on_cycle=None,
) -> np.ndarray:
    """Run ``agent`` (size 2P) on P programs, each as an antithetic pair: element 2j sees
    program j's rewards, element 2j + 1 their negation. Returns (P,) pair values
    (V⁺ + V⁻)/2, V = mean reward over ``episode`` cycles; NaN where either run went over
    time. ``keys`` (2P,) key the random numbers of agent and environment alike."""
    twice = [p for p in programs for _ in range(2)]
    machine = Machine(programs=twice, keys=keys, cfg=cfg)
    sign = np.tile([1.0, -1.0], len(programs))  # (2P,)
    total = np.zeros(len(twice))
    obs = machine.observation()
    reward = np.zeros(len(twice))
    draws = 2 + cfg.n_actions  # explore?, random action, tie-break noise per action
    for t in range(episode):
        u = uniform(keys[:, None], t * draws + np.arange(draws)[None, :], stream=2)  # (2P, 2+A)
        action = agent.perceive(obs, sign * reward, u)
        machine.act(action)
        obs, reward = machine.observation(), machine.reward()
        total += sign * reward
        if on_cycle is not None:
            on_cycle(t)
    value = total / episode
    value[machine.over_time] = np.nan
    return value.reshape(-1, 2).mean(axis=1)


@dataclass(frozen=True)
class Estimate:
    """Υ̂ = Σ_i p_i ȳ_i over active programs, its standard error and 95% interval."""

    upsilon: float
    se: float
    by_stratum: np.ndarray  # (I,) p_i ȳ_i
    n: np.ndarray  # (I,) programs that completed
    dropped: int  # over-time programs

    @property
    def lo(self) -> float:
        return self.upsilon - 1.96 * self.se

    @property
    def hi(self) -> float:
        return self.upsilon + 1.96 * self.se


def stratified_estimate(values: np.ndarray, labels: np.ndarray, strata: Strata) -> Estimate:
    """Stratified mean of pair values and Var = Σ_i p_i² s_i² / n_i. A stratum with fewer than
    2 completed programs is given the largest possible spread (s = 100, half the reward
    range) and, with none, mean 0: conservative, never optimistic."""
    ok = ~np.isnan(values)
    means, variances, n = [], [], []
    for i in range(len(strata.p)):
        y = values[ok & (labels == i)]
        n.append(len(y))
        means.append(y.mean() if len(y) else 0.0)
        s2 = y.var(ddof=1) if len(y) >= 2 else REWARD_SCALE**2
        variances.append(s2 / max(len(y), 1))
    by = strata.p * np.array(means)
    var = float(np.sum(strata.p**2 * np.array(variances)))
    return Estimate(
        upsilon=float(by.sum()),
        se=var**0.5,
        by_stratum=by,
        n=np.array(n),
        dropped=int((~ok).sum()),
    )


def neyman_allocation(p: np.ndarray, s: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """n_i ∝ p_i s_i (the allocation of least variance for a fixed total), each ≥ ``minimum``."""
    w = p * np.maximum(s, 1e-9)
    n = np.maximum(np.floor(w / w.sum() * (total - minimum * len(p))), 0).astype(np.int64)
    return n + minimum
