"""DPR's retrieval experiment (Table 2, Fig. 1): a dual encoder trained with in-batch and
BM25 hard negatives against BM25, by top-k retrieval accuracy, on held-out articles.

Questions of two kinds are built from the Wikipedia shard (``data.wiki_questions``):
generated questions (SmolLM2-135M-Instruct writes a question a passage answers: paraphrase-
like, as NQ's questions are to their passages) and inverse-cloze queries (a sentence of the
passage: lexical overlap, where the paper finds BM25 strong, as on SQuAD). E_Q and E_P
start from all-MiniLM-L6-v2; the quick preset fine-tunes E_Q alone on train-article ICT
queries with E_P frozen (its vectors looked up, as in RAG; both encoders train in 7× the
time), the full preset both, on ICT and generated questions. The index holds every passage
of every split, and accuracy is measured on test-article questions (the settings were
chosen with ``split=val``, the val articles' questions; README: the search).
Three retrievers are scored on the same questions and index: the trained dual encoder, the
untrained MiniLM (E_Q = E_P) and BM25. A retrieved passage is relevant when it is the
question's own passage (the paper: when it contains the answer; DPR's qa files, when passed,
are scored that way).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from sutskever30.core import plots
from sutskever30.core.bench import BenchCase, median_seconds
from sutskever30.core.errors import UsageError
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit
from sutskever30.data import wiki_questions as wq
from sutskever30.data.cache import cached_arrays
from sutskever30.data.wikipedia import Passage, load_passages
from sutskever30.nn.bert import minilm_path
from sutskever30.papers.dpr import data as dprdata
from sutskever30.papers.dpr.bm25 import BM25, tokenize
from sutskever30.papers.dpr.model import (
    DualEncoder,
    EncoderConfig,
    build_index,
    false_negative_mask,
    gold_hits,
    in_batch_loss,
    passage_text,
    search,
    top_k_accuracy,
)

# Table 2, Natural Questions / SQuAD, top-20 and top-100 retrieval accuracy (%).
PAPER_NQ = {"bm25_top20": 59.1, "dpr_top20": 78.4, "bm25_top100": 73.7, "dpr_top100": 85.4}
PAPER_SQUAD = {"bm25_top20": 68.8, "dpr_top20": 63.2}
RETRIEVERS = ("dpr", "minilm", "bm25")  # trained, untrained, sparse
DATA_SEED = 0  # the ICT sentences drawn: the same questions in every run and seed


@dataclass(frozen=True)
class RetrievalConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    model_path: str = ""  # a BERT checkpoint folder for E_Q and E_P; "": all-MiniLM-L6-v2
    # ICT in quick: writing questions for the ~2,600 train passages takes ~1.5 h here
    train_queries: Literal["generated", "ict", "both"] = "ict"
    eval_queries: tuple[str, ...] = ("generated", "ict")  # the first one carries the claim
    generated_every: int = 2  # questions are written for passages whose pid is a multiple
    hard_negatives: int = 1  # BM25 negatives per question (paper: 1)
    # False: E_P (and the index) stay MiniLM's and E_Q alone is trained, as in RAG; a step
    # then costs ~1/10 (no passage goes through the encoder), the paper trains both
    train_passage_encoder: bool = False
    batch_size: int = 32  # questions per step (paper: 128)
    steps: int = 60
    epochs: float | None = None  # if set, steps = ceil(epochs · training questions / batch)
    lr: float = 3e-5  # AdamW peak, chosen on val among 1e-5, 3e-5, 1e-4 (paper: Adam 1e-5)
    warmup: int = 6  # linear warm-up steps, then linear decay to 0 (the paper's schedule)
    weight_decay: float = 0.0
    split: Literal["test", "val"] = "test"  # val: the hyperparameter search
    articles: int = 0  # 0: every article of the dump; else the first n of each split (smoke)
    max_eval: int = 0  # 0: every question of the split; else the first n of each set
    k: int = 100  # the accuracy curve runs k = 1 … k
    claim_k: int = 20
    # chosen on val among (0.9, 0.4) (Pyserini's defaults, the paper's), (1.2, 0.75), (1.5, 0.75)
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    passages_tsv: str = ""  # DPR's psgs_w100.tsv: index these passages instead
    train_json: str = ""  # DPR's biencoder-*-train.json: train on these questions
    eval_qa: str = ""  # DPR's *.qa.csv: evaluate on these (relevant = holds an answer)

    def __post_init__(self) -> None:
        if not self.eval_queries or not set(self.eval_queries) <= {"generated", "ict"}:
            raise ValueError("eval_queries must be a non-empty subset of (generated, ict)")
        if self.hard_negatives < 0 or self.warmup < 0 or self.articles < 0 or self.max_eval < 0:
            raise ValueError("hard_negatives, warmup, articles and max_eval must be >= 0")
        if not 1 <= self.claim_k <= self.k:
            raise ValueError(f"need 1 <= claim_k <= k, got {self.claim_k}, {self.k}")
        if self.generated_every < 1:
            raise ValueError(f"generated_every must be >= 1, got {self.generated_every}")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")

    def total_steps(self, n_train: int) -> int:
        if self.epochs is None:
            return self.steps
        return max(1, math.ceil(self.epochs * n_train / self.batch_size))


@dataclass
class Task:
    passages: list[Passage]  # the index
    train: list[dprdata.TrainExample]
    evals: dict[str, dprdata.EvalSet]


def _queries(
    kind: str, passages: list[Passage], run: Run, cfg: RetrievalConfig, *, train: bool
) -> list[wq.Query]:
    """ICT queries of every passage, or generated questions: for every
    ``cfg.generated_every``-th passage (by pid) of the val and test articles, of all articles
    if training reads them (writing one takes 2–4 s on the shared 2-core machine; each
    passage list is cached apart, so the list asked for is always the same one)."""
    if kind == "ict":
        return wq.ict_queries(passages, seed=DATA_SEED)
    passages = [
        p
        for p in passages
        if p.pid % cfg.generated_every == 0 and (train or wq.split_of(p.title) != "train")
    ]
    bar = run.progress(len(passages), "writing questions (cached after)")
    try:
        return wq.generated_questions(passages, batch_size=64, progress=bar)
    finally:
        bar.close()


def wiki_task(run: Run, cfg: RetrievalConfig) -> Task:
    """The shard's passages, questions of train articles (with BM25 hard negatives among
    train-article passages), and questions of ``cfg.split`` articles."""
    passages = load_passages()
    if cfg.articles:
        titles = list(dict.fromkeys(p.title for p in passages))
        keep = {
            t for split in ("train", "val", "test")
            for t in [t for t in titles if wq.split_of(t) == split][: cfg.articles]
        }  # fmt: skip
        passages = [p for p in passages if p.title in keep]
    by_pid = {p.pid: p for p in passages}
    kinds = ("generated", "ict") if cfg.train_queries == "both" else (cfg.train_queries,)
    needed = dict.fromkeys((*kinds, *cfg.eval_queries))
    made = {kind: _queries(kind, passages, run, cfg, train=kind in kinds) for kind in needed}
    train_pids = {p.pid for p in wq.passages_of(passages, "train")}
    triples = []
    for kind in kinds:
        for q in made[kind]:
            if q.pid in train_pids:
                p = by_pid[q.pid]
                triples.append((q.text, passage_text(p.title, q.context or p.text), q.pid))
    train_passages = [by_pid[pid] for pid in sorted(train_pids)]
    train = dprdata.with_bm25_negatives(
        triples, train_passages, cfg.hard_negatives, k1=cfg.bm25_k1, b=cfg.bm25_b
    )
    held = {p.pid for p in wq.passages_of(passages, cfg.split)}
    evals = {}
    for kind in cfg.eval_queries:
        qs = [q for q in made[kind] if q.pid in held][: cfg.max_eval or None]
        evals[kind] = dprdata.EvalSet(kind, [q.text for q in qs], gold=[q.pid for q in qs])
    return Task(passages, train, evals)


def dpr_files_task(cfg: RetrievalConfig) -> Task:
    """The paper's files: psgs_w100.tsv, a qa.csv to evaluate, a training JSON if given."""
    if not (cfg.passages_tsv and cfg.eval_qa):
        raise UsageError("DPR's files go together: set passages_tsv and eval_qa (+ train_json)")
    passages = dprdata.read_psgs_tsv(cfg.passages_tsv)
    train = dprdata.read_dpr_json(cfg.train_json, cfg.hard_negatives) if cfg.train_json else []
    qa = dprdata.read_qa_csv(cfg.eval_qa, "qa")
    if cfg.max_eval:
        qa = dataclasses.replace(
            qa, questions=qa.questions[: cfg.max_eval], answers=qa.answers[: cfg.max_eval]
        )
    return Task(passages, train, {"qa": qa})


# -- training --------------------------------------------------------------------------------


def trainer(
    run: Run,
    cfg: RetrievalConfig,
    model: DualEncoder,
    train: list[dprdata.TrainExample],
    frozen: dict[str, torch.Tensor] | None = None,
):
    """AdamW with linear warm-up and decay, and ``step(s)``: batch s of questions, their
    positives and hard negatives through E_Q and E_P, eq. 2 over in-batch + hard negatives.
    With E_P frozen (``cfg.train_passage_encoder`` off) the passages' vectors are looked up
    in ``frozen`` (text → E_P vector) and only E_Q is trained."""
    if not cfg.train_passage_encoder:
        if frozen is None:
            raise ValueError("a frozen E_P needs the passages' vectors")
        model.passage.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    steps = cfg.total_steps(len(train))
    decay = max(steps - cfg.warmup, 1)

    def schedule(s: int) -> float:
        return min((s + 1) / max(cfg.warmup, 1), max(0.0, (steps - s) / decay))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)

    def step(s: int) -> dict[str, float]:
        batch = [train[i] for i in batch_indices(len(train), cfg.batch_size, s, run.seed)]
        gold = torch.tensor([e.pid for e in batch])
        candidates = torch.tensor([e.pid for e in batch] + [p for e in batch for p in e.hard_pids])
        texts = [e.positive for e in batch] + [h for e in batch for h in e.hard]
        with model.autocast():
            q = model.embed_questions([e.question for e in batch])  # (B, C)
            if frozen is None:
                p = model.embed_passages(texts)  # (B + B_h, C): positives, then hard negatives
            else:
                p = torch.stack([frozen[t] for t in texts]).to(q.device)
        hard = p[len(batch) :] if len(p) > len(batch) else None
        mask = false_negative_mask(gold, candidates) & (gold >= 0)[:, None]
        loss = in_batch_loss(q, p[: len(batch)], hard, scale=model.cfg.scale, mask=mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "lr": sched.get_last_lr()[0]}

    return opt, sched, step


def frozen_vectors(
    run: Run, cfg: RetrievalConfig, model: DualEncoder, task: Task, corpus: np.ndarray
) -> dict[str, torch.Tensor]:
    """text → E_P vector of every passage training reads: the corpus's rows, and the other
    texts (ICT contexts, their sentence removed) encoded once and cached."""
    table = dict(zip(corpus_texts(task.passages), torch.from_numpy(corpus), strict=True))
    needed = {t for e in task.train for t in (e.positive, *e.hard)}
    missing = sorted(needed - table.keys())
    if missing:
        vectors = untrained_vectors(run, cfg, model, missing, "contexts")
        table.update(zip(missing, torch.from_numpy(vectors), strict=True))
    return {t: table[t] for t in needed}


def load_model(cfg: RetrievalConfig) -> DualEncoder:
    return DualEncoder.from_pretrained(cfg.encoder, cfg.model_path or None)


# -- retrieval and scoring -------------------------------------------------------------------


def corpus_texts(passages: list[Passage]) -> list[str]:
    return [passage_text(p.title, p.text) for p in passages]


def encode_corpus(run: Run, model: DualEncoder, passages: list[Passage], what: str):
    bar = run.progress(len(passages), f"encoding {len(passages)} passages ({what})")
    try:
        return model.encode_passages(corpus_texts(passages), progress=bar)
    finally:
        bar.close()


def untrained_vectors(
    run: Run, cfg: RetrievalConfig, model: DualEncoder, texts: list[str], what: str
) -> np.ndarray:
    """E_P of ``texts`` before training (N, C): the same in every seed and run, so cached,
    keyed by the texts, the encoder's settings and its weights file."""
    folder = Path(cfg.model_path) if cfg.model_path else minilm_path()
    key = hashlib.sha256(
        "\n".join([f"{cfg.encoder.p_max_length} {cfg.encoder.bf16}", *texts]).encode()
    ).hexdigest()[:16]

    def build() -> dict[str, np.ndarray]:
        bar = run.progress(len(texts), f"encoding {len(texts)} {what} (untrained; cached after)")
        try:
            return {"vectors": model.encode_passages(texts, progress=bar).numpy()}
        finally:
            bar.close()

    return cached_arrays(
        f"dpr-untrained-{what}-{key}", build, sources=[folder / "model.safetensors"]
    )["vectors"]


def hits_of(task: Task, name: str, ranked: torch.Tensor) -> torch.Tensor:
    es = task.evals[name]
    if es.gold is not None:
        return gold_hits(ranked, es.gold)
    return dprdata.answer_hits(ranked, {p.pid: p.text for p in task.passages}, es.answers)


def _curve(hits: torch.Tensor, k: int) -> list[float]:
    """Top-1 … top-k accuracy; past the index's size (a tiny index) it stays at its last."""
    acc = top_k_accuracy(hits).tolist()
    return acc + acc[-1:] * (k - len(acc))


def dense_accuracy(model: DualEncoder, vectors, task: Task, k: int) -> dict[str, list[float]]:
    index = build_index(torch.as_tensor(vectors), [p.pid for p in task.passages])
    out = {}
    for name, es in task.evals.items():
        _, ranked = search(index, model.encode_questions(es.questions), k)
        out[name] = _curve(hits_of(task, name, ranked), k)
    return out


def bm25_accuracy(cfg: RetrievalConfig, task: Task) -> dict[str, list[float]]:
    bm25 = BM25([f"{p.title} {p.text}" for p in task.passages], k1=cfg.bm25_k1, b=cfg.bm25_b)
    pids = torch.tensor([p.pid for p in task.passages])
    out = {}
    for name, es in task.evals.items():
        _, rows = bm25.search(es.questions, cfg.k)
        out[name] = _curve(hits_of(task, name, pids[torch.from_numpy(rows)]), cfg.k)
    return out


def bm25_speed(task: Task, cfg: RetrievalConfig) -> dict[str, float]:
    """Seconds to index the corpus and to search every evaluation question, ours against
    bm25s (same tokens, same variant), the median of 3 after a warm-up; {} without bm25s."""
    try:
        import bm25s
    except ImportError:
        return {}
    docs = [tokenize(f"{p.title} {p.text}") for p in task.passages]
    queries = [tokenize(q) for es in task.evals.values() for q in es.questions]
    k = min(cfg.k, len(docs))
    ours = BM25(docs, k1=cfg.bm25_k1, b=cfg.bm25_b)
    ref = bm25s.BM25(method="lucene", k1=cfg.bm25_k1, b=cfg.bm25_b)
    ref.index(docs, show_progress=False)
    timing = dict(repeats=3, warmup=1)
    return {
        "queries": len(queries),
        "ours_index_s": median_seconds(lambda: BM25(docs, k1=cfg.bm25_k1, b=cfg.bm25_b), **timing),
        "bm25s_index_s": median_seconds(lambda: ref.index(docs, show_progress=False), **timing),
        "ours_search_s": median_seconds(lambda: ours.search(queries, k), **timing),
        "bm25s_search_s": median_seconds(
            lambda: ref.retrieve(queries, k=k, show_progress=False, n_threads=1), **timing
        ),
    }


# -- the run ---------------------------------------------------------------------------------


def train_dpr(
    run: Run, cfg: RetrievalConfig, model: DualEncoder, task: Task, corpus: np.ndarray
) -> dict:
    """Fine-tune ``model`` (E_Q and E_P, or E_Q alone) on the task's training questions."""
    if not task.train:
        raise UsageError("no training questions: pass train_json with DPR's files")
    frozen = None if cfg.train_passage_encoder else frozen_vectors(run, cfg, model, task, corpus)
    torch.manual_seed(run.seed)
    opt, sched, step = trainer(run, cfg, model, task.train, frozen)
    t = time.perf_counter()
    # a frozen E_P is MiniLM's: the checkpoint holds what is trained
    trained = model if cfg.train_passage_encoder else model.question
    history = fit(run, "dpr", model=trained, optimizer=opt, scheduler=sched,
                  steps=cfg.total_steps(len(task.train)),
                  step=step, log_every=10)  # fmt: skip
    return {"history": history, "train_s": time.perf_counter() - t}


_NAMES = {
    "generated": "generated questions (paraphrase-like)",
    "ict": "inverse-cloze sentences (lexical overlap)",
}


def _where(cfg: RetrievalConfig, name: str) -> str:
    return "the qa file's questions" if name == "qa" else f"{cfg.split}-article {_NAMES[name]}"


def retrieval_claims(run: Run, cfg: RetrievalConfig, acc: dict[str, dict[str, list[float]]]):
    k, first = cfg.claim_k, next(iter(acc["bm25"]))  # the first question set
    at = {f"{r}_top{k}": acc[r][first][k - 1] for r in RETRIEVERS}
    run.claim(
        "dense_beats_bm25",
        f"top-{k} retrieval accuracy of the trained dual encoder exceeds BM25's on "
        f"{_where(cfg, first)}, by more than the seed-to-seed spread "
        f"(index: all {run.summary['passages']} passages)",
        f"Table 2, NQ top-20: DPR {PAPER_NQ['dpr_top20']} vs BM25 {PAPER_NQ['bm25_top20']}",
        at,
        f"dpr_top{k} > bm25_top{k} + spread",
    )
    for name in list(acc["bm25"])[1:]:
        run.report(
            f"bm25_on_{name}",
            f"top-{k} accuracy on {_where(cfg, name)}: BM25 beside the dense retrievers",
            f"Table 2, SQuAD top-20 (questions written with the passage in view): BM25 "
            f"{PAPER_SQUAD['bm25_top20']} vs DPR {PAPER_SQUAD['dpr_top20']}",
            {f"{r}_top{k}": acc[r][name][k - 1] for r in RETRIEVERS},
        )
    speed = run.summary.get("bm25_speed") or {}
    if speed:
        run.report(
            "bm25_speed",
            f"our BM25 (scipy.sparse, the Lucene variant) against bm25s's, the same tokens and "
            f"scores: seconds to index the {run.summary['passages']} passages and to search "
            f"all {speed['queries']} questions for their top {cfg.k} (median of 3, one process)",
            "not in the paper (Pyserini's Lucene index)",
            {k: v for k, v in speed.items() if k != "queries"},
        )
    at_k = sorted({1, 5, cfg.k})
    run.report(
        "top_k",
        f"top-1, top-5 and top-{cfg.k} accuracy of each retriever on each question set",
        f"Table 2, NQ top-100: DPR {PAPER_NQ['dpr_top100']} vs BM25 {PAPER_NQ['bm25_top100']} "
        "(Fig. 1: top-k against k, 1 to 100, on NQ dev)",
        {
            f"{r}_{n}_top{j}": acc[r][n][j - 1]
            for n in acc["bm25"]
            for r in RETRIEVERS
            for j in at_k
        },
    )


_LABELS = {"dpr": "DPR (fine-tuned MiniLM)", "minilm": "MiniLM, untrained", "bm25": "BM25"}


def plot_accuracy(run: Run, cfg: RetrievalConfig, acc: dict[str, dict[str, list[float]]]):
    """Top-k accuracy against k for each retriever, one panel per question set (Fig. 1)."""
    names = list(acc["bm25"])
    fig, axes = plots.figure(ncols=len(names))
    for ax, name in zip(axes, names, strict=True):
        series = {
            _LABELS[r]: (list(range(1, len(acc[r][name]) + 1)), [100 * a for a in acc[r][name]])
            for r in RETRIEVERS
        }
        plots.draw_lines(
            ax, series, xlabel="k (passages retrieved)", ylabel="top-k accuracy (%)",
            title=f"{cfg.split} articles: {name} ({run.summary['questions'][name]} questions)",
            logx=True, styles={_LABELS["bm25"]: "--", _LABELS["minilm"]: ":"},
        )  # fmt: skip
        ax.axvline(cfg.claim_k, color="grey", linewidth=0.8, alpha=0.5)
    plots.save(fig, run.plot_path("topk_accuracy.png"))


def plot_loss(run: Run, history: list[dict]) -> None:
    plots.line_plot(
        run.plot_path("training.png"),
        {"eq. 2": ([r["step"] for r in history], [r["loss"] for r in history])},
        xlabel="step", ylabel="training loss (nats)", title="DPR training",
    )  # fmt: skip


def run_retrieval(run: Run, cfg: RetrievalConfig) -> None:
    times: dict[str, float] = {}
    t = time.perf_counter()
    files = cfg.passages_tsv or cfg.eval_qa or cfg.train_json
    task = dpr_files_task(cfg) if files else wiki_task(run, cfg)
    times["data_s"] = time.perf_counter() - t
    run.nets_total = 1
    acc: dict[str, dict[str, list[float]]] = {}
    t = time.perf_counter()
    acc["bm25"] = bm25_accuracy(cfg, task)
    times["bm25_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model = load_model(cfg)
    corpus = untrained_vectors(run, cfg, model, corpus_texts(task.passages), "passages")
    acc["minilm"] = dense_accuracy(model, corpus, task, cfg.k)
    times["untrained_s"] = time.perf_counter() - t
    trained = train_dpr(run, cfg, model, task, corpus)
    times["train_s"] = trained["train_s"]
    t = time.perf_counter()
    if cfg.train_passage_encoder:
        corpus = encode_corpus(run, model, task.passages, "trained")
    acc["dpr"] = dense_accuracy(model, corpus, task, cfg.k)
    times["trained_eval_s"] = time.perf_counter() - t
    run.summary.update(
        {
            "passages": len(task.passages),
            "train_questions": len(task.train),
            "questions": {n: len(es) for n, es in task.evals.items()},
            "threads": torch.get_num_threads(),
            "times_s": times,
            "accuracy": acc,
            "bm25_speed": bm25_speed(task, cfg),
        }
    )
    retrieval_claims(run, cfg, acc)
    plot_accuracy(run, cfg, acc)
    plot_loss(run, trained["history"])


SMOKE = RetrievalConfig(
    encoder=EncoderConfig(p_max_length=64),
    train_passage_encoder=False,
    train_queries="ict",
    eval_queries=("ict",),
    batch_size=4,
    steps=3,
    warmup=1,
    articles=1,
    max_eval=40,
    k=20,
)  # every path once, on ICT queries (writing questions takes minutes)
QUICK = RetrievalConfig()
# The paper's training settings (§5.1 / Appendix): batch 128, one BM25 negative, 40 epochs,
# Adam lr 1e-5 with linear warm-up, dropout 0.1. Encoders: MiniLM unless model_path names a
# BERT-base checkpoint folder (not available here).
FULL = RetrievalConfig(
    encoder=EncoderConfig(attn_dropout=0.1),
    train_queries="both",
    train_passage_encoder=True,
    generated_every=1,
    batch_size=128,
    epochs=40,
    lr=1e-5,
    warmup=100,
    bm25_k1=0.9,
    bm25_b=0.4,
)


def bench(run: Run):
    """One training step of the dual encoder at the run's preset (what ``fit`` runs)."""
    cfg: RetrievalConfig = run.cfg
    task = wiki_task(run, cfg)
    model = load_model(cfg)
    frozen = None
    if not cfg.train_passage_encoder:
        frozen = frozen_vectors(
            run,
            cfg,
            model,
            task,
            untrained_vectors(run, cfg, model, corpus_texts(task.passages), "passages"),
        )
    opt, _, step = trainer(run, cfg, model, task.train, frozen)
    return [BenchCase("dual_encoder", model, opt, step, cfg.batch_size, log_every=10)]


EXPERIMENT = Experiment(
    name="retrieval",
    description="dual encoder (in-batch + BM25 hard negatives) vs BM25 and untrained MiniLM: "
    "top-k accuracy on held-out Wikipedia articles, generated and inverse-cloze questions",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_retrieval,
    quick_minutes=2.2,  # cold caches but for the written questions; 1.4 with --jobs 3, warm
    datasets=("wikipedia",),
    quick_seeds=3,
)

PAPER = Paper(
    slug="dpr",
    title="Dense Passage Retrieval for Open-Domain Question Answering",
    authors="Vladimir Karpukhin, Barlas Oğuz, Sewon Min, Patrick Lewis, Ledell Wu, "
    "Sergey Edunov, Danqi Chen, Wen-tau Yih",
    year=2020,
    arxiv="2004.04906",
    experiments=(EXPERIMENT,),
    bench=bench,
)
