"""relation_networks: the Sort-of-CLEVR generator (answers recomputed by hand for a built
scene, no overlaps, distinct colours, determinism, disjoint splits), the RN's pair sum
against an explicit loop over all N² pairs, its invariance to the order of the objects,
the coordinates, the baseline, a few training steps, the config's checks, the smoke run
and the quick claims."""

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch

from sutskever30.cli import main
from sutskever30.core.train import batch_indices
from sutskever30.data.sort_of_clevr import (
    ANSWERS,
    COLOURS,
    N_OBJECTS,
    QUESTION_TYPES,
    RGB,
    Scene,
    answer,
    encode_question,
    generate,
    min_centre_distance,
    render,
    split_rng,
)
from sutskever30.papers.relation_networks.experiment import (
    ARMS,
    BN_BATCHES,
    PAPER,
    QUICK,
    SMOKE,
    SortConfig,
    accuracies,
    as_tensors,
    precise_bn,
    trainer,
)
from sutskever30.papers.relation_networks.model import (
    CNNMLP,
    RelationModule,
    RelationNetwork,
    RNConfig,
    answer_loss,
    cell_coordinates,
    objects_from_features,
)

from .scratch import bench_cases_that_train

SIZE, R = 40, 4
SHAPE_NAMES = ("square", "circle")


def kind(name: str) -> int:
    return QUESTION_TYPES.index(name)


# -- the generator ------------------------------------------------------------------------------


def built_scene() -> Scene:
    """red square at (5, 5), green circle (30, 6), blue square (12, 30), orange circle
    (34, 34), yellow circle (20, 18), gray square (6, 20)."""
    return Scene(
        centres=np.array([[5, 5], [30, 6], [12, 30], [34, 34], [20, 18], [6, 20]]),
        shapes=np.array([0, 1, 0, 1, 1, 0]),
    )


def test_answers_of_a_hand_built_scene():
    """Each answer worked out by hand from the coordinates above (distances in the
    comments are squared)."""
    s = built_scene()
    red, green, blue, orange, yellow, gray = range(6)
    expected = {
        (red, "shape"): "square",
        (green, "shape"): "circle",
        (red, "horizontal"): "yes",  # x = 5 < 20
        (green, "horizontal"): "no",  # x = 30
        (yellow, "horizontal"): "no",  # x = 20 is not < 20
        (blue, "vertical"): "no",  # y = 30
        (green, "vertical"): "yes",  # y = 6
        (red, "closest"): "square",  # gray 1+225=226, yellow 225+169=394
        (red, "furthest"): "circle",  # orange 841+841
        (orange, "closest"): "circle",  # yellow 196+256=452, blue 484+16=500
        (orange, "furthest"): "square",  # red 1682, green 16+784=800
        (gray, "closest"): "square",  # blue 36+100=136, yellow 196+4=200, red 1+225=226
        (gray, "furthest"): "circle",  # orange 784+196=980, green 576+196=772
        (blue, "count"): "3",  # red, blue, gray squares
        (yellow, "count"): "3",
    }
    for (colour, name), want in expected.items():
        got = ANSWERS[answer(s, colour, kind(name), SIZE)]
        assert got == want, (COLOURS[colour], name, got, want)


def test_question_vector_is_colour_type_and_subtype():
    q = encode_question(COLOURS.index("blue"), kind("furthest"))
    assert q.tolist() == [0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0]
    q = encode_question(COLOURS.index("gray"), kind("vertical"))
    assert q.tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1]


def test_render_draws_each_colour_once_as_its_shape():
    s = built_scene()
    img = render(s, SIZE, R).transpose(1, 2, 0)  # (H, W, 3)
    for k, ((cx, cy), shape) in enumerate(zip(s.centres, s.shapes, strict=True)):
        mask = (img == RGB[k]).all(-1)
        area = mask.sum()
        if shape == 0:
            assert area == (2 * R + 1) ** 2 and mask[cy - R, cx - R] and mask[cy + R, cx + R]
        else:
            assert 40 < area < (2 * R + 1) ** 2 and not mask[cy - R, cx - R]
        assert mask[cy, cx]


def test_generated_scenes_do_not_overlap_and_use_six_distinct_colours():
    data = generate(split_rng("train", 3), 30, size=SIZE, r=R)
    painted = sum(
        (2 * R + 1) ** 2 if sh == 0 else (np.hypot(*np.mgrid[-R : R + 1, -R : R + 1]) <= R).sum()
        for sh in data.scenes[0].shapes
    )
    for scene, img in zip(data.scenes, data.images, strict=True):
        d = np.hypot(*(scene.centres[:, None] - scene.centres[None]).transpose(2, 0, 1))
        assert d[~np.eye(N_OBJECTS, dtype=bool)].min() >= min_centre_distance(R)
        pixels = img.transpose(1, 2, 0).reshape(-1, 3)
        colours = {tuple(p) for p in pixels} - {(255, 255, 255)}
        assert colours == {tuple(c) for c in RGB}  # six colours, nothing else, none hidden
        assert len(set(map(tuple, RGB.tolist()))) == N_OBJECTS
    img = data.images[0].transpose(1, 2, 0)
    assert (img != 255).any(-1).sum() == painted  # no object covers another


def test_generated_answers_match_an_independent_recomputation():
    """Every answer of 20 generated images recomputed with plain loops."""
    data = generate(split_rng("val", 1), 20, size=SIZE, r=R)
    for scene, qs, answers, kinds in zip(
        data.scenes, data.questions, data.answers, data.kinds, strict=True
    ):
        for q, a, k in zip(qs, answers, kinds, strict=True):
            c = int(np.argmax(q[:6]))
            assert q[6 + int(k >= 3)] == 1 and q[8 + k % 3] == 1
            (x, y), name = scene.centres[c], QUESTION_TYPES[k]
            if name == "shape":
                want = SHAPE_NAMES[scene.shapes[c]]
            elif name == "horizontal":
                want = "yes" if x < SIZE / 2 else "no"
            elif name == "vertical":
                want = "yes" if y < SIZE / 2 else "no"
            elif name == "count":
                want = str(sum(int(s == scene.shapes[c]) for s in scene.shapes))
            else:
                dist = {
                    o: (scene.centres[o][0] - x) ** 2 + (scene.centres[o][1] - y) ** 2
                    for o in range(6)
                    if o != c
                }
                pick = min if name == "closest" else max
                want = SHAPE_NAMES[scene.shapes[pick(dist, key=dist.get)]]
            assert ANSWERS[a] == want
        assert (kinds[:10] < 3).all() and (kinds[10:] >= 3).all()


def test_generation_is_deterministic_and_splits_differ():
    a = generate(split_rng("train", 0), 5, size=SIZE, r=R)
    b = generate(split_rng("train", 0), 5, size=SIZE, r=R)
    c = generate(split_rng("test", 0), 5, size=SIZE, r=R)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.answers, b.answers)
    assert not np.array_equal(a.images, c.images)
    with pytest.raises(ValueError):
        split_rng("dev", 0)


# -- the relation network -----------------------------------------------------------------------


def tiny_cfg(**kw) -> RNConfig:
    return RNConfig(image_size=32, d_g=12, d_f=10, d_mlp=10, **kw)


def tiny_rn() -> RelationNetwork:
    torch.manual_seed(0)
    model = RelationNetwork(tiny_cfg())
    with torch.no_grad():
        for p in model.rn.parameters():
            p.normal_(0.0, 0.5)
    return model.eval()


def test_pair_sum_equals_an_explicit_loop_over_all_pairs():
    """Σ_{i,j} g_θ(o_i, o_j, q) with g_θ written as one MLP on the concatenation
    [o_i ; o_j ; q] (the split first layer joined back into one weight), over all N²
    ordered pairs, i = j included."""
    rn = tiny_rn().rn
    g = torch.Generator().manual_seed(1)
    objects, q = torch.randn(2, 5, 26, generator=g), torch.randn(2, 11, generator=g)
    W = torch.cat([rn.g_in_i.weight, rn.g_in_j.weight, rn.g_in_q.weight], dim=1)
    layers = [m for m in rn.g_rest if isinstance(m, torch.nn.Linear)]

    def g_theta(x):
        h = torch.relu(x @ W.T + rn.g_in_i.bias)
        for lin in layers:
            h = torch.relu(lin(h))
        return h

    with torch.no_grad():
        for b in range(2):
            total = sum(
                g_theta(torch.cat([objects[b, i], objects[b, j], q[b]]))
                for i, j in itertools.product(range(5), repeat=2)
            )
            got = rn.relations(objects, q)[b]
            torch.testing.assert_close(got, total, rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(rn(objects, q)[b], rn.f_phi(total), rtol=1e-5, atol=1e-4)


def test_g_theta_is_ordered_in_its_pair():
    """g_θ(o_i, o_j) ≠ g_θ(o_j, o_i): the pair is ordered, so the sum over all N² pairs is
    not twice the sum over i < j plus the diagonal of a symmetric function."""
    rn = tiny_rn().rn
    a, b, q = torch.randn(26), torch.randn(26), torch.randn(11)
    with torch.no_grad():
        assert (rn.g_theta(a, b, q) - rn.g_theta(b, a, q)).abs().max() > 1e-3


def test_rn_is_invariant_to_the_order_of_the_objects():
    rn = tiny_rn().rn.double()  # float64: the sum's order changes only the rounding
    g = torch.Generator().manual_seed(2)
    objects = torch.randn(3, 9, 26, generator=g, dtype=torch.float64)
    q = torch.randn(3, 11, generator=g, dtype=torch.float64)
    perm = torch.randperm(9, generator=g)
    with torch.no_grad():
        out, shuffled = rn(objects, q), rn(objects[:, perm], q)
    torch.testing.assert_close(shuffled, out, rtol=1e-10, atol=1e-10)
    assert out.std() > 1e-2  # not a constant function


def test_rn_on_pixels_depends_on_cell_positions_through_the_coordinates():
    """Shuffling the cells together with their (x, y) tags leaves the answer unchanged;
    shuffling the features but not the coordinates changes it (the coordinates are what
    tell the RN where each object is)."""
    model = tiny_rn().double()
    x, q = torch.rand(2, 3, 32, 32, dtype=torch.float64), torch.rand(2, 11, dtype=torch.float64)
    with torch.no_grad():
        objects = model.objects(x)  # (B, 4, 26)
        perm = torch.tensor([3, 0, 1, 2])
        same = model.rn(objects[:, perm], q)
        moved = objects.clone()
        moved[:, :, :-2] = objects[:, perm, :-2]
        torch.testing.assert_close(same, model(x, q), rtol=1e-10, atol=1e-10)
        assert (model.rn(moved, q) - model(x, q)).abs().max() > 1e-3


def test_objects_are_the_cells_of_the_feature_map_with_their_coordinates():
    fmap = torch.randn(2, 24, 3, 3)
    objects = objects_from_features(fmap)
    assert objects.shape == (2, 9, 26)
    torch.testing.assert_close(objects[1, 5, :24], fmap[1, :, 1, 2])  # row 1, column 2
    torch.testing.assert_close(objects[1, 5, 24:], torch.tensor([1.0, 0.0]))
    xy = cell_coordinates(3)
    assert xy[0].tolist() == [-1.0, -1.0] and xy[2].tolist() == [1.0, -1.0]


def test_cnn_gives_the_papers_grid_and_both_models_share_it():
    """75 px → 38 → 19 → 10 → 5: the paper's 5 × 5 = 25 objects; the two arms have the
    same CNN."""
    cfg = RNConfig()
    assert cfg.k == 5 and cfg.n_objects == 25 and cfg.d_o == 26
    assert RNConfig(image_size=64).k == 4
    rn, mlp = RelationNetwork(cfg), CNNMLP(cfg)
    shapes = [p.shape for p in rn.cnn.parameters()]
    assert shapes == [p.shape for p in mlp.cnn.parameters()]
    assert sum(isinstance(m, torch.nn.Conv2d) for m in rn.cnn.modules()) == 4
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in rn.cnn.modules()) == 4
    assert rn(torch.rand(2, 3, 75, 75), torch.rand(2, 11)).shape == (2, 10)
    assert mlp(torch.rand(2, 3, 75, 75), torch.rand(2, 11)).shape == (2, 10)


def test_relation_module_counts_every_pair():
    """With g_θ a constant vector, the sum is N² times it."""
    rn = RelationModule(tiny_cfg(g_layers=1))
    with torch.no_grad():
        for p in rn.parameters():
            p.zero_()
        rn.g_in_i.bias.fill_(1.0)
        total = rn.relations(torch.randn(2, 7, 26), torch.randn(2, 11))
    torch.testing.assert_close(total, torch.full((2, 12), 49.0))


# -- the experiment -----------------------------------------------------------------------------


def test_accuracies_by_kind():
    data = as_tensors(generate(split_rng("test", 0), 3, size=SIZE, r=R))
    acc = accuracies(data.answers.clone(), data)
    assert all(v == 1.0 for v in acc.values())
    wrong = data.answers.clone()
    wrong[data.kinds == 5] = 0  # "yes" is never a count
    acc = accuracies(wrong, data)
    assert acc["count"] == 0.0 and acc["non_relational"] == 1.0
    assert acc["relational"] == pytest.approx(1 - (data.kinds == 5).float().mean().item() * 2)


def test_a_few_steps_lower_the_loss():
    """Both arms: 40 steps on 24 images overfit a batch drawn before training."""
    cfg = dataclasses.replace(SMOKE, n_train=24, lr_rn=3e-3, lr_cnn_mlp=3e-3, batch_size=32)
    data = as_tensors(generate(split_rng("train", 0), 24, size=32, r=3))
    run = type("R", (), {"seed": 0, "device": torch.device("cpu")})()
    held = torch.arange(0, 480, 15)
    x = data.images[data.image_of[held]].float() / 255
    for arm in ARMS:
        model, _, step = trainer(run, cfg, arm, data)
        model.train()
        before = answer_loss(model(x, data.questions[held]), data.answers[held]).item()
        for s in range(40):
            step(s)
        after = answer_loss(model(x, data.questions[held]), data.answers[held]).item()
        assert after < before - 0.3, (arm, before, after)


def test_precise_bn_sets_the_average_of_the_training_batches_statistics():
    """After precise_bn the first BatchNorm's running mean is the average, over the
    BN_BATCHES batches it saw, of each batch's per-channel mean of conv1's output; the
    model is left in eval mode with the usual momentum."""
    data = as_tensors(generate(split_rng("train", 0), 30, size=32, r=3))
    run = type("R", (), {"seed": 0, "device": torch.device("cpu")})()
    model, _, step = trainer(run, SMOKE, "rn", data)
    step(0)  # running stats no longer at their initial values
    precise_bn(model, data, SMOKE, run)
    conv, bn = model.cnn.net[0], model.cnn.net[1]
    with torch.no_grad():
        means = [
            conv(
                data.images[data.image_of[batch_indices(600, SMOKE.batch_size, b, 7_919)]] / 255
            ).mean((0, 2, 3))
            for b in range(BN_BATCHES)
        ]
    torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0), rtol=1e-4, atol=1e-5)
    assert not model.training and bn.momentum == 0.1


def test_config_rejects_meaningless_values():
    for bad in (
        dict(steps=0),
        dict(lr_rn=0.0),
        dict(lr_cnn_mlp=-1.0),
        dict(r=0),
        dict(image_size=16),
        dict(n_eval=0),
        dict(d_g=0),
        dict(dropout=1.0),
        dict(split="train"),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(QUICK, **bad)
    assert SortConfig().split == "test"
    with pytest.raises(ValueError):
        generate(split_rng("train", 0), 2, size=10, r=4)


def test_bench_times_each_arms_training_step(tmp_path):
    cases = bench_cases_that_train(tmp_path, PAPER, "sort_of_clevr")
    assert [c.name for c in cases] == list(ARMS)


def test_smoke_run_writes_results(tmp_path):
    assert main(["run", "relation_networks", "--preset", "smoke", "--out", str(tmp_path),
                 "-q", "--no-publish"]) == 0  # fmt: skip
    (run_dir,) = (tmp_path / "relation_networks" / "sort_of_clevr").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    ids = [c["id"] for c in results["claims"]]
    assert ids == ["rn_beats_cnn_mlp_relational", "both_solve_non_relational",
                   "accuracy_by_question_type"]  # fmt: skip
    assert (run_dir / "accuracy_by_type.png").exists() and (run_dir / "examples.png").exists()


@pytest.mark.slow
@pytest.mark.xfail(
    reason="measured not to hold at quick scale: both models stay on the plateau where the "
    "question's colour is not yet bound to the image (README: What is weak)",
    strict=False,
)
def test_quick_claims_hold(tmp_path):
    exp = PAPER.experiment("sort_of_clevr")
    args = ["run", "relation_networks", "--out", str(tmp_path), "-q", "--no-publish"]
    if exp.quick_seeds > 1:
        args += ["--jobs", str(exp.quick_seeds)]
    assert main(args) == 0
    (run_dir,) = (tmp_path / "relation_networks" / "sort_of_clevr").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["seeds"]) == exp.quick_seeds
    for claim in results["claims"]:
        assert claim["holds"] or not claim["asserted"], claim
