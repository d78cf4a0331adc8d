"""Data-parallel training under torchrun: 2 gloo processes on CPU take the same steps as one
process with the same global batch, and a 2-process CLI run writes one results.json."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from sutskever30.core import distributed
from sutskever30.core.run import open_run
from sutskever30.core.train import batch_indices, fit

STEPS, BATCH, N = 8, 16, 96


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(out: Path) -> nn.Module:
    """An MLP (no BatchNorm) trained with SGD + momentum on a fixed regression problem."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        steps: int = STEPS

    run = open_run(
        slug="t",
        experiment="ddp",
        preset="smoke",
        cfg=Cfg(),
        seed=5,
        device=torch.device("cpu"),
        out=out,
        resume=False,
        quiet=True,
    )
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, 8, generator=gen)
    y = x @ torch.randn(8, 2, generator=gen) + 0.1 * torch.randn(N, 2, generator=gen)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(i):
        idx = batch_indices(N, BATCH, i, run.seed)  # this rank's slice of the global batch
        loss = ((model(x[idx]) - y[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "local_batch": float(len(idx))}

    history = fit(run, "mlp", model=model, optimizer=opt, steps=STEPS, step=step, log_every=1)
    assert history[0]["local_batch"] == BATCH // distributed.world_size()
    return model


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    distributed.init(torch.device("cpu"))
    try:
        model = _train(Path(out) / "runs")
        torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")
    finally:
        distributed.shutdown()


def test_two_gloo_processes_equal_one_process(tmp_path):
    single = _train(tmp_path / "single").state_dict()
    mp.start_processes(
        _worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, start_method="spawn"
    )
    for rank in (0, 1):
        ddp = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for key, value in single.items():
            torch.testing.assert_close(ddp[key], value, rtol=1e-5, atol=1e-5)
    # rank 0 alone wrote the run folder: one metrics file, each step logged once
    (run_dir,) = (tmp_path / "runs" / "t" / "ddp").iterdir()
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
    assert steps == list(range(STEPS))


def test_shard_needs_an_even_split():
    assert torch.equal(distributed.shard(torch.arange(6)), torch.arange(6))  # one process


def test_torchrun_two_process_smoke_run(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sutskever30",
        "run",
        "resnet",
        "--preset",
        "smoke",
        "--out",
        str(tmp_path / "runs"),
        "--no-publish",
        "-q",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs" / "resnet" / "degradation").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["paper"] == "resnet" and results["claims"]
    assert all(c["holds"] in (True, False, None) for c in results["claims"])
    assert proc.stdout.count("claims hold") == 1, "only rank 0 reports"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="SyncBatchNorm needs CUDA")
def test_sync_batchnorm_conversion_keeps_parameters():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    weight = model[1].weight
    distributed._convert_batchnorm(model)
    assert isinstance(model[1], nn.SyncBatchNorm) and model[1].weight is weight
