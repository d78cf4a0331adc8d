"""Language Models are Unsupervised Multitask Learners (GPT-2).

Alec Radford, Jeffrey Wu, Rewon Child, David Luan, Dario Amodei, Ilya Sutskever, 2019
(OpenAI technical report, https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf;
the samples: the blog post "Better Language Models and Their Implications", Feb. 2019).

The idea: a decoder-only Transformer trained only to predict the next token,

    L = −(1/T) Σ_t log p_θ(x_{t+1} | x_{≤t}),

models text well enough that drawing from its own predictions writes coherent new text;
bigger models (117M → 1542M parameters, Table 2) reach lower held-out loss (Fig. 4) and
write better samples. The decoder itself (pre-norm blocks, learned positions, the head tied
to the token embedding, GPT-2's initialization) is the shared :mod:`sutskever30.nn.gpt`;
what this file adds is the paper's experiment at character level: the training recipe,
and decoding a continuation of a prompt with the samplers of :mod:`sutskever30.nn.sampling`:

    greedy           x_{t+1} = argmax_v p(v | x_{≤t})
    temperature τ    p_τ(v) ∝ exp(z_v / τ)                          (z the logits)
    top-k            p_τ restricted to the k likeliest tokens, renormalized (GPT-2: k = 40)
    top-p (nucleus)  p_τ restricted to the smallest set V_p with Σ_{v∈V_p} p(v) ≥ p
    best-of-n        n drawn continuations y⁽ⁱ⁾, keep argmax_i Σ_t log p(y⁽ⁱ⁾_t | ·)

Deviations from the paper:
- Characters, not byte-level BPE (vocabulary 65 instead of 50,257), on tiny-shakespeare
  (1.1 MB) instead of WebText (40 GB); the models are 4-layer, width 64-192, context 64
  (GPT-2 small: 12 layers, width 768, context 1024) so that each trains in a CPU minute.
- The training recipe is nanoGPT's (AdamW, linear warmup then cosine decay, weight decay
  on matrices only, gradient clipping at 1) with the learning rate chosen on a tuning split;
  GPT-2 only says its learning rate was tuned for the best perplexity on 5% of WebText.
- Best-of-n ranks by the model's own log-probability of the drawn characters; the blog's
  unicorn text was picked by a person from 10 tries.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sutskever30.nn.gpt import GPT
from sutskever30.nn.lm import windows
from sutskever30.nn.sampling import best_of

# The prompt of GPT-2's most quoted sample (the blog post, "the model's 10th try").
UNICORN_PROMPT = (
    "In a shocking finding, scientist discovered a herd of unicorns living in a remote, "
    "previously unexplored valley, in the Andes Mountains. Even more surprising to the "
    "researchers was the fact that the unicorns spoke perfect English."
)


class CharVocab:
    """The characters of a text, sorted; a character's id is its index."""

    def __init__(self, chars: str) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary characters must be distinct")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def of(cls, text: str) -> CharVocab:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def missing(self, text: str) -> str:
        """The characters of ``text`` outside the vocabulary, sorted (empty if none)."""
        return "".join(sorted({c for c in text if c not in self.index}))

    def encode(self, text: str) -> torch.Tensor:
        """text → int64 ids (len(text),)."""
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        return "".join(self.chars[int(i)] for i in ids)


# -- training -------------------------------------------------------------------------------


def shifted_windows(data: torch.Tensor, starts: torch.Tensor, context: int):
    """Inputs and next-character targets of the windows starting at ``starts`` (B,): one
    gather of ``context`` + 1 characters from the int64 text (N,). Returns x, y, each
    (B, context), y = x shifted by one."""
    chunk = windows(data, starts, context + 1)  # (B, context + 1)
    return chunk[:, :-1], chunk[:, 1:]


def lm_loss(model: GPT, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats per character) of x (B, T) against y (B, T)."""
    logits = model(x)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


@torch.no_grad()
def split_loss(model: GPT, data: torch.Tensor, *, batch: int = 256) -> float:
    """Mean next-character loss (nats/char) over a whole split: the text cut into
    consecutive non-overlapping windows of the model's context, every position scored (the
    first character of a window is predicted from no context, as in training)."""
    n = model.cfg.context
    count = (len(data) - 1) // n
    x = data[: count * n].view(count, n)  # (W, n)
    y = data[1 : count * n + 1].view(count, n)
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, count, batch):
        logits = model(x[i : i + batch])  # (b, n, V)
        total += F.cross_entropy(logits.flatten(0, 1), y[i : i + batch].flatten(), reduction="sum")
    model.train(was_training)
    return float(total) / (count * n)


# -- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampler:
    """One decoding rule: temperature 0 is greedy; ``n`` > 1 is best-of-n of draws with
    the other settings."""

    name: str
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    n: int = 1

    def __post_init__(self) -> None:
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1 or self.n < 1:
            raise ValueError(f"sampler {self.name!r}: need τ ≥ 0, k ≥ 0, 0 < p ≤ 1, n ≥ 1")


# The samplers the report compares (the issue's list); GPT-2's own samples used top-k 40.
SAMPLERS = (
    Sampler("greedy", temperature=0.0),
    Sampler("temperature 0.8", temperature=0.8),
    Sampler("top-k 10", top_k=10),
    Sampler("top-p 0.9", top_p=0.9),
    Sampler("best-of-4", n=4),
)


def continue_text(
    model: GPT,
    prompt: torch.Tensor,
    length: int,
    sampler: Sampler,
    *,
    generator: torch.Generator | None = None,
) -> tuple[list[int], float]:
    """Continue ``prompt`` (T,) token ids by ``length`` tokens with ``sampler``: its n
    candidates are drawn side by side (one batch row each, through the KV cache of
    :meth:`GPT.generate`) and best-of-n keeps the one with the highest total log-probability
    under the model. Returns the kept tokens and that log-probability (nats)."""
    rows = prompt[None].expand(sampler.n, -1)  # (n, T)
    tokens, logp = model.generate(
        rows,
        length,
        temperature=sampler.temperature,
        top_k=sampler.top_k,
        top_p=sampler.top_p,
        generator=generator,
    )  # (n, length) each
    return best_of(tokens.tolist(), logp.sum(1).tolist())
