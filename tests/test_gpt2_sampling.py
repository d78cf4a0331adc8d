"""gpt2_sampling: the data path (one gather of shifted windows), the schedule, the whole-split
loss, AdamW's decay groups, decoding (greedy, best-of-n over the model's own log-probs, the
streamed CLI sample against one-shot decoding), `s30 sample`'s errors, the quick claims."""

import argparse
import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.core.checkpoint import save_checkpoint
from sutskever30.core.errors import CheckpointError, UsageError
from sutskever30.core.registry import MAX_SAMPLE_LENGTH
from sutskever30.nn.gpt import GPT, GPTConfig
from sutskever30.papers.gpt2_sampling import sample as sample_mod
from sutskever30.papers.gpt2_sampling.experiment import (
    QUICK,
    SMOKE,
    load_text,
    trainer,
)
from sutskever30.papers.gpt2_sampling.model import (
    UNICORN_PROMPT,
    CharVocab,
    Sampler,
    continue_text,
    shifted_windows,
    split_loss,
)
from sutskever30.papers.gpt2_sampling.sample import CHECKPOINT, sample_command

from .conftest import has_dataset
from .test_cli import assert_one_line_error, s30

VOCAB = CharVocab("\n abcdefghij")
needs_shakespeare = pytest.mark.skipif(
    not has_dataset("tinyshakespeare"), reason="tiny-shakespeare not present"
)


def tiny_gpt(context: int = 16, vocab_size: int = len(VOCAB.chars)) -> GPT:
    """A small GPT with large random weights: unlike GPT-2's N(0, 0.02) initialization,
    its predictions depend strongly on the context, as a trained model's do."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab_size, context=context, n_layer=2, n_head=2, d_model=16))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.5)
    return model


# -- the data path and the recipe ------------------------------------------------------------


def test_windows_are_one_gather_of_shifted_slices():
    data = torch.arange(100) * 3
    starts = torch.tensor([0, 7, 90])
    x, y = shifted_windows(data, starts, 9)
    assert x.shape == y.shape == (3, 9)
    for row, s in enumerate(starts.tolist()):
        assert torch.equal(x[row], data[s : s + 9])
        assert torch.equal(y[row], data[s + 1 : s + 10])


def test_split_loss_scores_every_character_of_consecutive_windows():
    model = tiny_gpt(context=8).eval()
    data = torch.randint(0, len(VOCAB.chars), (75,))
    got = split_loss(model, data, batch=3)  # batches of 3 windows: 9 windows in 3 batches
    with torch.no_grad():
        per_char = [
            F.cross_entropy(model(data[k : k + 8][None])[0], data[k + 1 : k + 9], reduction="sum")
            for k in range(0, 72, 8)
        ]
    assert got == pytest.approx(float(sum(per_char)) / 72, rel=1e-5)


def test_config_rejects_meaningless_values():
    for bad in (
        {"sizes": ("4x128", "4x64")},  # not growing
        {"sizes": ()},
        {"sizes": ("4x64", "4 layers")},
        {"reference": "4x96"},  # not one of the sizes
        {"lr": 0.0},
        {"min_lr_frac": 0.0},
        {"steps": 0},
        {"max_train_s": -1.0},
        {"sizes": ("4x64", "4x130"), "reference": "4x64"},  # 130 is not a multiple of 4 heads
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(QUICK, **bad)
    one = dataclasses.replace(QUICK, sizes=("4x128",))  # the learning-rate search's config
    assert one.ref == 0 and one.gpt(0, vocab_size=65).d_model == 128


def test_quick_reference_is_the_specified_cpu_gpt():
    gpt = QUICK.gpt(QUICK.ref, vocab_size=65)
    assert (gpt.n_layer, gpt.n_head, gpt.d_model, gpt.context) == (4, 4, 128, 64)
    assert (QUICK.max_train_s, QUICK.max_val_loss) == (90.0, 1.88)


@needs_shakespeare
def test_the_tiny_shakespeare_vocabulary_covers_the_unicorn_prompt():
    vocab, train, val = load_text(SMOKE)
    assert len(vocab) == 65 and vocab.missing(UNICORN_PROMPT) == ""
    assert len(train) == 1_003_854 and len(val) == 111_540  # the first 90% / the last 10%
    assert vocab.decode(vocab.encode("ROMEO:\n")) == "ROMEO:\n"
    _, tune_train, tune = load_text(dataclasses.replace(SMOKE, split="tune"))
    assert torch.equal(torch.cat([tune_train, tune]), train) and len(tune) == SMOKE.tune_chars


@needs_shakespeare
def test_training_step_is_seeded_by_step_and_same_for_every_size(tmp_path):
    """Batches are a function of (seed, step), so every size sees the same characters and a
    resumed run draws what an uninterrupted one draws; a step changes every weight."""
    cfg = dataclasses.replace(SMOKE, steps=4)
    vocab, train, _ = load_text(cfg)
    run = argparse.Namespace(seed=3, device=torch.device("cpu"))
    seen = []
    real_windows = shifted_windows

    def spy(data, starts, context):
        seen.append(starts.clone())
        return real_windows(data, starts, context)

    mp = pytest.MonkeyPatch()
    mp.setattr("sutskever30.papers.gpt2_sampling.experiment.shifted_windows", spy)
    try:
        _, _, _, step_small = trainer(run, cfg, 0, train, len(vocab))
        big, _, _, step_big = trainer(run, cfg, 2, train, len(vocab))
        before = [p.detach().clone() for p in big.parameters()]
        step_small(2)
        step_big(2)
        step_big(3)
    finally:
        mp.undo()
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    assert all(not torch.equal(a, b) for a, b in zip(before, big.parameters(), strict=True))


# -- decoding --------------------------------------------------------------------------------


def greedy_by_hand(model: GPT, prompt: torch.Tensor, steps: int) -> list[int]:
    """Argmax decoding with a full forward over the last context tokens each step."""
    seq = prompt.tolist()
    out = []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor(seq[-model.cfg.context :])[None])[0, -1]
            out.append(int(logits.argmax()))
            seq.append(out[-1])
    return out


def log_prob_by_hand(model: GPT, prompt: torch.Tensor, tokens: list[int]) -> float:
    """Σ_t log p(y_t | the context before it), each term from a fresh full forward."""
    seq, total = prompt.tolist(), 0.0
    with torch.no_grad():
        for t in tokens:
            logits = model(torch.tensor(seq[-model.cfg.context :])[None])[0, -1]
            total += float(logits.log_softmax(-1)[t])
            seq.append(t)
    return total


def test_greedy_and_top1_decode_the_argmax_past_the_full_context():
    model = tiny_gpt(context=8).eval()
    prompt = VOCAB.encode("abc\nabcd")
    expected = greedy_by_hand(model, prompt, 20)  # 20 > context: the window slides
    tokens, logp = continue_text(model, prompt, 20, Sampler("greedy", temperature=0.0))
    assert tokens == expected
    assert logp == pytest.approx(log_prob_by_hand(model, prompt, tokens), abs=1e-4)
    top1, _ = continue_text(
        model, prompt, 20, Sampler("top1", top_k=1), generator=torch.Generator().manual_seed(5)
    )
    assert top1 == expected


def test_best_of_n_keeps_the_candidate_the_model_finds_likeliest():
    model = tiny_gpt().eval()
    prompt = VOCAB.encode("abc")
    kept, kept_logp = continue_text(
        model, prompt, 12, Sampler("best", n=6), generator=torch.Generator().manual_seed(1)
    )
    rows, _ = model.generate(
        prompt[None].expand(6, -1), 12, generator=torch.Generator().manual_seed(1)
    )
    scores = [log_prob_by_hand(model, prompt, row) for row in rows.tolist()]
    assert len(set(map(tuple, rows.tolist()))) > 1, "the candidates should differ"
    assert kept in rows.tolist()
    assert kept_logp == pytest.approx(max(scores), abs=1e-4)
    assert kept == rows.tolist()[max(range(6), key=scores.__getitem__)]


def test_sampler_rejects_meaningless_settings():
    for bad in ({"temperature": -1.0}, {"top_k": -1}, {"top_p": 0.0}, {"n": 0}):
        with pytest.raises(ValueError):
            Sampler("bad", **bad)


# -- s30 sample ------------------------------------------------------------------------------


def trained_run(tmp_path, context: int = 16):
    """A finished run folder holding a (untrained) reference checkpoint."""
    model = tiny_gpt(context=context)
    run_dir = tmp_path / "gpt2_sampling" / "shakespeare" / "quick-1"
    save_checkpoint(
        run_dir / CHECKPOINT,
        {
            "model": model.state_dict(),
            "vocab": VOCAB.chars,
            "config": dataclasses.asdict(model.cfg),
        },
    )
    (run_dir / "results.json").write_text("{}")
    return model, run_dir


def _args(tmp_path, **kw) -> argparse.Namespace:
    base = {
        "prompt": "abc",
        "temperature": 1.0,
        "length": 40,
        "top_k": 0,
        "top_p": 1.0,
        "n": 1,
        "seed": 0,
        "run": None,
        "out": tmp_path,
    }
    return argparse.Namespace(**{**base, **kw})


def test_streamed_sample_equals_one_long_decode(tmp_path):
    """Pieces drawn from the last context characters continue exactly as one long decode
    with the same generator (the prompt fills the context, so both re-read the last 16
    characters at every step)."""
    model, _ = trained_run(tmp_path)
    prompt = "abc\nabcdefghij\nabc"  # 18 characters, context 16
    text = "".join(sample_command(_args(tmp_path, prompt=prompt, length=150, seed=4)))
    tokens, _ = model.generate(
        VOCAB.encode(prompt)[None], 150, generator=torch.Generator().manual_seed(4)
    )
    assert text == prompt + VOCAB.decode(tokens[0])
    assert len(set(text[len(prompt) :])) > 5, "a sample this long should vary"


def test_sample_is_seeded_and_streams_lazily(tmp_path, monkeypatch):
    trained_run(tmp_path)
    text = "".join(sample_command(_args(tmp_path)))
    assert text.startswith("abc") and len(text) == 43 and set(text) <= set(VOCAB.chars)
    assert "".join(sample_command(_args(tmp_path))) == text
    calls = []
    generate = GPT.generate

    def counted(self, *args, **kw):
        calls.append(1)
        return generate(self, *args, **kw)

    monkeypatch.setattr(GPT, "generate", counted)
    stream = sample_command(_args(tmp_path, length=MAX_SAMPLE_LENGTH))
    assert next(stream) == "abc" and len(next(stream)) == sample_mod.CHUNK
    assert len(calls) == 1, "the longest request must not be drawn before it is printed"


def test_best_of_n_sample_through_the_command(tmp_path):
    trained_run(tmp_path)
    text = sample_command(_args(tmp_path, n=4, length=30))
    assert isinstance(text, str) and text.startswith("abc") and len(text) == 33
    assert sample_command(_args(tmp_path, n=4, length=30)) == text


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"prompt": "abz"}, "not in the model's vocabulary"),
        ({"prompt": ""}, "at least one character"),
        ({"temperature": 0.0}, "temperature"),
        ({"top_k": -2}, "top-k"),
        ({"top_p": 1.5}, "top-p"),
        ({"n": 65}, "--n"),
        ({"length": MAX_SAMPLE_LENGTH + 1}, "must be in \\[1, 100,000\\]"),
    ],
)
def test_bad_sample_args_are_one_clear_error(tmp_path, kw, message):
    trained_run(tmp_path)
    with pytest.raises(UsageError, match=message):
        sample_command(_args(tmp_path, **kw))


def test_missing_or_corrupt_checkpoint_is_one_clear_error(tmp_path, capsys):
    assert main(["sample", "gpt2_sampling", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished gpt2_sampling run" in err
    assert main(["sample", "gpt2_sampling", "--run", str(tmp_path / "nope")]) == 2
    assert "no gpt2_sampling checkpoint at" in capsys.readouterr().err
    _, run_dir = trained_run(tmp_path)
    save_checkpoint(run_dir / CHECKPOINT, {"model": {}, "vocab": VOCAB.chars})
    with pytest.raises(CheckpointError, match="not a gpt2_sampling checkpoint"):
        sample_command(_args(tmp_path))


def test_cli_absurd_length_is_one_line_and_best_of_n_prints(tmp_path):
    trained_run(tmp_path)
    out = ["--out", str(tmp_path)]
    assert_one_line_error(
        s30("sample", "gpt2_sampling", *out, "--length", "1000000000"), 2, "--length"
    )
    proc = s30("sample", "gpt2_sampling", *out, "--prompt", "ab", "--n", "3", "--length", "5")
    assert proc.returncode == 0 and proc.stdout.startswith("ab") and len(proc.stdout) == 8


# -- the claims ------------------------------------------------------------------------------


@pytest.mark.slow
@needs_shakespeare
def test_quick_claims_hold(tmp_path):
    assert main(["run", "gpt2_sampling", "--out", str(tmp_path), "-q", "--no-publish"]) == 0
    (run_dir,) = (tmp_path / "gpt2_sampling" / "shakespeare").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    for claim in results["claims"]:
        assert claim["holds"], claim
    samples = results["summary"]["unicorn_samples"]
    assert len(samples) == 3 and all(len(s) == 5 for s in samples.values())
    assert math.isfinite(results["summary"]["sizes"]["4x128"]["tokens_per_s"])
    assert (run_dir / CHECKPOINT).is_file()
