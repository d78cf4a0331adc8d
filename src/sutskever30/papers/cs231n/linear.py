"""Linear classifiers: multiclass SVM and softmax (CS231n notes, "Linear Classification").

Scores ``s = x W`` (the bias trick folds ``b`` into ``W`` via a constant-1 input).
- SVM: ``L_i = Σ_{j≠y_i} max(0, s_j - s_{y_i} + Δ)``, Δ = 1.
- softmax: ``L_i = -log(e^{s_{y_i}} / Σ_j e^{s_j})``; with ``W ≈ 0`` every class has
  probability 1/C, so the initial loss is ``ln C`` (ln 10 ≈ 2.303 on CIFAR-10).
Both add ``reg · ‖W‖²`` (L2, without the ½). The naive versions loop over examples and
classes as the notes write the sums; the vectorized ones are what training uses.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sutskever30.papers.cs231n.layers import softmax_loss, svm_loss


def svm_loss_naive(
    w: np.ndarray, x: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """``w`` (D, C), ``x`` (N, D), ``y`` (N,): loss and dW, with explicit loops."""
    dw = np.zeros_like(w)
    n, c = x.shape[0], w.shape[1]
    loss = 0.0
    for i in range(n):
        scores = x[i] @ w
        for j in range(c):
            if j == y[i]:
                continue
            margin = scores[j] - scores[y[i]] + 1
            if margin > 0:
                loss += margin
                dw[:, j] += x[i]
                dw[:, y[i]] -= x[i]
    loss = loss / n + reg * np.sum(w * w)
    return float(loss), dw / n + 2 * reg * w


def svm_loss_vectorized(
    w: np.ndarray, x: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    loss, dscores = svm_loss(x @ w, y)
    return loss + reg * np.sum(w * w), x.T @ dscores + 2 * reg * w


def softmax_loss_naive(
    w: np.ndarray, x: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    dw = np.zeros_like(w)
    n, c = x.shape[0], w.shape[1]
    loss = 0.0
    for i in range(n):
        scores = x[i] @ w
        scores = scores - scores.max()
        total = sum(np.exp(scores[j]) for j in range(c))
        loss -= scores[y[i]] - np.log(total)
        for j in range(c):
            p = np.exp(scores[j]) / total
            dw[:, j] += (p - (j == y[i])) * x[i]
    loss = loss / n + reg * np.sum(w * w)
    return float(loss), dw / n + 2 * reg * w


def softmax_loss_vectorized(
    w: np.ndarray, x: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    loss, dscores = softmax_loss(x @ w, y)
    return loss + reg * np.sum(w * w), x.T @ dscores + 2 * reg * w


LOSSES = {"svm": svm_loss_vectorized, "softmax": softmax_loss_vectorized}


def append_bias(x: np.ndarray) -> np.ndarray:
    """The bias trick: (N, D) → (N, D + 1) with a last column of ones."""
    return np.hstack([x.reshape(x.shape[0], -1), np.ones((x.shape[0], 1), dtype=x.dtype)])


class LinearClassifier:
    """``W`` (D + 1, C) trained by minibatch SGD on the SVM or softmax loss (assignment 1)."""

    def __init__(
        self,
        *,
        loss: Literal["svm", "softmax"],
        dim: int,
        num_classes: int,
        rng: np.random.Generator,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.loss_fn = LOSSES[loss]
        self.w = 1e-4 * rng.standard_normal((dim + 1, num_classes))
        self.rng = rng

    def loss(self, x: np.ndarray, y: np.ndarray, reg: float) -> tuple[float, np.ndarray]:
        return self.loss_fn(self.w, append_bias(x), y, reg)

    def train(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        learning_rate: float,
        reg: float,
        num_iters: int,
        batch_size: int = 200,
    ) -> list[float]:
        """Minibatch SGD (batches drawn with replacement, as the assignment); loss history."""
        xb = append_bias(x)
        history = []
        for _ in range(num_iters):
            idx = self.rng.choice(xb.shape[0], batch_size)
            loss, dw = self.loss_fn(self.w, xb[idx], y[idx], reg)
            self.w -= learning_rate * dw
            history.append(loss)
        return history

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (append_bias(x) @ self.w).argmax(axis=1)
