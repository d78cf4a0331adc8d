"""(a) The written-out LSTM, GRU and tanh-RNN cells equal ``torch.nn.LSTM``/``nn.GRU``/
``nn.RNN`` with copied weights.

Deviations from the paper: the post has no experiment; the check is ours (max |difference|
over every h_t and the final state, float32, random weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.lstm.model import (
    GRUCell,
    LSTMCell,
    Recurrent,
    TanhRNNCell,
    copy_from_torch_gru,
    copy_from_torch_lstm,
    copy_from_torch_rnn,
)


@dataclass(frozen=True)
class EquivalenceConfig:
    input_size: int = 7
    hidden_size: int = 32
    batch: int = 8
    T: int = 50
    tol: float = 1e-5

    def __post_init__(self) -> None:
        if min(self.input_size, self.hidden_size, self.batch, self.T) < 1:
            raise ValueError("sizes must be >= 1")


def max_deviation(kind: str, cfg: EquivalenceConfig, gen: torch.Generator) -> float:
    """Largest |ours − PyTorch| over all outputs h_t and the final state, float32."""
    sizes = {"input_size": cfg.input_size, "hidden_size": cfg.hidden_size}
    torch_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    ref = torch_cls(cfg.input_size, cfg.hidden_size, batch_first=True)
    # Gated cells get weights in ±1 (wider than the default init) so gates saturate too; a tanh
    # RNN that wide is chaotic (float32 rounding grows exponentially along the sequence), so
    # it keeps PyTorch's default scale ±1/√H.
    scale = cfg.hidden_size**-0.5 if kind == "rnn" else 1.0
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(-scale, scale, generator=gen)
    if kind == "lstm":
        cell = LSTMCell(**sizes)
        copy_from_torch_lstm(cell, ref)
    elif kind == "gru":
        cell = GRUCell(**sizes, reset_after=True)
        copy_from_torch_gru(cell, ref)
    else:
        cell = TanhRNNCell(**sizes)
        copy_from_torch_rnn(cell, ref)
    x = torch.randn(cfg.batch, cfg.T, cfg.input_size, generator=gen)
    with torch.no_grad():
        ours, our_state = Recurrent(cell)(x)
        theirs, their_state = ref(x)
    if kind == "lstm":
        (h_n, c_n), our_final = their_state, torch.stack(our_state)
        their_final = torch.stack([h_n[0], c_n[0]])
    else:
        our_final, their_final = our_state, their_state[0]
    return max((ours - theirs).abs().max().item(), (our_final - their_final).abs().max().item())


def run_equivalence(run: Run, cfg: EquivalenceConfig) -> None:
    gen = torch.Generator().manual_seed(run.seed)
    dev = {kind: max_deviation(kind, cfg, gen) for kind in ("lstm", "gru", "rnn")}
    run.summary.update({f"max_abs_diff_{k}": v for k, v in dev.items()})
    for kind, torch_name in (("lstm", "nn.LSTM"), ("gru", "nn.GRU")):
        run.claim(
            f"{kind}_equals_torch",
            f"gate-by-gate {kind.upper()} cell equals torch.{torch_name} with copied weights "
            f"(T={cfg.T}, max |diff| ≤ {cfg.tol:g})",
            "the post's equations are the standard cells (PyTorch gate order i, f, g, o)",
            {"max_abs_diff": dev[kind], "tol": cfg.tol},
            "max_abs_diff <= tol",
        )
    run.claim(
        "rnn_equals_torch",
        f"tanh RNN cell equals torch.nn.RNN with copied weights (max |diff| ≤ {cfg.tol:g})",
        "h_t = tanh(W·[h_{t-1}, x_t] + b)",
        {"max_abs_diff": dev["rnn"], "tol": cfg.tol},
        "max_abs_diff <= tol",
    )


EXPERIMENT = Experiment(
    name="equivalence",
    description="gate-by-gate LSTM/GRU/RNN cells vs torch.nn.LSTM/GRU/RNN, copied weights",
    presets={
        "smoke": EquivalenceConfig(T=10),
        "quick": EquivalenceConfig(),
        "full": EquivalenceConfig(hidden_size=256, T=200),
    },
    run=run_equivalence,
    quick_minutes=0.1,
)
