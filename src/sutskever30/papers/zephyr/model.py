"""Zephyr: direct distillation of LM alignment.

Tunstall, Beeching, Lambert, Rajani, Rasul, Belkada, Huang, von Werra, Fourrier, Habib,
Sarrazin, Sanseviero, Rush, Wolf 2023, "Zephyr: Direct Distillation of LM Alignment",
arXiv:2310.16944. The idea: align a small student to user intent with no human labels, in
three steps that each distil from larger models (§3):

1. **dSFT** (distilled supervised fine-tuning): fine-tune the student on a teacher's
   responses to instructions, cross-entropy on the response tokens (eq. 1:
   π_dSFT = max_π E_{(x, y)} log π(y | x)).
2. **AIF** (AI feedback): for each prompt x, several models' completions (y¹ … y⁴) are
   scored by a judge (GPT-4 in UltraFeedback); the highest-scoring one is y_w and one of the
   remaining three, drawn at random, is y_l (§3, "binarization").
3. **dDPO** (distilled direct preference optimization, Rafailov et al. 2023, eq. 2 of
   Zephyr), from π_dSFT with π_dSFT as the frozen reference:

       L(θ) = −E log σ(β [log π_θ(y_w|x)/π_dSFT(y_w|x) − log π_θ(y_l|x)/π_dSFT(y_l|x)])

   with log π(y|x) = Σ_t log π(y_t | x, y_<t), summed over the response tokens only, and
   β = 0.1 (§4). r(x, y) = β log π_θ(y|x)/π_ref(y|x) is the implicit reward; its margin
   r(x, y_w) − r(x, y_l) is logged.

The student here is initialised from the teacher as DistilBERT (Sanh et al. 2019,
arXiv:1910.01108, §3) initialises its student: the teacher's token embedding (tied head),
final norm and a subset of its layers. That model is a "base" model: with most layers gone
it does not answer in the chat format (nor write English) until dSFT.

Deviations from the paper: a 135M-parameter teacher (SmolLM2-135M-Instruct) and a
6-of-30-layer student (its first and last three layers, not DistilBERT's every other one:
the 6-layer choice with the lowest loss before training) instead of GPT-3.5/GPT-4 data and
Mistral-7B; the judge is VADER's sentiment score (a lexicon model, Hutto & Gilbert 2014)
standing in for GPT-4's UltraFeedback ratings, so "preferred" means "more positive", not
"more helpful"; the four completions of a prompt are all the teacher's (sampled), not four
different models'; a pair whose best score ties with the drawn rejected one is dropped (a
tie carries no preference; UltraFeedback's averaged ratings rarely tie). The token
embedding (tied to the head) is not trained (it is a third of the student's parameters and
of its optimizer's work); Zephyr trains every weight.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sutskever30.nn.llama import Llama, left_pad, log_probs

BETA = 0.1  # Zephyr §4: β = 0.1 (the published recipe later used 0.01)


def student_from_teacher(teacher: Llama, layers: tuple[int, ...]) -> Llama:
    """A copy of the teacher's embedding, final norm and ``layers`` (in order) as a smaller
    Llama: DistilBERT's initialization (it kept every other layer)."""
    if not layers or sorted(set(layers)) != list(layers) or layers[-1] >= teacher.cfg.n_layer:
        raise ValueError(
            f"layers must be increasing indices of the teacher's {teacher.cfg.n_layer} layers, "
            f"got {layers}"
        )
    student = Llama(dataclasses.replace(teacher.cfg, n_layer=len(layers)))
    student.embed.load_state_dict(teacher.embed.state_dict())
    student.norm.load_state_dict(teacher.norm.state_dict())
    for i, j in enumerate(layers):
        block = copy.deepcopy(teacher.blocks[j])
        block.attn.layer = i  # its slot in the student's KV cache
        student.blocks[i] = block
    return student


@dataclass
class Batch:
    """Prompt + response token rows, left-padded: ids and mask (B, T), and ``response``
    (B, T), True at the response's tokens (what is trained and scored)."""

    ids: torch.Tensor
    mask: torch.Tensor
    response: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(self.ids.to(device), self.mask.to(device), self.response.to(device))


def pack(prompts: list[list[int]], responses: list[list[int]], pad_id: int) -> Batch:
    """One left-padded batch of prompt + response rows."""
    if len(prompts) != len(responses) or any(not r for r in responses):
        raise ValueError("need one non-empty response per prompt")
    ids, mask = left_pad([p + r for p, r in zip(prompts, responses, strict=True)], pad_id)
    response = torch.zeros_like(mask)
    for i, r in enumerate(responses):
        response[i, ids.shape[1] - len(r) :] = True
    return Batch(ids, mask, response)


def response_log_prob(model: Llama, batch: Batch) -> torch.Tensor:
    """log π(y | x) = Σ_t log π(y_t | x, y_<t) over each row's response tokens (B,),
    summed, not averaged: the DPO objective's sequence log-probability."""
    return log_probs(model, batch.ids, batch.mask, where=batch.response).sum(-1)


def sft_loss(model: Llama, batch: Batch) -> torch.Tensor:
    """dSFT: the mean cross-entropy of the response tokens (prompt tokens are context only)."""
    lp = log_probs(model, batch.ids, batch.mask, where=batch.response)
    return -lp.sum() / batch.response[:, 1:].sum()


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float = BETA,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """−log σ(β [(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))]) averaged
    over the pairs, from sequence log-probabilities (B,) each. Returns the loss and the
    implicit rewards β log π_θ/π_ref of the chosen and rejected responses (B,), detached."""
    chosen = beta * (policy_chosen - reference_chosen)
    rejected = beta * (policy_rejected - reference_rejected)
    loss = F.softplus(-(chosen - rejected)).mean()  # −log σ(z) = log(1 + e^{−z})
    return loss, chosen.detach(), rejected.detach()


def binarize(scores: list[float], rng: random.Random) -> tuple[int, int] | None:
    """Zephyr's binarization of UltraFeedback: the completion with the highest judge score
    is chosen (the first of equal best), one of the others drawn at random is rejected.
    None when the drawn one scores as high as the chosen one (no preference)."""
    if len(scores) < 2:
        raise ValueError("need at least two scored completions")
    best = max(range(len(scores)), key=lambda i: scores[i])
    rejected = rng.choice([i for i in range(len(scores)) if i != best])
    if scores[rejected] >= scores[best]:
        return None
    return best, rejected


class SentimentJudge:
    """The AI-feedback judge: VADER's compound sentiment score in [−1, 1] (Hutto & Gilbert
    2014), a real lexicon-and-rules model, standing in for GPT-4's UltraFeedback rating.
    Higher is preferred."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()

    def __call__(self, text: str) -> float:
        return float(self._vader.polarity_scores(text)["compound"])


def win_rate(scores: list[float], baseline: list[float]) -> float:
    """The share of prompts where a model's response outscores the baseline's (a tie counts
    half), as MT-Bench/AlpacaEval pairwise win rates are counted."""
    if len(scores) != len(baseline) or not scores:
        raise ValueError("need one baseline score per score")
    wins = sum(
        1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(scores, baseline, strict=True)
    )
    return wins / len(scores)
