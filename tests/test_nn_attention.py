"""The shared attention blocks (``nn/attention.py``): eq. 1 written out against the fused
kernel, multi-head attention against ``nn.MultiheadAttention``, masks, the KV cache,
additive attention and the sinusoidal positions."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.nn.attention import (
    AdditiveAttention,
    AttentionCache,
    MultiHeadAttention,
    PositionalEncoding,
    causal_mask,
    scaled_dot_product_attention,
    sinusoidal_positions,
)

TOL = {"atol": 1e-5, "rtol": 1e-5}


def _qkv(t_q: int = 5, t_k: int = 7, d: int = 8):
    return torch.randn(2, 3, t_q, d), torch.randn(2, 3, t_k, d), torch.randn(2, 3, t_k, 6)


def test_written_out_attention_equals_the_fused_kernel():
    q, k, v = _qkv()
    y, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(y, F.scaled_dot_product_attention(q, k, v), **TOL)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5), **TOL)

    mask = torch.rand(2, 1, 5, 7) > 0.4
    mask[..., 0] = True  # every query sees a key
    y, w = scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(y, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
    assert (w.masked_select(~mask.expand_as(w)) == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5), **TOL)

    q, k, v = _qkv(6, 6)
    y, w = scaled_dot_product_attention(q, k, v, causal=True)
    torch.testing.assert_close(y, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TOL)
    assert (w.triu(1) == 0).all()


def test_causal_mask_aligns_queries_with_the_last_keys():
    assert torch.equal(causal_mask(3, 3), torch.ones(3, 3, dtype=torch.bool).tril())
    # two cached keys: query 0 sits at position 2 and sees keys 0–2
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(3, 5), expected)


def _copy_to_torch(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(mha.d_model, mha.n_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.w_q.weight, mha.w_k.weight, mha.w_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.w_q.bias, mha.w_k.bias, mha.w_v.bias]))
        ref.out_proj.weight.copy_(mha.w_o.weight)
        ref.out_proj.bias.copy_(mha.w_o.bias)
    return ref.eval()


def test_multi_head_attention_equals_torch_with_copied_weights():
    mha = MultiHeadAttention(d_model=16, n_heads=4).eval()
    ref = _copy_to_torch(mha)
    x, mem = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    pad = torch.ones(3, 7, dtype=torch.bool)
    pad[0, 5:], pad[2, 3:] = False, False  # padding at the end of two memories

    for weights in (False, True):
        y, w = mha(x, mem, mem, mask=pad[:, None, None, :], need_weights=weights)
        y_ref, w_ref = ref(x, mem, mem, key_padding_mask=~pad, average_attn_weights=False)
        torch.testing.assert_close(y, y_ref, **TOL)
        if weights:
            torch.testing.assert_close(w, w_ref, **TOL)
            assert (w[0, :, :, 5:] == 0).all() and (w[2, :, :, 3:] == 0).all()

        y, _ = mha(x, x, x, causal=True, need_weights=weights)
        y_ref, _ = ref(x, x, x, attn_mask=~causal_mask(5, 5), need_weights=False)
        torch.testing.assert_close(y, y_ref, **TOL)

        self_pad = pad[:, 2:]  # (3, 5): causal and padding together
        y, _ = mha(x, x, x, mask=self_pad[:, None, None, :], causal=True, need_weights=weights)
        y_ref, _ = ref(x, x, x, attn_mask=~causal_mask(5, 5), key_padding_mask=~self_pad)
        torch.testing.assert_close(y, y_ref, **TOL)


def test_multi_head_attention_scales_by_the_head_width():
    """One head of width 4 per key: the weights are softmax(q·k / √4), not / √16."""
    mha = MultiHeadAttention(d_model=16, n_heads=4, bias=False).eval()
    x = torch.randn(1, 3, 16)
    _, w = mha(x, x, x, need_weights=True)
    q = mha.w_q(x).view(1, 3, 4, 4).transpose(1, 2)
    k = mha.w_k(x).view(1, 3, 4, 4).transpose(1, 2)
    torch.testing.assert_close(w, (q @ k.transpose(-2, -1) / math.sqrt(4)).softmax(-1), **TOL)


def test_future_tokens_do_not_change_past_outputs():
    mha = MultiHeadAttention(d_model=16, n_heads=2).eval()
    x = torch.randn(2, 9, 16)
    y = x.clone()
    y[:, 6:] = torch.randn(2, 3, 16)
    for weights in (False, True):
        out_x, _ = mha(x, x, x, causal=True, need_weights=weights)
        out_y, _ = mha(y, y, y, causal=True, need_weights=weights)
        torch.testing.assert_close(out_x[:, :6], out_y[:, :6], **TOL)
        assert not torch.allclose(out_x[:, 6:], out_y[:, 6:])


def test_cached_incremental_decoding_equals_full_decoding():
    """Causal self-attention fed a prefix, then one position at a time, then a chunk of
    two through the cache equals one pass over the sequence; a static cache of an encoder
    memory gives the same cross-attention at every step; the beam reorder keeps rows."""
    self_attn = MultiHeadAttention(d_model=16, n_heads=4).eval()
    cross = MultiHeadAttention(d_model=16, n_heads=4).eval()
    x, mem = torch.randn(3, 8, 16), torch.randn(3, 5, 16)
    full, _ = self_attn(x, x, x, causal=True)
    full_cross, _ = cross(x, mem, mem)

    for weights in (False, True):  # the written-out path and the fused one
        cache, static = AttentionCache(), AttentionCache(static=True)
        steps, steps_cross = [], []
        for a, b in ((0, 3), (3, 4), (4, 5), (5, 6), (6, 8)):
            xs = x[:, a:b]
            steps.append(self_attn(xs, xs, xs, causal=True, cache=cache, need_weights=weights)[0])
            steps_cross.append(cross(xs, mem, mem, cache=static, need_weights=weights)[0])
        assert cache.length == 8 and static.length == 5
        torch.testing.assert_close(torch.cat(steps, 1), full, **TOL)
        torch.testing.assert_close(torch.cat(steps_cross, 1), full_cross, **TOL)

    keys, values = cache.k.clone(), cache.v.clone()
    cache.reorder(torch.tensor([2, 2, 0]))
    assert torch.equal(cache.k, keys[[2, 2, 0]]) and torch.equal(cache.v, values[[2, 2, 0]])


def test_additive_attention_follows_bahdanau():
    attn = AdditiveAttention(query_dim=6, key_dim=10, attn_dim=7)
    s, h = torch.randn(3, 6), torch.randn(3, 5, 10)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    context, alpha = attn(s, h, mask=mask)

    v, W, U = attn.v.weight[0], attn.W.weight, attn.U.weight
    e = torch.stack(  # e_ij = vᵀ tanh(W s_i + U h_j), one pair (i, j) at a time
        [torch.stack([v @ torch.tanh(W @ s[i] + U @ h[i, j]) for j in range(5)]) for i in range(3)]
    )
    expected = e.masked_fill(~mask, float("-inf")).softmax(-1)
    torch.testing.assert_close(alpha, expected, **TOL)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3), **TOL)
    assert (alpha[1, 3:] == 0).all()
    torch.testing.assert_close(context, torch.einsum("bt,btd->bd", expected, h), **TOL)

    again, _ = attn(s, h, mask=mask, projected_keys=attn.project_keys(h))
    torch.testing.assert_close(again, context)
    h2 = h.clone()
    h2[1, 3:] = 100.0  # what lies under the padding does not reach the context
    torch.testing.assert_close(attn(s, h2, mask=mask)[0][1], context[1], **TOL)


def test_sinusoid_matches_the_formula():
    pe = sinusoidal_positions(50, 16)
    assert pe.shape == (50, 16)
    for pos, i in ((0, 0), (1, 0), (7, 3), (49, 7)):
        angle = pos / 10000 ** (2 * i / 16)
        assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert pe[3, 14].item() == pytest.approx(math.sin(3 / 10000 ** (14 / 16)), abs=1e-6)

    enc = PositionalEncoding(d_model=16, max_len=50)
    x = torch.zeros(2, 4, 16)
    torch.testing.assert_close(enc(x, offset=10), pe[10:14].expand(2, 4, 16))
    with pytest.raises(ValueError, match="max_len"):
        enc(x, offset=47)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positions(4, 5)
