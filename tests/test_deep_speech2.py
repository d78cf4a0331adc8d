"""Deep Speech 2: CTC against PyTorch and brute force, the BN-GRU against nn.GRU, padding
invariance, decoders, error rates, features and the FSDD loader."""

from __future__ import annotations

import functools
import http.server
import io
import itertools
import math
import threading
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.core.errors import DataCorruptError, DataMissingError
from sutskever30.data.fsdd import Recordings
from sutskever30.papers.deep_speech2.ctc import (
    ctc_loss,
    edit_distance,
    error_rates,
    greedy_decode,
    prefix_beam_decode,
)
from sutskever30.papers.deep_speech2.experiment import training_pool
from sutskever30.papers.deep_speech2.model import (
    BatchNormBiGRU,
    DeepSpeech2,
    DS2Config,
    SequenceBatchNorm,
    log_spectrogram,
)
from sutskever30.papers.deep_speech2.task import DIGIT_WORDS, compose, decode, encode


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def collapse(path, blank=0):
    return tuple(c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1]))


def brute_force_probs(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """p(l | x) for every labelling l, by summing over all V^T frame paths."""
    T, V = log_probs.shape
    probs: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        p = math.exp(sum(log_probs[t, c].item() for t, c in enumerate(path)))
        key = collapse(path)
        probs[key] = probs.get(key, 0.0) + p
    return probs


# -- CTC ------------------------------------------------------------------------------------


def test_ctc_equals_pytorch_ctc_loss_and_its_gradient():
    B, T, V, S = 5, 15, 6, 5
    logits = torch.randn(B, T, V, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(1, V, (B, S))
    targets[0, 1] = targets[0, 0]  # a repeated label needs a blank between
    input_lengths = torch.tensor([15, 12, 9, 15, 4])
    target_lengths = torch.tensor([5, 3, 0, 2, 1])
    ours = ctc_loss(logits.log_softmax(-1), targets, input_lengths, target_lengths)
    ref = F.ctc_loss(
        logits.log_softmax(-1).transpose(0, 1),
        targets,
        input_lengths,
        target_lengths,
        reduction="none",
    )
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    (g_ref,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("target", [(1,), (1, 2), (2, 2), (1, 2, 1), ()])
def test_ctc_equals_brute_force_enumeration(target):
    T, V = 5, 3
    log_probs = torch.randn(T, V, dtype=torch.float64).log_softmax(-1)
    expected = brute_force_probs(log_probs).get(target, 0.0)
    padded = torch.tensor([list(target) or [0]])
    loss = ctc_loss(log_probs[None], padded, torch.tensor([T]), torch.tensor([len(target)]))
    torch.testing.assert_close(loss, torch.tensor([-math.log(expected)], dtype=torch.float64))


def test_brute_force_probabilities_sum_to_one():
    probs = brute_force_probs(torch.randn(4, 3, dtype=torch.float64).log_softmax(-1))
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)


# -- decoding -------------------------------------------------------------------------------


def one_hot_log_probs(path, V=5, peak=0.999):
    probs = torch.full((len(path), V), (1 - peak) / (V - 1))
    probs[torch.arange(len(path)), torch.tensor(path)] = peak
    return probs.log()


def test_greedy_collapses_repeats_and_drops_blanks():
    path = [1, 1, 0, 1, 2, 2, 0, 0, 3, 3]
    lp = one_hot_log_probs(path)[None]
    assert greedy_decode(lp, torch.tensor([10])) == [[1, 1, 2, 3]]
    assert greedy_decode(lp, torch.tensor([5])) == [[1, 1, 2]]  # only the valid frames count
    assert greedy_decode(one_hot_log_probs([0, 0, 0])[None], torch.tensor([3])) == [[]]


def test_beam_width_one_equals_greedy_when_frames_are_confident():
    # With the argmax above 1/2 at every frame, extending by it (or staying, for blank) is
    # always the more probable prefix, so width 1 follows the best path.
    for _ in range(20):
        T, V = 12, 5
        best = torch.randint(0, V, (T,))
        logits = torch.randn(T, V)
        logits[torch.arange(T), best] += 6.0
        lp = logits.log_softmax(-1)
        assert (lp.exp().max(-1).values > 0.5).all()
        greedy = greedy_decode(lp[None], torch.tensor([T]))[0]
        assert prefix_beam_decode(lp, T, beam_width=1, prune=0) == greedy


def test_wide_beam_finds_the_most_probable_labelling():
    for _ in range(5):
        lp = torch.randn(5, 3, dtype=torch.float64).mul(1.5).log_softmax(-1)
        probs = brute_force_probs(lp)
        best = max(probs, key=probs.get)
        assert tuple(prefix_beam_decode(lp, 5, beam_width=50, prune=0)) == best


# -- error rates ----------------------------------------------------------------------------


def test_edit_distance_facts():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("same", "same") == 0
    assert edit_distance("ab", "ba") == 2  # no transpositions in Levenshtein distance
    words = ["one", "two", "three"]
    assert edit_distance(words, ["one", "three"]) == 1


def test_error_rates_are_corpus_level():
    rates = error_rates(["one two", "three"], ["one three two", "three"])
    assert rates["wer"] == pytest.approx(1 / 3)
    assert rates["cer"] == pytest.approx(6 / 12)  # "three " inserted into "one two" + "three"


# -- features -------------------------------------------------------------------------------


def test_spectrogram_shapes_and_normalisation():
    lengths = torch.tensor([8000, 4000, 400])
    audio = torch.randn(3, 8000) * (torch.arange(8000) < lengths[:, None])
    spec, frames = log_spectrogram(audio, lengths, n_fft=160, hop=80)
    assert spec.shape == (3, 81, 99)  # 1 + (8000 - 160) // 80 frames of 81 bins
    assert frames.tolist() == [99, 49, 4]
    valid = spec[1, :, :49]
    torch.testing.assert_close(valid.mean(-1), torch.zeros(81), atol=1e-4, rtol=0)
    torch.testing.assert_close(valid.std(-1, unbiased=False), torch.ones(81), atol=1e-3, rtol=0)
    assert spec[1, :, 49:].abs().max() == 0
    alone, _ = log_spectrogram(audio[1:2, :4000], lengths[1:2])
    torch.testing.assert_close(spec[1:2, :, :49], alone, atol=1e-5, rtol=1e-5)


# -- sequence-wise BN and the GRU -----------------------------------------------------------


def test_sequence_batchnorm_uses_only_real_frames():
    x = torch.randn(3, 7, 4) * 3 + 1
    lengths = torch.tensor([7, 3, 5])
    mask = torch.arange(7) < lengths[:, None]
    bn = SequenceBatchNorm(4)
    ref = nn.BatchNorm1d(4)
    y = bn(x, mask[..., None].float())
    torch.testing.assert_close(y[mask], ref(x[mask]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    assert y[~mask].abs().max() == 0
    bn.eval(), ref.eval()
    torch.testing.assert_close(bn(x, mask[..., None].float())[mask], ref(x[mask]))


def test_sequence_batchnorm_pools_frequency_for_conv_features():
    x = torch.randn(2, 3, 5, 6)  # (B, C, F, T)
    mask = (torch.arange(6) < torch.tensor([6, 2])[:, None]).float()[:, None, None, :]
    y = SequenceBatchNorm(3, feature_dim=1)(x, mask)
    valid = torch.cat([x[0].reshape(3, -1), x[1, :, :, :2].reshape(3, -1)], 1)  # (C, n)
    ref = (valid - valid.mean(1, keepdim=True)) / (
        valid.var(1, unbiased=False)[:, None] + 1e-5
    ).sqrt()
    torch.testing.assert_close(y[1, :, :, :2].reshape(3, -1), ref[:, 30:], atol=1e-5, rtol=1e-5)
    assert y[1, :, :, 2:].abs().max() == 0


def test_gru_without_bn_equals_nn_gru_with_copied_weights():
    B, T, D, H = 3, 9, 5, 6
    layer = BatchNormBiGRU(input_size=D, hidden=H, batch_norm=False).double()
    ref = nn.GRU(D, H, batch_first=True, bidirectional=True).double()
    with torch.no_grad():
        W, bW = layer.W.weight.split(3 * H), layer.W.bias.split(3 * H)
        ref.weight_ih_l0.copy_(W[0]), ref.weight_ih_l0_reverse.copy_(W[1])
        ref.bias_ih_l0.copy_(bW[0]), ref.bias_ih_l0_reverse.copy_(bW[1])
        ref.weight_hh_l0.copy_(layer.U[0]), ref.weight_hh_l0_reverse.copy_(layer.U[1])
        ref.bias_hh_l0.copy_(layer.b[0, 0]), ref.bias_hh_l0_reverse.copy_(layer.b[1, 0])
    x = torch.randn(B, T, D, dtype=torch.float64)
    lengths = torch.tensor([9, 4, 6])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = nn.utils.rnn.pad_packed_sequence(ref(packed)[0], batch_first=True)
    torch.testing.assert_close(layer(x, lengths), expected, atol=1e-10, rtol=1e-10)


def test_bn_applies_to_input_terms_only():
    """Scaling the input rescales W x, which BN undoes: the output does not change (train
    mode). Were BN on the recurrent term too or absent, it would."""
    layer = BatchNormBiGRU(input_size=5, hidden=4).double()
    layer.bn.eps = 0.0  # so that BN is exactly scale-invariant
    x = torch.randn(4, 8, 5, dtype=torch.float64)
    lengths = torch.tensor([8, 5, 6, 3])
    torch.testing.assert_close(layer(7.0 * x, lengths), layer(x, lengths), atol=1e-9, rtol=1e-9)
    plain = BatchNormBiGRU(input_size=5, hidden=4, batch_norm=False).double()
    assert not torch.allclose(plain(7.0 * x, lengths), plain(x, lengths), atol=1e-3)


def small_model(batch_norm=True):
    cfg = DS2Config(conv_channels=4, hidden=8, rnn_layers=2, batch_norm=batch_norm)
    return DeepSpeech2(n_freq=81, vocab=29, cfg=cfg)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_padding_does_not_change_valid_outputs(batch_norm):
    model = small_model(batch_norm)
    lengths = torch.tensor([40, 23])
    spec = torch.randn(2, 81, 40) * (torch.arange(40) < lengths[:, None, None])
    model.train()
    model(spec, lengths)  # give BN running statistics that are not the defaults
    model.eval()
    with torch.no_grad():
        out, out_lengths = model(spec, lengths)
        alone, alone_lengths = model(spec[1:, :, :23], lengths[1:])
        longer, _ = model(F.pad(spec, (0, 17)), lengths)
    assert out_lengths.tolist() == [20, 12] and out.shape[:2] == (2, 20)
    assert alone_lengths.tolist() == [12]
    torch.testing.assert_close(out[1, :12], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(longer[:, :20], out, atol=1e-5, rtol=1e-5)
    model.train()  # batch statistics also come from real frames only
    torch.testing.assert_close(
        model(F.pad(spec, (0, 17)), lengths)[0][:, :20],
        model(spec, lengths)[0],
        atol=1e-5,
        rtol=1e-5,
    )


def test_overfits_one_batch():
    model = small_model()
    spec = torch.randn(4, 81, 30)
    lengths = torch.tensor([30, 30, 26, 20])
    targets = torch.tensor([[3, 4, 5], [6, 6, 7], [8, 9, 0], [10, 0, 0]])
    target_lengths = torch.tensor([3, 3, 2, 1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        lp, n = model(spec, lengths)
        loss = F.ctc_loss(lp.transpose(0, 1), targets, n, target_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    with torch.no_grad():
        decoded = greedy_decode(*model(spec, lengths))
    assert decoded == [[3, 4, 5], [6, 6, 7], [8, 9], [10]]


# -- data -----------------------------------------------------------------------------------


def wav_bytes(samples: np.ndarray, rate=8000, channels=1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def test_fsdd_missing_is_a_clear_error(tmp_path, monkeypatch):
    from sutskever30.data.fsdd import load_fsdd

    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path))
    with pytest.raises(DataMissingError, match=str(tmp_path)):
        load_fsdd()


def test_read_wav_rejects_other_formats(tmp_path):
    from sutskever30.data.fsdd import read_wav

    good = tmp_path / "1_x_0.wav"
    good.write_bytes(wav_bytes(np.array([0, 16384, -32768])))
    np.testing.assert_array_equal(read_wav(good), np.array([0, 0.5, -1.0], dtype=np.float32))
    bad = tmp_path / "stereo.wav"
    bad.write_bytes(wav_bytes(np.zeros(8), channels=2))
    with pytest.raises(DataCorruptError, match="mono"):
        read_wav(bad)


def test_fsdd_fetch_from_local_server_and_load(tmp_path, monkeypatch):
    from sutskever30.data.fsdd import FSDD, load_fsdd

    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "master.zip", "w") as zf:
        for name in ("3_theo_0.wav", "3_theo_7.wav", "8_lucas_12.wav"):
            zf.writestr(
                f"free-spoken-digit-dataset-master/recordings/{name}",
                wav_bytes(np.arange(200) * 10),
            )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("S30_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("S30_CACHE_DIR", str(tmp_path / "cache"))
    try:
        folder = FSDD.fetch(f"http://127.0.0.1:{server.server_address[1]}/master.zip")
    finally:
        server.shutdown()
    assert folder == Path(tmp_path / "data/free-spoken-digit-dataset-master/recordings")
    recs = load_fsdd()
    assert len(recs) == 3 and recs.speakers == ("lucas", "theo")
    assert recs.digit.tolist() == [3, 3, 8] and recs.index.tolist() == [0, 7, 12]
    assert recs.split("test").tolist() == [0] and recs.split("train").tolist() == [1, 2]
    assert len(recs.clip(2)) == 200


def fake_recordings() -> Recordings:
    """10 digits x 2 speakers x 50 repetitions of 100-sample clips whose samples encode the
    recording id (for checking the task builder, not for training)."""
    ids = np.arange(1000)
    return Recordings(
        audio=np.repeat(ids + 1, 100).astype(np.float32),
        offsets=np.arange(1001) * 100,
        digit=ids // 100,
        speaker=(ids // 50) % 2,
        index=ids % 50,
        speakers=("a", "b"),
    )


def test_training_pools_are_nested_and_cover_every_digit_and_speaker():
    recs = fake_recordings()
    pools = [set(training_pool(recs, f, seed=3).tolist()) for f in (1 / 45, 1 / 9, 1.0)]
    assert [len(p) for p in pools] == [20, 100, 900]
    assert pools[0] <= pools[1] <= pools[2] == set(recs.split("train").tolist())
    for pool in pools:
        assert {(recs.digit[i], recs.speaker[i]) for i in pool} == {
            (d, s) for d in range(10) for s in range(2)
        }
        assert not np.isin(recs.index[list(pool)], range(5)).any()  # no test recordings


def test_composed_utterances_match_their_transcripts():
    recs = fake_recordings()
    audio, texts = compose(recs, recs.split("test"), 20, max_digits=3, rng=np.random.default_rng(0))
    for wave_, text in zip(audio, texts, strict=True):
        loud = np.abs(wave_) > 0.5  # clip samples (recording id + 1), not silence or noise
        starts = np.flatnonzero(loud & ~np.concatenate([[False], loud[:-1]]))
        ids = np.round(wave_[starts]).astype(int) - 1
        assert 1 <= len(ids) <= 3 and loud.sum() == 100 * len(ids)
        assert not np.isin(recs.index[ids], range(5, 50)).any()  # only the pool's recordings
        assert text == " ".join(DIGIT_WORDS[recs.digit[i]] for i in ids)
        assert decode(encode(text)) == text


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    from sutskever30.cli import main

    out = tmp_path / "runs"
    assert (
        main(["run", "deep_speech2", "--preset", "quick", "--no-publish", "--out", str(out), "-q"])
        == 0
    )
    import json

    (results,) = out.glob("deep_speech2/digit_strings/quick-*/results.json")
    claims = json.loads(results.read_text())["claims"]
    assert all(c["holds"] for c in claims if c["asserted"]), claims
