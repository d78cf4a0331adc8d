"""order_matters: the process block's content attention (against the fused kernel), its
permutation invariance (and a positional term that breaks it), the write block's pointer
logits, teacher forcing against greedy decoding, the sorting and convex-hull labels and
input orders, exact match, a few training steps, the configs' checks, bench, the quick
claims."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.papers.order_matters.experiment import PAPER
from sutskever30.papers.order_matters.experiments.common import trainer
from sutskever30.papers.order_matters.experiments.input_order import (
    ORDER_QUICK,
    OrderConfig,
    by_angle,
    hull_sets,
    hull_target,
)
from sutskever30.papers.order_matters.experiments.sorting import (
    SORT_QUICK,
    SortConfig,
    invariance,
    sort_sets,
)
from sutskever30.papers.order_matters.model import (
    IGNORE,
    Process,
    PtrNet,
    ReadProcessWrite,
    SetModelConfig,
    content_attention,
    exact_match,
    pointer_loss,
)

from .scratch import bench_cases_that_train


def tiny(cls=ReadProcessWrite, **kw) -> torch.nn.Module:
    """A small model with large random weights, so that outputs depend strongly on inputs."""
    torch.manual_seed(0)
    model = cls(SetModelConfig(**{"d": 6, "attn_dim": 5, "P": 3, **kw}))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.8)
    return model.eval()


def sets(b: int = 4, n: int = 6, seed: int = 1) -> torch.Tensor:
    """b sets of n numbers spread wide (3·N(0, 1)), so that memories differ clearly."""
    return 3 * torch.randn(b, n, 1, generator=torch.Generator().manual_seed(seed))


# -- the process block ------------------------------------------------------------------------


def test_content_attention_equals_the_fused_kernel_with_unit_scale():
    """e_i = m_i · q (no 1/√d), a = softmax(e), r = Σ a_i m_i."""
    q, m = torch.randn(3, 8), torch.randn(3, 5, 8)
    r, a = content_attention(q, m)
    expected = F.scaled_dot_product_attention(q[:, None], m, m, scale=1.0)[:, 0]
    torch.testing.assert_close(r, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a, (m @ q[:, :, None])[..., 0].softmax(-1))


def test_process_attention_sums_to_one_and_starts_uniform():
    model = tiny()
    with torch.no_grad():
        m = model.read(sets())
        _, attn = model.process(m)
    assert attn.shape == (4, 4, 6)
    torch.testing.assert_close(attn.sum(-1), torch.ones(4, 4))
    torch.testing.assert_close(attn[:, 0], torch.full((4, 6), 1 / 6))
    assert (attn[:, 1:] - 1 / 6).abs().max() > 1e-2  # later steps attend by content


def test_zero_process_steps_give_zero_query_and_mean_readout():
    process = Process(6, 0)
    m = torch.randn(3, 5, 6)
    q_star, _ = process(m)
    torch.testing.assert_close(q_star, torch.cat([torch.zeros(3, 6), m.mean(1)], -1))


def test_process_steps_follow_eqs_3_to_7():
    """q_t = LSTM(q*_{t−1}), r_t = Σ softmax(m · q_t) m, q*_t = [q_t; r_t], from q*_0."""
    process = Process(6, 2)
    m = torch.randn(3, 5, 6)
    q, c = torch.zeros(3, 6), torch.zeros(3, 6)
    q_star = torch.cat([q, m.mean(1)], -1)
    for _ in range(2):
        q, c = process.lstm(q_star, (q, c))
        a = (m @ q[:, :, None])[..., 0].softmax(-1)
        q_star = torch.cat([q, (a[..., None] * m).sum(1)], -1)
    with torch.no_grad():
        torch.testing.assert_close(process(m)[0], q_star)


def permuted_qstar_change(model: ReadProcessWrite, x: torch.Tensor) -> float:
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        q = model.process(model.read(x))[0]
        q_p = model.process(model.read(x[:, perm]))[0]
    return (q - q_p).abs().max().item()


def test_process_block_is_permutation_invariant():
    assert permuted_qstar_change(tiny(), sets()) < 1e-6


def test_a_positional_term_breaks_the_invariance():
    """The invariance test can fail: add a position embedding to the memories."""

    class PlusPosition(torch.nn.Module):
        def __init__(self, read, d):
            super().__init__()
            self.base, self.pos = read, torch.nn.Parameter(torch.randn(6, d))

        def forward(self, x):
            return self.base(x) + self.pos[: x.shape[1]]

    class Positional(ReadProcessWrite):
        def __init__(self, cfg):
            super().__init__(cfg)
            self.read = PlusPosition(self.read, cfg.d)

    assert permuted_qstar_change(tiny(Positional), sets()) > 1e-2


def test_output_distribution_is_equivariant_for_rpw_not_for_ptrnet():
    """Permuting the set permutes the pointer distribution the same way (read-process-
    write); the Ptr-Net's LSTM encoder reads the order, so its outputs change."""
    x = sets()
    assert max(invariance(tiny(), x, seed=0).values()) < 1e-5
    model = tiny(PtrNet)
    with torch.no_grad():
        perm = torch.tensor([3, 0, 5, 1, 4, 2])
        y = x[..., 0].argsort(1)
        logp = model(x, y)[0].log_softmax(-1)
        logp_p = model(x[:, perm], perm.argsort()[y])[0].log_softmax(-1)[..., perm.argsort()]
    assert (logp - logp_p).abs().max() > 1e-2


# -- the write block --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ReadProcessWrite, PtrNet])
def test_first_pointer_logits_are_the_additive_attention_scores(cls):
    """Step 1: d_1 = LSTM(go, d_0) with d_0 = q*_P (RPW) or the encoder's final state
    (Ptr-Net), logits = AdditiveAttention.scores(d_1, keys)."""
    model = tiny(cls)
    x = sets()
    with torch.no_grad():
        logits, _, _ = model(x, steps=1)
        m = model.read(x)
        if cls is ReadProcessWrite:
            keys, h0 = m, model.process(m)[0]
            state = (h0, torch.zeros_like(h0))
        else:
            keys, (h_n, c_n) = model.encoder(m)
            state = (h_n[0], c_n[0])
        d1 = model.write.cell(model.write.go.expand(4, -1), state)[0]
        torch.testing.assert_close(logits[:, 0], model.write.pointer.scores(d1, keys))


@pytest.mark.parametrize("cls", [ReadProcessWrite, PtrNet])
def test_teacher_forcing_on_the_greedy_output_reproduces_it(cls):
    model = tiny(cls, end_token=True)
    x = sets()
    with torch.no_grad():
        greedy_logits, picks, _ = model(x, steps=7)
        forced_logits, forced_picks, _ = model(x, picks)
    assert greedy_logits.shape == (4, 7, 7)  # 6 elements + the end token
    torch.testing.assert_close(forced_logits, greedy_logits)
    assert torch.equal(forced_picks, picks)


def test_loss_and_exact_match_skip_positions_after_the_end():
    logits = torch.randn(2, 3, 4)
    y = torch.tensor([[1, 3, IGNORE], [2, 0, 3]])
    expected = F.cross_entropy(
        logits.flatten(0, 1)[y.flatten() >= 0], y.flatten()[y.flatten() >= 0]
    )
    torch.testing.assert_close(pointer_loss(logits, y), expected)
    picks = torch.tensor([[1, 3, 0], [2, 1, 3]])
    assert exact_match(picks, y).tolist() == [True, False]


# -- data -------------------------------------------------------------------------------------


def test_sorting_labels_sort_the_set():
    x, y = sort_sets(torch.Generator().manual_seed(0), 50, 5)
    ordered = torch.gather(x[..., 0], 1, y)
    assert (ordered[:, 1:] > ordered[:, :-1]).all()
    assert ((x >= 0) & (x <= 1)).all()


def test_hull_labels_are_ccw_from_the_leftmost_vertex_then_end():
    from scipy.spatial import ConvexHull

    pts = np.random.default_rng(0).random((8, 2))
    t = hull_target(pts)
    v = t[:-1]
    assert t[-1] == 8 and set(v) == set(ConvexHull(pts).vertices.tolist())
    assert pts[v[0], 0] == pts[v, 0].min()
    poly = pts[v]
    area = 0.5 * np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])
    assert area > 0  # counter-clockwise


def test_angle_order_presents_the_same_sets_with_the_hull_as_a_cyclic_run():
    """The same generator gives the same points in both orders and the same hull; in the
    angle order the hull's vertices appear in increasing input position (up to rotation),
    in the random order they need not."""
    xr, yr = hull_sets(torch.Generator().manual_seed(3), 20, 8, "random")
    xa, ya = hull_sets(torch.Generator().manual_seed(3), 20, 8, "angle")
    for i in range(20):
        assert torch.equal(xr[i][by_angle(xr[i].double().numpy())], xa[i])
        hull_r = {tuple(p) for p in xr[i][yr[i][(yr[i] >= 0) & (yr[i] < 8)]].tolist()}
        pos = ya[i][(ya[i] >= 0) & (ya[i] < 8)]
        assert hull_r == {tuple(p) for p in xa[i][pos].tolist()}
        assert (torch.diff(pos) < 0).sum() <= 1  # one wrap-around at most
        assert (ya[i] == 8).sum() == 1


# -- training and configs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_model,make",
    [
        (lambda: ReadProcessWrite(SetModelConfig(d=16, attn_dim=16, P=2)), "sort"),
        (lambda: PtrNet(SetModelConfig(in_dim=2, d=16, attn_dim=16, end_token=True)), "hull"),
    ],
)
def test_a_few_steps_lower_the_loss(make_model, make):
    def data(g, b):
        return sort_sets(g, b, 5) if make == "sort" else hull_sets(g, b, 6, "angle")

    torch.manual_seed(0)
    model = make_model()
    run = type("R", (), {"seed": 0, "device": torch.device("cpu")})()
    cfg = dataclasses.replace(SORT_QUICK, lr=1e-2, batch_size=64)
    _, step = trainer(run, cfg, model, data)
    x, y = data(torch.Generator().manual_seed(99), 256)
    with torch.no_grad():
        before = pointer_loss(model(x, y)[0], y).item()
    for s in range(40):
        step(s)
    with torch.no_grad():
        after = pointer_loss(model(x, y)[0], y).item()
    assert after < before - 0.3, (before, after)


def test_configs_reject_meaningless_values():
    for bad in (
        dict(d=0),
        dict(lr=0.0),
        dict(clip=-1.0),
        dict(steps=0),
        dict(sizes=(1,)),
        dict(sizes=()),
        dict(P=(1, 5)),
        dict(P=(0, -1)),
        dict(P=(0, 0)),
        dict(split="train"),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(SORT_QUICK, **bad)
    for bad in (dict(n=2), dict(P=-1), dict(eval_sets=0)):
        with pytest.raises(ValueError):
            dataclasses.replace(ORDER_QUICK, **bad)
    with pytest.raises(ValueError):
        SetModelConfig(P=-1)
    assert SortConfig().split == OrderConfig().split == "test"


def test_bench_times_each_sorting_arms_own_step(tmp_path):
    cases = bench_cases_that_train(tmp_path, PAPER, "sorting")
    assert [c.name for c in cases] == ["n5_P0", "n5_P1", "n5_P5", "n5_ptrnet"]


KNOWN_FAILING = {"process_steps_help_n5"}  # does not hold at quick (README: What is weak)


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    args = ["run", "order_matters", "--out", str(tmp_path), "-q", "--no-publish", "--jobs", "3"]
    assert main(args) == 0
    failing = []
    for exp in ("sorting", "input_order"):
        (run_dir,) = (tmp_path / "order_matters" / exp).iterdir()
        results = json.loads((run_dir / "results.json").read_text())
        assert results["seeds"] == [0, 1, 2]
        for claim in results["claims"]:
            if claim["id"] in KNOWN_FAILING and not claim["holds"]:
                failing.append(claim["id"])
            else:
                assert claim["holds"] or not claim["asserted"], claim
    if failing:
        pytest.xfail(f"{failing} did not hold at quick (README: What is weak)")
