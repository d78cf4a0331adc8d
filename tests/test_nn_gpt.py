"""The shared GPT decoder (``nn/gpt.py``) and the samplers (``nn/sampling.py``)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from sutskever30.nn.gpt import GPT, GPTConfig, KVCache
from sutskever30.nn.sampling import best_of, draw, filter_logits

CFG = GPTConfig(vocab_size=11, context=16, n_layer=2, n_head=2, d_model=16)


def _gpt(cfg: GPTConfig = CFG, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg).eval()


def test_future_tokens_do_not_change_past_logits():
    model = _gpt()
    x = torch.randint(0, 11, (2, 12))
    y = x.clone()
    y[:, 7:] = torch.randint(0, 11, (2, 5))
    assert torch.allclose(model(x)[:, :7], model(y)[:, :7], atol=1e-6)
    assert not torch.allclose(model(x)[:, 7:], model(y)[:, 7:])


def test_cached_decoding_equals_full_decoding():
    """A prompt, then tokens one at a time (and a chunk of three) through the KV cache: the
    logits equal one forward of the whole sequence."""
    model = _gpt()
    x = torch.randint(0, 11, (3, 14))
    full = model(x)
    cache = KVCache(CFG.n_layer)
    parts = [model(x[:, :5], cache)]
    parts += [model(x[:, t : t + 1], cache) for t in range(5, 11)]
    parts.append(model(x[:, 11:14], cache))
    assert cache.length == 14
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)

    # rejected drafts: forget the last four tokens, feed others, as if never seen
    cache.truncate(10)
    y = torch.cat([x[:, :10], torch.randint(0, 11, (3, 4))], 1)
    assert torch.allclose(model(y[:, 10:], cache), model(y)[:, 10:], atol=1e-5)
    with pytest.raises(ValueError, match="truncate"):
        cache.truncate(15)


def test_generation_through_the_cache_equals_greedy_decoding_without_it():
    """Greedy generation past the context (the cache is rebuilt from the last context
    tokens) equals re-running the model on the cropped sequence at every step."""
    model = _gpt()
    prompt = torch.randint(0, 11, (2, 5))
    tokens, logp = model.generate(prompt, 20, temperature=0)
    seq = prompt
    for _ in range(20):
        nxt = model(seq[:, -CFG.context :])[:, -1].argmax(-1)
        seq = torch.cat([seq, nxt[:, None]], 1)
    assert torch.equal(tokens, seq[:, 5:])
    assert logp.shape == (2, 20) and (logp <= 0).all()


def test_context_and_config_are_checked():
    model = _gpt()
    with pytest.raises(ValueError, match="exceed the context"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(vocab_size=5, d_model=10, n_head=4)
    with pytest.raises(ValueError, match="prompt"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 3)


def test_weights_are_tied_and_residual_projections_scaled():
    model = GPT(GPTConfig(vocab_size=50, n_layer=8, d_model=64, n_head=4))
    assert model.head.out.weight is model.embed.wte.weight
    untied = GPT(GPTConfig(vocab_size=50, n_layer=8, d_model=64, n_head=4, tie_weights=False))
    assert untied.num_params() == model.num_params() + 50 * 64
    std = model.blocks[0].attn.proj.weight.std().item()
    assert std == pytest.approx(0.02 / 4, rel=0.1)  # 0.02 / √(2 · 8)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_non_embedding_parameters_count_what_the_model_has():
    cfg = GPTConfig(vocab_size=65, context=64, n_layer=3, n_head=4, d_model=32)
    model = GPT(cfg)
    embedding = model.embed.wte.weight.numel() + model.embed.wpe.weight.numel()
    assert cfg.non_embedding_params == model.num_params() - embedding
    # Kaplan's approximation N ≈ 12 n_layer d², biases and norms aside
    assert cfg.non_embedding_params == pytest.approx(12 * 3 * 32**2, rel=0.05)


def test_flops_per_token_match_torchs_flop_counter():
    """6N + 6 n_layer n_ctx d per trained token (Kaplan et al. Table 1) against the matmuls
    of a forward and backward counted by torch.utils.flop_counter. The counter sees the
    weights' matmuls (N without its biases and norms: 12 n_layer d²) and, through the math
    attention kernel, the full n_ctx × n_ctx scores and weighted sums, twice the causal half
    Kaplan counts. The tied head is left out of C, as Kaplan et al. do."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cfg = GPTConfig(vocab_size=7, context=32, n_layer=2, n_head=2, d_model=64)
    model = GPT(cfg)
    x = torch.randint(0, 7, (2, 32))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    tokens = x.numel()
    head = 3 * 2 * cfg.d_model * cfg.vocab_size * tokens  # forward and backward of the head
    counted = (counter.get_total_flops() - head) / tokens
    weights = 6 * 12 * cfg.n_layer * cfg.d_model**2
    attention = 6 * cfg.n_layer * cfg.context * cfg.d_model
    assert counted == weights + 2 * attention
    small = cfg.non_embedding_params - 12 * cfg.n_layer * cfg.d_model**2  # biases and norms
    assert cfg.flops_per_token() == weights + 6 * small + attention


def test_sequential_is_the_same_network():
    model = _gpt()
    x = torch.randint(0, 11, (2, 9))
    assert torch.allclose(model.sequential()(x), model(x))


def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]])
    kept = filter_logits(probs.log(), top_p=0.8).isfinite()
    assert kept.tolist() == [[True, True, False, False], [False, False, True, True]]
    kept = filter_logits(probs.log(), top_p=0.81).isfinite()
    assert kept.sum(-1).tolist() == [3, 3]
    assert filter_logits(probs.log(), top_k=1).isfinite().sum(-1).tolist() == [1, 1]


def test_draw_follows_temperature_and_greedy():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    assert draw(logits, temperature=0).tolist() == [0]
    gen = torch.Generator().manual_seed(0)
    many = draw(logits.expand(20_000, 3), generator=gen)
    freq = torch.bincount(many, minlength=3).double() / 20_000
    assert torch.allclose(freq, logits[0].double().softmax(-1), atol=0.01)
    hot = draw(logits.expand(20_000, 3), temperature=2.0, generator=gen)
    freq = torch.bincount(hot, minlength=3).double() / 20_000
    assert torch.allclose(freq, (logits[0].double() / 2).softmax(-1), atol=0.01)
    with pytest.raises(ValueError, match="temperature"):
        draw(logits, temperature=-1)


def test_best_of_n_keeps_the_most_likely_candidate():
    assert best_of([[1], [2], [3]], [-3.0, -1.0, -2.0]) == ([2], -1.0)
    with pytest.raises(ValueError):
        best_of([[1]], [])
