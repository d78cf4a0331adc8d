"""Multi-token prediction: a shared trunk with n independent output heads.

Gloeckle, Youbi Idrissi, Rozière, Lopez-Paz, Synnaeve 2024, "Better & Faster Large Language
Models via Multi-token Prediction", ICML 2024, arXiv:2404.19737.

Idea: at every position t, predict the next n tokens x_{t+1} … x_{t+n} at once, from one
shared representation and n independent heads. Training sums n cross-entropies; at
inference the extra heads draft tokens that the next-token head verifies, so decoding
takes several tokens per forward pass and still returns the next-token model's output.

    z_t = f_s(x_{≤t})                                    shared trunk (Sec. 2)
    P(x_{t+i} | x_{≤t}) = softmax(f_u(f_{h_i}(z_t)))      head i = one Transformer block,
                                                          f_u the shared unembedding
    L_n = − Σ_t Σ_{i=1..n} log P(x_{t+i} | x_{≤t})        (Eq. 2)

Architecture as the paper's released models: a network of ``n_layer`` Transformer blocks in
total, of which the first n_layer − n form the trunk f_s and each of the n heads is one
block, so models with different n have the same number of parameters; n = 1 is the plain
next-token GPT of that depth. Built from the shared decoder :mod:`sutskever30.nn.gpt`
(embedding, blocks, final norm + tied unembedding, GPT-2 initialization).

**Memory-efficient backward** (Sec. 2, Fig. 2). Computing all n heads and then backpropagating
the summed loss keeps n sets of head activations and n logit tensors (B, T, V) alive at
once. Instead: forward the trunk once, detach its output z, and for each head in turn run
forward and backward to z (accumulating ∂L/∂z), freeing that head's graph before the next;
finally backpropagate the accumulated ∂L/∂z through the trunk. The gradients are those of
L_n (linearity of the gradient); the peak holds one head instead of n:
:func:`sequential_backward` vs :func:`naive_backward`.

**Self-speculative decoding** (Sec. 3.2; blockwise parallel decoding, Stern et al. 2018).
Greedy decoding of head 1, sped up: at position t, head 1's argmax is the next token and
heads 2..n draft the n − 1 after it. One forward of the trunk and the heads over these n
tokens then both verifies and drafts: the drafts are accepted up to the first one that
differs from head 1's argmax at the position before it; head 1's argmax after the last
accepted token is the next exact token, and heads 2..n at that same position give the next
drafts. Every emitted token is head 1's greedy choice given the emitted prefix, so the
output equals plain greedy decoding (:func:`greedy_decode`); the KV caches are truncated
after rejected drafts.

Deviations from the paper:
- Sizes: byte-level models of ~1M parameters on the Python standard library's source, not
  0.3B–13B on 200B–1T tokens of code; greedy decoding at batch size 1 on a CPU.
- GPT-2 blocks (pre-LayerNorm, learned positions, GELU MLP, tied unembedding) instead of
  the paper's Llama-2 blocks (RMSNorm, rotary positions, SwiGLU).
- Decoding runs the n head blocks as one batched block (:class:`StackedHeads`, the n blocks'
  weights stacked along a leading axis; tested equal to the n :class:`Block` modules). The
  paper's heads are also computed side by side; on a CPU at batch size 1 a block's cost is
  mostly per-operation overhead, which n separate blocks would pay n times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.nn.gpt import GPT, Block, GPTConfig, KVCache


@dataclass(frozen=True)
class MTPConfig:
    vocab_size: int = 256
    context: int = 256
    n_layer: int = 8  # Transformer blocks in total: n_layer − n_future in the trunk, one per head
    n_head: int = 4
    d_model: int = 128
    n_future: int = 4  # n: tokens predicted at each position (1: plain next-token prediction)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.n_future < 1:
            raise ValueError(f"n_future must be ≥ 1, got {self.n_future}")
        if self.n_layer <= self.n_future:
            raise ValueError(
                f"n_layer {self.n_layer} must exceed n_future {self.n_future}: the trunk needs "
                "at least one block"
            )
        _ = self.gpt  # validates the GPT fields

    @property
    def gpt(self) -> GPTConfig:
        return GPTConfig(
            vocab_size=self.vocab_size,
            context=self.context,
            n_layer=self.n_layer,
            n_head=self.n_head,
            d_model=self.d_model,
            dropout=self.dropout,
        )

    @property
    def n_trunk(self) -> int:
        return self.n_layer - self.n_future


class MultiTokenGPT(nn.Module):
    """f_s (embedding + the first n_layer − n blocks), n heads f_{h_i} (one block each) and
    the shared f_u (final LayerNorm + unembedding tied to the token embedding).

    The blocks are those of a :class:`~sutskever30.nn.gpt.GPT` of depth ``n_layer`` (same
    initialization, and each head keeps its own layer index in a :class:`KVCache`): with
    n = 1 this is exactly that GPT."""

    def __init__(self, cfg: MTPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        gpt = GPT(cfg.gpt)
        self.embed = gpt.embed
        self.trunk = nn.ModuleList(gpt.blocks[: cfg.n_trunk])
        self.heads = nn.ModuleList(gpt.blocks[cfg.n_trunk :])
        self.unembed = gpt.head  # f_u, weight tied to embed.wte

    def trunk_forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """z = f_s(x): idx (B, T) → (B, T, d). With a cache, idx continues the cached tokens."""
        past = 0 if cache is None else cache.length
        if past + idx.shape[1] > self.cfg.context:
            raise ValueError(f"{past + idx.shape[1]} tokens exceed the context {self.cfg.context}")
        z = self.embed(idx, past)
        for block in self.trunk:
            z = block(z, cache)
        return z

    def head_logits(self, i: int, z: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Head i (0-based: i = 0 predicts x_{t+1}): f_u(f_{h_i}(z)), (B, T, d) → (B, T, V)."""
        return self.unembed(self.heads[i](z, cache))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) → logits of every head (n, B, T, V); head i predicts x_{t+i+1}."""
        z = self.trunk_forward(idx)
        return torch.stack([self.head_logits(i, z) for i in range(self.cfg.n_future)])


# -- training: the loss and its two backward passes -------------------------------------------


def split_window(window: torch.Tensor, n: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A window (B, T + n) of consecutive tokens → the input x (B, T) and head i's targets
    x_{t+i+1} (B, T) for i = 0 … n − 1."""
    t = window.shape[1] - n
    if t < 1:
        raise ValueError(f"a window of {window.shape[1]} tokens is too short for n = {n}")
    return window[:, :t], [window[:, i + 1 : i + 1 + t] for i in range(n)]


def head_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per token) of one head: logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def naive_backward(model: MultiTokenGPT, window: torch.Tensor) -> list[float]:
    """Backpropagate L_n = Σ_i loss_i from one graph holding all n heads; the losses."""
    x, targets = split_window(window, model.cfg.n_future)
    z = model.trunk_forward(x)
    losses = [head_loss(model.head_logits(i, z), y) for i, y in enumerate(targets)]
    torch.stack(losses).sum().backward()
    return [loss.item() for loss in losses]


def sequential_backward(model: MultiTokenGPT, window: torch.Tensor) -> list[float]:
    """The paper's memory-efficient order (Fig. 2): the same gradients as
    :func:`naive_backward`, with one head's graph alive at a time; the losses."""
    x, targets = split_window(window, model.cfg.n_future)
    z = model.trunk_forward(x)  # (B, T, d), its graph kept for the last backward
    z_cut = z.detach().requires_grad_()  # the heads' graphs start here and end at ∂L/∂z
    losses = []
    for i, y in enumerate(targets):
        loss = head_loss(model.head_logits(i, z_cut), y)
        loss.backward()  # head i's parameters, f_u's, and z_cut.grad += ∂loss_i/∂z; graph freed
        losses.append(loss.item())
    z.backward(z_cut.grad)  # the trunk, once, with Σ_i ∂loss_i/∂z
    return losses


# -- inference: greedy decoding and self-speculative decoding ---------------------------------


class StackedHeads:
    """The n head blocks as one batched block: each weight of the n :class:`Block` modules
    stacked along a leading axis of size n, so that one call runs every head on the same
    trunk output. Computes what the n blocks compute (eval mode), with its own KV cache
    (n, n_head, context, d_head), allocated once and written in place (rejected positions
    are forgotten by moving ``length`` back). A snapshot: build it after training."""

    def __init__(self, heads: nn.ModuleList, context: int) -> None:
        blocks: list[Block] = list(heads)

        def stack(get, *, linear: bool = False) -> torch.Tensor:
            w = torch.stack([get(b).detach() for b in blocks])
            return w.transpose(1, 2).contiguous() if linear else w[:, None]  # (n, in, out)

        self.n, self.n_head = len(blocks), blocks[0].attn.n_head
        self.eps = (blocks[0].ln_1.eps, blocks[0].ln_2.eps)
        self.g1, self.b1 = stack(lambda b: b.ln_1.weight), stack(lambda b: b.ln_1.bias)
        self.w_qkv = stack(lambda b: b.attn.qkv.weight, linear=True)  # (n, d, 3d)
        self.b_qkv = stack(lambda b: b.attn.qkv.bias)  # (n, 1, 3d)
        self.w_o, self.b_o = (
            stack(lambda b: b.attn.proj.weight, linear=True),
            stack(lambda b: b.attn.proj.bias),
        )
        self.g2, self.b2 = stack(lambda b: b.ln_2.weight), stack(lambda b: b.ln_2.bias)
        self.w_fc, self.b_fc = (
            stack(lambda b: b.mlp[0].weight, linear=True),
            stack(lambda b: b.mlp[0].bias),
        )
        self.w_out, self.b_out = (
            stack(lambda b: b.mlp[2].weight, linear=True),
            stack(lambda b: b.mlp[2].bias),
        )
        d = self.w_qkv.shape[1]
        shape = (self.n, self.n_head, context, d // self.n_head)
        self.keys = self.w_qkv.new_empty(shape)  # (n, H, context, d_head)
        self.values = self.w_qkv.new_empty(shape)
        self.length = 0  # positions cached

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on (rejected drafts)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} positions to {length}")
        self.length = length

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """z (T, d): the trunk's output at T new positions of one sequence → every head's
        output (n, T, d), the heads' caches extended by those positions."""
        t, d = z.shape
        x = z.expand(self.n, t, d)  # (n, T, d)
        h = F.layer_norm(x, (d,), eps=self.eps[0]) * self.g1 + self.b1
        qkv = torch.baddbmm(self.b_qkv, h, self.w_qkv)  # (n, T, 3d)
        q, k, v = qkv.view(self.n, t, 3, self.n_head, d // self.n_head).unbind(2)
        q, k, v = (u.transpose(1, 2) for u in (q, k, v))  # (n, H, T, d_head)
        past = self.length
        if past + t > self.keys.shape[2]:
            raise ValueError(f"{past + t} positions exceed the context {self.keys.shape[2]}")
        self.keys[:, :, past : past + t] = k
        self.values[:, :, past : past + t] = v
        self.length = past + t
        k, v = self.keys[:, :, : past + t], self.values[:, :, : past + t]
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # new position i (at past + i) sees positions ≤ past + i
            mask = torch.ones(t, past + t, dtype=torch.bool, device=z.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + torch.baddbmm(self.b_o, y.transpose(1, 2).reshape(self.n, t, d), self.w_o)
        h = F.layer_norm(x, (d,), eps=self.eps[1]) * self.g2 + self.b2
        h = F.gelu(torch.baddbmm(self.b_fc, h, self.w_fc), approximate="tanh")
        return x + torch.baddbmm(self.b_out, h, self.w_out)


def _check_length(model: MultiTokenGPT, prompt: torch.Tensor, steps: int) -> None:
    if prompt.ndim != 2 or prompt.shape[0] != 1 or prompt.shape[1] < 1 or steps < 1:
        raise ValueError("prompt must be (1, P ≥ 1) token ids and steps ≥ 1")
    need = prompt.shape[1] + steps + model.cfg.n_future
    if need > model.cfg.context:
        raise ValueError(
            f"prompt {prompt.shape[1]} + steps {steps} + n {model.cfg.n_future} tokens exceed "
            f"the context {model.cfg.context}"
        )


@torch.no_grad()
def greedy_decode(model: MultiTokenGPT, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    """Plain greedy decoding with head 1 only, one token per forward through the KV cache:
    prompt (1, P) → the ``steps`` next tokens (steps,)."""
    _check_length(model, prompt, steps)
    cache = KVCache(model.cfg.n_layer)
    head = model.heads[0]
    logits = model.unembed(head(model.trunk_forward(prompt, cache), cache)[:, -1:])
    out = [logits[:, -1].argmax(-1, keepdim=True)]  # (1, 1) each
    while len(out) < steps:
        logits = model.unembed(head(model.trunk_forward(out[-1], cache), cache))
        out.append(logits[:, -1].argmax(-1, keepdim=True))
    return torch.cat(out, 1)[0]


@dataclass(frozen=True)
class SpeculativeResult:
    tokens: torch.Tensor  # (steps,) the decoded tokens
    forwards: int  # verification forwards after the prompt's
    accepted: list[int]  # tokens emitted by each forward (1 + accepted drafts), 1 … n

    @property
    def tokens_per_forward(self) -> float:
        return sum(self.accepted) / len(self.accepted)


@torch.no_grad()
def self_speculative_decode(
    model: MultiTokenGPT, prompt: torch.Tensor, steps: int
) -> SpeculativeResult:
    """Greedy decoding of head 1 with heads 2..n as drafters (Sec. 3.2): prompt (1, P) →
    the same ``steps`` tokens as :func:`greedy_decode`, in fewer forward passes."""
    _check_length(model, prompt, steps)
    cache = KVCache(model.cfg.n_layer)  # the trunk's layers; the heads keep their own cache
    heads = StackedHeads(model.heads, model.cfg.context)
    z = model.trunk_forward(prompt, cache)[0]  # (P, d)
    # guess[0]: head 1's next token (exact); guess[1:]: the drafts of heads 2..n
    guess = model.unembed(heads(z)[:, -1]).argmax(-1)  # (n,)
    out, accepted = [], []
    emitted = 0
    while emitted < steps:
        past = cache.length
        z = model.trunk_forward(guess[None], cache)[0]  # (n, d): one forward over n tokens
        pred = model.unembed(heads(z)).argmax(-1)  # (n heads, n positions)
        # pred[0, j] is head 1's token after guess[:j + 1]; draft j + 1 stands if it equals it
        m = int((guess[1:] == pred[0, :-1]).cumprod(0).sum())  # accepted drafts, 0 … n − 1
        out.append(guess[: m + 1])
        accepted.append(m + 1)
        emitted += m + 1
        cache.truncate(past + m + 1)
        heads.truncate(past + m + 1)
        guess = pred[:, m]  # head 1 after the last accepted token, and the new drafts
    tokens = torch.cat(out)[:steps]
    return SpeculativeResult(tokens=tokens, forwards=len(accepted), accepted=accepted)
