"""Multi-token prediction: the architecture (n = 1 is the GPT, equal parameters for every n,
causal heads), the sequential head backward (same gradients as the summed loss, fewer saved
bytes), the stacked heads against the head blocks, self-speculative decoding against greedy
decoding (untrained and trained models), the data and training plumbing, and the claims."""

import json
import sysconfig
from pathlib import Path

import pytest
import torch

from sutskever30.cli import main
from sutskever30.nn.gpt import GPT, KVCache
from sutskever30.papers.multi_token_prediction.experiment import PAPER
from sutskever30.papers.multi_token_prediction.experiments.memory import (
    SavedActivations,
    peak_bytes,
)
from sutskever30.papers.multi_token_prediction.experiments.speculative import (
    SpeculativeConfig,
    held_out_prompts,
)
from sutskever30.papers.multi_token_prediction.model import (
    MTPConfig,
    MultiTokenGPT,
    StackedHeads,
    greedy_decode,
    naive_backward,
    self_speculative_decode,
    sequential_backward,
    split_window,
)
from sutskever30.papers.multi_token_prediction.training import (
    TrainConfig,
    batches,
    trainer,
)

from .scratch import scratch_run

TINY = MTPConfig(context=64, n_layer=5, n_head=2, d_model=32, n_future=4)


def stdlib_bytes(name: str = "textwrap.py") -> torch.Tensor:
    """A real source file of the running Python's standard library, as byte tokens."""
    data = (Path(sysconfig.get_paths()["stdlib"]) / name).read_bytes()
    return torch.tensor(list(data), dtype=torch.long)


def grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


# -- architecture -----------------------------------------------------------------------------


def test_config_rejects_meaningless_values():
    with pytest.raises(ValueError, match="n_future"):
        MTPConfig(n_future=0)
    with pytest.raises(ValueError, match="trunk"):
        MTPConfig(n_layer=4, n_future=4)
    with pytest.raises(ValueError, match="multiple"):
        MTPConfig(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="context"):
        SpeculativeConfig(prompt_len=200, gen_len=100)
    with pytest.raises(ValueError, match="n_future"):
        SpeculativeConfig(model=MTPConfig(n_future=1))
    with pytest.raises(ValueError):
        TrainConfig(lr=0)


def test_n1_is_the_gpt_of_the_same_depth():
    cfg = MTPConfig(context=32, n_layer=3, n_head=2, d_model=16, n_future=1)
    torch.manual_seed(3)
    gpt = GPT(cfg.gpt)
    torch.manual_seed(3)
    mtp = MultiTokenGPT(cfg)
    idx = torch.randint(0, 256, (2, 20))
    torch.testing.assert_close(mtp(idx)[0], gpt(idx), rtol=0, atol=0)


def test_equal_parameters_for_every_n_and_tied_unembedding():
    counts = {
        n: sum(p.numel() for p in MultiTokenGPT(MTPConfig(n_layer=6, n_future=n)).parameters())
        for n in (1, 2, 4, 5)
    }
    assert len(set(counts.values())) == 1, counts
    model = MultiTokenGPT(MTPConfig(n_layer=6, n_future=4))
    assert len(model.trunk) == 2 and len(model.heads) == 4
    assert model.unembed.out.weight is model.embed.wte.weight


def test_every_head_is_causal_and_heads_differ():
    torch.manual_seed(0)
    model = MultiTokenGPT(TINY).eval()
    idx = torch.randint(0, 256, (1, 30))
    changed = idx.clone()
    changed[0, 20:] = (changed[0, 20:] + 1) % 256
    a, b = model(idx), model(changed)  # (n, 1, T, V)
    assert a.shape == (4, 1, 30, 256)
    torch.testing.assert_close(a[:, :, :20], b[:, :, :20])
    assert not torch.allclose(a[:, :, 20:], b[:, :, 20:])
    assert not torch.allclose(a[0], a[1])  # independent heads


def test_split_window_targets_are_shifted_by_head():
    window = torch.arange(10)[None]  # (1, T + n) with T = 7, n = 3
    x, targets = split_window(window, 3)
    assert x.tolist() == [list(range(7))]
    for i, y in enumerate(targets):
        assert y.tolist() == [list(range(i + 1, i + 8))]


# -- the memory-efficient backward -----------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4])
def test_sequential_backward_equals_summed_loss_backward(n):
    cfg = MTPConfig(context=24, n_layer=n + 2, n_head=2, d_model=16, n_future=n)
    torch.manual_seed(1)
    model = MultiTokenGPT(cfg).double()
    window = stdlib_bytes()[: 2 * (24 + n)].view(2, 24 + n)
    naive_losses = naive_backward(model, window)
    expected = grads(model)
    model.zero_grad(set_to_none=True)
    seq_losses = sequential_backward(model, window)
    assert seq_losses == pytest.approx(naive_losses, abs=1e-12)
    for (name, _), a, b in zip(model.named_parameters(), expected, grads(model), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12, msg=name)
    trunk_grad = model.trunk[0].attn.qkv.weight.grad
    assert trunk_grad.abs().max() > 0  # the trunk did receive the heads' gradient


def test_saved_activations_counts_what_autograd_keeps():
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(16, 8)
    with SavedActivations(lin) as counter:
        y = lin(x).sum()  # addmm saves its input x (the weight is a parameter: not counted)
        assert counter.live == x.nbytes
        y.backward()
    assert counter.peak == x.nbytes and counter.live == 0


def test_sequential_backward_has_a_lower_peak_that_does_not_grow_with_n():
    window = stdlib_bytes()[: 2 * 72].view(2, 72)
    peaks = {}
    for n in (2, 4):
        torch.manual_seed(0)
        model = MultiTokenGPT(
            MTPConfig(vocab_size=4096, context=64, n_layer=6, n_head=2, d_model=32, n_future=n)
        )
        peaks[n] = {
            s: peak_bytes(model, window[:, : 64 + n], s)["saved_mb"]
            for s in ("naive", "sequential")
        }
    for n in (2, 4):
        assert peaks[n]["sequential"] < peaks[n]["naive"]
    # the logits dominate at V = 4096: naive holds n of them, sequential one
    assert peaks[4]["naive"] - peaks[2]["naive"] > 2 * abs(
        peaks[4]["sequential"] - peaks[2]["sequential"]
    )


# -- decoding -----------------------------------------------------------------------------------


def test_stacked_heads_equal_the_head_blocks_with_a_cache():
    torch.manual_seed(0)
    model = MultiTokenGPT(TINY).eval()
    for block in model.heads:  # non-trivial LayerNorm parameters
        for ln in (block.ln_1, block.ln_2):
            torch.nn.init.normal_(ln.weight, 1.0, 0.2)
            torch.nn.init.normal_(ln.bias, 0.0, 0.2)
    z = torch.randn(1, 30, TINY.d_model)
    with torch.no_grad():
        cache = KVCache(TINY.n_layer)
        expected = torch.stack([block(z, cache)[0] for block in model.heads])  # (n, T, d)
        stacked = StackedHeads(model.heads, TINY.context)
        parts = [stacked(z[0, :17]), stacked(z[0, 17:20]), stacked(z[0, 20:])]
    torch.testing.assert_close(torch.cat(parts, 1), expected, rtol=1e-5, atol=1e-5)
    stacked.truncate(20)
    assert stacked.length == 20


def test_greedy_decode_equals_argmax_without_cache():
    torch.manual_seed(0)
    model = MultiTokenGPT(TINY).eval()
    prompt = stdlib_bytes()[:10][None]
    out = greedy_decode(model, prompt, 12)
    seq = prompt
    with torch.no_grad():
        for _ in range(12):
            token = model(seq)[0, :, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, token], 1)
    assert out.tolist() == seq[0, 10:].tolist()


@pytest.mark.parametrize("n", [2, 4])
def test_speculative_equals_greedy_untrained(n):
    torch.manual_seed(n)
    model = MultiTokenGPT(MTPConfig(context=128, n_layer=n + 2, n_head=2, d_model=32, n_future=n))
    model.eval()
    text = stdlib_bytes()
    for start, plen, steps in ((0, 5, 40), (300, 17, 90), (1000, 1, 60)):
        prompt = text[start : start + plen][None]
        result = self_speculative_decode(model, prompt, steps)
        assert result.tokens.tolist() == greedy_decode(model, prompt, steps).tolist()
        assert sum(result.accepted) >= steps and all(1 <= a <= n for a in result.accepted)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 4-token model trained on the first 600 bytes of a real stdlib file until it half
    knows them: its drafts are accepted sometimes, not always."""
    cfg = MTPConfig(context=96, n_layer=5, n_head=2, d_model=48, n_future=4)
    train_cfg = TrainConfig(steps=150, batch_size=8, lr=3e-3, warmup=5)
    run = scratch_run(tmp_path_factory.mktemp("mtp"), "multi_token_prediction", "x", train_cfg)
    model, _, sched, step = trainer(run, cfg, train_cfg, stdlib_bytes()[:600], seed=0)
    for i in range(train_cfg.steps):
        step(i)
        sched.step()
    return model.eval()


def test_speculative_equals_greedy_trained(trained):
    text = stdlib_bytes()
    accepted = []
    for start in (0, 150, 300, 450):
        prompt = text[start : start + 20][None]
        result = self_speculative_decode(trained, prompt, 70)
        assert result.tokens.tolist() == greedy_decode(trained, prompt, 70).tolist()
        accepted += result.accepted
    assert min(accepted) == 1 and max(accepted) == 4  # rejected and fully accepted drafts


def test_decoding_rejects_too_long_requests():
    model = MultiTokenGPT(TINY)
    with pytest.raises(ValueError, match="context"):
        self_speculative_decode(model, torch.zeros(1, 30, dtype=torch.long), 40)
    with pytest.raises(ValueError, match="prompt"):
        greedy_decode(model, torch.zeros(2, 3, dtype=torch.long), 4)


# -- data and training plumbing ------------------------------------------------------------------


def test_prompts_start_at_line_starts():
    text = stdlib_bytes()
    for prompt in held_out_prompts(text, 5, 32):
        assert prompt.shape == (1, 32)
        begin = next(i for i in range(len(text)) if torch.equal(text[i : i + 32], prompt[0]))
        assert begin == 0 or text[begin - 1] == ord("\n")


def test_models_with_different_n_see_the_same_bytes():
    text = stdlib_bytes()
    cfg = TrainConfig(batch_size=3)
    seen = {
        n: batches(MTPConfig(context=16, n_layer=5, d_model=16, n_future=n), cfg, text, 0, 4)(7)
        for n in (1, 4)
    }
    assert seen[1].shape == (3, 17) and seen[4].shape == (3, 20)
    torch.testing.assert_close(seen[1], seen[4][:, :17])


def test_training_step_lowers_the_loss_on_real_code(tmp_path):
    cfg = TrainConfig(steps=40, batch_size=8, lr=3e-3, warmup=5)
    run = scratch_run(tmp_path, "multi_token_prediction", "x", cfg)
    model_cfg = MTPConfig(context=32, n_layer=4, n_head=2, d_model=32, n_future=2)
    model, _, sched, step = trainer(run, model_cfg, cfg, stdlib_bytes(), seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for i in range(cfg.steps):
        losses.append(step(i)["loss"])
        sched.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 1.0


def test_bench_times_the_experiments_own_step(tmp_path):
    exp = PAPER.experiment("speculative")
    run = scratch_run(tmp_path, PAPER.slug, exp.name, exp.presets["smoke"])
    (case,) = PAPER.bench(run)
    assert case.examples_per_step == exp.presets["smoke"].train.batch_size
    metrics = case.step(0)
    assert metrics["loss"] > metrics["next_token_loss"] > 0


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    code = main(["run", PAPER.slug, "--out", str(tmp_path), "-q", "--no-publish"])
    assert code == 0
    failed = {}
    for exp in PAPER.experiments:
        (run_dir,) = (tmp_path / PAPER.slug / exp.name).iterdir()
        results = json.loads((run_dir / "results.json").read_text())
        for claim in results["claims"]:
            if claim["asserted"] and not claim["holds"]:
                failed[claim["id"]] = claim["measured"]
    # README, "The speedup claim depends on the training run": about 1.15x over three seeds.
    assert set(failed) <= {"wall_clock_speedup"}, failed
    if failed:
        pytest.xfail(f"wall_clock_speedup does not hold at the quick budget: {failed}")
