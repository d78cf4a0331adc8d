"""The one training-loop helper: steps, evaluation, checkpoints, resume, divergence.

A model is trained by :func:`fit` under a ``key`` (e.g. ``"plain56"``). Batches must be a
deterministic function of the step index (use :func:`batch_indices` and
:func:`step_generator`), so that a run killed and resumed from its last checkpoint computes
exactly what an uninterrupted run computes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from sutskever30.core import distributed
from sutskever30.core.errors import CheckpointError, DivergenceError
from sutskever30.core.run import Run

StepFn = Callable[[int], dict[str, float]]
EvalFn = Callable[[int], dict[str, float]]


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded from (seed, step, stream): per-step randomness (augmentation,
    sampling) that does not depend on how many steps ran in this process."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7919 + stream)


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of the ``step``-th minibatch: epochs are fresh permutations of ``range(n)``
    seeded by (seed, epoch); the last partial batch of an epoch is dropped. Under torchrun
    each rank gets its contiguous slice of this global batch."""
    per_epoch = max(n // batch_size, 1)
    epoch, offset = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return distributed.shard(perm[offset * batch_size : (offset + 1) * batch_size])


def fit(
    run: Run,
    key: str,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    steps: int,
    step: StepFn,
    scheduler: Any = None,
    evaluate: EvalFn | None = None,
    eval_every: int = 0,
    checkpoint_every: int = 0,
    log_every: int = 10,
) -> list[dict[str, float]]:
    """Train ``model`` for ``steps`` calls of ``step(i)``; return the logged history.

    ``step(i)`` runs forward, backward and ``optimizer.step()`` on batch ``i`` and returns
    metrics including ``loss``. ``evaluate(i)`` runs every ``eval_every`` steps and after the
    last. A non-finite loss stops training with DivergenceError, keeping the last good
    checkpoint. With a checkpoint present under ``key`` (``--resume``), training continues
    from it; a finished key returns its stored history at once. Under torchrun the
    gradients are averaged over the ranks before each optimizer step
    (:mod:`sutskever30.core.distributed`).
    """
    history: list[dict[str, float]] = []
    start = 0
    state = run.load(key)
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            history = list(state["history"])
            start = int(state["step"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            what = f"no {err}" if isinstance(err, KeyError) else str(err).strip().splitlines()[0]
            raise CheckpointError(
                f"{run.checkpoint_path(key)} is not a checkpoint of {key!r} in this run "
                f"({what}); delete it or start without --resume"
            ) from None
        run.truncate_metrics(key, start - 1)
        if state.get("done"):
            return history
        run.info(f"{key}: resuming at step {start}")
    elif run.resumed:
        run.info(f"{key}: no checkpoint of it in this run yet; training from step 0")

    def save(done: bool, at: int) -> None:
        run.flush_metrics()  # the log holds every record up to the checkpoint
        run.save(
            key,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else {},
                "rng": torch.get_rng_state(),
                "history": history,
                "step": at,
                "done": done,
            },
        )

    run.nets_started += 1
    of = f"/{run.nets_total}" if run.nets_total else ""
    bar = run.progress(steps, f"net {run.nets_started}{of} {key}", initial=start)
    running: float | None = None
    sync = distributed.data_parallel(model, optimizer)
    model.train()
    try:
        for i in range(start, steps):
            if not model.training:  # after evaluate(), or a step that evaluates on its own
                model.train()
            metrics = step(i)
            loss = float(metrics["loss"])
            if not math.isfinite(loss):
                where = run.checkpoint_path(key)
                kept = (
                    f"last good checkpoint kept at {where}"
                    if where.exists()
                    else ("no checkpoint was saved before it")
                )
                raise DivergenceError(f"{key}: loss became {loss} at step {i}; {kept}")
            if scheduler is not None:
                scheduler.step()
            running = loss if running is None else 0.9 * running + 0.1 * loss
            last = i + 1 == steps
            record: dict[str, float] = {}
            if log_every and (i % log_every == 0 or last):
                record = {"step": i, **{k: float(v) for k, v in metrics.items()}}
            if evaluate is not None and ((eval_every and (i + 1) % eval_every == 0) or last):
                model.eval()
                with torch.no_grad():
                    record = {"step": i, **record, **evaluate(i)}
            if record:
                history.append(record)
                run.log({"key": key, **record})
            bar.set_postfix(loss=f"{running:.4f}", refresh=False)
            bar.update(1)
            if checkpoint_every and (i + 1) % checkpoint_every == 0 and not last:
                save(False, i + 1)
    finally:
        bar.close()
        run.flush_metrics()
        if sync is not None:
            sync.remove()
    save(True, steps)
    return history
