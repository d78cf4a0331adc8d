"""Universal intelligence (AIQ): the reference machine on hand-written programs, the program
prior against enumeration, antithetic pairs, the Q(λ) update by hand, the stratified
estimator, and the quick claims (slow)."""

import itertools
import json

import numpy as np
import pytest

from sutskever30.cli import main
from sutskever30.papers.universal_intelligence.experiment import (
    QUICK,
    SMOKE,
    AIQConfig,
    search_space,
)
from sutskever30.papers.universal_intelligence.model import (
    ALPHABET,
    INSTRUCTIONS,
    FrequencyAgent,
    Machine,
    MachineConfig,
    QLambdaAgent,
    RandomAgent,
    Strata,
    is_active,
    is_valid,
    length_prior,
    neyman_allocation,
    pair_keys,
    parse,
    prior_masses,
    program_bits,
    run_episodes,
    sample_programs,
    stratified_estimate,
    uniform,
)

CFG3 = MachineConfig(symbols=3, tape_cells=4, step_budget=50)


def rollout(program: str, actions, cfg: MachineConfig = CFG3, key: int = 0):
    """Rewards and observations of one environment under a fixed action sequence."""
    machine = Machine(programs=[parse(program)], keys=np.array([key]), cfg=cfg)
    rewards, obs = [], []
    for a in actions:
        machine.act(np.array([a]))
        rewards.append(float(machine.reward()[0]))
        obs.append(int(machine.observation()[0]))
    return rewards, obs, bool(machine.over_time[0])


# -- the reference machine ---------------------------------------------------------------------
def test_copy_action_to_reward():
    # ',' reads the newest action (symbol a − 1), '.' writes it as the reward; the
    # observation is never written and stays blank (index 1 of {−1, 0, 1}).
    rewards, obs, over = rollout(",.", [0, 1, 2, 2, 0])
    assert rewards == [-100.0, 0.0, 100.0, 100.0, -100.0]
    assert obs == [1] * 5 and not over


def test_second_output_is_the_observation():
    rewards, obs, _ = rollout(",..", [2, 0, 1])
    assert rewards == [100.0, -100.0, 0.0]
    assert obs == [2, 0, 1]


def test_input_history_reads_older_actions():
    # ',,' reads the action before the newest: the reward lags the action by one cycle;
    # reading past the start of the history gives the blank.
    rewards, _, _ = rollout(",,.", [2, 0, 0, 2])
    assert rewards == [0.0, 100.0, -100.0, -100.0]


def test_work_tape_persists_and_symbols_wrap():
    # the cell keeps its value between cycles: 1, then 1 + 1 = 2 ≡ −1, then 0
    rewards, _, _ = rollout("+.", [0, 0, 0, 0])
    assert rewards == [100.0, -100.0, 0.0, 100.0]
    rewards, _, _ = rollout("-.", [0, 0, 0])
    assert rewards == [-100.0, 100.0, 0.0]


def test_pointer_moves_and_tape_is_circular():
    # '>' moves on each cycle; the 4-cell tape brings the pointer back to a written cell
    rewards, _, _ = rollout(">+.", [0] * 6)
    assert rewards == [100.0] * 4 + [-100.0] * 2
    rewards, _, _ = rollout("<+.", [0] * 5)
    assert rewards == [100.0] * 4 + [-100.0]


def test_loops_and_full_output_end_the_cycle():
    # cycle 1: ++ gives −1; the loop writes −1 (reward), decrements to 1 (wraps), writes 1
    # (observation): the output is full and the cycle ends inside the loop.
    # cycle 2: 1 + 2 = 0, '[' on the blank skips the loop, '#' ends the cycle: nothing is
    # written and the outputs keep their last values.
    rewards, obs, over = rollout("++[.-]", [0, 0])
    assert rewards == [-100.0, -100.0] and obs == [2, 2] and not over


def test_endless_loop_is_over_time():
    assert rollout("+[]", [0])[2]
    assert not rollout("[]+.", [0])[2]  # '[' on a blank cell skips the loop


def test_random_symbol_depends_only_on_key():
    a = rollout("%.", [0] * 40, key=7)[0]
    b = rollout("%.", [0] * 40, key=7)[0]
    c = rollout("%.", [0] * 40, key=8)[0]
    assert a == b and a != c
    assert set(a) == {-100.0, 0.0, 100.0}


def test_uniform_counter_based():
    keys = np.arange(1000, dtype=np.uint64)
    u = uniform(keys, 3, stream=2)
    assert ((u >= 0) & (u < 1)).all() and abs(u.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(u, uniform(keys, 3, stream=2))
    assert not np.allclose(u, uniform(keys, 4, stream=2))


# -- the program prior -------------------------------------------------------------------------
def test_length_prior_sums_to_one():
    k = len(ALPHABET)
    for n in (0, 5, 40):
        assert length_prior(n).sum() == pytest.approx(1 - (1 - 1 / k) ** (n + 1), rel=1e-12)
    assert length_prior(400).sum() == pytest.approx(1.0, abs=1e-15)
    # each program of L instructions has prior 2^(−bits): 9^L of them carry P(L)
    assert 9**3 * 2.0 ** -program_bits(3) == pytest.approx(length_prior(3)[3], rel=1e-12)


def test_prior_masses_match_enumeration():
    valid, active = prior_masses(5)
    for length in range(5):
        strings = np.array(list(itertools.product(range(len(INSTRUCTIONS)), repeat=length)))
        strings = strings.reshape(len(INSTRUCTIONS) ** length, length)
        weight = len(ALPHABET) ** -(length + 1.0)
        assert valid[length] == pytest.approx(is_valid(strings).sum() * weight, rel=1e-12)
        n_active = (is_valid(strings) & is_active(strings)).sum()
        assert active[length] == pytest.approx(n_active * weight, rel=1e-12)


def test_strata_masses_sum_to_one():
    strata = Strata.from_edges((2, 5, 10, 20))
    assert strata.p.sum() == pytest.approx(1.0)
    assert (strata.p > 0).all() and 0 < strata.p_active < 0.5
    valid, active = prior_masses(600)
    assert strata.p_active == pytest.approx(active.sum() / valid.sum())
    np.testing.assert_array_equal(strata.of(np.array([2, 4, 5, 19, 20, 300])), [0, 0, 1, 2, 3, 3])
    for i in range(4):
        assert strata.length_pmf(i)[1].sum() == pytest.approx(1.0)


def test_sampled_programs_are_valid_active_and_in_their_stratum():
    strata = Strata.from_edges((2, 5, 10, 20))
    programs, labels = sample_programs(np.random.default_rng(0), strata, np.array([5, 5, 5, 5]))
    lengths = np.array([len(p) for p in programs])
    np.testing.assert_array_equal(strata.of(lengths), labels)
    for p in programs:
        assert is_valid(p[None])[0] and is_active(p[None])[0]


def test_sampled_lengths_follow_the_prior():
    # within one stratum, the lengths follow P(L | active, stratum) from the DP
    strata = Strata.from_edges((2, 4, 8))
    programs, _ = sample_programs(np.random.default_rng(1), strata, np.array([0, 3000, 0]))
    lengths, pmf = strata.length_pmf(1)
    freq = np.array([np.mean([len(p) == n for p in programs]) for n in lengths])
    np.testing.assert_allclose(freq, pmf, atol=0.03)


# -- antithetic pairs --------------------------------------------------------------------------
PROGRAMS = [parse(p) for p in (",.", ",,.", "%,+.", ">,[<+>-].%.", "+,[-.],.")]


def _values(agent, common: bool, episode: int = 40):
    keys = pair_keys(np.arange(len(PROGRAMS)), seed=3, common=common)
    return run_episodes(programs=PROGRAMS, agent=agent, keys=keys, cfg=CFG3, episode=episode)


def test_antithetic_pair_is_exactly_zero_for_reward_blind_agent():
    shape = {"size": 2 * len(PROGRAMS), "n_obs": 3, "n_actions": 3}
    np.testing.assert_array_equal(_values(RandomAgent(**shape), common=True), 0.0)
    # without common random numbers the two members act differently: not zero pair by pair
    assert np.abs(_values(RandomAgent(**shape), common=False)).max() > 1


def test_learning_agent_pairs_are_not_zero():
    shape = {"size": 2 * len(PROGRAMS), "n_obs": 3, "n_actions": 3}
    agent = QLambdaAgent(alpha=0.5, epsilon=0.05, gamma=0.5, lam=0.0, **shape)
    v = _values(agent, common=True, episode=100)
    assert v[0] > 80  # reward = current action: learned in both members of the pair


def test_agents_learn_the_copy_environment():
    shape = {"size": 2, "n_obs": 3, "n_actions": 3}
    keys = pair_keys(np.arange(1), seed=0, common=True)
    for agent in (
        FrequencyAgent(epsilon=np.full(2, 0.05), **shape),
        QLambdaAgent(alpha=0.3, epsilon=0.05, gamma=0.5, lam=0.8, **shape),
    ):
        v = run_episodes(programs=[parse(",.")], agent=agent, keys=keys, cfg=CFG3, episode=200)
        assert v[0] > 85


# -- Q-learning and Q(λ) by hand ---------------------------------------------------------------
def _q_agent(lam: float, epsilon: float = 0.0) -> QLambdaAgent:
    return QLambdaAgent(
        alpha=0.5, epsilon=epsilon, gamma=0.9, lam=lam, size=1, n_obs=2, n_actions=2
    )


def _u(explore: float, random_action: float, tie: tuple[float, float]) -> np.ndarray:
    return np.array([[explore, random_action, *tie]])


def test_q_learning_update_on_two_state_mdp():
    # state 0 --a1--> state 1 (r = 10) --a0--> state 0 (r = −4), greedy with fixed ties
    agent = _q_agent(lam=0.0)
    a = agent.perceive(np.array([0]), np.array([0.0]), _u(0.9, 0.0, (0.1, 0.9)))
    assert a[0] == 1  # all Q equal: the tie goes to the larger noise
    a = agent.perceive(np.array([1]), np.array([10.0]), _u(0.9, 0.0, (0.9, 0.1)))
    # Q(0, 1) = 0 + 0.5 (10 + 0.9 · max Q(1, ·) − 0) = 5
    np.testing.assert_allclose(agent.Q[0], [[0.0, 5.0], [0.0, 0.0]])
    assert a[0] == 0
    agent.perceive(np.array([0]), np.array([-4.0]), _u(0.9, 0.0, (0.1, 0.9)))
    # Q(1, 0) = 0 + 0.5 (−4 + 0.9 · 5 − 0) = 0.25; Q(0, 1) untouched (λ = 0)
    np.testing.assert_allclose(agent.Q[0], [[0.0, 5.0], [0.25, 0.0]])


def test_q_lambda_traces_by_hand():
    agent = _q_agent(lam=0.5)
    agent.perceive(np.array([0]), np.array([0.0]), _u(0.9, 0.0, (0.1, 0.9)))
    agent.perceive(np.array([1]), np.array([10.0]), _u(0.9, 0.0, (0.9, 0.1)))
    np.testing.assert_allclose(agent.E[0], [[0.0, 0.45], [0.0, 0.0]])  # γλ · 1
    agent.perceive(np.array([0]), np.array([-4.0]), _u(0.9, 0.0, (0.1, 0.9)))
    # δ = −4 + 0.9 · 5 − 0 = 0.5: Q(1, 0) += 0.5 · 0.5 · 1, Q(0, 1) += 0.5 · 0.5 · 0.45
    np.testing.assert_allclose(agent.Q[0], [[0.0, 5.1125], [0.25, 0.0]])


def test_exploratory_action_cuts_traces():
    agent = _q_agent(lam=0.9, epsilon=1.0)
    agent.perceive(np.array([0]), np.array([0.0]), _u(0.0, 0.9, (0.1, 0.9)))
    agent.Q[0, 1] = [3.0, 0.0]  # greedy in state 1 is action 0
    a = agent.perceive(np.array([1]), np.array([1.0]), _u(0.0, 0.9, (0.5, 0.5)))
    assert a[0] == 1  # explored the non-greedy action
    np.testing.assert_array_equal(agent.E, 0.0)


def test_frequency_agent_uses_average_reward():
    agent = FrequencyAgent(epsilon=np.zeros(1), size=1, n_obs=1, n_actions=2)
    agent.perceive(np.array([0]), np.array([0.0]), _u(0.9, 0.0, (0.9, 0.1)))  # action 0
    a = agent.perceive(np.array([0]), np.array([-10.0]), _u(0.9, 0.0, (0.9, 0.1)))
    np.testing.assert_allclose(agent.total[0] / (1 + agent.count[0]), [-5.0, 0.0])
    assert a[0] == 1


# -- the estimator -----------------------------------------------------------------------------
def test_stratified_estimate_by_hand():
    strata = Strata(edges=(2, 10), p=np.array([0.75, 0.25]), p_active=0.4)
    values = np.array([1.0, 3.0, np.nan, 10.0, 20.0, 30.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    est = stratified_estimate(values, labels, strata)
    assert est.upsilon == pytest.approx(0.75 * 2.0 + 0.25 * 20.0)
    var = 0.75**2 * 2.0 / 2 + 0.25**2 * 100.0 / 3
    assert est.se == pytest.approx(var**0.5)
    assert est.dropped == 1 and list(est.n) == [2, 3]
    assert est.lo == pytest.approx(est.upsilon - 1.96 * est.se)


def test_neyman_allocation():
    n = neyman_allocation(np.array([0.5, 0.3, 0.2]), np.array([1.0, 2.0, 0.5]), 100, 5)
    assert n.sum() <= 100 and (n >= 5).all()
    assert n[1] > n[0] > n[2]


# -- configuration and claims ------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw",
    [
        {"symbols": 4},
        {"episode": 0},
        {"edges": (3, 5)},
        {"edges": (2, 5, 5)},
        {"min_per_stratum": 1},
        {"test_programs": 10},
        {"search_trials": 0},
        {"epsilon": (0.0, 0.1)},
        {"gamma": (0.5, 1.0)},
    ],
)
def test_config_rejects_meaningless_values(kw):
    with pytest.raises(ValueError):
        AIQConfig(**kw)


def test_search_budget_is_equal_and_paired():
    space = search_space(QUICK, np.random.default_rng(0))
    assert {len(v) for v in space.values()} == {QUICK.search_trials}
    for q, ql in zip(space["q_learning"], space["q_lambda"], strict=True):
        assert q["lam"] == 0.0 and ql["lam"] > 0
        assert (q["alpha"], q["epsilon"], q["gamma"]) == (ql["alpha"], ql["epsilon"], ql["gamma"])


def test_smoke_preset_is_small():
    assert SMOKE.episode * SMOKE.test_programs < QUICK.episode * QUICK.test_programs


def test_settings_are_chosen_on_validation_only(tmp_path):
    args = ["run", "universal_intelligence", "--preset", "smoke", "--out", str(tmp_path), "-q"]
    assert main([*args, "--no-publish"]) == 0
    (run_dir,) = (tmp_path / "universal_intelligence" / "aiq").iterdir()
    summary = json.loads((run_dir / "results.json").read_text())["summary"]
    for kind, table in summary["search"].items():
        best = max(table, key=lambda row: row["val_upsilon"])
        assert summary["chosen"][kind] == {k: best[k] for k in summary["chosen"][kind]}
    assert set(summary["paired_differences"]) == {
        "q_lambda-q_learning",
        "q_learning-frequency",
        "frequency-random",
    }


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    """The quick preset (3 seeds) run once for the claim tests below."""
    out = tmp_path_factory.mktemp("quick")
    assert main(["run", "universal_intelligence", "--out", str(out), "-q", "--no-publish"]) == 0
    (run_dir,) = (out / "universal_intelligence" / "aiq").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    return {c["id"]: c for c in results["claims"]}


@pytest.mark.slow
@pytest.mark.parametrize(
    "claim",
    [
        "random_near_zero",
        "random_exactly_zero",
        "q_learning_above_frequency",
        "frequency_above_random",
    ],
)
def test_quick_claims_hold(quick_claims, claim):
    assert quick_claims[claim]["holds"], quick_claims[claim]


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="Q(λ) beats Q-learning in every seed paired, but the gap between the interval "
    "ends is within the seed-to-seed spread of the validation choice (README: What is weak)",
)
def test_quick_q_lambda_above_q_learning(quick_claims):
    assert quick_claims["q_lambda_above_q_learning"]["holds"]
