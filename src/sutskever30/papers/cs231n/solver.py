"""Update rules and the Solver (CS231n notes, "Neural Networks 3: parameter updates").

Each rule maps ``(w, dw, config)`` to ``(next_w, config)``; ``config`` holds the
hyperparameters and the rule's state (velocity, caches, step count), one per parameter.
- SGD: ``w -= lr · dw``.
- momentum: ``v = μ v - lr · dw``; ``w += v``.
- RMSProp: ``c = ρ c + (1 - ρ) dw²``; ``w -= lr · dw / (√c + ε)``.
- Adam: ``m = β₁ m + (1 - β₁) dw``, ``v = β₂ v + (1 - β₂) dw²``, bias-corrected
  ``m̂ = m / (1 - β₁ᵗ)``, ``v̂ = v / (1 - β₂ᵗ)``; ``w -= lr · m̂ / (√v̂ + ε)``.
The Solver runs minibatch training of a model with ``params`` and ``loss(x, y)``, checks
training and validation accuracy each epoch and keeps the parameters of the best
validation accuracy (model selection on validation data, as the assignment's Solver).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

Config = dict[str, Any]


def sgd(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = config.get("cache", np.zeros_like(w))
    rho = config["decay_rate"]
    cache = rho * cache + (1 - rho) * dw**2
    config["cache"] = cache
    return w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"]), config


def adam(w: np.ndarray, dw: np.ndarray, config: Config) -> tuple[np.ndarray, Config]:
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    b1, b2 = config["beta1"], config["beta2"]
    t = config.get("t", 0) + 1
    m = b1 * config.get("m", np.zeros_like(w)) + (1 - b1) * dw
    v = b2 * config.get("v", np.zeros_like(w)) + (1 - b2) * dw**2
    config.update(t=t, m=m, v=v)
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), config


UPDATE_RULES: dict[str, Callable[[np.ndarray, np.ndarray, Config], tuple[np.ndarray, Config]]] = {
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adam": adam,
}


class Model(Protocol):
    params: dict[str, np.ndarray]

    def loss(
        self, x: np.ndarray, y: np.ndarray | None = None
    ) -> Any:  # scores (N, C) without y; (loss, grads) with y
        ...


class Solver:
    """Minibatch training with one update rule; epochs of ``num_train // batch_size``
    iterations, the learning rate multiplied by ``lr_decay`` after each epoch."""

    def __init__(
        self,
        model: Model,
        data: dict[str, np.ndarray],
        *,
        update_rule: str = "sgd",
        optim_config: Config | None = None,
        lr_decay: float = 1.0,
        batch_size: int = 100,
        num_epochs: int = 10,
        num_train_samples: int = 1000,
        num_val_samples: int | None = None,
        seed: int = 0,
        on_iteration: Callable[[int, float], None] | None = None,
    ) -> None:
        if update_rule not in UPDATE_RULES:
            raise ValueError(f"update_rule must be one of {sorted(UPDATE_RULES)}")
        if batch_size < 1 or num_epochs < 1:
            raise ValueError("batch_size and num_epochs must be positive")
        self.model = model
        self.x_train, self.y_train = data["X_train"], data["y_train"]
        self.x_val, self.y_val = data["X_val"], data["y_val"]
        self.update = UPDATE_RULES[update_rule]
        self.lr_decay = lr_decay
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.num_train_samples = num_train_samples
        self.num_val_samples = num_val_samples
        self.rng = np.random.default_rng(seed)
        self.on_iteration = on_iteration
        self.optim_configs = {p: dict(optim_config or {}) for p in model.params}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.best_val_acc = -1.0
        self.best_params: dict[str, np.ndarray] = {}

    @property
    def iterations_per_epoch(self) -> int:
        return max(self.x_train.shape[0] // self.batch_size, 1)

    def _step(self) -> float:
        idx = self.rng.choice(self.x_train.shape[0], self.batch_size, replace=False)
        loss, grads = self.model.loss(self.x_train[idx], self.y_train[idx])
        for name, w in self.model.params.items():
            self.model.params[name], self.optim_configs[name] = self.update(
                w, grads[name], self.optim_configs[name]
            )
        return loss

    def check_accuracy(
        self, x: np.ndarray, y: np.ndarray, num_samples: int | None = None, batch_size: int = 200
    ) -> float:
        """Accuracy on ``x`` (a random subsample of ``num_samples`` if given), in batches."""
        if num_samples is not None and x.shape[0] > num_samples:
            idx = self.rng.choice(x.shape[0], num_samples, replace=False)
            x, y = x[idx], y[idx]
        preds = [
            self.model.loss(x[i : i + batch_size]).argmax(axis=1)
            for i in range(0, x.shape[0], batch_size)
        ]
        return float(np.mean(np.concatenate(preds) == y))

    def _check_epoch(self) -> None:
        train_acc = self.check_accuracy(self.x_train, self.y_train, self.num_train_samples)
        val_acc = self.check_accuracy(self.x_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}

    def train(self) -> Solver:
        """Train for ``num_epochs``; afterwards the model holds the best-validation params."""
        for it in range(self.num_epochs * self.iterations_per_epoch):
            loss = self._step()
            if not np.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss} at iteration {it}")
            self.loss_history.append(loss)
            if self.on_iteration is not None:
                self.on_iteration(it, loss)
            if (it + 1) % self.iterations_per_epoch == 0:
                for cfg in self.optim_configs.values():
                    cfg["learning_rate"] *= self.lr_decay  # set by the rule's first step
                self._check_epoch()
        self.model.params = self.best_params
        return self
