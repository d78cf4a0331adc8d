"""bahdanau_attention: the bidirectional encoder (and its padding), the attention weights, the
fixed context of RNNencdec, s_0, the maxout readout, teacher forcing against the step
interface, greedy and beam search through nn/search, the length thirds and BLEU, a few
training steps on Multi30k, the config's checks, the quick claims."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.core.checkpoint import load_checkpoint
from sutskever30.data.translation import Vocab
from sutskever30.nn.search import beam_search, greedy_search
from sutskever30.papers.bahdanau_attention.experiment import (
    ARMS,
    CHECKPOINT,
    PAPER,
    QUICK,
    SMOKE,
    TranslateConfig,
    batch,
    length_batches,
    length_thirds,
    load_data,
    score,
    trainer,
)
from sutskever30.papers.bahdanau_attention.model import (
    Seq2Seq,
    Seq2SeqConfig,
    maxout,
    training_loss,
    translation_loss,
)

from .conftest import has_dataset
from .scratch import bench_cases_that_train

needs_multi30k = pytest.mark.skipif(not has_dataset("multi30k"), reason="Multi30k not present")
N = 6  # GRU state size of the tiny models


def tiny(attention: bool = True) -> Seq2Seq:
    """A small model with large random weights, so that outputs depend strongly on inputs."""
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab=20, tgt_vocab=15, m=8, n=N, n_align=5, l=4, attention=attention)
    model = Seq2Seq(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.8)
    return model.eval()


def padded_batch():
    """Three sources of lengths 7, 4, 2 (ids ≥ 4, padding 0) and targets of length 5."""
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, 20, (3, 7), generator=g)
    src_len = torch.tensor([7, 4, 2])
    src[1, 4:], src[2, 2:] = 0, 0
    tgt = torch.randint(4, 15, (3, 5), generator=g)
    return src, src_len, tgt


# -- the encoder -------------------------------------------------------------------------------


@pytest.mark.parametrize("attention", [True, False])
def test_annotations_read_both_directions(attention):
    """h_1 = [→h_1; ←h_1]: changing the last word changes ←h_1, not →h_1."""
    model = tiny(attention)
    src, src_len, _ = padded_batch()
    changed = src.clone()
    changed[0, 6] = 4 if src[0, 6] != 4 else 5
    with torch.no_grad():
        h, h2 = model.encode(src, src_len)["h"], model.encode(changed, src_len)["h"]
    torch.testing.assert_close(h2[0, 0, :N], h[0, 0, :N])
    assert (h2[0, 0, N:] - h[0, 0, N:]).abs().max() > 1e-3


def test_annotations_ignore_padding():
    """A sentence's annotations (and s_0) are the same alone and padded in a batch: the
    backward GRU starts at the sentence's last word, not at the padding."""
    model = tiny()
    src, src_len, _ = padded_batch()
    with torch.no_grad():
        batched = model.encode(src, src_len)
        alone = model.encode(src[2:, :2], src_len[2:])
    torch.testing.assert_close(batched["h"][2, :2], alone["h"][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched["s"][2], alone["s"][0], rtol=1e-5, atol=1e-6)
    assert batched["mask"].sum(1).tolist() == [7, 4, 2]


def test_initial_state_is_tanh_of_the_first_backward_annotation():
    model = tiny()
    src, src_len, _ = padded_batch()
    with torch.no_grad():
        state = model.encode(src, src_len)
        expected = torch.tanh(model.W_s(state["h"][:, 0, N:]))
    torch.testing.assert_close(state["s"], expected)


# -- attention and the fixed context ----------------------------------------------------------


def test_attention_weights_sum_to_one_and_skip_padding():
    model = tiny()
    src, src_len, tgt = padded_batch()
    with torch.no_grad():
        _, alpha = model(src, src_len, tgt)  # (B, T_y, T_x)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3, 5))
    assert alpha[1, :, 4:].abs().max() == 0 and alpha[2, :, 2:].abs().max() == 0
    assert alpha[0].min() > 0


def test_fixed_context_is_the_final_states_at_every_step():
    """RNNencdec's decoder gets c = [→h_{T_x}; ←h_1] at every step (the true last word of
    each sentence, not the padding), whatever the decoder state."""
    model = tiny(attention=False)
    src, src_len, tgt = padded_batch()
    seen = []
    hook = model.decoder.register_forward_pre_hook(lambda _, args: seen.append(args[0][:, 8:]))
    with torch.no_grad():
        model(src, src_len, tgt)
        h = model.encode(src, src_len)["h"]
    hook.remove()
    last = h[torch.arange(3), src_len - 1, :N]  # →h at each sentence's last word
    expected = torch.cat([last, h[:, 0, N:]], dim=-1)
    assert len(seen) == 5
    for c in seen:
        torch.testing.assert_close(c, expected)
    assert model.attend is None and not any("attend" in k for k in model.state_dict())


# -- the decoder's readout and the step interface ---------------------------------------------


def test_maxout_takes_the_larger_of_each_neighbouring_pair():
    t = torch.randn(3, 2, 8)
    expected = torch.stack([torch.maximum(t[..., 2 * k], t[..., 2 * k + 1]) for k in range(4)], -1)
    torch.testing.assert_close(maxout(t), expected)


def test_readout_is_the_deep_output_formula():
    """W_o max-pairs(U_o s_{i−1} + V_o E y_{i−1} + C_o c_i), written with the raw weights."""
    model = tiny()
    s, ey, c = torch.randn(4, N), torch.randn(4, 8), torch.randn(4, 2 * N)
    t_tilde = (
        s @ model.U_o.weight.T + model.U_o.bias + ey @ model.V_o.weight.T + c @ model.C_o.weight.T
    )
    t = torch.stack([t_tilde[:, 0::2], t_tilde[:, 1::2]], -1).amax(-1)
    with torch.no_grad():
        torch.testing.assert_close(model.readout(s, ey, c), t @ model.W_o.weight.T + model.W_o.bias)


@pytest.mark.parametrize("attention", [True, False])
def test_teacher_forcing_equals_step_by_step_decoding(attention):
    model = tiny(attention)
    src, src_len, tgt = padded_batch()
    with torch.no_grad():
        logits, _ = model(src, src_len, tgt)
        state, steps = model.encode(src, src_len), []
        for i in range(tgt.shape[1]):
            logp, state = model.step(tgt[:, i], state)
            steps.append(logp)
    torch.testing.assert_close(torch.stack(steps, 1), logits.log_softmax(-1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", [True, False])
def test_greedy_search_through_the_step_interface_is_the_argmax_loop(attention):
    model = tiny(attention)
    src, src_len, _ = padded_batch()
    bos, eos = 1, 2
    with torch.no_grad():
        hyps = greedy_search(
            model.step, model.encode(src, src_len), batch_size=3, bos=bos, eos=eos, max_len=9
        )
        for b in range(3):
            state = model.encode(src[b : b + 1, : src_len[b]], src_len[b : b + 1])
            token, out = torch.tensor([bos]), []
            for _ in range(9):
                logp, state = model.step(token, state)
                token = logp.argmax(-1)
                if token.item() == eos:
                    break
                out.append(token.item())
            assert hyps[b].tokens == out


def test_beam_search_scores_are_the_models_log_probabilities():
    """Beam search reorders the state dict row by row; the log-probability it reports for
    each hypothesis is the teacher-forced one of that hypothesis."""
    model = tiny()
    src, src_len, _ = padded_batch()
    bos, eos = 1, 2
    with torch.no_grad():
        hyps = beam_search(
            model.step,
            model.encode(src, src_len),
            batch_size=3,
            bos=bos,
            eos=eos,
            max_len=8,
            beam_size=3,
            alpha=0.0,
        )
        for b, hyp in enumerate(hyps):
            ended = len(hyp.tokens) < 8
            ys = hyp.tokens + [eos] * ended
            logits, _ = model(
                src[b : b + 1, : src_len[b]], src_len[b : b + 1], torch.tensor([[bos, *ys[:-1]]])
            )
            logp = logits.log_softmax(-1)[0, torch.arange(len(ys)), torch.tensor(ys)].sum()
            assert hyp.log_prob == pytest.approx(logp.item(), abs=1e-4)


def test_loss_ignores_padding():
    logits = torch.randn(2, 3, 7)
    target = torch.tensor([[4, 5, 0], [6, 0, 0]])
    expected = F.cross_entropy(logits[target != 0], target[target != 0])
    torch.testing.assert_close(translation_loss(logits, target, 0), expected)


def test_training_loss_skips_the_readout_at_padding_only():
    """The loss with the readout at real tokens only equals the loss of the full logits."""
    model = tiny()
    src, src_len, tgt = padded_batch()
    target = torch.cat([tgt[:, 1:], torch.full((3, 1), 2)], 1)
    target[1, 3:], target[2, 1:] = 0, 0
    with torch.no_grad():
        full = translation_loss(model(src, src_len, tgt)[0], target, 0)
        torch.testing.assert_close(training_loss(model, src, src_len, tgt, target), full)


# -- the experiment's parts -------------------------------------------------------------------


def test_length_thirds_sort_by_source_words():
    sentences = [" ".join(["w"] * k) for k in (5, 1, 9, 3, 7, 2, 8)]
    thirds = length_thirds(sentences)
    assert sorted(i for t in thirds for i in t) == list(range(7))
    assert [len(t) for t in thirds] == [3, 2, 2]
    words = [[len(sentences[i].split()) for i in t] for t in thirds]
    assert max(words[0]) <= min(words[1]) and max(words[1]) <= min(words[2])


def test_length_batches_cover_each_epoch_once_with_similar_lengths():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 40, (1000,), generator=g)
    per_epoch = 1000 // 10
    epoch = [length_batches(lengths, 10, s, seed=3) for s in range(per_epoch)]
    seen = torch.cat(epoch)
    assert len(seen) == len(set(seen.tolist())) == per_epoch * 10  # no pair twice
    assert torch.equal(length_batches(lengths, 10, 7, seed=3), epoch[7])  # a function of step
    assert not torch.equal(length_batches(lengths, 10, per_epoch + 7, seed=3), epoch[7])
    assert not torch.equal(length_batches(lengths, 10, 7, seed=4), epoch[7])
    spread = torch.stack([lengths[b].max() - lengths[b].min() for b in epoch]).float().mean()
    shuffled = torch.randperm(1000, generator=g)[: per_epoch * 10].view(per_epoch, 10)
    random_spread = (lengths[shuffled].amax(1) - lengths[shuffled].amin(1)).float().mean()
    assert spread < random_spread / 4


def test_score_is_per_third_corpus_bleu():
    refs = ["a man rides a horse .", "two dogs play in the snow .", "a child eats a red apple ."]
    thirds = [[0], [1], [2]]
    perfect = score(refs, refs, thirds, True)
    assert perfect == pytest.approx({"all": 100.0, "short": 100.0, "mid": 100.0, "long": 100.0})
    wrong = score([refs[0], "x y z", refs[2].upper()], refs, thirds, True)
    assert wrong["short"] == pytest.approx(100.0) and wrong["long"] == pytest.approx(100.0)
    assert wrong["mid"] < 1.0 and wrong["all"] < 100.0


def test_config_rejects_meaningless_values():
    for bad in (
        dict(n=0),
        dict(steps=0),
        dict(lr_rnnsearch=0.0),
        dict(lr_rnnencdec=-1e-3),
        dict(clip=0.0),
        dict(beam=0),
        dict(alpha=-0.5),
        dict(eval_sentences=2),
        dict(min_freq=0),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(QUICK, **bad)
    assert TranslateConfig().split == "test"


@needs_multi30k
def test_a_few_steps_lower_the_loss_on_multi30k_batches():
    """Both arms, smoke sizes: 30 steps on real de→en batches lower the loss on a batch
    drawn before training; every parameter gets a gradient."""
    cfg = dataclasses.replace(SMOKE, lr_rnnsearch=1e-2, lr_rnnencdec=1e-2)
    data = load_data(cfg)
    run = type("R", (), {"seed": 0, "device": torch.device("cpu")})()
    held = batch(data, torch.arange(100, 132), run.device)
    for arm in ARMS:
        model, _, step = trainer(run, cfg, arm, data)
        with torch.no_grad():
            before = translation_loss(model(*held[:3])[0], held[3], 0).item()
        model.zero_grad()
        translation_loss(model(*held[:3])[0], held[3], 0).backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        for s in range(30):
            step(s)
        with torch.no_grad():
            after = translation_loss(model(*held[:3])[0], held[3], 0).item()
        assert after < before - 0.5, (arm, before, after)


@needs_multi30k
def test_bench_times_each_arms_own_training_step(tmp_path):
    cases = bench_cases_that_train(tmp_path, PAPER, "translate")
    assert [c.name for c in cases] == list(ARMS)
    assert all(case.examples_per_step == SMOKE.batch_size for case in cases)


@needs_multi30k
def test_vocabularies_come_from_train_only():
    data = load_data(SMOKE)
    assert data.src_vocab.lowercase and data.tgt_vocab.lowercase
    assert len(data.eval_src) == SMOKE.eval_sentences
    assert data.src.shape[0] == data.tgt.shape[0] == 29_000
    assert (data.tgt[:, 0] == Vocab.bos_id).all()


@pytest.mark.slow
@needs_multi30k
def test_quick_claims_hold(tmp_path):
    assert (
        main(
            [
                "run",
                "bahdanau_attention",
                "--out",
                str(tmp_path),
                "-q",
                "--no-publish",
                "--jobs",
                "3",
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "bahdanau_attention" / "translate").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["seeds"] == [0, 1, 2]
    for claim in results["claims"]:
        assert claim["holds"] or not claim["asserted"], claim
    state = load_checkpoint(run_dir / "seed-0" / CHECKPOINT)
    assert set(ARMS) <= set(state) and Vocab.from_dict(state["vocab"]["en"]).lowercase
