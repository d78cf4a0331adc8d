"""RAG's open-domain QA experiment (Table 1) and index hot-swap (§4.5), on cloze questions
built from the Wikipedia shard.

Questions: a sentence holding one year, the year masked (``data.wiki_questions``,
cloze translation's temporal answers), from train articles for training and from held-out
test articles for evaluation (val articles when ``split=val``: the settings were chosen
there). The index holds every passage of the shard, encoded once by the fixed passage
encoder (``dpr``'s E_P at its MiniLM initialization; cached).

Two models from the same SmolLM2-135M-Instruct, trained the same steps on the same
questions at the same rates: RAG (query encoder + generator, −log p_RAG(y | x)) and the
closed-book generator (the question alone, −log p(y | x)). Measured by exact match of the
greedy answer on held-out questions: RAG-Token and RAG-Sequence (fast decoding) against
closed-book. Then the hot-swap: in the passages of a random half of the questions RAG got
right, the year is replaced by another; those passages are re-encoded by the same fixed
encoder and the index rows replaced — no parameter changes — and the questions asked again.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit
from sutskever30.data import wiki_questions as wq
from sutskever30.data.wikipedia import Passage, load_passages
from sutskever30.nn.llama import load_gguf
from sutskever30.papers.dpr.experiment import RetrievalConfig, corpus_texts, untrained_vectors
from sutskever30.papers.dpr.model import DualEncoder, EncoderConfig, build_index
from sutskever30.papers.rag.model import RAG

# Table 1 (Natural Questions, exact match) and the hot-swap of §4.5.
PAPER_NQ_EM = {"rag_token": 44.1, "rag_sequence": 44.5, "closed_book_t5_11b": 34.5}
DATA_SEED = 0  # which sentence of a passage becomes its cloze question: fixed across seeds


@dataclass(frozen=True)
class RAGConfig:
    k: int = 3  # passages retrieved per question (paper: 5 or 10)
    train_questions: int = 400  # train-article cloze questions used (0: all)
    eval_questions: int = 150  # held-out questions evaluated (0: all)
    split: Literal["test", "val"] = "test"  # val: where the settings were chosen
    steps: int = 120
    batch_size: int = 2  # questions per step
    lr_generator: float = 3e-5  # AdamW, constant
    lr_retriever: float = 1e-5  # the query encoder's
    train_layers: int = 6  # top generator blocks trained (+ its final norm)
    marginal: Literal["token", "sequence"] = "token"  # the training objective
    max_answer_tokens: int = 8
    eval_batch: int = 16
    articles: int = 0  # 0: every article of the dump; else the first n of each split (smoke)
    bf16: bool = True  # matmuls under bfloat16 autocast

    def __post_init__(self) -> None:
        if self.k < 1 or self.steps < 1 or self.batch_size < 1 or self.eval_batch < 1:
            raise ValueError("k, steps, batch_size and eval_batch must be >= 1")
        if min(self.train_questions, self.eval_questions, self.train_layers, self.articles) < 0:
            raise ValueError(
                "train_questions, eval_questions, train_layers and articles must be >= 0"
            )
        if self.marginal not in ("token", "sequence") or self.split not in ("test", "val"):
            raise ValueError("marginal is token or sequence; split is test or val")


# -- data ------------------------------------------------------------------------------------


def corpus(cfg: RAGConfig) -> list[Passage]:
    """The index's passages: the shard's, or those of the first ``cfg.articles`` articles of
    each split (pids renumbered: a pid is the passage's row in the index)."""
    passages = load_passages()
    if not cfg.articles:
        return passages
    titles = list(dict.fromkeys(p.title for p in passages))
    keep = {
        t for split in ("train", "val", "test")
        for t in [t for t in titles if wq.split_of(t) == split][: cfg.articles]
    }  # fmt: skip
    kept = [p for p in passages if p.title in keep]
    return [dataclasses.replace(p, pid=i) for i, p in enumerate(kept)]


def questions(passages: list[Passage], split: str, limit: int) -> list[wq.Query]:
    """The cloze questions of one split's articles, the first ``limit`` in a fixed shuffle."""
    qs = wq.cloze_queries(wq.passages_of(passages, split), seed=DATA_SEED)
    random.Random(DATA_SEED).shuffle(qs)
    return qs[:limit] if limit else qs


def build(run: Run, cfg: RAGConfig, passages: list[Passage]) -> tuple[RAG, RAG]:
    """RAG and the closed-book generator, each with its own copy of SmolLM2's weights."""
    retriever = DualEncoder.from_pretrained(EncoderConfig(bf16=cfg.bf16))
    vectors = untrained_vectors(
        run, RetrievalConfig(encoder=retriever.cfg), retriever, corpus_texts(passages), "passages"
    )  # E_P fixed: the index is the untrained encoder's, cached beside dpr's
    index = build_index(torch.from_numpy(vectors))
    generator, tokenizer = load_gguf()
    if cfg.bf16:  # the frozen part in bfloat16: autocast need not cast it at every call
        generator.embed.to(torch.bfloat16)
        generator.blocks[: len(generator.blocks) - cfg.train_layers].to(torch.bfloat16)
    common = dict(passages=passages, tokenizer=tokenizer, bf16=cfg.bf16)
    rag = RAG(retriever=retriever, index=index, generator=generator, k=cfg.k, **common)
    closed = RAG(
        retriever=retriever, index=index, generator=copy.deepcopy(generator), k=0, **common
    )
    return rag, closed


# -- training --------------------------------------------------------------------------------


def trainable(model: RAG, cfg: RAGConfig) -> nn.ModuleDict:
    """What training changes: the top ``train_layers`` blocks and final norm of the
    generator, and (RAG) the query encoder; everything else is frozen."""
    model.requires_grad_(False)
    parts = nn.ModuleDict(
        {
            "top_blocks": nn.ModuleList(model.generator.blocks[-cfg.train_layers :])
            if cfg.train_layers
            else nn.ModuleList(),
            "norm": model.generator.norm,
        }
    )
    if model.k:
        parts["question_encoder"] = model.retriever.question
    parts.requires_grad_(True)
    return parts


def trainer(run: Run, model: RAG, cfg: RAGConfig, train_qs: list[wq.Query]):
    """The trainable parts, AdamW over them, and ``step(s)``: −log p(y | x) of batch s
    (RAG: marginalized over the top k as ``cfg.marginal``; closed-book: the question alone)."""
    parts = trainable(model, cfg)
    groups = [
        {"params": [*parts["top_blocks"].parameters(), *parts["norm"].parameters()],
         "lr": cfg.lr_generator},
    ]  # fmt: skip
    if "question_encoder" in parts:
        groups.append({"params": parts["question_encoder"].parameters(), "lr": cfg.lr_retriever})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)

    def step(s: int) -> dict[str, float]:
        batch = [train_qs[i] for i in batch_indices(len(train_qs), cfg.batch_size, s, run.seed)]
        loglik = model.log_likelihood(
            [q.text for q in batch], [q.answer for q in batch], cfg.marginal
        )
        loss = -loglik.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    return parts, opt, step


def train(run: Run, key: str, model: RAG, cfg: RAGConfig, train_qs: list[wq.Query]):
    """Train ``model`` ``cfg.steps`` steps; → (history, seconds)."""
    parts, opt, step = trainer(run, model, cfg, train_qs)
    start = time.perf_counter()
    history = fit(run, key, model=parts, optimizer=opt, steps=cfg.steps, step=step, log_every=5)
    model.eval()
    return history, time.perf_counter() - start


# -- measuring -------------------------------------------------------------------------------


def answers(model: RAG, qs: list[wq.Query], cfg: RAGConfig, marginal: str = "token"):
    out: list[str] = []
    for start in range(0, len(qs), cfg.eval_batch):
        batch = [q.text for q in qs[start : start + cfg.eval_batch]]
        out += model.answer(batch, marginal, cfg.max_answer_tokens)
    return out


def exact_match(predicted: list[str], qs: list[wq.Query]) -> float:
    return sum(p == q.answer for p, q in zip(predicted, qs, strict=True)) / len(qs)


def standard_error(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


@torch.no_grad()
def gold_recall(model: RAG, qs: list[wq.Query], cfg: RAGConfig) -> float:
    """Share of questions whose own passage is among the k retrieved."""
    hits = 0
    for start in range(0, len(qs), cfg.eval_batch):
        batch = qs[start : start + cfg.eval_batch]
        ids = model.retrieve([q.text for q in batch]).ids
        hits += sum(q.pid in row for q, row in zip(batch, ids.tolist(), strict=True))
    return hits / len(qs)


def swapped_year(year: str, text: str, rng: random.Random) -> str:
    """Another year, 10–90 years away, that the passage does not already hold."""
    while True:
        new = str(int(year) + rng.choice((-1, 1)) * rng.randint(10, 90))
        if new not in text and len(new) == 4:
            return new


def hot_swap(run: Run, model: RAG, qs: list[wq.Query], predicted: list[str], cfg: RAGConfig):
    """Edit the gold passages of a random half of the correctly answered questions (their
    year → another year), re-index them, ask again. → measured numbers."""
    right = [q for q, p in zip(qs, predicted, strict=True) if p == q.answer]
    rng = random.Random(run.seed)
    rng.shuffle(right)
    treated, control = right[: len(right) // 2], right[len(right) // 2 :]
    before = {p.pid: p for p in model.passages}
    edits, new_answer = {}, {}
    for q in treated:
        passage = edits.get(q.pid, before[q.pid])
        new_answer[q.text] = swapped_year(q.answer, passage.text, rng)
        edits[q.pid] = dataclasses.replace(
            passage, text=passage.text.replace(q.answer, new_answer[q.text])
        )
    params = [p.detach().clone() for p in model.parameters()]
    model.replace_passages(list(edits.values()))
    after_t = answers(model, treated, cfg) if treated else []
    after_c = answers(model, control, cfg) if control else []
    unchanged = all(torch.equal(a, b) for a, b in zip(params, model.parameters(), strict=True))
    model.replace_passages([before[pid] for pid in edits])  # the original index back
    follows = sum(a == new_answer[q.text] for a, q in zip(after_t, treated, strict=True))
    kept = sum(a == q.answer for a, q in zip(after_c, control, strict=True))
    return {
        "swapped": len(treated),
        "follow_rate": follows / max(len(treated), 1),
        "old_answer_rate": sum(a == q.answer for a, q in zip(after_t, treated, strict=True))
        / max(len(treated), 1),
        "control": len(control),
        "control_kept_rate": kept / max(len(control), 1),
        "parameters_unchanged": float(unchanged),
    }


# -- the run ---------------------------------------------------------------------------------


def run_open_qa(run: Run, cfg: RAGConfig) -> None:
    run.nets_total = 2
    passages = corpus(cfg)
    train_qs = questions(passages, "train", cfg.train_questions)
    eval_qs = questions(passages, cfg.split, cfg.eval_questions)
    rag, closed = build(run, cfg, passages)

    recall_before = gold_recall(rag, eval_qs, cfg)
    rag_hist, rag_s = train(run, "rag", rag, cfg, train_qs)
    closed_hist, closed_s = train(run, "closed_book", closed, cfg, train_qs)

    predicted = {
        "rag_token": answers(rag, eval_qs, cfg, "token"),
        "rag_sequence": answers(rag, eval_qs, cfg, "sequence"),
        "closed_book": answers(closed, eval_qs, cfg),
    }
    em = {name: exact_match(p, eval_qs) for name, p in predicted.items()}
    n = len(eval_qs)
    se_diff = math.sqrt(
        standard_error(em["rag_token"], n) ** 2 + standard_error(em["closed_book"], n) ** 2
    )
    swap = hot_swap(run, rag, eval_qs, predicted["rag_token"], cfg)
    run.summary.update(
        {
            "train_questions": len(train_qs),
            "eval_questions": n,
            "split": cfg.split,
            "train_s": {"rag": rag_s, "closed_book": closed_s},
            "gold_recall_at_k": {"before": recall_before, "after": gold_recall(rag, eval_qs, cfg)},
            "examples": [
                {"question": q.text, "answer": q.answer, **{k: v[i] for k, v in predicted.items()}}
                for i, q in enumerate(eval_qs[:8])
            ],
        }
    )
    run.claim(
        "rag_beats_closed_book",
        f"on {n} cloze questions of held-out articles, RAG-Token's exact match (top {cfg.k} "
        "passages) exceeds the same generator's closed-book exact match, both trained "
        f"{cfg.steps} steps on the same questions, by more than 3 standard errors",
        f"Table 1, NQ EM: RAG-Token {PAPER_NQ_EM['rag_token']}, RAG-Sequence "
        f"{PAPER_NQ_EM['rag_sequence']} vs closed-book T5-11B {PAPER_NQ_EM['closed_book_t5_11b']}",
        {
            "rag_token_em": em["rag_token"],
            "closed_book_em": em["closed_book"],
            "se_diff": se_diff,
        },
        "rag_token_em > closed_book_em + 3 * se_diff",
    )
    run.claim(
        "hot_swap_updates_answers",
        "after the year in the gold passages of a random half of the correctly answered "
        "questions is replaced and those passages re-indexed (no parameter changes), most of "
        "those questions get the new year, and ≥ 90% of the other half keep their answer",
        "§4.5: swapping the 2016 index for the 2018 one answers 70% of 2018 world leaders "
        "correctly (4% with the mismatched index), without retraining",
        swap,
        "follow_rate > 0.5 and control_kept_rate >= 0.9 and parameters_unchanged == 1",
    )
    run.report(
        "sequence_vs_token",
        "RAG-Sequence (fast decoding) beside RAG-Token, same model",
        f"Table 1: RAG-Sequence {PAPER_NQ_EM['rag_sequence']} vs RAG-Token "
        f"{PAPER_NQ_EM['rag_token']} EM on NQ",
        {"rag_sequence_em": em["rag_sequence"], "rag_token_em": em["rag_token"]},
    )
    plot(run, em, swap, {"RAG": rag_hist, "closed-book": closed_hist})


def plot(run: Run, em: dict[str, float], swap: dict, histories: dict) -> None:
    fig, axes = plots.figure(ncols=3)
    plots.draw_lines(
        axes[0],
        {k: ([r["step"] for r in h], [r["loss"] for r in h]) for k, h in histories.items()},
        xlabel="step",
        ylabel="−log p(y | x) (nats)",
        title="Training loss",
    )
    names = list(em)
    axes[1].bar(names, [100 * em[k] for k in names], color=["C0", "C1", "C2"])
    axes[1].set_ylabel("exact match (%)")
    axes[1].set_title("Held-out cloze questions")
    bars = {
        "new year\n(swapped)": swap["follow_rate"],
        "old year\n(swapped)": swap["old_answer_rate"],
        "kept\n(control)": swap["control_kept_rate"],
    }
    axes[2].bar(list(bars), [100 * v for v in bars.values()], color=["C2", "C3", "C0"])
    axes[2].set_ylabel("% of questions")
    axes[2].set_title("Index hot-swap, no retraining")
    plots.save(fig, run.plot_path("rag.png"))


SMOKE = RAGConfig(k=2, train_questions=8, eval_questions=6, steps=2, batch_size=2,
                  train_layers=1, eval_batch=6, articles=2)  # fmt: skip
QUICK = RAGConfig()
# The paper trains on NQ (79k questions) with k = 10 (RAG-Token) and BART-large, every
# generator weight and the query encoder trained (Adam, mixed precision); the same objective
# with all 30 blocks trained and every train-article question, for a few epochs.
FULL = RAGConfig(k=10, train_questions=0, eval_questions=0, steps=3000, batch_size=8,
                 train_layers=30)  # fmt: skip


def bench(run: Run):
    """One RAG training step at the run's preset (what ``fit`` runs)."""
    cfg: RAGConfig = run.cfg
    passages = corpus(cfg)
    rag, _ = build(run, cfg, passages)
    parts, opt, step = trainer(run, rag, cfg, questions(passages, "train", cfg.train_questions))
    return [BenchCase("rag_step", parts, opt, step, cfg.batch_size, log_every=5)]


EXPERIMENT = Experiment(
    name="open_qa",
    description="RAG (MiniLM retriever + SmolLM2 generator) vs the same generator closed-book "
    "on cloze questions of held-out Wikipedia articles; index hot-swap",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_open_qa,
    quick_minutes=5.7,
    datasets=("wikipedia",),
)

PAPER = Paper(
    slug="rag",
    title="Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks",
    authors="Patrick Lewis, Ethan Perez, Aleksandra Piktus, Fabio Petroni, Vladimir "
    "Karpukhin, Naman Goyal, Heinrich Küttler, Mike Lewis, Wen-tau Yih, Tim Rocktäschel, "
    "Sebastian Riedel, Douwe Kiela",
    year=2020,
    arxiv="2005.11401",
    experiments=(EXPERIMENT,),
    bench=bench,
)
