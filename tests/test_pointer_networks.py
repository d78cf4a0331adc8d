"""pointer_networks: the pointer logits against the paper's formula written out, padding and
used-position masks, teacher forcing against step-by-step decoding, beam search of width 1
against masked greedy, Held–Karp against brute force, hull labels against ConvexHull, the
area coverage and the simple-polygon check, disjoint splits, a few training steps, the
config's checks, the quick claims."""

import json

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

from sutskever30.cli import main
from sutskever30.data.planar import (
    brute_force_tour,
    canonical_tour,
    convex_hull_sets,
    held_karp,
    hull_coverage,
    is_simple_polygon,
    polygon_area,
    rng,
    tour_length,
    tsp_sets,
)
from sutskever30.papers.pointer_networks.experiment import PAPER
from sutskever30.papers.pointer_networks.experiments.common import (
    PlanarConfig,
    make_sets,
    tensors,
    trainer,
)
from sutskever30.papers.pointer_networks.experiments.convex_hull import hull_scores
from sutskever30.papers.pointer_networks.model import STOP, PointerNet, PtrNetConfig, pointer_loss

from .scratch import scratch_run


def tiny() -> PointerNet:
    """A small model with large random weights, so outputs depend strongly on inputs."""
    torch.manual_seed(0)
    model = PointerNet(PtrNetConfig(hidden=8, attn_dim=6))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.8)
    return model.eval()


def padded_batch(task: str = "hull"):
    """Three sets of 7, 5 and 4 points (padding zero) with their labels as targets."""
    make = convex_hull_sets if task == "hull" else tsp_sets
    sets = make(rng(3, "test"), 40, 4, 7)
    rows = np.array([int(np.flatnonzero(sets.lengths == n)[0]) for n in (7, 5, 4)])
    return sets, rows, tensors(sets, rows)


# -- the pointer -------------------------------------------------------------------------------


def test_pointer_logits_are_v_tanh_w1_e_plus_w2_d():
    """u^i_j = vᵀ tanh(W1 e_j + W2 d_i) with the raw weights, e_0 the stop state, d_i the
    decoder LSTM's states on the teacher-forced inputs."""
    model = tiny()
    _, _, (points, lengths, targets) = padded_batch()
    with torch.no_grad():
        logits = model(points, lengths, targets)  # (B, T, 1 + n)
        enc = model.encode(points, lengths)
        d, _ = model.decoder(model.decoder_inputs(points, targets[:, :-1]), (enc["h"], enc["c"]))
    W1, W2 = model.pointer.U.weight, model.pointer.W.weight
    v = model.pointer.v.weight[0]
    for b in range(3):
        for i in range(targets.shape[1]):
            for j in range(int(lengths[b]) + 1):
                e_j = enc["e"][b, j]
                u = v @ torch.tanh(W1 @ e_j + W2 @ d[b, i])
                torch.testing.assert_close(logits[b, i, j], u, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(enc["e"][:, 0], model.e_stop.expand(3, -1))


def test_padding_is_masked_and_sets_are_read_alone():
    """Logits at padded positions are −inf, and a padded set's encoding and logits equal
    those of the set alone (the encoder's final state is at its last real point)."""
    model = tiny()
    _, _, (points, lengths, targets) = padded_batch()
    with torch.no_grad():
        logits = model(points, lengths, targets)
        t = int((targets[2] >= 0).sum())
        alone = model(points[2:, :4], lengths[2:], targets[2:, :t])
    assert torch.isinf(logits[1, :, 6:]).all() and torch.isinf(logits[2, :, 5:]).all()
    assert torch.isfinite(logits[0]).all()
    torch.testing.assert_close(logits[2, :t, :5], alone[0], rtol=1e-5, atol=1e-5)


def test_decoder_never_points_at_padding():
    """Greedy decoding (unconstrained) of 40 sets of 4-7 points padded to 7 returns only real
    points of each set, for several random weight draws. e_0 is set so that W1 e_0 = −10
    sign(v): the stop's logit is then near its minimum, −Σ|v|, and decoding runs for
    ``max_steps`` (unmasked, the zero states at padding win some of those steps)."""
    sets = convex_hull_sets(rng(3, "test"), 40, 4, 7)
    points, lengths, _ = tensors(sets, np.arange(40))
    for seed in range(3):
        torch.manual_seed(seed)
        model = PointerNet(PtrNetConfig(hidden=8, attn_dim=6)).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.8)
            W1, v = model.pointer.U.weight, model.pointer.v.weight[0]
            model.e_stop.copy_(torch.linalg.pinv(W1) @ (-10 * v.sign()))
        outs = model.greedy(points, lengths, max_steps=12)
        for out, n in zip(outs, lengths.tolist(), strict=True):
            assert all(0 <= j < n for j in out)
        assert sum(map(len, outs)) >= 40 * 10  # the decoder did not stop early


def test_decoder_reads_go_then_the_previous_true_point():
    model = tiny()
    _, _, (points, _, targets) = padded_batch()
    with torch.no_grad():
        x = model.decoder_inputs(points, targets[:, :-1])  # (B, T, H)
        for b in range(3):
            torch.testing.assert_close(x[b, 0], model.go)
            for i in range(int((targets[b] > 0).sum())):
                torch.testing.assert_close(x[b, i + 1], model.embed(points[b, targets[b, i] - 1]))


def test_teacher_forcing_equals_step_by_step():
    """The decoder run over the teacher-forced inputs at once gives the same logits as feeding
    it one step at a time with the true previous point (what greedy decoding does)."""
    model = tiny()
    _, _, (points, lengths, targets) = padded_batch()
    with torch.no_grad():
        logits = model(points, lengths, targets)
        enc = model.encode(points, lengths)
        x = model.decoder_inputs(points, targets[:, :-1])
        state = (enc["h"], enc["c"])
        for i in range(targets.shape[1]):
            d, state = model.decoder(x[:, i : i + 1], state)
            torch.testing.assert_close(model.pointer_logits(enc, d)[:, 0], logits[:, i])


def test_tour_decoding_gives_permutations_and_beam_1_is_greedy():
    model = tiny()
    _, _, (points, lengths, _) = padded_batch("tsp")
    greedy = model.greedy(points, lengths, max_steps=8, tour=True)
    beam1 = model.beam_tours(points, lengths, beam=1)
    beam4 = model.beam_tours(points, lengths, beam=4)
    for n, g, b1, b4 in zip(lengths.tolist(), greedy, beam1, beam4, strict=True):
        assert sorted(g) == sorted(b4) == list(range(n))
        assert b1 == g


def test_beam_search_finds_the_most_probable_tour():
    """With a beam as wide as the number of tours of a 4-point set, beam search returns the
    tour of highest teacher-forced log-probability among all 24 orders."""
    import itertools

    model = tiny()
    points = torch.rand(1, 4, 2, generator=torch.Generator().manual_seed(5))
    lengths = torch.tensor([4])
    best = model.beam_tours(points, lengths, beam=24)[0]
    scores = {}
    for perm in itertools.permutations(range(4)):
        targets = torch.tensor([[j + 1 for j in perm] + [STOP]])
        with torch.no_grad():
            logits = model(points, lengths, targets)[0, :4]
        mask = torch.ones(5, dtype=torch.bool)
        logp = 0.0
        for i, j in enumerate(perm):  # the beam's distribution: visited points and stop masked
            mask[0] = False
            logp += logits[i].masked_fill(~mask, float("-inf")).log_softmax(-1)[j + 1].item()
            mask[j + 1] = False
        scores[perm] = logp
    assert tuple(best) == max(scores, key=scores.get)


# -- labels and metrics -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_held_karp_equals_brute_force(n):
    points = rng(n, "test").random((6, n, 2))
    tours, lengths = held_karp(points)
    for i in range(6):
        tour, length = brute_force_tour(points[i])
        assert tours[i].tolist() == tour.tolist()
        assert lengths[i] == pytest.approx(length)
        assert tour_length(points[i], tours[i]) == pytest.approx(length)


def test_tsp_labels_are_canonical_optimal_tours():
    sets = tsp_sets(rng(1, "val"), 30, 5, 8)
    for i in range(30):
        pts, tour = sets.points[i, : sets.lengths[i]], sets.labels[i]
        assert tour[0] == 0 and tour[1] < tour[-1] and sorted(tour) == list(range(len(pts)))
        assert canonical_tour(tour[::-1]).tolist() == tour.tolist()
    assert (sets.points[sets.lengths == 5][:, 5:] == 0).all()


def test_hull_labels_match_convex_hull():
    """The vertices are scipy's, start at the lowest index and go counter-clockwise."""
    sets = convex_hull_sets(rng(0, "test"), 50, 5, 12)
    for i in range(50):
        pts, hull = sets.points[i, : sets.lengths[i]], sets.labels[i]
        assert sorted(hull) == sorted(ConvexHull(pts).vertices)
        assert hull[0] == hull.min()
        p = pts[hull]
        signed = np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))
        assert signed > 0  # counter-clockwise


def test_area_coverage_and_failures():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], dtype=float)
    assert polygon_area(square, [0, 1, 2, 3]) == pytest.approx(1.0)
    assert hull_coverage(square, [0, 1, 2, 3]) == pytest.approx(1.0)
    assert hull_coverage(square, [0, 1, 2]) == pytest.approx(0.5)
    assert hull_coverage(square, [0, 1, 2, 4, 3]) == pytest.approx(0.75)
    assert not is_simple_polygon(square, [0, 2, 1, 3])  # a bow tie
    assert hull_coverage(square, [0, 2, 1, 3]) is None
    assert hull_coverage(square, [0, 1, 2, 1]) is None  # a repeated vertex
    assert hull_coverage(square, [0, 1]) is None


def test_hull_scores():
    sets = convex_hull_sets(rng(2, "test"), 4, 6, 6)
    preds = [list(sets.labels[0]), list(sets.labels[1][::-1]), [0, 0, 0], []]
    s = hull_scores(sets, preds)
    assert s["exact"] == 0.25  # the reversed hull is not the canonical order
    assert s["area"] == pytest.approx(1.0) and s["fail"] == 0.5


def test_splits_are_disjoint_streams():
    a = convex_hull_sets(rng(0, "train"), 5, 5, 10).points
    b = convex_hull_sets(rng(0, "test"), 5, 5, 10).points
    c = convex_hull_sets(rng(0, "train"), 5, 5, 10).points
    assert not np.allclose(a, b) and np.array_equal(a, c)
    with pytest.raises(ValueError, match="split"):
        rng(0, "dev")


# -- training and config ----------------------------------------------------------------------


@pytest.mark.parametrize("task", ["hull", "tsp"])
def test_training_steps_lower_the_loss(tmp_path, task):
    cfg = PlanarConfig(
        task=task,
        hidden=32,
        attn_dim=32,
        train_sets=256,
        batch_size=64,
        lr=1e-2,
        larger_n=(20,) if task == "hull" else (),
    )
    run = scratch_run(tmp_path, "pointer_networks", task, cfg)
    train = make_sets(cfg, "train", 0, cfg.train_sets, cfg.n_min, cfg.n_max)
    model, _, step = trainer(run, cfg, train)
    points, lengths, targets = tensors(train, np.arange(64))
    with torch.no_grad():
        before = pointer_loss(model(points, lengths, targets), targets).item()
    for s in range(40):
        step(s)
    with torch.no_grad():
        after = pointer_loss(model(points, lengths, targets), targets).item()
    assert after < before - 0.2


@pytest.mark.parametrize(
    "bad",
    [
        {"task": "sort"},
        {"n_min": 3},
        {"n_min": 8, "n_max": 6},
        {"task": "tsp", "n_max": 13, "larger_n": ()},
        {"steps": 0},
        {"lr": 0.0},
        {"train_sets": 10},
        {"larger_n": (8,)},
        {"beam": 0},
        {"split": "train"},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        PlanarConfig(**bad)
    with pytest.raises(ValueError):
        PtrNetConfig(hidden=0)


def test_registered():
    assert PAPER.slug == "pointer_networks"
    assert [e.name for e in PAPER.experiments] == ["convex_hull", "tsp"]


# -- the quick claims -------------------------------------------------------------------------


KNOWN_FAILING = {"hull_generalizes"}  # README: Results, did not hold at quick


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["convex_hull", "tsp"])
def test_quick_claims_hold(tmp_path, experiment):
    target = f"pointer_networks:{experiment}"
    out = str(tmp_path)
    code = main(["run", target, "--preset", "quick", "--out", out, "-q", "--no-publish"])
    assert code == 0
    (run_dir,) = (tmp_path / "pointer_networks" / experiment).iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    asserted = [c for c in results["claims"] if c["asserted"]]
    for claim in asserted:
        if claim["id"] not in KNOWN_FAILING:
            assert claim["holds"], claim
    failing = [c["id"] for c in asserted if c["id"] in KNOWN_FAILING and not c["holds"]]
    if failing:
        pytest.xfail(f"{failing} did not hold at quick (README: Results)")
