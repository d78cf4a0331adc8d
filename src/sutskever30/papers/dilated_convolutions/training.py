"""Training and evaluating the front end and the context modules on scattered-MNIST canvases.

Protocol (as the paper's): the front end is trained first; then each context module is
trained on the scores of the frozen front end, all modules on the same front end, with the
same optimizer, steps and batches (the same canvases at the same step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from sutskever30.core.run import Run
from sutskever30.core.train import step_generator
from sutskever30.papers.dilated_convolutions.model import (
    DILATIONS,
    UNDILATED,
    ContextModule,
    FrontEnd,
    basic_widths,
    identity_init_,
    large_widths,
    random_init_,
)
from sutskever30.papers.dilated_convolutions.task import (
    N_CLASSES,
    confusion,
    load_digits,
    make_canvases,
)

if TYPE_CHECKING:
    from sutskever30.papers.dilated_convolutions.experiment import ContextConfig

STREAM_FRONTEND, STREAM_MODULE = 1, 2


@dataclass(frozen=True)
class Arm:
    """One context module of the comparison."""

    name: str
    label: str
    dilated: bool
    init: str  # "identity" | "random"


ARMS = (
    Arm("dilated_identity", "dilated,\nidentity init", True, "identity"),
    Arm("undilated_identity", "undilated,\nidentity init", False, "identity"),
    Arm("dilated_random", "dilated,\nrandom init", True, "random"),
)


def load_data(cfg: ContextConfig) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Training digits, and fixed validation / test canvases (the same in every seed)."""
    train = load_digits("train")
    out = {"train_digits": train}
    for split, n, seed in (("val", cfg.val_canvases, 1), ("test", cfg.test_canvases, 2)):
        images, labels = load_digits(split)
        out[split] = make_canvases(
            images,
            labels,
            n=n,
            digits=cfg.digits,
            size=cfg.canvas,
            ink=cfg.ink,
            gen=torch.Generator().manual_seed(seed),
        )
    return out


def batch(cfg: ContextConfig, data, seed: int, step: int, stream: int) -> tuple[torch.Tensor, ...]:
    """The ``step``-th batch of fresh training canvases, a function of (seed, step, stream)."""
    images, labels = data["train_digits"]
    return make_canvases(
        images,
        labels,
        n=cfg.batch_size,
        digits=cfg.digits,
        size=cfg.canvas,
        ink=cfg.ink,
        gen=step_generator(seed, step, stream),
    )


def build_module(cfg: ContextConfig, arm: Arm, seed: int) -> ContextModule:
    widths = large_widths(N_CLASSES) if cfg.module == "large" else basic_widths(N_CLASSES)
    module = ContextModule(
        C=N_CLASSES, widths=widths, dilations=DILATIONS if arm.dilated else UNDILATED
    )
    gen = torch.Generator().manual_seed(seed)
    if arm.init == "identity":
        identity_init_(
            module, noise=cfg.identity_noise if cfg.module == "large" else 0.0, generator=gen
        )
    else:
        random_init_(module, generator=gen)
    return module


def frontend_trainer(run: Run, cfg: ContextConfig, data):
    """The front end, its optimizer and ``step(i)``: one Adam step of per-pixel
    cross-entropy on the i-th batch of training canvases."""
    torch.manual_seed(run.seed)
    model = FrontEnd(C=N_CLASSES, width=cfg.frontend_width, depth=cfg.frontend_depth)
    model = model.to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.frontend_lr)

    def step(i: int) -> dict[str, float]:
        x, y = batch(cfg, data, run.seed, i, STREAM_FRONTEND)
        loss = F.cross_entropy(model(x.to(run.device)), y.to(run.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    return model, opt, step


def module_trainer(run: Run, cfg: ContextConfig, data, frontend: nn.Module, arm: Arm):
    """A context module, its optimizer and ``step(i)``: one Adam step of per-pixel
    cross-entropy of the module's output on the frozen front end's scores."""
    module = build_module(cfg, arm, run.seed).to(run.device)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.module_lrs[ARMS.index(arm)])
    frontend.eval()

    def step(i: int) -> dict[str, float]:
        x, y = batch(cfg, data, run.seed, i, STREAM_MODULE)
        with torch.no_grad():
            scores = frontend(x.to(run.device))  # (B, C, H, W)
        loss = F.cross_entropy(module(scores), y.to(run.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    return module, opt, step


@torch.no_grad()
def predict(
    frontend: nn.Module, module: nn.Module | None, x: torch.Tensor, bs: int = 100
) -> torch.Tensor:
    """Per-pixel classes (N, H, W) of the front end, or of a module on top of it."""
    frontend.eval()
    device = next(frontend.parameters()).device
    out = []
    for i in range(0, len(x), bs):
        scores = frontend(x[i : i + bs].to(device))
        if module is not None:
            module.eval()
            scores = module(scores)
        out.append(scores.argmax(dim=1).cpu())
    return torch.cat(out)


def evaluate(frontend: nn.Module, module: nn.Module | None, canvases) -> torch.Tensor:
    """Per-canvas confusion matrices (N, 11, 11) over a set of canvases."""
    x, y = canvases
    return confusion(predict(frontend, module, x), y)
