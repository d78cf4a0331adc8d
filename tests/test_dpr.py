"""DPR: the in-batch-negative loss, the index, top-k accuracy, BM25 against bm25s, the
paper's file formats, and the claim at the quick preset."""

import importlib.util
import json
import math

import numpy as np
import pytest
import torch

from sutskever30.core.errors import DataCorruptError
from sutskever30.data.wikipedia import Passage
from sutskever30.nn import bert as bert_module
from sutskever30.papers.dpr import data as dprdata
from sutskever30.papers.dpr.bm25 import BM25, tokenize
from sutskever30.papers.dpr.model import (
    build_index,
    false_negative_mask,
    gold_hits,
    in_batch_loss,
    search,
    similarity_logits,
    top_k_accuracy,
)

HAS_FAISS = importlib.util.find_spec("faiss") is not None
HAS_MINILM = importlib.util.find_spec(bert_module.MINILM_PACKAGE) is not None

DOCS = [
    "the cat sat on the mat",
    "dogs chase cats in the park and the cat runs",
    "a quick brown fox jumps over the lazy dog",
    "the park is green in spring and the trees bloom",
    "cats and dogs are common pets; a cat purrs",
    "stock markets fell sharply on monday",
]
QUERIES = ["cat on a mat", "cats dogs park", "the the fox", "markets", "unknown words only"]


# -- the loss ----------------------------------------------------------------------------------


def test_in_batch_loss_equals_hand_computed_cross_entropy():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.8, 0.6], [0.6, 0.8]])
    hard = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    scale = 2.0
    # question 0 scores: p0 0.8, p1 0.6, h0 1.0, h1 −1.0; question 1: 0.6, 0.8, 0.0, 0.0
    s0 = [scale * x for x in (0.8, 0.6, 1.0, -1.0)]
    s1 = [scale * x for x in (0.6, 0.8, 0.0, 0.0)]

    def nll(scores, i):
        return -(scores[i] - math.log(sum(math.exp(s) for s in scores)))

    expected = (nll(s0, 0) + nll(s1, 1)) / 2
    got = in_batch_loss(q, p, hard, scale=scale)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # without the hard negatives: the softmax runs over the two positives only
    in_batch_only = (nll(s0[:2], 0) + nll(s1[:2], 1)) / 2
    assert in_batch_loss(q, p, scale=scale).item() == pytest.approx(in_batch_only, rel=1e-6)


def test_hard_negatives_and_other_positives_are_in_the_logits():
    torch.manual_seed(0)
    q, p, hard = torch.randn(3, 8), torch.randn(3, 8), torch.randn(3, 8)
    logits = similarity_logits(q, p, hard)
    assert logits.shape == (3, 6)
    torch.testing.assert_close(logits[:, 3:], q @ hard.T)  # every hard negative, every row
    torch.testing.assert_close(logits[:, :3], q @ p.T)  # the other questions' positives
    # a gradient reaches each question's negatives: in-batch ones and hard ones
    p.requires_grad_(True)
    hard.requires_grad_(True)
    in_batch_loss(q, p, hard).backward()
    assert (p.grad.abs().sum(1) > 0).all() and (hard.grad.abs().sum(1) > 0).all()


def test_in_batch_negatives_lower_the_loss_of_a_separated_batch():
    """Orthogonal positives far from other questions: the loss is near 0 only if the other
    positives really are negatives (a loss over the positive alone would be 0 always)."""
    q = torch.eye(4)
    good = in_batch_loss(q, torch.eye(4), scale=10.0)
    swapped = in_batch_loss(q, torch.eye(4)[[1, 0, 3, 2]], scale=10.0)
    assert good.item() < 1e-3 and swapped.item() > 9.0


def test_false_negative_mask_drops_duplicates_of_the_gold_passage():
    gold = torch.tensor([7, 7, 3])
    candidates = torch.tensor([7, 7, 3, 3, 9, 7])  # positives, then one hard negative each
    mask = false_negative_mask(gold, candidates)
    expected = torch.tensor(
        [
            [False, True, False, False, False, True],
            [True, False, False, False, False, True],
            [False, False, False, True, False, False],
        ]
    )
    assert torch.equal(mask, expected)
    q, p = torch.randn(3, 4), torch.randn(6, 4)
    loss = in_batch_loss(q, p[:3], p[3:], mask=mask)
    assert torch.isfinite(loss)


# -- the index and top-k accuracy ----------------------------------------------------------------


def test_exact_index_equals_brute_force_across_chunks():
    torch.manual_seed(0)
    vectors, queries = torch.randn(1000, 16), torch.randn(7, 16)
    ids = torch.arange(1000) * 3 + 5
    index = build_index(vectors, ids)
    scores, found = search(index, queries, 10, chunk=128)  # 8 chunks, a running top-k
    brute = (queries @ vectors.T).topk(10)
    torch.testing.assert_close(scores, brute.values)
    assert torch.equal(found, ids[brute.indices])
    assert search(index, queries, 5000)[1].shape == (7, 1000)  # k capped at the index size


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed (pip install faiss-cpu)")
def test_faiss_equals_exact():
    torch.manual_seed(1)
    vectors, queries = torch.randn(2000, 32), torch.randn(20, 32)
    exact = search(build_index(vectors), queries, 50)
    flat = search(build_index(vectors, backend="faiss"), queries, 50)
    torch.testing.assert_close(flat[0], exact[0], atol=1e-4, rtol=1e-5)
    assert torch.equal(flat[1], exact[1])


def test_top_k_accuracy_hand_computed_and_monotone():
    ranked = torch.tensor([[4, 2, 9], [1, 5, 3], [7, 8, 6], [0, 0, 0]])
    gold = [2, 1, 6, 5]  # found at rank 2, rank 1, rank 3, never
    acc = top_k_accuracy(gold_hits(ranked, gold))
    torch.testing.assert_close(acc, torch.tensor([0.25, 0.5, 0.75]))
    random_hits = torch.rand(50, 100) < 0.02
    curve = top_k_accuracy(random_hits)
    assert (curve[1:] >= curve[:-1]).all() and curve[-1] == random_hits.any(1).float().mean()


def test_answer_hits_match_whole_words():
    ranked = torch.tensor([[0, 1], [1, 0]])
    texts = {0: "Paris is the capital of France.", 1: "The Parisian café, 1889."}
    hits = dprdata.answer_hits(ranked, texts, [["paris"], ["1889", "Eiffel"]])
    assert hits.tolist() == [[True, False], [True, False]]


# -- BM25 ----------------------------------------------------------------------------------------


def _zipf_corpus(seed: int, n_docs: int = 300, vocab: int = 400):
    """Documents and queries of Zipf-distributed words: a few in most documents (the dense
    part of BM25's matrix), most in few (the sparse part)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    docs = [list(rng.choice(words, size=rng.integers(3, 60), p=p)) for _ in range(n_docs)]
    queries = [list(rng.choice(words, size=rng.integers(1, 8), p=p)) for _ in range(40)]
    return docs, queries


@pytest.mark.parametrize("corpus", ["text", "zipf"])
def test_bm25_equals_bm25s_lucene(corpus):
    bm25s = pytest.importorskip("bm25s")
    if corpus == "text":
        docs, queries = [tokenize(d) for d in DOCS], [tokenize(q) for q in QUERIES[:4]]
    else:
        docs, queries = _zipf_corpus(0)
    ours = BM25(docs, k1=0.9, b=0.4)
    if corpus == "zipf":  # both parts of the product are exercised
        assert len(ours._dense_terms) > 0 and len(ours._sparse_terms) > 10
    ref = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    ref.index(docs, show_progress=False)
    queries = [q for q in queries if any(t in ours.vocab for t in q)]  # bm25s refuses others
    expected = np.stack([ref.get_scores(q) for q in queries])
    np.testing.assert_allclose(ours.scores(queries), expected, rtol=1e-5, atol=1e-5)
    top_s, _ = ours.search(queries, 3)
    _, ref_s = ref.retrieve(queries, k=3, show_progress=False)
    np.testing.assert_allclose(top_s, ref_s, rtol=1e-5, atol=1e-5)


def test_bm25_unknown_words_score_zero():
    bm25 = BM25(DOCS)
    assert (bm25.scores([QUERIES[4]]) == 0).all()
    assert (bm25.scores(["cat"]) > 0).sum() == 3  # documents 0, 1 and 4 hold "cat"


def test_bm25_formula_by_hand():
    """One query term: idf · tf / (tf + k1 (1 − b + b |d| / avgdl)), Lucene's idf."""
    docs = [["a", "b", "a"], ["b", "c"], ["c", "c", "c", "d"]]
    k1, b = 1.2, 0.75
    bm25 = BM25(docs, k1=k1, b=b)
    avgdl, n, df = 3.0, 3, 1
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    expected = idf * 2 / (2 + k1 * (1 - b + b * 3 / avgdl))
    assert bm25.scores([["a"]])[0, 0] == pytest.approx(expected, rel=1e-6)
    # a repeated query word counts twice (two Lucene clauses), as in bm25s
    assert bm25.scores([["a", "a"]])[0, 0] == pytest.approx(2 * expected, rel=1e-6)
    assert bm25.scores([["a"]])[0, 1:].tolist() == [0.0, 0.0]


def test_bm25_dense_and_sparse_parts_add_up_to_one_product():
    """The split into frequent (dense) and rare (sparse) terms is only a speed-up."""
    docs, queries = _zipf_corpus(1)
    bm25 = BM25(docs)
    full = np.zeros((len(bm25.vocab), bm25.n_docs), dtype=np.float32)  # Sᵀ in one piece
    full[bm25._dense_terms] = bm25._dense
    full[bm25._sparse_terms] = bm25._sparse.toarray()
    reference = bm25.query_matrix(queries) @ full
    np.testing.assert_allclose(bm25.scores(queries), reference, rtol=1e-6, atol=1e-6)


# -- the paper's formats -------------------------------------------------------------------------


def test_reads_dpr_formats(tmp_path):
    tsv = tmp_path / "psgs_w100.tsv"
    tsv.write_text('id\ttext\ttitle\n1\t"Aaron is a prophet."\tAaron\n2\tA second text.\tB\n')
    passages = dprdata.read_psgs_tsv(tsv)
    assert passages == [
        Passage(1, "Aaron", "Aaron is a prophet."),
        Passage(2, "B", "A second text."),
    ]
    train = tmp_path / "biencoder-nq-train.json"
    rows = [
        {
            "question": "who is aaron?",
            "answers": ["a prophet"],
            "positive_ctxs": [{"title": "Aaron", "text": "Aaron is a prophet.", "passage_id": "1"}],
            "negative_ctxs": [],
            "hard_negative_ctxs": [{"title": "B", "text": "A second text.", "passage_id": "2"}],
        },
        {"question": "no positive", "answers": [], "positive_ctxs": []},
    ]
    train.write_text(json.dumps(rows))
    (ex,) = dprdata.read_dpr_json(train)
    assert ex.question == "who is aaron?" and ex.pid == 1 and ex.hard_pids == (2,)
    assert ex.positive == "Aaron [SEP] Aaron is a prophet." and ex.hard == (
        "B [SEP] A second text.",
    )
    qa = tmp_path / "nq-test.qa.csv"
    qa.write_text("who is aaron?\t['a prophet', 'Aaron']\n")
    es = dprdata.read_qa_csv(qa)
    assert es.questions == ["who is aaron?"] and es.answers == [["a prophet", "Aaron"]]
    qa.write_text("a line without answers\n")
    with pytest.raises(DataCorruptError, match="line 1"):
        dprdata.read_qa_csv(qa)
    tsv.write_text("wrong\theader\n")
    with pytest.raises(DataCorruptError, match="header"):
        dprdata.read_psgs_tsv(tsv)


@pytest.mark.skipif(not HAS_MINILM, reason=bert_module.MINILM_INSTALL)
def test_experiment_runs_on_the_papers_files(tmp_path):
    """psgs_w100.tsv + a qa.csv + a training JSON, scored by answer strings."""
    from sutskever30.cli import main

    facts = ["Paris is the capital of France", "The Nile is a river in Africa",
             "Beethoven composed nine symphonies", "The Moon orbits the Earth"]  # fmt: skip
    tsv = tmp_path / "psgs_w100.tsv"
    tsv.write_text("id\ttext\ttitle\n" + "".join(f"{i}\t{f}.\tT{i}\n" for i, f in enumerate(facts)))
    qa = tmp_path / "test.qa.csv"
    qa.write_text("what is the capital of france?\t['Paris']\nwhat orbits the earth?\t['Moon']\n")
    rows = [
        {"question": f"tell me about fact {i}", "answers": [], "hard_negative_ctxs": [],
         "positive_ctxs": [{"title": f"T{i}", "text": f"{f}.", "passage_id": str(i)}]}
        for i, f in enumerate(facts)
    ]  # fmt: skip
    train = tmp_path / "train.json"
    train.write_text(json.dumps(rows))
    args = ["run", "dpr", "--preset", "smoke", "--out", str(tmp_path), "-q", "--no-publish"]
    for key, path in (("passages_tsv", tsv), ("eval_qa", qa), ("train_json", train)):
        args += ["--set", f"{key}={path}"]
    assert main(args) == 0
    (run_dir,) = (tmp_path / "dpr" / "retrieval").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["summary"]["passages"] == 4 and results["summary"]["questions"] == {"qa": 2}
    assert results["summary"]["accuracy"]["bm25"]["qa"][3] == 1.0  # all 4 passages retrieved
    alone = ["--set", f"eval_qa={qa}", "--out", str(tmp_path / "bad"), "--no-publish"]
    assert main(["run", "dpr", "--preset", "smoke", "-q", *alone]) == 2  # one file is not enough


def test_bm25_hard_negatives_are_top_ranked_and_never_the_gold():
    passages = [Passage(10 + i, f"T{i}", d) for i, d in enumerate(DOCS)]
    triples = [("cat on the mat", "pos", 10), ("dogs chase cats in the park", "pos", 11)]
    ex = dprdata.with_bm25_negatives(triples, passages, 2)
    scores = BM25([f"{p.title} {p.text}" for p in passages]).scores([q for q, _, _ in triples])
    for e, row, (_, _, gold) in zip(ex, scores, triples, strict=True):
        ranked = [10 + int(i) for i in np.argsort(-row, kind="stable") if 10 + i != gold]
        assert e.hard_pids == tuple(ranked[:2]) and gold not in e.hard_pids
        assert e.hard[0] == f"T{ranked[0] - 10} [SEP] {DOCS[ranked[0] - 10]}"
    assert all(e.hard == () for e in dprdata.with_bm25_negatives(triples, passages, 0))


# -- the dual encoder on MiniLM ------------------------------------------------------------------


@pytest.mark.skipif(not HAS_MINILM, reason=bert_module.MINILM_INSTALL)
def test_dual_encoder_encoders_are_separable_and_one_step_learns():
    from sutskever30.papers.dpr.model import DualEncoder, EncoderConfig

    model = DualEncoder.from_pretrained(EncoderConfig(bf16=False, p_max_length=48))
    assert model.question is not model.passage
    # mismatched on purpose: each question's positive is the other question's answer
    q_texts = ["where do cats sit?", "what fell on monday?"]
    p_texts = ["T [SEP] " + DOCS[5], "T [SEP] " + DOCS[0]]

    def loss() -> torch.Tensor:
        return in_batch_loss(
            model.embed_questions(q_texts), model.embed_passages(p_texts), scale=20
        )

    before = model.passage.bert.word_emb.weight.clone()
    model.passage.requires_grad_(False)  # RAG's setting: E_P frozen, E_Q trained
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.eval()  # no dropout: the two losses differ by the step alone
    first = loss()
    first.backward()
    opt.step()
    assert torch.equal(model.passage.bert.word_emb.weight, before)
    assert model.passage.bert.word_emb.weight.grad is None
    assert loss().item() < first.item()


@pytest.mark.skipif(not HAS_MINILM, reason=bert_module.MINILM_INSTALL)
@pytest.mark.parametrize("train_passages", [True, False])
def test_training_step_updates_the_encoders_it_should(train_passages):
    """The experiment's step: E_Q and E_P both learn (the paper), or E_Q alone with E_P's
    vectors looked up (the quick preset, RAG's setting)."""
    from types import SimpleNamespace

    from sutskever30.papers.dpr import experiment as ex
    from sutskever30.papers.dpr.model import EncoderConfig

    cfg = ex.RetrievalConfig(
        encoder=EncoderConfig(p_max_length=32, bf16=False),
        train_passage_encoder=train_passages,
        batch_size=2,
        steps=2,
        warmup=1,
    )
    texts = [f"T{i} [SEP] {d}" for i, d in enumerate(DOCS)]
    train = [
        dprdata.TrainExample(q, texts[i], (texts[i + 2],), i, (i + 2,))
        for i, q in enumerate(["where is the cat?", "who chases cats?", "what is quick?"])
    ]
    model = ex.load_model(cfg)
    frozen = None
    if not train_passages:
        frozen = dict(zip(texts, model.encode_passages(texts), strict=True))
    q0 = model.question.bert.layers[0].qkv.weight.clone()
    p0 = model.passage.bert.layers[0].qkv.weight.clone()
    _, _, step = ex.trainer(SimpleNamespace(seed=0), cfg, model, train, frozen)
    model.train()
    metrics = step(0)
    assert math.isfinite(metrics["loss"]) and metrics["loss"] > 0
    assert not torch.equal(model.question.bert.layers[0].qkv.weight, q0)
    changed = not torch.equal(model.passage.bert.layers[0].qkv.weight, p0)
    assert changed == train_passages


# -- the claim -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_quick_claim_dense_beats_bm25(tmp_path):
    from sutskever30.cli import main

    code = main(["run", "dpr", "--preset", "quick", "--out", str(tmp_path), "-q", "--no-publish"])
    assert code == 0
    (run_dir,) = (tmp_path / "dpr" / "retrieval").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    claim = next(c for c in results["claims"] if c["id"] == "dense_beats_bm25")
    assert claim["holds"], claim["measured"]
