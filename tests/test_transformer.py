"""transformer: layers against nn.TransformerEncoderLayer / nn.TransformerDecoderLayer with
copied weights, cached decoding against full decoding, the causal mask, padding, the
positional encodings' role (without them the output ignores the source's order), the
schedule and the label-smoothed loss, the symbol tasks, Multi30k batches, `s30 sample`,
the config checks, the quick claims."""

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.cli import main
from sutskever30.nn.search import greedy_search
from sutskever30.papers.transformer.experiments import symbols
from sutskever30.papers.transformer.experiments.translate import CHECKPOINT, TranslateConfig
from sutskever30.papers.transformer.model import (
    DecoderLayer,
    EncoderLayer,
    Transformer,
    TransformerConfig,
    label_smoothed_loss,
    noam_lr,
)
from sutskever30.papers.transformer.sample import load_translator, translate_text

from .conftest import has_dataset
from .scratch import scratch_run

needs_multi30k = pytest.mark.skipif(not has_dataset("multi30k"), reason="Multi30k not present")


def config(**kw) -> TransformerConfig:
    base = dict(src_vocab=13, tgt_vocab=11, d_model=16, n_heads=4, d_ff=32, n_layers=2)
    return TransformerConfig(**{**base, "dropout": 0.0, **kw})


def tiny(**kw) -> Transformer:
    torch.manual_seed(0)
    return Transformer(config(**kw)).eval()


def copy_attention(ours, ref) -> None:
    """Our separate W^Q, W^K, W^V, W^O into nn.MultiheadAttention's packed in_proj."""
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
        ref.out_proj.weight.copy_(ours.w_o.weight)
        ref.out_proj.bias.copy_(ours.w_o.bias)


def copy_feed_forward(ours, ref) -> None:
    with torch.no_grad():
        ref.linear1.weight.copy_(ours.feed_forward.w_1.weight)
        ref.linear1.bias.copy_(ours.feed_forward.w_1.bias)
        ref.linear2.weight.copy_(ours.feed_forward.w_2.weight)
        ref.linear2.bias.copy_(ours.feed_forward.w_2.bias)


def randomize_norms(layer: nn.Module) -> None:
    """LayerNorm weights away from (1, 0), so a norm in the wrong place shows."""
    with torch.no_grad():
        for m in layer.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def norms(ours_subs, ref) -> None:
    with torch.no_grad():
        for i, sub in enumerate(ours_subs, start=1):
            getattr(ref, f"norm{i}").weight.copy_(sub.norm.weight)
            getattr(ref, f"norm{i}").bias.copy_(sub.norm.bias)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_encoder_layer_equals_torch_layer_with_copied_weights(pre_norm):
    cfg = config(pre_norm=pre_norm)
    ours = EncoderLayer(cfg).eval()
    randomize_norms(ours)
    ref = nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, cfg.d_ff, dropout=0.0, batch_first=True, norm_first=pre_norm
    ).eval()
    copy_attention(ours.self_attn, ref.self_attn)
    copy_feed_forward(ours, ref)
    norms([ours.sub_attn, ours.sub_ff], ref)
    x = torch.randn(3, 7, cfg.d_model)
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[0, 4:] = False
    keep[2, 6:] = False
    want = ref(x, src_key_padding_mask=~keep)
    got = ours(x, keep[:, None, None, :])
    torch.testing.assert_close(got[keep], want[keep], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_decoder_layer_equals_torch_layer_with_copied_weights(pre_norm):
    cfg = config(pre_norm=pre_norm)
    ours = DecoderLayer(cfg).eval()
    randomize_norms(ours)
    ref = nn.TransformerDecoderLayer(
        cfg.d_model, cfg.n_heads, cfg.d_ff, dropout=0.0, batch_first=True, norm_first=pre_norm
    ).eval()
    copy_attention(ours.self_attn, ref.self_attn)
    copy_attention(ours.cross_attn, ref.multihead_attn)
    copy_feed_forward(ours, ref)
    norms([ours.sub_self, ours.sub_cross, ours.sub_ff], ref)
    y, memory = torch.randn(2, 5, cfg.d_model), torch.randn(2, 6, cfg.d_model)
    keep = torch.ones(2, 6, dtype=torch.bool)
    keep[1, 3:] = False
    want = ref(
        y,
        memory,
        tgt_mask=nn.Transformer.generate_square_subsequent_mask(5),
        tgt_is_causal=True,
        memory_key_padding_mask=~keep,
    )
    torch.testing.assert_close(ours(y, memory, keep[:, None, None, :]), want, atol=1e-5, rtol=1e-5)


def test_post_norm_is_the_papers_layer_norm_of_the_residual_sum():
    """LayerNorm(x + Sublayer(x)), not x + Sublayer(LayerNorm(x)): the two differ."""
    post, pre = tiny(), tiny(pre_norm=True)
    pre.load_state_dict(
        {k: v for k, v in post.state_dict().items() if k in pre.state_dict()}, strict=False
    )
    src, tgt = torch.randint(1, 13, (2, 5)), torch.randint(1, 11, (2, 4))
    assert (post(src, tgt) - pre(src, tgt)).abs().max() > 1e-2


def test_cached_decoding_equals_full_decoding():
    model = tiny()
    src = torch.randint(1, 13, (3, 6))
    src[1, 4:] = 0
    tgt = torch.randint(1, 11, (3, 7))
    full = model(src, tgt).log_softmax(-1)  # (B, T, V)
    state = model.start(src)
    steps = []
    for t in range(tgt.shape[1]):
        log_probs, state = model.step(tgt[:, t], state)
        steps.append(log_probs)
    torch.testing.assert_close(torch.stack(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_greedy_search_with_the_cache_equals_recomputing_the_prefix():
    model = tiny()
    src = torch.randint(1, 13, (4, 6))

    def uncached(tokens, prefix):
        prefix = torch.cat([prefix, tokens[:, None]], dim=1)
        return model(src.index_select(0, torch.arange(len(prefix))), prefix)[:, -1].log_softmax(
            -1
        ), prefix

    common = dict(batch_size=4, bos=1, eos=2, max_len=8)
    cached = greedy_search(model.step, model.start(src), **common)
    plain = greedy_search(uncached, torch.empty(4, 0, dtype=torch.long), **common)
    assert [h.tokens for h in cached] == [h.tokens for h in plain]


def test_future_target_tokens_do_not_change_earlier_outputs():
    model = tiny()
    src, tgt = torch.randint(1, 13, (2, 6)), torch.randint(1, 11, (2, 7))
    changed = tgt.clone()
    changed[:, 4:] = (changed[:, 4:] + 3) % 10 + 1
    a, b = model(src, tgt), model(src, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-4


def test_source_padding_changes_nothing():
    model = tiny()
    src, tgt = torch.randint(1, 13, (2, 5)), torch.randint(1, 11, (2, 4))
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(padded, tgt), model(src, tgt), atol=1e-5, rtol=1e-5)


def test_without_positions_the_output_ignores_the_source_order():
    """No positional encodings: the encoder is permutation-equivariant and the decoder reads
    the source as a set, so permuting it changes no output; with them it does."""
    src, tgt = torch.randint(1, 13, (2, 6)), torch.randint(1, 11, (2, 5))
    shuffled = src[:, torch.randperm(6)]
    bare = tiny(positions=False)
    torch.testing.assert_close(bare(shuffled, tgt), bare(src, tgt), atol=1e-5, rtol=1e-5)
    with_pe = tiny()
    assert (with_pe(shuffled, tgt) - with_pe(src, tgt)).abs().max() > 1e-3


def test_target_embedding_is_the_output_projection():
    model = tiny()
    assert model.generator.weight is model.tgt_embed.lut.weight
    assert model.num_params() == sum(p.numel() for p in set(model.parameters()))


def test_noam_schedule_is_equation_3():
    d, w = 512, 4000
    peak = d**-0.5 * w**-0.5
    assert noam_lr(w, d_model=d, warmup=w) == pytest.approx(peak)
    assert noam_lr(w // 2, d_model=d, warmup=w) == pytest.approx(peak / 2)  # linear warm-up
    assert noam_lr(4 * w, d_model=d, warmup=w) == pytest.approx(peak / 2)  # 1/√step after
    assert noam_lr(100, d_model=d, warmup=w, factor=2.0) == pytest.approx(
        2 * 100 * d**-0.5 * w**-1.5
    )


def test_label_smoothed_loss_mixes_one_hot_and_uniform():
    torch.manual_seed(1)
    logits, target = torch.randn(2, 3, 7), torch.randint(1, 7, (2, 3))
    target[1, 2] = 0  # padding
    eps = 0.1
    log_p = logits.log_softmax(-1)[target != 0]  # (5, V)
    nll = -log_p.gather(1, target[target != 0][:, None]).squeeze(1)
    want = ((1 - eps) * nll + eps * -log_p.mean(-1)).mean()
    got = label_smoothed_loss(logits, target, pad_id=0, smoothing=eps)
    torch.testing.assert_close(got, want)
    assert label_smoothed_loss(logits, target, pad_id=0, smoothing=0.0) == pytest.approx(
        F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0).item()
    )


def test_symbol_tasks_and_held_out_sets():
    cfg = symbols.SymbolsConfig(test_size=5)
    g = torch.Generator().manual_seed(0)
    src, tgt = symbols.make_batch("reverse", 4, cfg, g)
    assert src.shape == (4, cfg.length) and tgt.shape == (4, cfg.length + 1)
    assert (tgt[:, 0] == symbols.BOS).all() and (tgt[:, 1:] == src.flip(1)).all()
    assert src.min() >= symbols.FIRST_SYMBOL and src.max() < cfg.vocab
    test, val = (
        symbols.test_set("copy", cfg, 0),
        symbols.test_set("copy", dataclasses.replace(cfg, split="val"), 0),
    )
    assert not torch.equal(test[0], val[0])


def test_a_few_copy_steps_lower_the_loss(tmp_path):
    cfg = dataclasses.replace(symbols.SymbolsConfig(), d_model=32, d_ff=64, steps=40, dropout=0.0)
    run = scratch_run(tmp_path, "transformer", "copy", cfg)
    _, history, _ = symbols.train(run, "copy", cfg, "copy")
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]


def test_configs_reject_meaningless_values():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        config(d_model=18, n_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        config(dropout=1.0)
    with pytest.raises(ValueError, match="factor"):
        symbols.SymbolsConfig(factor=0.0)
    with pytest.raises(ValueError, match="eval_sentences"):
        TranslateConfig(eval_sentences=2)
    with pytest.raises(ValueError, match="steps"):
        TranslateConfig(steps=0)


@needs_multi30k
def test_translate_smoke_then_sample_translates(tmp_path, capsys):
    assert (
        main(
            [
                "run",
                "transformer:translate",
                "--preset",
                "smoke",
                "--out",
                str(tmp_path),
                "-q",
                "--no-publish",
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "transformer" / "translate").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert {c["id"] for c in results["claims"]} == {
        "beats_rnnsearch_at_equal_time",
        "bleu_by_length",
    }
    model, src_vocab, tgt_vocab = load_translator(run_dir / CHECKPOINT)
    text = "Ein Mann fährt Fahrrad."
    capsys.readouterr()
    assert main(["sample", "transformer", "--text", text, "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == translate_text(model, src_vocab, tgt_vocab, text)


def test_sample_without_a_run_or_text_is_one_clear_line(tmp_path, capsys):
    assert main(["sample", "transformer", "--text", "Ein Hund.", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no finished transformer run" in err and "Traceback" not in err
    assert main(["sample", "transformer", "--text", "  ", "--out", str(tmp_path)]) == 2
    assert "--text must hold" in capsys.readouterr().err


COPY_FAILS = pytest.mark.xfail(
    reason="copy_solved_exactly does not hold at quick scale: seeds 1 and 2 copy 99.2% and "
    "99.1% exactly (README: What is weak)",
    strict=False,
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment", [pytest.param("copy", marks=COPY_FAILS), "reversal", "translate"]
)
def test_quick_claims_hold(tmp_path, experiment):
    if experiment == "translate" and not has_dataset("multi30k"):
        pytest.skip("Multi30k not present")
    target = f"transformer:{experiment}"
    assert main(["run", target, "--out", str(tmp_path), "-q", "--no-publish", "--jobs", "3"]) == 0
    (run_dir,) = (tmp_path / "transformer" / experiment).iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["seeds"] == [0, 1, 2]
    for claim in results["claims"]:
        assert claim["holds"] or not claim["asserted"], claim
    assert math.isfinite(results["runtime_s"])
