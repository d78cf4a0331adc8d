"""AIQ: Υ of four agents estimated on sampled reference-machine environments.

1. **Strata.** Exact prior masses of the passive programs and of active programs in each
   length stratum (:class:`~.model.Strata`).
2. **Validation.** Programs drawn from the prior (their own random stream, never used for
   the test), proportional allocation. Each learning agent gets the same search budget:
   ``search_trials`` hyperparameter settings drawn at random (Q-learning and Q(λ) share the
   α, ε, γ draws; Q(λ) adds λ); the setting with the highest validation Υ̂ is kept.
3. **Test.** Fresh programs, Neyman allocation over strata from the validation spreads;
   the tuned agents and the random agent run on antithetic pairs; Υ̂ ± 1.96·SE per agent.
4. **Claims.** Υ(random) ≈ 0 (its 95% interval contains 0, with and without common random
   numbers between the two members of a pair); Q(λ) > Q-learning > frequency > random with
   non-overlapping 95% intervals (lower end of the better above the upper end of the other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.papers.universal_intelligence.model import (
    REWARD_SCALE,
    Agent,
    Estimate,
    FrequencyAgent,
    MachineConfig,
    QLambdaAgent,
    RandomAgent,
    Strata,
    neyman_allocation,
    pair_keys,
    program_bits,
    run_episodes,
    sample_programs,
    stratified_estimate,
)

AGENTS = ("random", "frequency", "q_learning", "q_lambda")
ORDER = (("q_lambda", "q_learning"), ("q_learning", "frequency"), ("frequency", "random"))
LABELS = {
    "random": "random",
    "frequency": "frequency",
    "q_learning": "Q-learning",
    "q_lambda": "Q(λ)",
}


@dataclass(frozen=True)
class AIQConfig:
    symbols: int = 3  # AIQ's BF(3): rewards −100, 0, +100; 3 actions, 3 observations
    obs_cells: int = 1
    history: int = 25
    tape_cells: int = 256
    step_budget: int = 1000
    episode: int = 1000  # cycles per run; V = mean reward over them
    edges: tuple[int, ...] = (2, 4, 6, 8, 10, 13, 16, 20, 24, 31, 43)  # length strata
    test_programs: int = 10_000  # active programs in the test (each run as a ± pair)
    min_per_stratum: int = 10
    val_programs: int = 2_000
    search_trials: int = 16  # hyperparameter settings tried per learning agent
    alpha: tuple[float, float] = (0.02, 1.0)  # search ranges (log-uniform for α, ε)
    epsilon: tuple[float, float] = (0.001, 0.3)
    gamma: tuple[float, float] = (0.0, 0.99)
    lam: tuple[float, float] = (0.2, 0.95)
    common_random_numbers: bool = True  # the members of a ± pair share random numbers

    def __post_init__(self) -> None:
        self.machine()
        if self.episode < 1:
            raise ValueError("episode must be ≥ 1 cycle")
        if not self.edges or self.edges[0] > 2 or list(self.edges) != sorted(set(self.edges)):
            raise ValueError(
                "edges must increase strictly and start at ≤ 2 (the shortest "
                "active program has 2 instructions)"
            )
        if self.min_per_stratum < 2:
            raise ValueError("min_per_stratum must be ≥ 2 (a stratum's variance needs 2)")
        for name in ("test_programs", "val_programs"):
            if getattr(self, name) < self.min_per_stratum * len(self.edges):
                raise ValueError(f"{name} must be ≥ min_per_stratum × number of strata")
        if self.search_trials < 1:
            raise ValueError("search_trials must be ≥ 1")
        for name, (lo, hi) in (("alpha", self.alpha), ("epsilon", self.epsilon)):
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"{name} range must satisfy 0 < lo ≤ hi ≤ 1")
        for name, (lo, hi) in (("gamma", self.gamma), ("lam", self.lam)):
            if not 0 <= lo <= hi < 1:
                raise ValueError(f"{name} range must satisfy 0 ≤ lo ≤ hi < 1")

    def machine(self) -> MachineConfig:
        return MachineConfig(
            symbols=self.symbols,
            obs_cells=self.obs_cells,
            history=self.history,
            tape_cells=self.tape_cells,
            step_budget=self.step_budget,
        )


# -- agents and their search -------------------------------------------------------------------
def search_space(cfg: AIQConfig, rng: np.random.Generator) -> dict[str, list[dict]]:
    """``search_trials`` settings per learning agent. Q-learning and Q(λ) get the same α, ε, γ
    draws, Q(λ) a λ besides; frequency its own ε draws from the same range."""
    n = cfg.search_trials

    def log_uniform(lo_hi: tuple[float, float], size: int) -> np.ndarray:
        return np.exp(rng.uniform(np.log(lo_hi[0]), np.log(lo_hi[1]), size))

    alpha, eps = log_uniform(cfg.alpha, n), log_uniform(cfg.epsilon, n)
    gamma, lam = rng.uniform(*cfg.gamma, n), rng.uniform(*cfg.lam, n)
    freq_eps = log_uniform(cfg.epsilon, n)
    return {
        "frequency": [{"epsilon": float(e)} for e in freq_eps],
        "q_learning": [
            {"alpha": float(a), "epsilon": float(e), "gamma": float(g), "lam": 0.0}
            for a, e, g in zip(alpha, eps, gamma, strict=True)
        ],
        "q_lambda": [
            {"alpha": float(a), "epsilon": float(e), "gamma": float(g), "lam": float(lm)}
            for a, e, g, lm in zip(alpha, eps, gamma, lam, strict=True)
        ],
    }


def make_agent(kind: str, settings: list[dict], copies: int, cfg: MachineConfig) -> Agent:
    """One batched agent: each setting repeated ``copies`` times (settings outermost)."""
    shape = {"size": len(settings) * copies, "n_obs": cfg.n_obs, "n_actions": cfg.n_actions}

    def column(key: str) -> np.ndarray:
        return np.repeat([s[key] for s in settings], copies)

    if kind == "random":
        return RandomAgent(**shape)
    if kind == "frequency":
        return FrequencyAgent(epsilon=column("epsilon"), **shape)
    return QLambdaAgent(
        alpha=column("alpha"),
        epsilon=column("epsilon"),
        gamma=column("gamma"),
        lam=column("lam"),
        **shape,
    )


def evaluate(
    cfg: AIQConfig,
    kind: str,
    settings: list[dict],
    programs: list[np.ndarray],
    *,
    seed: int,
    common: bool,
    bar,
) -> np.ndarray:
    """(len(settings), P) pair values of each setting of one agent on every program (NaN:
    over time). All settings see the same programs and random numbers (keyed by program)."""
    machine = cfg.machine()
    agent = make_agent(kind, settings, 2 * len(programs), machine)
    keys = np.tile(pair_keys(np.arange(len(programs)), seed, common), len(settings))
    values = run_episodes(
        programs=programs * len(settings),
        agent=agent,
        keys=keys,
        cfg=machine,
        episode=cfg.episode,
        on_cycle=lambda t: bar.update(1),
    )
    return values.reshape(len(settings), len(programs))


def stratum_spreads(values: np.ndarray, labels: np.ndarray, n_strata: int) -> np.ndarray:
    """Standard deviation of the completed pair values in each stratum (the largest possible,
    100, where fewer than 2 completed)."""
    ok = ~np.isnan(values)
    groups = [values[ok & (labels == i)] for i in range(n_strata)]
    return np.array([y.std(ddof=1) if len(y) >= 2 else REWARD_SCALE for y in groups])


# -- the phases --------------------------------------------------------------------------------
def validation(run: Run, cfg: AIQConfig, strata: Strata, rng: np.random.Generator) -> dict:
    """Choose each learning agent's setting on validation programs; return the choices, the
    search table and the per-stratum spreads (for the test's allocation)."""
    counts = neyman_allocation(
        strata.p, np.ones_like(strata.p), cfg.val_programs, cfg.min_per_stratum
    )
    programs, labels = sample_programs(rng, strata, counts)
    space = search_space(cfg, rng)
    chosen, table, spreads = {}, {}, []
    bar = run.progress(3 * cfg.episode, "validation (3 agents × all settings)")
    for kind, settings in space.items():
        values = evaluate(
            cfg,
            kind,
            settings,
            programs,
            seed=10_000 + run.seed,
            common=cfg.common_random_numbers,
            bar=bar,
        )
        est = [stratified_estimate(v, labels, strata) for v in values]
        best = int(np.argmax([e.upsilon for e in est]))
        chosen[kind] = settings[best]
        table[kind] = [
            dict(s, val_upsilon=e.upsilon, val_se=e.se) for s, e in zip(settings, est, strict=True)
        ]
        spreads.append(stratum_spreads(values[best], labels, len(strata.p)))
        run.info(f"validation {kind}: best {settings[best]} Υ̂ = {est[best].upsilon:.2f}")
    bar.close()
    return {"chosen": chosen, "table": table, "spread": np.mean(spreads, axis=0)}


def test(
    run: Run, cfg: AIQConfig, strata: Strata, rng: np.random.Generator, val: dict
) -> tuple[dict[str, Estimate], dict[str, Estimate], np.ndarray, np.ndarray]:
    """Υ̂ of every agent on fresh programs (Neyman allocation), the random agent also with
    independent random numbers in the two members of each pair, and the paired differences
    of the compared agents (same programs and random numbers: for the summary only)."""
    counts = neyman_allocation(strata.p, val["spread"], cfg.test_programs, cfg.min_per_stratum)
    programs, labels = sample_programs(rng, strata, counts)
    crn = cfg.common_random_numbers
    bar = run.progress((len(AGENTS) + crn) * cfg.episode, "test (4 agents + random, indep.)")

    def values_of(kind: str, common: bool) -> np.ndarray:
        settings = [val["chosen"].get(kind, {})]
        return evaluate(cfg, kind, settings, programs, seed=run.seed, common=common, bar=bar)[0]

    values = {kind: values_of(kind, crn) for kind in AGENTS}
    values["random_independent"] = values_of("random", False) if crn else values["random"]
    bar.close()
    estimates = {name: stratified_estimate(v, labels, strata) for name, v in values.items()}
    paired = {
        f"{better}-{worse}": stratified_estimate(values[better] - values[worse], labels, strata)
        for better, worse in ORDER
    }
    lengths = np.array([len(p) for p in programs])
    return estimates, paired, counts, lengths


def claims(run: Run, est: dict[str, Estimate], cfg: AIQConfig) -> None:
    run.claim(
        "random_near_zero",
        "Υ(random) ≈ 0: the 95% interval of the random agent contains 0, the two members of "
        "each antithetic pair drawing independent random numbers",
        "Legg & Veness 2011: with antithetic variates the random agent scores ≈ 0",
        {"random_lo": est["random_independent"].lo, "random_hi": est["random_independent"].hi},
        "random_lo <= 0 <= random_hi",
    )
    if cfg.common_random_numbers:
        run.claim(
            "random_exactly_zero",
            "with common random numbers in the two members of a pair, Υ(random) = 0 and its "
            "interval is [0, 0] (the pair values cancel exactly)",
            "Legg & Veness 2011: a reward-blind agent has V⁺ + V⁻ = 0 in every ± pair",
            {"random_upsilon": est["random"].upsilon, "random_se": est["random"].se},
            "abs(random_upsilon) + random_se <= 1e-12",
        )
    for better, worse in ORDER:
        b, w = est[better], est[worse]
        run.claim(
            f"{better}_above_{worse}",
            f"Υ({LABELS[better]}) > Υ({LABELS[worse]}) with non-overlapping 95% intervals "
            "(by more than the seed-to-seed spread of the gap between their ends)",
            "Legg & Veness 2011: Q(λ) > Q-learning > frequency > random",
            {
                f"{better}_lo": b.lo,
                f"{worse}_hi": w.hi,
                f"{better}": b.upsilon,
                f"{worse}": w.upsilon,
            },
            f"{better}_lo > {worse}_hi + spread",
        )


# -- plots -------------------------------------------------------------------------------------
def plot_upsilon(run: Run, est: dict[str, Estimate]) -> None:
    names = [*AGENTS, "random_independent"]
    fig, (ax,) = plots.figure(width=5.5)
    y = [est[n].upsilon for n in names]
    err = [1.96 * est[n].se for n in names]
    ax.bar(range(len(names)), y, yerr=err, capsize=5, color="#7aa6c2", edgecolor="black")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([LABELS.get(n, "random\n(indep. pairs)") for n in names])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(r"$\hat{\Upsilon}$ (AIQ scale: rewards $\pm$100)")
    ax.set_title(r"$\hat{\Upsilon}$ per agent with 95% intervals")
    ax.grid(axis="y", alpha=0.3)
    plots.save(fig, run.plot_path("upsilon.png"))


def plot_strata(run: Run, est: dict[str, Estimate], strata: Strata) -> None:
    fig, (ax,) = plots.figure(width=6.5)
    x = np.arange(len(strata.p))
    width = 0.8 / len(AGENTS)
    for k, name in enumerate(AGENTS):
        ax.bar(x + (k - 1.5) * width, est[name].by_stratum, width, label=LABELS[name])
    hi = [*strata.edges[1:], None]
    ax.set_xticks(x)
    ax.set_xticklabels(
        [f"{a}–{b - 1}" if b else f"≥{a}" for a, b in zip(strata.edges, hi, strict=True)],
        rotation=45,
    )
    ax.set_xlabel("program length (instructions)")
    ax.set_ylabel(r"contribution $p_i\,\bar{y}_i$")
    ax.set_title(r"$\hat{\Upsilon}$ by program-length stratum")
    ax.axhline(0, color="black", lw=0.8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    plots.save(fig, run.plot_path("strata.png"))


def run_aiq(run: Run, cfg: AIQConfig) -> None:
    strata = Strata.from_edges(cfg.edges)
    rng_val = np.random.default_rng([run.seed, 1])
    rng_test = np.random.default_rng([run.seed, 2])
    val = validation(run, cfg, strata, rng_val)
    est, paired, counts, lengths = test(run, cfg, strata, rng_test, val)
    claims(run, est, cfg)
    plot_upsilon(run, est)
    plot_strata(run, est, strata)
    run.summary["strata"] = {
        "edges": list(strata.edges),
        "p": strata.p,
        "p_active": strata.p_active,
        "test_programs": counts,
        "mean_bits": float(program_bits(lengths).mean()),
    }
    run.summary["chosen"] = val["chosen"]
    run.summary["search"] = val["table"]
    run.summary["estimates"] = {
        name: {"upsilon": e.upsilon, "se": e.se, "lo": e.lo, "hi": e.hi, "dropped": e.dropped}
        for name, e in est.items()
    }
    run.summary["paired_differences"] = {
        name: {"mean": e.upsilon, "se": e.se, "lo": e.lo, "hi": e.hi} for name, e in paired.items()
    }
    for name, e in est.items():
        run.log({"key": name, "upsilon": e.upsilon, "se": e.se, "dropped": e.dropped})


SMOKE = AIQConfig(
    episode=30,
    step_budget=100,
    edges=(2, 6, 12),
    test_programs=60,
    val_programs=30,
    min_per_stratum=4,
    search_trials=2,
)
# 300 cycles: the episode AIQ derives for discount 0.99 (95% of the geometric total). The
# number of test programs is what fits ~1 min of one core per seed on the idle machine, for
# 3 seeds (the validation choice varies from seed to seed: README, Budget); the step limit
# of 250 instead of 1,000 cuts the time spent on programs that loop (README: Deviations).
QUICK = AIQConfig(
    episode=300, step_budget=250, test_programs=12_000, val_programs=600, search_trials=8
)
FULL = AIQConfig()

PAPER = Paper(
    slug="universal_intelligence",
    title="Machine Super Intelligence (Υ); An Approximation of the Universal Intelligence Measure",
    authors="Legg; Legg, Veness",
    year=2008,
    arxiv="1109.5951",
    experiments=(
        Experiment(
            name="aiq",
            description="Υ of random, frequency, Q-learning and Q(λ) agents on sampled "
            "BF-machine environments (antithetic, stratified, 95% intervals)",
            presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
            run=run_aiq,
            quick_minutes=1.8,
            quick_seeds=3,
        ),
    ),
)
