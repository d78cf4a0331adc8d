"""A run folder under a test's tmp_path, for code that needs a :class:`Run` outside the CLI."""

import torch

from sutskever30.core.run import Run, open_run


def scratch_run(tmp_path, slug: str, experiment: str, cfg, *, seed: int = 0) -> Run:
    return open_run(
        slug=slug,
        experiment=experiment,
        preset="smoke",
        cfg=cfg,
        seed=seed,
        device=torch.device("cpu"),
        out=tmp_path,
        resume=False,
        quiet=True,
    )


def bench_cases_that_train(tmp_path, paper, experiment: str) -> list:
    """The paper's bench cases at the experiment's smoke preset, after checking that each
    case's ``step(0)`` returns a positive loss and changes its model's parameters (the
    bench times the real training step, not a stand-in)."""
    exp = paper.experiment(experiment)
    run = scratch_run(tmp_path, paper.slug, exp.name, exp.presets["smoke"])
    cases = paper.bench(run)
    for case in cases:
        before = [p.detach().clone() for p in case.model.parameters()]
        assert case.step(0)["loss"] > 0
        after = list(case.model.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    return cases
