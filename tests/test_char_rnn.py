"""char-rnn: truncated BPTT's carried state (in the model and in the experiment's training
step), temperature sampling, the n-gram baseline, the cell search's features, `s30 sample
char_rnn` (streaming, errors) and the bench case."""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.core.checkpoint import save_checkpoint
from sutskever30.core.errors import UsageError
from sutskever30.core.registry import MAX_SAMPLE_LENGTH
from sutskever30.papers.char_rnn.cells import correlations, text_features
from sutskever30.papers.char_rnn.experiment import PAPER, ShakespeareConfig, trainer
from sutskever30.papers.char_rnn.model import (
    CharRNN,
    CharRNNConfig,
    NGramModel,
    detach,
    sample,
    stream_loss,
    streams,
)
from sutskever30.papers.char_rnn.sample import CHECKPOINT, sample_command

from .scratch import scratch_run

V = 11


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _model(layers: int = 2) -> CharRNN:
    return CharRNN(vocab_size=V, hidden_size=24, num_layers=layers).eval()


def test_streams_are_contiguous_rows_with_shifted_targets():
    data = torch.arange(103)
    x, y = streams(data, 4)
    L = 102 // 4
    assert x.shape == y.shape == (4, L)
    for b in range(4):
        assert torch.equal(x[b], data[b * L : (b + 1) * L])
        assert torch.equal(y[b], data[b * L + 1 : (b + 1) * L + 1])


def test_carried_state_at_batch_boundary_equals_one_long_pass():
    model = _model()
    idx = torch.randint(0, V, (3, 40))
    long_logits, long_state = model(idx)
    state, pieces = None, []
    for j in range(0, 40, 10):  # four truncated-BPTT segments, state carried (detached)
        logits, state = model(idx[:, j : j + 10], state)
        state = detach(state)
        pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, 1), long_logits, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, long_state, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    x, y = idx[:, :-1], idx[:, 1:]
    assert stream_loss(model, x, y, chunk=7) == pytest.approx(stream_loss(model, x, y, chunk=39))


def _grads(model: CharRNN) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_detached_state_cuts_the_gradient():
    model = CharRNN(vocab_size=V, hidden_size=8, num_layers=1)
    idx = torch.randint(0, V, (2, 10))
    _, state = model(idx[:, :5])
    carried = detach(state)
    assert not any(s.requires_grad for s in carried)
    model(idx[:, 5:], carried)[0].sum().backward()
    truncated = _grads(model)
    # the same second segment from the same state values, built as constants: the gradient
    # of every weight (the recurrent ones included) comes from the second segment alone
    model.zero_grad()
    constant = tuple(s.detach().clone() for s in state)
    model(idx[:, 5:], constant)[0].sum().backward()
    for name, g in _grads(model).items():
        torch.testing.assert_close(truncated[name], g, msg=name)
    # and it differs from full backpropagation through both segments
    model.zero_grad()
    _, state = model(idx[:, :5])
    model(idx[:, 5:], state)[0].sum().backward()
    assert not torch.allclose(_grads(model)["lstm.weight_hh_l0"], truncated["lstm.weight_hh_l0"])


def _scratch_run(tmp_path, cfg):
    return scratch_run(tmp_path, "char_rnn", "shakespeare", cfg)


def test_training_step_carries_the_state_and_restarts_each_epoch(tmp_path):
    """Step 1 continues each stream from the state step 0 ended in (computed with the weights
    of step 0), step `per_epoch` restarts from zero, and no step backpropagates into an
    earlier one (which would raise: the earlier graph is freed)."""
    cfg = ShakespeareConfig(
        model=CharRNNConfig(vocab_size=V, hidden_size=16), batch_size=3, seq_len=5, steps=10
    )
    ids = torch.randint(0, V, (3 * 4 * 5 + 1,))  # 4 steps per epoch
    model, _, _, step, per_epoch = trainer(_scratch_run(tmp_path, cfg), cfg, ids)
    assert per_epoch == 4
    X, Y = streams(ids, 3)

    def loss(m: CharRNN, j: int, state) -> float:
        with torch.no_grad():
            logits, _ = m(X[:, 5 * j : 5 * j + 5], state)
            return float(F.cross_entropy(logits.flatten(0, 1), Y[:, 5 * j : 5 * j + 5].flatten()))

    before = copy.deepcopy(model)
    step(0)
    with torch.no_grad():
        _, state0 = before(X[:, :5])
    expected = loss(model, 1, state0)  # before step 1 updates the weights
    assert step(1)["loss"] == pytest.approx(expected, rel=1e-5)
    step(2)
    step(3)
    expected = loss(model, 0, None)
    assert step(per_epoch)["loss"] == pytest.approx(expected, rel=1e-5)


def test_bench_times_the_experiments_own_training_step(tmp_path):
    cfg = PAPER.experiments[0].presets["smoke"]
    (case,) = PAPER.bench(_scratch_run(tmp_path, cfg))
    assert case.examples_per_step == cfg.batch_size * cfg.seq_len
    before = [p.detach().clone() for p in case.model.parameters()]
    assert np.isfinite(case.step(0)["loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, case.model.parameters(), strict=True))


def test_cell_states_match_the_lstm_final_cell():
    model = _model()
    idx = torch.randint(0, V, (2, 9))
    cells = model.cell_states(idx)  # (B, T, layers·H)
    _, (_, c_n) = model(idx)
    assert cells.shape == (2, 9, 2 * 24)
    torch.testing.assert_close(cells[:, -1], c_n.permute(1, 0, 2).reshape(2, -1))


def test_temperature_to_zero_is_argmax_and_top_k_one_is_argmax():
    model = _model()
    prompt = [1, 2, 3]
    greedy, state = [], None
    logits, state = model(torch.tensor([prompt]))
    for _ in range(30):
        c = int(logits[0, -1].argmax())
        greedy.append(c)
        logits, state = model(torch.tensor([[c]]), state)
    cold = sample(model, prompt, 30, temperature=1e-4, generator=torch.Generator().manual_seed(1))
    top1 = sample(model, prompt, 30, top_k=1, generator=torch.Generator().manual_seed(2))
    assert cold == greedy
    assert top1 == greedy
    hot = sample(model, prompt, 30, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert hot != greedy  # an untrained model's distribution is nearly uniform over 11


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_ngram_probabilities_sum_to_one(n):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, V, 3000)
    model = NGramModel(tokens, n=n, vocab_size=V)
    contexts = [tokens[100 : 100 + n - 1], np.full(n - 1, V - 1), rng.integers(0, V, n - 1)]
    for ctx in contexts:  # seen, probably unseen, random
        history = np.tile(ctx, (V, 1))
        p = model.prob(history, np.arange(V))
        assert (p > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_ngram_unigram_matches_absolute_discounting_by_hand():
    model = NGramModel(np.array([0, 0, 1]), n=1, vocab_size=3)
    D = 1 / (1 + 2 * 1)  # one count-1 type (1), one count-2 type (0)
    p = model.prob(np.zeros((3, 0), dtype=np.int64), np.arange(3))
    expected = [(2 - D) / 3 + D * 2 / 3 / 3, (1 - D) / 3 + D * 2 / 3 / 3, D * 2 / 3 / 3]
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_ngram_learns_a_deterministic_sequence():
    tokens = np.tile(np.arange(V), 50)
    model = NGramModel(tokens, n=2, vocab_size=V)
    assert model.loss(tokens) < 0.05 < NGramModel(tokens, n=1, vocab_size=V).loss(tokens)


def test_text_features_and_correlations():
    text = "ROMEO:\nO she doth\n"
    f = text_features(text)
    assert f["line_position"].tolist()[:8] == [1, 2, 3, 4, 5, 6, 0, 1]
    assert f["speaker_line"].tolist() == [1.0] * 7 + [0.0] * 11
    assert f["word_position"].tolist()[7:11] == [1, 0, 1, 2]
    assert not f["inside_quotes"].any()
    assert text_features('a"b"c')["inside_quotes"].tolist() == [0, 1, 1, 0, 0]
    cells = np.random.default_rng(0).normal(size=(50, 4))
    feat = cells[:, 2] * 3 + 1
    r = correlations(cells, feat)
    assert r[2] == pytest.approx(1.0)
    assert r[0] == pytest.approx(np.corrcoef(cells[:, 0], feat)[0, 1])


def _trained_run(tmp_path) -> None:
    """A finished run folder with a (tiny) model checkpoint, as `s30 run char_rnn` leaves it."""
    cfg = CharRNNConfig(vocab_size=V, hidden_size=8)
    run_dir = tmp_path / "char_rnn" / "shakespeare" / "smoke-1"
    save_checkpoint(
        run_dir / CHECKPOINT,
        {
            "model": CharRNN.from_config(cfg).state_dict(),
            "vocab": "\nabcdefghij",
            "config": asdict(cfg),
        },
    )
    (run_dir / "results.json").write_text(json.dumps({}))


def _args(tmp_path, **kw) -> argparse.Namespace:
    base = {
        "prompt": "abc",
        "temperature": 1.0,
        "length": 20,
        "top_k": 0,
        "top_p": 1.0,
        "seed": 0,
        "run": None,
        "out": tmp_path,
    }
    return argparse.Namespace(**{**base, **kw})


def test_sampler_loads_newest_checkpoint_and_is_seeded(tmp_path):
    _trained_run(tmp_path)
    text = "".join(sample_command(_args(tmp_path)))
    assert text.startswith("abc") and len(text) == 23
    assert set(text) <= set("\nabcdefghij")
    assert "".join(sample_command(_args(tmp_path))) == text


def test_sampler_streams_pieces_as_they_are_drawn(tmp_path, monkeypatch):
    """The longest allowed request yields its first pieces after a few model steps, not
    after drawing every character."""
    _trained_run(tmp_path)
    calls = []
    forward = CharRNN.forward

    def counted(self, *args):
        calls.append(1)
        assert len(calls) <= 2 * 64 + 1, "drew more characters than the pieces asked for"
        return forward(self, *args)

    monkeypatch.setattr(CharRNN, "forward", counted)
    stream = sample_command(_args(tmp_path, length=MAX_SAMPLE_LENGTH))
    first = [next(stream) for _ in range(3)]
    assert first[0] == "abc"
    assert 0 < sum(map(len, first[1:])) <= 2 * 64


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"prompt": "abz"}, "not in the model's vocabulary"),
        ({"prompt": ""}, "at least one character"),
        ({"temperature": 0.0}, "temperature"),
        ({"top_p": 0.0}, "top-p"),
        ({"length": MAX_SAMPLE_LENGTH + 1}, "must be in \\[1, 100,000\\]"),
    ],
)
def test_bad_sample_args_are_one_clear_error(tmp_path, kw, message):
    _trained_run(tmp_path)
    with pytest.raises(UsageError, match=message):
        sample_command(_args(tmp_path, **kw))


def test_sample_length_above_the_bound_is_one_line_error(tmp_path, capsys):
    assert main(["sample", "char_rnn", "--out", str(tmp_path), "--length", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--length" in err


def test_sample_without_checkpoint_is_one_line_error(tmp_path, capsys):
    assert main(["sample", "char_rnn", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished char_rnn run" in err
    assert main(["sample", "char_rnn", "--run", str(tmp_path / "nope")]) == 2
    assert "no char_rnn checkpoint at" in capsys.readouterr().err
    _trained_run(tmp_path)
    assert main(["sample", "char_rnn", "--out", str(tmp_path), "--prompt", "xyz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'xyz'" in err


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    assert (
        main(["run", "char_rnn", "--preset", "quick", "--out", str(tmp_path), "--no-publish", "-q"])
        == 0
    )
    (path,) = tmp_path.glob("char_rnn/shakespeare/quick-*/results.json")
    for claim in json.loads(path.read_text())["claims"]:
        assert claim["holds"] or not claim["asserted"], claim
