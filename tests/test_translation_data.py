"""Tokenization, the vocabulary and BLEU for the translation papers
(``data/translation.py``)."""

import json

import pytest
import sacrebleu
import torch

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.translation import (
    SPECIALS,
    Vocab,
    corpus_bleu,
    detokenize,
    multi30k_vocab,
    tokenize,
)
from tests.conftest import has_dataset

SENTENCES = [
    "A man in a T-shirt, smiling.",
    "Two dogs play (in the snow)!",
    "A man's dog runs.",
    "a dog runs",
]


def test_tokenize_splits_punctuation_and_lowercases():
    assert tokenize("A man in a T-shirt, smiling.") == ["a", "man", "in", "a", "t-shirt", ",",
                                                       "smiling", "."]  # fmt: skip
    assert tokenize("Ein Mädchen, l'homme!", lowercase=False) == [
        "Ein", "Mädchen", ",", "l'homme", "!"
    ]  # fmt: skip
    for s in SENTENCES:
        assert detokenize(tokenize(s)) == s.lower()


def test_vocabulary_counts_orders_and_encodes():
    vocab = Vocab.build(SENTENCES, min_freq=2)
    # seen twice or more: a ×4, then "." dog in runs ×2 each ("man's" is one word)
    assert vocab.itos == [*SPECIALS, "a", ".", "dog", "in", "runs"]
    ids = vocab.encode("A dog flies.", bos=True)
    assert ids == [vocab.bos_id, 4, 6, vocab.unk_id, 5, vocab.eos_id]
    assert vocab.decode([*ids, 7, 7]) == "a dog <unk>."  # stops at EOS

    batch = vocab.encode_batch(["a dog", "a man runs."], bos=True)
    assert batch.tolist() == [[1, 4, 6, 2, 0, 0], [1, 4, vocab.unk_id, 8, 5, 2]]
    assert batch.dtype == torch.long
    assert vocab.encode_batch(["a dog runs."], max_len=2).tolist() == [[4, 6]]
    assert len(Vocab.build(SENTENCES, min_freq=1)) == len(SPECIALS) + 18


def test_vocabulary_round_trips_through_json(tmp_path):
    vocab = Vocab.build(SENTENCES, min_freq=1, lowercase=False)
    vocab.save(tmp_path / "vocab.json")
    again = Vocab.load(tmp_path / "vocab.json")
    assert again.itos == vocab.itos and again.lowercase is False
    assert again.encode(SENTENCES[1]) == vocab.encode(SENTENCES[1])
    assert Vocab.from_dict(json.loads(json.dumps(vocab.to_dict()))).stoi == vocab.stoi

    (tmp_path / "bad.json").write_text('{"tokens": ["a", "b"], "lowercase": true}')
    with pytest.raises(DataCorruptError, match=r"bad\.json"):
        Vocab.load(tmp_path / "bad.json")
    with pytest.raises(DataCorruptError, match=r"missing\.json"):
        Vocab.load(tmp_path / "missing.json")


def test_bleu_is_sacrebleu_on_raw_references():
    refs = ["A man in a T-shirt, smiling.", "Two dogs play in the snow.", "A child eats."]
    hyps = ["a man in a t-shirt smiling.", "Two dogs are playing in snow.", "A kid eats."]
    assert corpus_bleu(refs, refs, lowercase=False) == pytest.approx(100.0)
    for lowercase in (False, True):
        direct = sacrebleu.corpus_bleu(hyps, [refs], lowercase=lowercase).score
        assert corpus_bleu(hyps, refs, lowercase=lowercase) == pytest.approx(direct)
    # the first hypothesis differs from its reference only in case and a comma
    assert corpus_bleu(hyps, refs, lowercase=True) > corpus_bleu(hyps, refs, lowercase=False)
    with pytest.raises(ValueError, match="2 hypotheses for 3"):
        corpus_bleu(hyps[:2], refs, lowercase=False)


@pytest.mark.skipif(not has_dataset("multi30k"), reason="Multi30k not in the data directory")
def test_multi30k_vocabulary_is_built_from_train_only():
    from sutskever30.data.multi30k import load_multi30k

    train, test = load_multi30k("train")["en"], load_multi30k("test_2016_flickr")["en"]
    vocab = multi30k_vocab("en", min_freq=1)
    seen = {t for s in train for t in tokenize(s)}
    assert set(vocab.itos[4:]) == seen
    unseen = sorted({t for s in test for t in tokenize(s)} - seen)
    assert unseen  # the test split has words the training split lacks: they are <unk>
    assert all(vocab.encode(w, eos=False) == [vocab.unk_id] for w in unseen)

    # encoding then decoding the training sentences loses only case and spacing
    restored = [vocab.decode(vocab.encode(s)) for s in train[:500]]
    assert corpus_bleu(restored, train[:500], lowercase=True) > 99.0
