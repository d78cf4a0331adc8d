"""Training the three models of the experiment on one split, with the same budget: batches
of molecules as one disjoint graph, Adam on the mean squared error of the standardized
target, validation RMSE after every epoch, and the epoch with the lowest validation RMSE
selected (its test RMSE is the model's result)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit
from sutskever30.data.molecules import MolecularGraphs
from sutskever30.papers.mpnn.model import (
    MPNN,
    FingerprintMLP,
    GCNSum,
    GraphBatch,
    count_parameters,
)

if TYPE_CHECKING:
    from sutskever30.papers.mpnn.experiment import MPNNConfig

MODELS = ("mpnn", "gcn", "mlp")
LABELS = {"mpnn": "enn-s2s (MPNN)", "gcn": "GCN, sum readout", "mlp": "fingerprint MLP"}


class Molecules:
    """A molecular data set as tensors, and its batches as disjoint graphs."""

    def __init__(self, graphs: MolecularGraphs) -> None:
        self.x = torch.from_numpy(graphs.x)
        self.edge_index = torch.from_numpy(graphs.edge_index)
        self.edge_attr = torch.from_numpy(graphs.edge_attr)
        self.n_atoms = torch.from_numpy(graphs.n_atoms)
        self.n_edges = torch.from_numpy(graphs.n_edges)
        self.atom_offsets = torch.from_numpy(graphs.atom_offsets[:-1])
        self.edge_offsets = torch.from_numpy(graphs.edge_offsets[:-1])
        self.fingerprints = torch.from_numpy(graphs.fingerprints).float()
        self.y = torch.from_numpy(graphs.y)

    def graphs(self, idx: torch.Tensor) -> GraphBatch:
        """Molecules ``idx`` as one graph: atoms and edges concatenated, atom numbers of the
        edges shifted to their molecule's place in the batch."""
        n, e = self.n_atoms[idx], self.n_edges[idx]  # (B,)
        start = torch.cumsum(n, 0) - n  # (B,) each molecule's first atom in the batch
        atoms = torch.repeat_interleave(self.atom_offsets[idx] - start, n) + torch.arange(
            int(n.sum())
        )  # (N,)
        edge_start = torch.cumsum(e, 0) - e
        edges = torch.repeat_interleave(self.edge_offsets[idx] - edge_start, e) + torch.arange(
            int(e.sum())
        )  # (E,)
        return GraphBatch(
            x=self.x[atoms],
            edge_index=self.edge_index[:, edges] + torch.repeat_interleave(start, e),
            edge_attr=self.edge_attr[edges],
            batch=torch.repeat_interleave(torch.arange(len(idx)), n),
            n_graphs=len(idx),
        )

    def inputs(self, kind: str, idx: torch.Tensor) -> GraphBatch | torch.Tensor:
        """What model ``kind`` reads for molecules ``idx``."""
        return self.fingerprints[idx] if kind == "mlp" else self.graphs(idx)


def build_model(kind: str, cfg: MPNNConfig, node_dim: int, edge_dim: int) -> nn.Module:
    if kind == "mpnn":
        return MPNN(
            node_dim=node_dim,
            edge_dim=edge_dim,
            d=cfg.d,
            T=cfg.T,
            M=cfg.M,
            edge_hidden=cfg.edge_hidden,
            readout_hidden=cfg.readout_hidden,
        )
    if kind == "gcn":
        return GCNSum(node_dim=node_dim, d=cfg.d, layers=cfg.T, readout_hidden=cfg.readout_hidden)
    return FingerprintMLP(n_bits=cfg.fp_bits, hidden=cfg.mlp_hidden)


@dataclass
class Trainer:
    """One model on one split: its optimizer, the ``step(i)`` that ``fit`` calls, and the
    training targets' mean and std (the model predicts the standardized target)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: Callable[[int], dict[str, float]]
    steps_per_epoch: int
    mean: torch.Tensor
    std: torch.Tensor


def trainer(run: Run, cfg: MPNNConfig, kind: str, data: Molecules, train: torch.Tensor) -> Trainer:
    """Adam on the squared error of the standardized target (train mean and std)."""
    model = build_model(kind, cfg, data.x.shape[1], data.edge_attr.shape[1]).to(run.device)
    lr = {"mpnn": cfg.lr_mpnn, "gcn": cfg.lr_gcn, "mlp": cfg.lr_mlp}[kind]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    mean, std = data.y[train].mean(), data.y[train].std()
    batch_size = min(cfg.batch_size, len(train))

    def step(i: int) -> dict[str, float]:
        idx = train[batch_indices(len(train), batch_size, i, run.seed)]
        target = ((data.y[idx] - mean) / std).float()
        loss = ((model(data.inputs(kind, idx)) - target) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    return Trainer(model, optimizer, step, max(len(train) // batch_size, 1), mean, std)


def predict(model: nn.Module, kind: str, data: Molecules, idx: torch.Tensor, mean, std):
    """Predictions in the target's units (float64 numpy), molecules ``idx``."""
    return (model(data.inputs(kind, idx)).double() * std + mean).numpy()


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def train_and_select(
    run: Run,
    cfg: MPNNConfig,
    kind: str,
    data: Molecules,
    split: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    key: str,
) -> dict:
    """Train ``kind`` for ``cfg.epochs`` epochs, evaluating after each; return the epoch with
    the lowest validation RMSE, its test RMSE and test predictions, and the curves."""
    train, valid, test = split
    t = trainer(run, cfg, kind, data, train)
    y_valid, y_test = data.y[valid].numpy(), data.y[test].numpy()
    best = [float("inf")]

    def evaluate(_: int) -> dict:
        val = rmse(predict(t.model, kind, data, valid, t.mean, t.std), y_valid)
        pred = predict(t.model, kind, data, test, t.mean, t.std)
        out = {"val_rmse": val, "test_rmse": rmse(pred, y_test)}
        if val < best[0]:  # the predictions of each new best epoch, for the plot
            best[0] = val
            out["test_pred"] = pred.tolist()
        return out

    history = fit(
        run,
        key,
        model=t.model,
        optimizer=t.optimizer,
        steps=cfg.epochs * t.steps_per_epoch,
        step=t.step,
        evaluate=evaluate,
        eval_every=t.steps_per_epoch,
        log_every=t.steps_per_epoch,
    )
    evals = [h for h in history if "val_rmse" in h]
    chosen = min(evals, key=lambda h: h["val_rmse"])  # the first epoch with the lowest: a new best
    return {
        "kind": kind,
        "val_rmse": chosen["val_rmse"],
        "test_rmse": chosen["test_rmse"],
        "best_epoch": (chosen["step"] + 1) // t.steps_per_epoch,
        "test_pred": np.array(chosen["test_pred"]),
        "y_test": y_test,
        "val_curve": [h["val_rmse"] for h in evals],
        "params": count_parameters(t.model),
    }
