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
