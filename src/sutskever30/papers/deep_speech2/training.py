"""Training and scoring the quick task's models: data for one seed, the training step,
the learning-rate selection on validation, and greedy/beam evaluation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core import distributed
from sutskever30.core.errors import DivergenceError
from sutskever30.core.run import Run
from sutskever30.core.train import fit
from sutskever30.data.fsdd import load_fsdd
from sutskever30.papers.deep_speech2.ctc import error_rates, greedy_decode, prefix_beam_decode
from sutskever30.papers.deep_speech2.model import DeepSpeech2
from sutskever30.papers.deep_speech2.task import (
    ALPHABET,
    DIGIT_WORDS,
    Featurized,
    decode,
    epoch_batches,
    featurize,
    speaker_split,
    training_pool,
)

if TYPE_CHECKING:
    from sutskever30.papers.deep_speech2.experiment import DigitsConfig

# name: (batch_norm, sortagrad)
VARIANTS = {"ds2": (True, True), "no_bn": (False, True), "no_sortagrad": (True, False)}


@dataclass
class Data:
    speaker: str  # the held-out speaker
    train: dict[int, Featurized]  # by number of training recordings, ascending
    val: Featurized
    test_seen: Featurized  # official test recordings of the training speakers
    test_unseen: Featurized  # the held-out speaker


def load_data(run: Run, cfg: DigitsConfig) -> Data:
    recs = load_fsdd()
    held = cfg.held_out_speaker if cfg.held_out_speaker >= 0 else run.seed % len(recs.speakers)
    split = speaker_split(recs, held)

    def make(pool: np.ndarray, n: int, *stream: int) -> Featurized:
        rng = np.random.default_rng([run.seed, *stream])
        return featurize(recs, pool, n, max_digits=cfg.max_digits, rng=rng, cfg=cfg.model)

    pools = [training_pool(recs, split.train, f, run.seed) for f in sorted(cfg.fractions)]
    return Data(
        speaker=recs.speakers[held],
        train={len(p): make(p, cfg.train_utterances, 0, len(p)) for p in pools},
        val=make(split.val, cfg.val_utterances, 1),
        test_seen=make(split.test_seen, cfg.test_utterances, 2),
        test_unseen=make(split.test_unseen, cfg.test_utterances, 3),
    )


def evaluate(
    model: DeepSpeech2, data: Featurized, device: torch.device, *, beam_width: int = 0
) -> dict[str, float]:
    """Greedy (and, with ``beam_width``, prefix beam) CER/WER, CTC loss per label and the
    fraction of utterances decoded to nothing (the all-blank plateau) over ``data``."""
    model.eval()
    refs, greedy, beam, losses = [], [], [], []
    order = torch.argsort(data.frames)  # similar lengths in a batch pad little
    with torch.no_grad():
        for idx in order.split(100):
            spec, frames, targets, target_lengths = (t.to(device) for t in data.batch(idx))
            log_probs, lengths = model(spec, frames)
            loss = F.ctc_loss(
                log_probs.transpose(0, 1),
                targets,
                lengths,
                target_lengths,
                reduction="none",
                zero_infinity=True,
            )
            losses += (loss / target_lengths).tolist()
            refs += [data.texts[i] for i in idx.tolist()]
            greedy += [decode(ids) for ids in greedy_decode(log_probs, lengths)]
            if beam_width:
                beam += [
                    decode(prefix_beam_decode(lp, n, beam_width=beam_width))
                    for lp, n in zip(log_probs, lengths.tolist(), strict=True)
                ]
    out = {**error_rates(refs, greedy), "loss": float(np.mean(losses))}
    out["empty"] = float(np.mean([not h for h in greedy]))
    if beam_width:
        out.update({f"beam_{k}": v for k, v in error_rates(refs, beam).items()})
    return out


def warmup_cosine(i: int, *, warmup: int, steps: int) -> float:
    return (
        min(1.0, (i + 1) / max(warmup, 1)) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps))
    )


def trainer(
    run: Run, cfg: DigitsConfig, train: Featurized, *, batch_norm: bool, sortagrad: bool, lr: float
):
    """The network, its Adam optimizer and schedule, and ``step(i)``: one CTC update on the
    i-th minibatch (what ``fit`` runs and ``s30 bench`` times)."""
    torch.manual_seed(run.seed)  # every variant and rate starts from the same draw
    model_cfg = replace(cfg.model, batch_norm=batch_norm)
    model = DeepSpeech2(n_freq=cfg.model.n_fft // 2 + 1, vocab=len(ALPHABET), cfg=model_cfg)
    model.to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = partial(warmup_cosine, warmup=cfg.warmup, steps=cfg.steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    per_epoch = len(train) // cfg.batch_size
    batches: dict[int, torch.Tensor] = {}  # the current epoch's minibatches

    def step(i: int) -> dict[str, float]:
        epoch, offset = divmod(i, per_epoch)
        if epoch not in batches:
            batches.clear()
            batches[epoch] = epoch_batches(
                train.frames,
                cfg.batch_size,
                epoch,
                run.seed,
                sortagrad=sortagrad,
                bucket=cfg.bucket,
            )
        idx = distributed.shard(batches[epoch][offset])
        spec, frames, targets, target_lengths = (t.to(run.device) for t in train.batch(idx))
        log_probs, out_lengths = model(spec, frames)
        loss = F.ctc_loss(
            log_probs.transpose(0, 1), targets, out_lengths, target_lengths, zero_infinity=True
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimizer.step()
        return {"loss": loss.item(), "grad_norm": float(grad_norm)}

    return model, optimizer, scheduler, step


@dataclass
class Trained:
    lr: float
    model: DeepSpeech2
    history: list[dict[str, float]]  # training steps, and val_* metrics every eval_every
    grid: dict[float, dict[str, float]] = field(default_factory=dict)  # lr → final val metrics

    @property
    def val(self) -> dict[str, float]:
        """The final validation metrics (wer, cer, loss, empty)."""
        return {k[4:]: v for k, v in self.history[-1].items() if k.startswith("val_")}


def train_one(run: Run, cfg: DigitsConfig, key: str, data: Data, n: int, **kw) -> Trained:
    """Train on the set of ``n`` training recordings, evaluating on validation."""
    model, optimizer, scheduler, step = trainer(run, cfg, data.train[n], **kw)
    history = fit(
        run,
        key,
        model=model,
        optimizer=optimizer,
        steps=cfg.steps,
        step=step,
        scheduler=scheduler,
        evaluate=lambda i: {
            f"val_{k}": v for k, v in evaluate(model, data.val, run.device).items()
        },
        eval_every=cfg.eval_every,
    )
    return Trained(kw["lr"], model, history)


def select_rate(run: Run, cfg: DigitsConfig, data: Data, name: str) -> Trained:
    """Train ``name`` at every rate of the grid on all training recordings; keep the model
    with the lowest validation WER, then loss. A rate whose loss diverges is recorded as
    such (WER 1, no model) and cannot be chosen."""
    batch_norm, sortagrad = VARIANTS[name]
    trials, grid = [], {}
    for lr in cfg.lrs:
        try:
            trial = train_one(
                run,
                cfg,
                f"{name}_lr{lr:g}",
                data,
                max(data.train),
                batch_norm=batch_norm,
                sortagrad=sortagrad,
                lr=lr,
            )
        except DivergenceError as err:
            run.info(f"{name}: rate {lr:g} diverged ({err})")
            grid[lr] = {"wer": 1.0, "cer": 1.0, "loss": math.inf, "empty": 1.0, "diverged": 1}
            continue
        trials.append(trial)
        grid[lr] = {**trial.val, "diverged": 0}
    if not trials:
        raise DivergenceError(f"{name}: the loss diverged at every rate of {cfg.lrs}")
    best = min(trials, key=lambda t: (t.val["wer"], t.val["loss"]))
    best.grid = grid
    run.info(f"{name}: validation WER by rate {[(lr, m['wer']) for lr, m in grid.items()]}")
    return best


def chance_wer(texts: list[str], seed: int) -> float:
    """WER of guessing uniformly random digits, as many as the reference has."""
    rng = np.random.default_rng(seed)
    guesses = [" ".join(rng.choice(DIGIT_WORDS, size=len(t.split()))) for t in texts]
    return error_rates(texts, guesses)["wer"]
