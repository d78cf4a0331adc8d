"""Measuring Zephyr's recipe at small scale: dSFT, AI-feedback pairs, dDPO, and DPO without
dSFT, judged on held-out prompts.

Train → measure → claims → plots, one short function each: the student (6 of the teacher's
30 layers) is fine-tuned on the teacher's responses (dSFT); two DPO runs start from it and
from the un-fine-tuned student, each with itself frozen as the reference, on the same
preference pairs, for the same steps; every model answers the test prompts greedily, the
judge scores the answers, and each model's win rate against the dSFT model's answer and its
KL divergence from its reference (on its own samples) are measured.

The rules of the claims were fixed before any result was seen: (a) dSFT + dDPO's win rate
over dSFT exceeds 0.5 by more than the seed-to-seed spread, with a mean KL to the reference
of at most 0.5 nats per response token (our a-priori "bounded"); (b) DPO without dSFT wins
less often than dSFT + dDPO by more than the spread. The DPO learning rates were chosen on
the validation prompts (``--set split=val``), the same search for both arms; the step
counts are set by the time budget, the same for both arms.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import statistics
from dataclasses import dataclass, field
from typing import Literal

import torch

from sutskever30.core import plots
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit, step_generator
from sutskever30.nn.llama import Llama, LlamaTokenizer, load_gguf
from sutskever30.papers.zephyr.data import (
    DataConfig,
    TeacherData,
    bf16_context,
    decode_all,
    teacher_data,
)
from sutskever30.papers.zephyr.model import (
    BETA,
    SentimentJudge,
    binarize,
    dpo_loss,
    pack,
    response_log_prob,
    sft_loss,
    student_from_teacher,
    win_rate,
)
from sutskever30.papers.zephyr.sample import sample_command

ARMS = ("dsft", "ddpo", "dpo_only")  # checkpoints of the trained students, by fit key
# A tiny DPO example whose loss was computed by hand:
# z = 0.1 · ((−10 − (−11)) − (−12 − (−11))) = 0.2, −log σ(0.2) = log(1 + e^−0.2) = 0.598138869
HAND_EXAMPLE = {"policy": (-10.0, -12.0), "reference": (-11.0, -11.0), "beta": 0.1}
HAND_LOSS = 0.598138869


@dataclass(frozen=True)
class ZephyrConfig:
    data: DataConfig = field(default_factory=DataConfig)
    # The teacher's layers the student keeps: its first three and last three, the 6-layer
    # choice with the lowest cross-entropy on the teacher's dSFT responses before training
    # (README: 11.3 nats/token vs 17.7 for six evenly spaced layers; the teacher 1.6).
    student_layers: tuple[int, ...] = (0, 1, 2, 27, 28, 29)
    train_embeddings: bool = False  # the tied embedding/head stays the teacher's
    batch_size: int = 8  # responses per dSFT step; preference pairs per DPO step
    sft_steps: int = 80
    sft_lr: float = 1e-3
    dpo_steps: int = 24
    # Each DPO arm's learning rate: the best validation win rate against dSFT among
    # {1e-5, 3e-5, 1e-4} with validation KL ≤ 0.5 nats/token (README: the search)
    ddpo_lr: float = 1e-4  # dDPO from the dSFT model
    dpo_only_lr: float = 1e-5  # DPO from the un-fine-tuned student
    beta: float = BETA
    warmup: int = 4  # linear warm-up steps of every learning rate
    split: Literal["test", "val"] = "test"  # val: the learning-rate search
    curve_every: int = 8  # DPO steps between KL estimates on validation prompts
    curve_prompts: int = 16
    bf16: bool = True  # bfloat16 autocast (fp32 weights and optimizer state)


# -- train ---------------------------------------------------------------------------------


def _optimizer(model: Llama, lr: float, cfg: ZephyrConfig):
    """AdamW over the trained weights (all but the embedding, unless ``train_embeddings``)
    with a linear warm-up."""
    for name, p in model.named_parameters():
        p.requires_grad_(cfg.train_embeddings or not name.startswith("embed"))
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0
    )
    warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / cfg.warmup))
    return opt, warm


def train_sft(run: Run, student: Llama, data: TeacherData, cfg: ZephyrConfig) -> list[dict]:
    """dSFT: cross-entropy on the teacher's responses, the prompts as context only."""
    opt, sched = _optimizer(student, cfg.sft_lr, cfg)
    n = len(data.sft_prompts)

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(n, cfg.batch_size, i, run.seed).tolist()
        batch = pack(
            [data.sft_prompts[j] for j in idx],
            [data.sft_responses[j] for j in idx],
            data.pad_id,
        )
        with bf16_context(cfg.bf16):
            loss = sft_loss(student, batch.to(run.device))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return {"loss": loss.item()}

    return fit(
        run, "dsft", model=student, optimizer=opt, scheduler=sched, steps=cfg.sft_steps, step=step
    )


@dataclass
class Pairs:
    """Preference pairs: the prompt, the judge's best completion y_w and a random other y_l."""

    prompts: list[list[int]]
    chosen: list[list[int]]
    rejected: list[list[int]]
    scores: list[tuple[float, float]]
    pad_id: int

    def __len__(self) -> int:
        return len(self.prompts)


def preference_pairs(data: TeacherData, scores: list[list[float]], seed: int) -> Pairs:
    """Zephyr's binarization of every preference prompt's k scored completions."""
    rng = random.Random(seed)
    pairs = Pairs([], [], [], [], data.pad_id)
    for prompt, completions, s in zip(
        data.pref_prompts, data.pref_completions, scores, strict=True
    ):
        picked = binarize(s, rng)
        if picked is None:
            continue
        w, l = picked  # noqa: E741 (the paper's y_l)
        pairs.prompts.append(prompt)
        pairs.chosen.append(completions[w])
        pairs.rejected.append(completions[l])
        pairs.scores.append((s[w], s[l]))
    return pairs


def train_dpo(
    run: Run,
    key: str,
    policy: Llama,
    reference: Llama,
    pairs: Pairs,
    lr: float,
    cfg: ZephyrConfig,
    curve: tuple[list[list[int]], LlamaTokenizer] | None = None,
) -> list[dict]:
    """DPO of ``policy`` against the frozen ``reference`` (log-probabilities summed over the
    response tokens). The reference scores each step's batch as the policy does (same
    rows, same precision), so that at step 0, where π_θ = π_ref, the loss is exactly log 2.
    Every ``curve_every`` steps and after the last: KL(π_θ ‖ π_ref) on samples of π_θ for the
    prompts of ``curve`` (prompts, tokenizer), if given."""
    reference.eval().requires_grad_(False)
    opt, sched = _optimizer(policy, lr, cfg)

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(len(pairs), cfg.batch_size, i, run.seed).tolist()
        prompts = [pairs.prompts[j] for j in idx]
        batch = pack(
            prompts * 2,
            [pairs.chosen[j] for j in idx] + [pairs.rejected[j] for j in idx],
            pairs.pad_id,
        )
        batch = batch.to(run.device)
        with bf16_context(cfg.bf16):
            with torch.no_grad():
                ref = response_log_prob(reference, batch).float()
            lp = response_log_prob(policy, batch).float()
        b = len(idx)
        loss, r_w, r_l = dpo_loss(lp[:b], lp[b:], ref[:b], ref[b:], cfg.beta)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return {
            "loss": loss.item(),
            "margin": (r_w - r_l).mean().item(),
            "pair_accuracy": (r_w > r_l).float().mean().item(),
        }

    def evaluate(i: int) -> dict[str, float]:
        prompts, tok = curve
        gen = step_generator(run.seed, i, stream=1)
        return kl_to_reference(policy, reference, prompts, tok, cfg, gen)

    return fit(
        run,
        key,
        model=policy,
        optimizer=opt,
        scheduler=sched,
        steps=cfg.dpo_steps,
        step=step,
        evaluate=evaluate if curve else None,
        eval_every=cfg.curve_every,
        log_every=1,
    )


# -- measure -------------------------------------------------------------------------------


@torch.no_grad()
def kl_to_reference(
    policy: Llama,
    reference: Llama,
    prompts: list[list[int]],
    tok: LlamaTokenizer,
    cfg: ZephyrConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """KL(π_θ ‖ π_ref) estimated on one sample of π_θ per prompt (τ = 1, unfiltered):
    Σ_t log π_θ(y_t|·) − log π_ref(y_t|·), per response and per response token."""
    responses = decode_all(
        policy,
        tok,
        prompts,
        max_new_tokens=cfg.data.max_new_tokens,
        temperature=1.0,
        generator=generator,
        bf16=cfg.bf16,
    )
    batch = pack(prompts, responses, tok.pad_id).to(policy.embed.weight.device)
    with bf16_context(cfg.bf16):
        diff = (response_log_prob(policy, batch) - response_log_prob(reference, batch)).float()
    tokens = sum(len(r) for r in responses)
    return {
        "kl_per_response": diff.mean().item(),
        "kl_per_token": diff.sum().item() / tokens,
    }


def answer(model: Llama, tok: LlamaTokenizer, prompts: list[list[int]], cfg: ZephyrConfig):
    """Greedy responses (token ids) to ``prompts``."""
    return decode_all(model, tok, prompts, max_new_tokens=cfg.data.max_new_tokens, bf16=cfg.bf16)


def judged(judge: SentimentJudge, tok: LlamaTokenizer, responses: list[list[int]]) -> list[float]:
    return [judge(tok.decode(r)) for r in responses]


# -- the run -------------------------------------------------------------------------------


def run_zephyr(run: Run, cfg: ZephyrConfig) -> None:
    run.nets_total = 3
    teacher, tok = load_gguf()
    judge = SentimentJudge()
    data = teacher_data(teacher, tok, cfg.data, bf16=cfg.bf16)
    base = student_from_teacher(teacher, cfg.student_layers).to(run.device).eval()
    del teacher
    pref_scores = [judged(judge, tok, c) for c in data.pref_completions]
    pairs = preference_pairs(data, pref_scores, run.seed)

    dsft = copy.deepcopy(base)
    sft_history = train_sft(run, dsft, data, cfg)
    dsft.eval().requires_grad_(False)
    curve = (data.val_prompts[: cfg.curve_prompts], tok)
    models, histories = {"base": base, "dsft": dsft}, {}
    for key, start, lr in (("ddpo", dsft, cfg.ddpo_lr), ("dpo_only", base, cfg.dpo_only_lr)):
        models[key] = copy.deepcopy(start)
        histories[key] = train_dpo(run, key, models[key], start, pairs, lr, cfg, curve)
        models[key].eval()

    measured = measure(run, models, data, tok, judge, cfg)
    claims(run, measured, cfg)
    run.summary.update(
        {
            "student_params": base.num_params(),
            "pairs": len(pairs),
            "pairs_dropped_as_ties": len(data.pref_prompts) - len(pairs),
            "chosen_score_mean": statistics.fmean(s[0] for s in pairs.scores),
            "rejected_score_mean": statistics.fmean(s[1] for s in pairs.scores),
            "sft_final_loss": sft_history[-1]["loss"],
            **{k: v for k, v in measured.items() if k != "scores"},
        }
    )
    plot_scores(run, measured)
    plot_training(run, sft_history, histories)


def measure(
    run: Run,
    models: dict[str, Llama],
    data: TeacherData,
    tok: LlamaTokenizer,
    judge: SentimentJudge,
    cfg: ZephyrConfig,
) -> dict:
    """Judge scores of every model's greedy answers on the evaluation prompts, win rates
    against dSFT, KL of each DPO arm to its reference, and a few answers side by side."""
    prompts = data.test_prompts if cfg.split == "test" else data.val_prompts
    answers = {name: answer(models[name], tok, prompts, cfg) for name in ARMS}
    if cfg.split == "test":
        answers["teacher"] = data.test_teacher
    scores = {name: judged(judge, tok, r) for name, r in answers.items()}
    out: dict = {}
    for name, s in scores.items():
        out[f"{name}_score"] = statistics.fmean(s)
        out[f"{name}_stopped"] = statistics.fmean(
            float(bool(r) and r[-1] in tok.stop_ids()) for r in answers[name]
        )
        if name != "dsft":
            out[f"{name}_win_rate"] = win_rate(s, scores["dsft"])
    for name, ref in (("ddpo", "dsft"), ("dpo_only", "base")):
        gen = step_generator(run.seed, 0, stream=2)
        kl = kl_to_reference(models[name], models[ref], prompts, tok, cfg, gen)
        out[f"{name}_kl_per_token"] = kl["kl_per_token"]
        out[f"{name}_kl_per_response"] = kl["kl_per_response"]
    out["scores"] = scores
    for i in range(min(3, len(prompts))):
        run.notes.append(
            f"Prompt: {tok.decode(prompts[i]).splitlines()[-2]!r} — "
            + "; ".join(f"{name}: {tok.decode(answers[name][i])!r}" for name in answers)
        )
    return out


def claims(run: Run, m: dict, cfg: ZephyrConfig) -> None:
    n = len(m["scores"]["dsft"])
    where = f"{n} held-out {cfg.split} prompts"
    run.claim(
        "ddpo_beats_dsft",
        f"dSFT + dDPO's greedy answers beat dSFT's by the judge (win rate > 0.5 by more than "
        f"the seed spread) on {where}, with KL to the dSFT reference ≤ 0.5 nats per token",
        "Zephyr Table 3: MT-Bench 6.64 (dSFT) → 7.00 (dSFT + dDPO); Table 1, the full "
        "recipe: 7.34, AlpacaEval 90.6%; β = 0.1 keeps π_θ near π_dSFT",
        {
            "ddpo_win_rate": m["ddpo_win_rate"],
            "ddpo_kl_per_token": m["ddpo_kl_per_token"],
            "ddpo_kl_per_response": m["ddpo_kl_per_response"],
        },
        "ddpo_win_rate > 0.5 + spread and ddpo_kl_per_token <= 0.5",
    )
    run.claim(
        "dpo_without_dsft_worse",
        f"DPO from the un-fine-tuned student (itself the reference), same pairs and steps, "
        f"wins less often against dSFT than dSFT + dDPO, by more than the seed spread "
        f"({where})",
        "Zephyr Table 3: dDPO without dSFT scores MT-Bench 4.76 vs 7.00 with it",
        {"ddpo_win_rate": m["ddpo_win_rate"], "dpo_only_win_rate": m["dpo_only_win_rate"]},
        "ddpo_win_rate > dpo_only_win_rate + spread",
    )
    policy = torch.tensor(HAND_EXAMPLE["policy"])
    reference = torch.tensor(HAND_EXAMPLE["reference"])
    loss, _, _ = dpo_loss(
        policy[:1].double(),
        policy[1:].double(),
        reference[:1].double(),
        reference[1:].double(),
        HAND_EXAMPLE["beta"],
    )
    run.claim(
        "dpo_loss_by_hand",
        "the DPO loss of one pair (log π_θ = −10, −12; log π_ref = −11, −11; β = 0.1) equals "
        "log(1 + e^−0.2) computed by hand",
        "Rafailov et al. 2023 eq. 7; Zephyr eq. 2",
        {"dpo_loss": loss.item(), "by_hand": HAND_LOSS},
        "abs(dpo_loss - by_hand) < 1e-8",
    )
    run.report(
        "others_vs_dsft",
        "win rates against dSFT of the teacher (test split only) and DPO without dSFT, the "
        "judge's mean score and how often each model ends its answer itself",
        "Zephyr Table 1: the teacher-class models (GPT-3.5-turbo, GPT-4) still score above "
        "the 7B student",
        {k: v for k, v in m.items() if k.endswith(("_win_rate", "_score", "_stopped"))},
    )


# -- plots ---------------------------------------------------------------------------------

LABELS = {
    "base": "student, no dSFT",
    "dsft": "dSFT",
    "ddpo": "dSFT + dDPO",
    "dpo_only": "DPO without dSFT",
    "teacher": "teacher (SmolLM2)",
}


def plot_scores(run: Run, m: dict) -> None:
    fig, (ax_s, ax_w) = plots.figure(ncols=2)
    names = list(m["scores"])
    ax_s.boxplot([m["scores"][n] for n in names], showmeans=True)
    ax_s.set_xticks(range(1, len(names) + 1), [LABELS[n] for n in names], rotation=20)
    ax_s.set_ylabel("judge score (VADER compound)")
    ax_s.set_title("Judge scores of greedy answers")
    ax_s.grid(alpha=0.3)
    rated = [n for n in names if f"{n}_win_rate" in m]
    ax_w.bar(range(len(rated)), [m[f"{n}_win_rate"] for n in rated], color="tab:blue")
    ax_w.axhline(0.5, color="k", linestyle="--", linewidth=1)
    ax_w.set_xticks(range(len(rated)), [LABELS[n] for n in rated], rotation=20)
    ax_w.set_ylim(0, 1)
    ax_w.set_ylabel("win rate vs dSFT (ties ½)")
    ax_w.set_title("Win rate against the dSFT model")
    ax_w.grid(alpha=0.3, axis="y")
    plots.save(fig, run.plot_path("scores.png"))


def plot_training(run: Run, sft: list[dict], dpo: dict[str, list[dict]]) -> None:
    fig, (ax_l, ax_m, ax_k) = plots.figure(ncols=3)
    plots.draw_lines(
        ax_l,
        {"dSFT": ([r["step"] for r in sft], [r["loss"] for r in sft])},
        xlabel="step",
        ylabel="cross-entropy (nats/token)",
        title="dSFT on the teacher's responses",
    )
    plots.draw_lines(
        ax_m,
        {LABELS[k]: ([r["step"] for r in h], [r["margin"] for r in h]) for k, h in dpo.items()},
        xlabel="DPO step",
        ylabel="reward margin r(y_w) − r(y_l)",
        title="DPO implicit reward margin",
    )
    curves = {}
    for k, h in dpo.items():
        pts = [r for r in h if "kl_per_token" in r]
        curves[LABELS[k]] = ([r["step"] + 1 for r in pts], [r["kl_per_token"] for r in pts])
    plots.draw_lines(
        ax_k,
        curves,
        xlabel="DPO step",
        ylabel="KL(π_θ ‖ π_ref), nats/token",
        title="KL to the reference (val samples)",
    )
    plots.save(fig, run.plot_path("training.png"))


# -- presets -------------------------------------------------------------------------------

QUICK = ZephyrConfig()
SMOKE = dataclasses.replace(
    QUICK,
    data=DataConfig(n_sft=8, n_pref=8, n_val=4, n_test=4, k=2, max_new_tokens=8),
    student_layers=(0, 29),
    batch_size=2,
    sft_steps=2,
    dpo_steps=2,
    curve_every=2,
    curve_prompts=2,
)
# Zephyr's own setting: dSFT 1–3 epochs at lr 2e-5, dDPO 1–3 epochs at 5e-7, β 0.1, batch 32
FULL = dataclasses.replace(
    QUICK,
    data=dataclasses.replace(QUICK.data, n_sft=8192, n_pref=4096, n_test=1000, n_val=512),
    student_layers=(0, 1, 2, 3, 4, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29),
    batch_size=32,
    sft_steps=768,
    dpo_steps=384,
)

EXPERIMENT = Experiment(
    name="distill",
    description="dSFT of a 6-layer student on SmolLM2-Instruct's answers, AI-feedback pairs "
    "(VADER judge), dDPO vs dSFT and vs DPO without dSFT: judge win rate and KL",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_zephyr,
    quick_minutes=7.0,  # 3 seeds side by side, idle machine (README: Runtime)
    datasets=("multi30k",),
    quick_seeds=3,
)

PAPER = Paper(
    slug="zephyr",
    title="Zephyr: Direct Distillation of LM Alignment",
    authors="Lewis Tunstall, Edward Beeching, Nathan Lambert, Nazneen Rajani, Kashif Rasul, "
    "Younes Belkada, Shengyi Huang, Leandro von Werra, Clémentine Fourrier, Nathan Habib, "
    "Nathan Sarrazin, Omar Sanseviero, Alexander M. Rush, Thomas Wolf",
    year=2023,
    arxiv="2310.16944",
    experiments=(EXPERIMENT,),
    sample=sample_command,
)
