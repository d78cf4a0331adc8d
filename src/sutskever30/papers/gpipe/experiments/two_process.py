"""The pipeline across processes: the GPT cut into K = 2 stages, one gloo process each,
``ScheduleGPipe`` over M micro-batches (``torch.distributed.pipelining``), launched by
``torchrun``, trains on tiny-shakespeare to the same losses as one process with whole
mini-batches (same model, seed, data and Adam)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from sutskever30.core import plots
from sutskever30.core.errors import S30Error
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.papers.gpipe.experiments.common import one_thread
from sutskever30.papers.gpipe.pipeline import PipeTrainConfig, train_single

LOSS_TOLERANCE = 1e-3  # float32: micro-batching only reorders the sums


@dataclass(frozen=True)
class TwoProcessConfig:
    steps: int = 150
    batch_size: int = 32
    context: int = 64
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 64
    micro_batches: int = 4
    lr: float = 3e-3
    processes: int = 2  # K, one pipeline stage per process
    timeout_s: int = 300

    def __post_init__(self) -> None:
        if not 2 <= self.processes <= self.n_layer + 2:
            raise ValueError(f"processes must be in [2, n_layer + 2], got {self.processes}")
        if self.timeout_s < 1:
            raise ValueError(f"timeout_s must be ≥ 1, got {self.timeout_s}")
        self.train_config(0)  # validates the training fields

    def train_config(self, seed: int) -> PipeTrainConfig:
        fields = {k: v for k, v in asdict(self).items() if k not in ("processes", "timeout_s")}
        return PipeTrainConfig(**fields, seed=seed)


def torchrun_pipeline(cfg: PipeTrainConfig, processes: int, out: str, timeout_s: int):
    """Launch ``torchrun --standalone --nproc_per_node K -m sutskever30.papers.gpipe.pipeline``
    and return the per-step losses the last stage wrote."""
    args = []
    for name, value in asdict(cfg).items():
        args += ["--" + name.replace("_", "-"), str(value)]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "sutskever30.papers.gpipe.pipeline",
        *args,
        "--out",
        out,
        "--device",
        "cpu",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise S30Error(
            f"the {processes}-process pipeline did not finish in {timeout_s} s"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise S30Error(f"the {processes}-process pipeline failed: {' | '.join(tail)}")
    with open(out) as fh:
        return json.load(fh)["losses"]


@one_thread()
def run_two_process(run: Run, cfg: TwoProcessConfig) -> None:
    train_cfg = cfg.train_config(run.seed)
    run.info(f"{cfg.processes}-process pipeline under torchrun ({cfg.steps} steps)")
    piped = torchrun_pipeline(
        train_cfg, cfg.processes, str(run.dir / "pipeline_losses.json"), cfg.timeout_s
    )
    run.info("the same training in one process")
    single = train_single(train_cfg)
    for i, (a, b) in enumerate(zip(single, piped, strict=True)):
        run.log({"key": "losses", "step": i, "single": a, "pipeline": b})
    diffs = [abs(a - b) for a, b in zip(single, piped, strict=True)]
    run.claim(
        "pipeline_matches_one_process",
        f"{cfg.processes} gloo processes (one stage each, ScheduleGPipe, M = "
        f"{cfg.micro_batches}) train the GPT to the same loss as one process: every step's "
        f"loss within {LOSS_TOLERANCE}, and training lowers the loss by more than 0.5 nats",
        "§2.2: synchronous mini-batch updates, so pipelining does not change the training",
        {
            "final_loss_pipeline": piped[-1],
            "final_loss_single": single[-1],
            "first_loss": single[0],
            "max_step_diff": max(diffs),
            "tolerance": LOSS_TOLERANCE,
        },
        "max_step_diff <= tolerance and final_loss_pipeline < first_loss - 0.5",
    )
    plots.line_plot(
        run.plot_path("losses.png"),
        {
            "1 process": (list(range(len(single))), single),
            f"{cfg.processes}-process pipeline": (list(range(len(piped))), piped),
        },
        xlabel="step",
        ylabel="training loss (nats/char)",
        styles={"1 process": "-", f"{cfg.processes}-process pipeline": "--"},
    )


SMOKE = TwoProcessConfig(steps=3, batch_size=8, context=16, n_layer=2, d_model=16)
QUICK = TwoProcessConfig()
FULL = TwoProcessConfig(
    steps=2000, batch_size=64, context=256, n_layer=8, d_model=256, micro_batches=8
)
PRESETS = {"smoke": SMOKE, "quick": QUICK, "full": FULL}

EXPERIMENT = Experiment(
    name="two_process",
    description="2-process gloo pipeline (ScheduleGPipe, torchrun) trains to the same loss "
    "as 1 process",
    presets=PRESETS,
    run=run_two_process,
    quick_minutes=0.5,
    datasets=("tinyshakespeare",),
)
