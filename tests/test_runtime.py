"""The run loop: resume reproduces an uninterrupted run, divergence keeps the last good
checkpoint, checkpoints are atomic and corrupt ones are clear errors, results follow the
schema."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from sutskever30.core.checkpoint import load_checkpoint, save_checkpoint
from sutskever30.core.errors import CheckpointError, DivergenceError
from sutskever30.core.run import open_run
from sutskever30.core.train import batch_indices, fit, step_generator


class Interrupt(Exception):
    pass


def make_run(out, resume=False, cfg=None):
    return open_run(
        slug="t",
        experiment="e",
        preset="smoke",
        cfg=cfg or _cfg(),
        seed=3,
        device=torch.device("cpu"),
        out=out,
        resume=resume,
        quiet=True,
    )


class Dummy:
    """An arbitrary class: a checkpoint holding one must not be unpickled."""


def _cfg():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        steps: int = 12

    return Cfg()


def train(run, stop_at=None, steps=12, poison_at=None):
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)  # a fixed regression problem: y = sin(3x)
    y = torch.sin(3 * x)
    model = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5, 0.5)

    def step(i):
        if stop_at is not None and i == stop_at:
            raise Interrupt
        idx = batch_indices(64, 16, i, run.seed)
        noise = 0.01 * torch.randn(16, 1, generator=step_generator(run.seed, i))
        loss = ((model(x[idx] + noise) - y[idx]) ** 2).mean()
        if poison_at is not None and i >= poison_at:
            loss = loss * float("nan")
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    history = fit(
        run,
        "m",
        model=model,
        optimizer=opt,
        scheduler=sched,
        steps=steps,
        step=step,
        evaluate=lambda i: {"val": ((model(x) - y) ** 2).mean().item()},
        eval_every=4,
        checkpoint_every=3,
        log_every=1,
    )
    return model, history


def test_resume_equals_uninterrupted(tmp_path):
    cfg = _cfg()
    full_model, full_hist = train(make_run(tmp_path / "a", cfg=cfg))
    with pytest.raises(Interrupt):
        train(make_run(tmp_path / "b", cfg=cfg), stop_at=8)
    resumed = make_run(tmp_path / "b", resume=True, cfg=cfg)
    model, hist = train(resumed)
    assert hist == full_hist
    for p, q in zip(model.parameters(), full_model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    steps = [json.loads(line)["step"] for line in (resumed.dir / "metrics.jsonl").open()]
    assert steps == list(range(12)), "metrics.jsonl must hold each step once after a resume"


def test_every_record_before_a_checkpoint_is_on_disk_when_it_is_written(tmp_path, monkeypatch):
    """Metrics are written in batches; a checkpoint at step k finds steps 0 … k − 1 in
    metrics.jsonl (a crash after it loses only records --resume logs again)."""
    from sutskever30.core import run as run_module
    from sutskever30.core.run import Run

    monkeypatch.setattr(run_module, "LOG_FLUSH_S", 1e9)  # never by the clock alone
    seen = []
    saved = Run.save

    def save(self, key, state):
        lines = (self.dir / "metrics.jsonl").read_text().splitlines()
        seen.append((state["step"], [json.loads(line)["step"] for line in lines]))
        return saved(self, key, state)

    monkeypatch.setattr(Run, "save", save)
    train(make_run(tmp_path, cfg=_cfg()))
    assert [at for at, _ in seen] == [3, 6, 9, 12]
    for at, steps in seen:
        assert steps == list(range(at)), at


def test_resume_refuses_other_config(tmp_path):
    from dataclasses import replace

    from sutskever30.core.errors import UsageError

    cfg = _cfg()
    with pytest.raises(Interrupt):
        train(make_run(tmp_path, cfg=cfg), stop_at=4)
    with pytest.raises(UsageError, match="differ"):
        make_run(tmp_path, resume=True, cfg=replace(cfg, steps=99))


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path):
    run = make_run(tmp_path, cfg=_cfg())
    with pytest.raises(DivergenceError, match=r"at step 7.*last good checkpoint"):
        train(run, poison_at=7)
    state = load_checkpoint(run.checkpoint_path("m"))
    assert state["step"] == 6 and not state["done"]
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.arange(3.0), "step": 5, "history": [{"loss": 1.0}]})
    state = load_checkpoint(path)
    assert state["step"] == 5 and state["w"].tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"], "no temp files left behind"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_checkpoint_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Dummy()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_results_schema_and_computed_verdicts(tmp_path):
    run = make_run(tmp_path, cfg=_cfg())
    a, b = 0.33, 0.21
    run.claim("c1", "a above b", "paper says so", {"a": a, "b": b}, "a > b")
    run.report("r1", "a number", "Table 1: 1.0", {"x": float("nan")})
    results = run.finish()
    saved = json.loads((run.dir / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert {"paper", "experiment", "preset", "seeds", "claims", "runtime_s", "env"} <= set(saved)
    assert saved["claims"][0]["holds"] is True and saved["claims"][1]["holds"] is None
    assert saved["claims"][1]["measured"]["x"] == "nan"
    assert {"torch", "device", "commit"} <= set(saved["env"])
    assert "a above b" in (run.dir / "summary.md").read_text()


def test_batch_indices_cover_each_epoch_once():
    seen = torch.cat([batch_indices(10, 5, i, seed=1) for i in range(2)])
    assert sorted(seen.tolist()) == list(range(10))
    assert not torch.equal(batch_indices(10, 5, 0, 1), batch_indices(10, 5, 2, 1))
    assert torch.equal(batch_indices(10, 5, 3, 1), batch_indices(10, 5, 3, 1))


PARENT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from sutskever30.core.run import _exit_with_parent

if __name__ == "__main__":
    watch = sys.argv[1] == "watch"
    pool = ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent if watch else None,
        initargs=(os.getpid(),) if watch else (),
    )
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 60)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("mode", ["watch", "plain"])
def test_side_by_side_seeds_end_when_their_parent_is_killed(tmp_path, mode):
    """``--jobs`` workers watch the process that started them: killing it (SIGKILL, no
    cleanup) ends them within seconds instead of leaving orphans training on. Without the
    watch (``plain``) the orphan lives on, which shows that the test can fail."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    proc = subprocess.Popen(
        [sys.executable, str(script), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    worker = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    proc.stdout.close()
    deadline = time.time() + 8
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.2)
    try:
        assert _alive(worker) == (mode == "plain")
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
