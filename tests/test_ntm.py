"""ntm: each addressing stage (content, interpolation, circular shift, sharpening) and the
weightings summing to 1 after each, erase/add writing and reading against hand
computations, the copy-task data, a few training steps, the config's checks, smoke, the
quick claims."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.papers.ntm.experiment import (
    ARMS,
    PAPER,
    QUICK,
    SMOKE,
    CopyConfig,
    bit_error,
    copy_batch,
    eval_batch,
    train_batch,
    trainer,
)
from sutskever30.papers.ntm.model import (
    NTM,
    NTMConfig,
    address,
    bits_loss,
    content_weighting,
    cosine_similarity,
    interpolate,
    read,
    sharpen,
    shift,
    write,
)

from .scratch import bench_cases_that_train

B, N, M = 3, 7, 5


@pytest.fixture
def heads():
    """A random memory, previous weighting and head parameters in their allowed ranges."""
    g = torch.Generator().manual_seed(0)
    memory = torch.randn(B, N, M, generator=g)
    w_prev = torch.softmax(torch.randn(B, N, generator=g), -1)
    return {
        "memory": memory,
        "w_prev": w_prev,
        "k": torch.randn(B, M, generator=g),
        "beta": torch.rand(B, 1, generator=g) * 5,
        "g": torch.rand(B, 1, generator=g),
        "s": torch.softmax(torch.randn(B, 3, generator=g), -1),
        "gamma": 1 + torch.rand(B, 1, generator=g) * 3,
    }


def test_content_weighting_is_the_hand_computation(heads):
    """Eq. 5–6 written out with loops over locations."""
    mem, k, beta = heads["memory"], heads["k"], heads["beta"]
    expected = torch.zeros(B, N)
    for b in range(B):
        sims = [float(k[b] @ mem[b, i] / (k[b].norm() * mem[b, i].norm())) for i in range(N)]
        e = [torch.exp(beta[b, 0] * s) for s in sims]
        expected[b] = torch.tensor([float(x / sum(e)) for x in e])
    torch.testing.assert_close(content_weighting(k, beta, mem), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        cosine_similarity(k, mem), F.cosine_similarity(k.unsqueeze(1), mem, dim=-1)
    )


def test_weightings_sum_to_one_after_every_stage(heads):
    h = heads
    w_c = content_weighting(h["k"], h["beta"], h["memory"])
    w_g = interpolate(w_c, h["w_prev"], h["g"])
    w_tilde = shift(w_g, h["s"])
    w = sharpen(w_tilde, h["gamma"])
    for stage in (w_c, w_g, w_tilde, w):
        torch.testing.assert_close(stage.sum(-1), torch.ones(B))
        assert stage.min() >= 0
    args = (h["memory"], h["w_prev"], h["k"], h["beta"], h["g"], h["s"], h["gamma"])
    torch.testing.assert_close(address(*args), w)


def test_interpolation_gate_picks_content_or_previous(heads):
    w_c = torch.softmax(torch.randn(B, N), -1)
    torch.testing.assert_close(interpolate(w_c, heads["w_prev"], torch.ones(B, 1)), w_c)
    torch.testing.assert_close(
        interpolate(w_c, heads["w_prev"], torch.zeros(B, 1)), heads["w_prev"]
    )


def test_shift_by_zero_is_identity_and_one_hot_shift_rolls_circularly(heads):
    w = heads["w_prev"]
    s = torch.tensor([[0.0, 1.0, 0.0]]).expand(B, 3)
    torch.testing.assert_close(shift(w, s), w)
    forward = torch.tensor([[0.0, 0.0, 1.0]]).expand(B, 3)  # s(+1) = 1
    torch.testing.assert_close(shift(w, forward), torch.cat([w[:, -1:], w[:, :-1]], -1))
    backward = torch.tensor([[1.0, 0.0, 0.0]]).expand(B, 3)  # s(−1) = 1
    torch.testing.assert_close(shift(w, backward), torch.cat([w[:, 1:], w[:, :1]], -1))
    last = torch.zeros(1, N)
    last[0, N - 1] = 1.0  # the focus wraps around from the last location to the first
    assert shift(last, forward[:1])[0].argmax() == 0


def test_shift_is_eq_8_circular_convolution(heads):
    """w̃(i) = Σ_j w(j) s(i − j mod N) with s indexed by shift −1, 0, +1."""
    w, s = heads["w_prev"], heads["s"]
    expected = torch.zeros(B, N)
    for b in range(B):
        for i in range(N):
            for j in range(N):
                d = (i - j) % N
                d = d - N if d > N // 2 else d
                if d in (-1, 0, 1):
                    expected[b, i] += w[b, j] * s[b, d + 1]
    torch.testing.assert_close(shift(w, s), expected)


def test_sharpening_with_gamma_one_is_identity_and_larger_gamma_sharpens(heads):
    w = heads["w_prev"]
    torch.testing.assert_close(sharpen(w, torch.ones(B, 1)), w)
    sharp = sharpen(w, torch.full((B, 1), 3.0))
    assert (sharp.amax(-1) > w.amax(-1)).all()
    torch.testing.assert_close(sharp.argmax(-1), w.argmax(-1))


def test_erase_with_one_hot_weighting_clears_exactly_that_row(heads):
    memory = heads["memory"]
    w = torch.zeros(B, N)
    w[:, 2] = 1.0
    erased = write(memory, w, torch.ones(B, M), torch.zeros(B, M))
    assert erased[:, 2].abs().max() == 0
    torch.testing.assert_close(erased[:, [0, 1, 3, 4, 5, 6]], memory[:, [0, 1, 3, 4, 5, 6]])


def test_write_then_read_is_eq_2_to_4(heads):
    memory, w = heads["memory"], heads["w_prev"]
    e, a = torch.rand(B, M), torch.randn(B, M)
    new = write(memory, w, e, a)
    for b in range(B):
        for i in range(N):
            expected = memory[b, i] * (1 - w[b, i] * e[b]) + w[b, i] * a[b]
            torch.testing.assert_close(new[b, i], expected)
    r = read(new, w)
    torch.testing.assert_close(r, torch.stack([(w[b, :, None] * new[b]).sum(0) for b in range(B)]))


def test_ntm_weightings_sum_to_one_through_time():
    torch.manual_seed(0)
    model = NTM(NTMConfig(input_size=5, output_size=4, controller_size=12, N=16, M=6))
    x, _, _ = copy_batch(torch.Generator().manual_seed(1), 2, 6, 4)
    with torch.no_grad():
        logits, trace = model(x, record=True)
    assert logits.shape == (2, 13, 4)
    for key in ("w_read", "w_write"):
        assert trace[key].shape == (2, 13, 16)
        torch.testing.assert_close(trace[key].sum(-1), torch.ones(2, 13))


def test_copy_batch_layout():
    x, target, mask = copy_batch(torch.Generator().manual_seed(0), 2, 3, 4)
    assert x.shape == (2, 7, 5) and target.shape == (2, 7, 4)
    torch.testing.assert_close(target[:, 4:], x[:, :3, :4])  # the output is the input
    assert (x[:, 3, 4] == 1).all() and x[:, :3, 4].abs().sum() == 0  # the delimiter
    assert x[:, 4:].abs().sum() == 0 and target[:, :4].abs().sum() == 0
    assert mask.tolist() == [[False] * 4 + [True] * 3] * 2


def test_held_out_data_differs_from_training_and_between_splits():
    val = eval_batch(dataclasses.replace(QUICK, split="val"), 5)[0]
    test = eval_batch(QUICK, 5)[0]
    assert not torch.equal(val, test)
    torch.testing.assert_close(eval_batch(QUICK, 5)[0], test)  # the same for every run
    for s in range(200):
        x = train_batch(QUICK, 0, s)[0]
        if x.shape[1] == 11:
            assert not any(torch.equal(row, t) for row in x for t in test)


def test_loss_and_bit_error_read_the_output_phase_only():
    _, target, mask = copy_batch(torch.Generator().manual_seed(0), 2, 3, 4)
    logits = torch.where(target > 0.5, 5.0, -5.0)
    logits[:, :4] = torch.randn(2, 4, 4) * 9  # anything before the output phase is ignored
    expected = F.binary_cross_entropy_with_logits(logits[:, 4:], target[:, 4:])
    torch.testing.assert_close(bits_loss(logits, target, mask), expected)

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return logits, {}

    assert bit_error(Fixed(), None, target, mask) == 0.0
    logits[0, 5, :2] *= -1  # two wrong bits out of 24
    assert bit_error(Fixed(), None, target, mask) == pytest.approx(2 / 24)


@pytest.mark.parametrize("arm", ARMS)
def test_a_few_steps_lower_the_loss(arm):
    cfg = dataclasses.replace(SMOKE, lr_ntm=1e-2, lr_lstm=1e-2, batch_size=16)
    run = type("R", (), {"seed": 0, "device": torch.device("cpu")})()
    model, _, step = trainer(run, cfg, arm)
    held = copy_batch(torch.Generator().manual_seed(5), 32, 3, cfg.bits)
    with torch.no_grad():
        before = bits_loss(model(held[0])[0], held[1], held[2]).item()
    for s in range(40):
        step(s)
    with torch.no_grad():
        after = bits_loss(model(held[0])[0], held[1], held[2]).item()
    assert after < before - 0.05, (arm, before, after)


def test_arms_have_about_the_same_size():
    ntm, lstm = (QUICK.model(arm).num_params() for arm in ARMS)
    assert 0.9 < lstm / ntm < 1.1, (ntm, lstm)


def test_config_rejects_meaningless_values():
    for bad in (
        dict(bits=0),
        dict(steps=0),
        dict(min_len=5, max_len=4),
        dict(max_eval_len=15),
        dict(lr_ntm=0.0),
        dict(lr_lstm=-1.0),
        dict(clip=0.0),
        dict(N=0),
        dict(eval_sequences=0),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(QUICK, **bad)
    assert CopyConfig().split == "test"


def test_smoke_writes_results_and_plots(tmp_path):
    assert (
        main(["run", "ntm", "--preset", "smoke", "--out", str(tmp_path), "-q", "--no-publish"]) == 0
    )
    (run_dir,) = (tmp_path / "ntm" / "copy").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    ids = [c["id"] for c in results["claims"]]
    assert ids == [
        "ntm_copies_training_lengths",
        "ntm_generalizes_to_20",
        "lstm_fails_at_20",
        "length_curve",
    ]
    assert len(results["claims"][-1]["measured"]["ntm_ber"]) == SMOKE.max_eval_len
    assert (run_dir / "length_generalization.png").is_file() and (
        run_dir / "memory_use.png"
    ).is_file()


def test_bench_times_each_arms_own_training_step(tmp_path):
    cases = bench_cases_that_train(tmp_path, PAPER, "copy")
    assert [c.name for c in cases] == list(ARMS)


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    assert main(["run", "ntm", "--out", str(tmp_path), "-q", "--no-publish", "--jobs", "3"]) == 0
    (run_dir,) = (tmp_path / "ntm" / "copy").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["seeds"] == [0, 1, 2]
    for claim in results["claims"]:
        assert claim["holds"] or not claim["asserted"], claim
