"""GPipe on the shared GPT: four experiments, one module each in ``experiments/``:
(a) pipelined gradients equal full-batch gradients; (b) the measured bubble against
(K − 1)/(M + K − 1); (c) peak activation memory with and without re-materialization;
(d) a two-process ``torch.distributed.pipelining`` pipeline trains like one process.
"""

from __future__ import annotations

import torch

from sutskever30.core.bench import BenchCase
from sutskever30.core.registry import Paper
from sutskever30.core.run import Run
from sutskever30.papers.gpipe.experiments import bubble, gradients, memory, two_process
from sutskever30.papers.gpipe.experiments.common import GPTSize, gpt_and_batch
from sutskever30.papers.gpipe.model import GPipe, split_stages
from sutskever30.papers.gpipe.pipeline import CharBatches, lm_loss

BENCH_STAGES, BENCH_MICRO_BATCHES = 4, 8


def bench(run: Run) -> list[BenchCase]:
    """A training step of the bubble experiment's GPT through the in-process pipeline
    (K = 4, M = 8), without and with re-materialization, on real text."""
    size: GPTSize = bubble.QUICK.size
    cases = []
    for remat in (False, True):
        gpt, _, _ = gpt_and_batch(size, run.seed)
        model = gpt.sequential()
        batches = CharBatches(size.context, size.batch_size, run.seed)
        pipe = GPipe(
            split_stages(model, BENCH_STAGES),
            micro_batches=BENCH_MICRO_BATCHES,
            loss_fn=lm_loss,
            remat=remat,
        )
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)

        def step(i: int, pipe=pipe, opt=opt, batches=batches) -> dict[str, float]:
            x, y = batches(i)
            opt.zero_grad()
            loss = pipe.step(x, y).loss
            opt.step()
            return {"loss": loss}

        name = f"gpt-{size.n_layer}L K{BENCH_STAGES} M{BENCH_MICRO_BATCHES}"
        cases.append(
            BenchCase(name + (" remat" if remat else ""), model, opt, step, size.batch_size)
        )
    return cases


PAPER = Paper(
    slug="gpipe",
    title="GPipe: Efficient Training of Giant Neural Networks using Pipeline Parallelism",
    authors="Huang, Cheng, Bapna, Firat, Chen, Chen, Lee, Ngiam, Le, Wu, Chen",
    year=2019,
    arxiv="1811.06965",
    experiments=(
        gradients.EXPERIMENT,
        bubble.EXPERIMENT,
        memory.EXPERIMENT,
        two_process.EXPERIMENT,
    ),
    bench=bench,
)
