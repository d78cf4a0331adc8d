"""Training the sweep's models: the one-epoch stream of Python-source bytes, the fixed
validation sample, and each size's Adam step with eq. D.1's learning rate under warmup and
cosine decay (App. D.1), evaluated at log-spaced steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core.errors import UsageError
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit
from sutskever30.data.python_source import VOCAB_SIZE, load_python_source
from sutskever30.nn.gpt import GPT
from sutskever30.nn.lm import warmup_cosine
from sutskever30.papers.scaling_laws.model import kaplan_lr

if TYPE_CHECKING:
    from sutskever30.papers.scaling_laws.experiment import SweepConfig


# -- data --------------------------------------------------------------------------------------
def load_corpus(cfg: SweepConfig) -> dict[str, torch.Tensor]:
    """The training bytes and the fixed validation sample (val_seqs, context + 1), evenly
    spaced over the held-out files. Refuses a budget that would repeat a training token."""
    data = load_python_source()
    train = torch.from_numpy(data["train"])
    n_seq = (len(train) - 1) // cfg.context
    if cfg.steps * cfg.batch_size > n_seq:
        raise UsageError(
            f"{cfg.steps} steps of {cfg.batch_size} sequences need "
            f"{cfg.steps * cfg.tokens_per_step:,} tokens; the training split has "
            f"{n_seq * cfg.context:,}: lower steps or batch_size (one epoch at most)"
        )
    val = torch.from_numpy(data["val"])
    starts = torch.linspace(0, len(val) - cfg.context - 1, cfg.val_seqs).long()
    offsets = torch.arange(cfg.context + 1)
    return {"train": train, "n_seq": n_seq, "val": val[starts[:, None] + offsets].long()}


def train_batch(
    corpus: dict[str, torch.Tensor], cfg: SweepConfig, step: int, seed: int
) -> torch.Tensor:
    """Batch ``step``: (B, context + 1) tokens of sequences never seen before in this run,
    the same for every size."""
    idx = batch_indices(corpus["n_seq"], cfg.batch_size, step, seed)
    starts = idx * cfg.context
    return corpus["train"][starts[:, None] + torch.arange(cfg.context + 1)].long()


def sequence_losses(model: GPT, chunks: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats/token) of each sequence (S,)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(chunks[:, :-1])  # (S, T, V)
        loss = F.cross_entropy(logits.transpose(1, 2), chunks[:, 1:], reduction="none")
    model.train(was_training)
    return loss.mean(1)  # (S,)


# -- training ----------------------------------------------------------------------------------
def trainer(run: Run, cfg: SweepConfig, n_layer: int, corpus: dict[str, torch.Tensor]):
    """The model of depth ``n_layer``, its Adam, schedule and training step (also timed by
    ``s30 bench``). Every size starts from the same seed and sees the same batches."""
    gpt_cfg = cfg.gpt(n_layer)
    torch.manual_seed(run.seed)
    model = GPT(gpt_cfg).to(run.device)
    lr = cfg.lr_scale * kaplan_lr(gpt_cfg.non_embedding_params)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: warmup_cosine(s, steps=cfg.steps, warmup=cfg.warmup),  # cosine to 0
    )
    evals = set(cfg.eval_steps())
    val = corpus["val"].to(run.device)

    def step(i: int) -> dict[str, float]:
        chunk = train_batch(corpus, cfg, i, run.seed).to(run.device)
        logits = model(chunk[:, :-1])  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        out = {"loss": loss.item(), "lr": opt.param_groups[0]["lr"]}
        if i + 1 in evals:
            out["val_loss"] = float(sequence_losses(model, val).mean())
        return out

    return gpt_cfg, model, opt, sched, step


def train_size(run: Run, cfg: SweepConfig, n_layer: int, corpus: dict) -> dict:
    gpt_cfg, model, opt, sched, step = trainer(run, cfg, n_layer, corpus)
    history = fit(
        run,
        f"L{n_layer}",
        model=model,
        optimizer=opt,
        scheduler=sched,
        steps=cfg.steps,
        step=step,
        checkpoint_every=cfg.checkpoint_every,
        log_every=1,
    )
    evals = [h for h in history if "val_loss" in h]
    tokens = np.array([(h["step"] + 1) * cfg.tokens_per_step for h in evals], dtype=float)
    window = max(1, round(cfg.final_window * cfg.steps))
    n = gpt_cfg.non_embedding_params
    return {
        "n_layer": n_layer,
        "d_model": gpt_cfg.d_model,
        "N": n,
        "N_total": model.num_params(),
        "lr": cfg.lr_scale * kaplan_lr(n),
        "flops_per_token": gpt_cfg.flops_per_token(),
        "tokens": tokens,
        "compute": tokens * gpt_cfg.flops_per_token(),
        "val_curve": np.array([h["val_loss"] for h in evals]),
        "seq_losses": sequence_losses(model, corpus["val"].to(run.device)).cpu().numpy(),
        "final_train_loss": float(np.mean([h["loss"] for h in history[-window:]])),
    }
