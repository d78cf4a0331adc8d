"""Data-parallel training under ``torchrun``: one process per device, gradients averaged.

``torchrun --nproc_per_node N -m sutskever30 run ...`` starts N copies of the CLI; each reads
its rank from the environment torchrun sets, joins the process group (gloo on CPU, NCCL on
CUDA) and trains the same model on its slice of every step's global batch
(:func:`sutskever30.core.train.batch_indices`). Before each ``optimizer.step()`` the
gradients are averaged over the ranks with one bucketed all-reduce, as
DistributedDataParallel does after backward, so every rank takes the same step and the
parameters equal those of one process with the global batch. Rank 0 alone writes metrics,
checkpoints, plots and results. Without torchrun every function here is a no-op.

The averaging hook sits on the optimizer rather than wrapping the model in
``DistributedDataParallel``: each paper's ``step`` calls its own module, and ``fit`` keeps
its signature, so every paper scales out unchanged.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.hooks import RemovableHandle


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


_SYNC_BN = False


def init(device: torch.device, *, sync_bn: bool = False) -> torch.device:
    """Join the process group torchrun describes (if any); return this rank's device.

    ``sync_bn`` turns every BatchNorm into SyncBatchNorm in :func:`data_parallel`, so batch
    statistics span all ranks' slices, as one process with the global batch computes them
    (CUDA only: PyTorch's SyncBatchNorm has no CPU kernel)."""
    global _SYNC_BN
    _SYNC_BN = sync_bn
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable value such as a run folder's path)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous slice of a step's global batch of indices."""
    n = world_size()
    if n == 1:
        return indices
    if len(indices) % n:
        raise ValueError(f"global batch {len(indices)} does not split over {n} processes")
    per = len(indices) // n
    return indices[rank() * per : (rank() + 1) * per]


def _average_gradients(params: list[torch.nn.Parameter]) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch._utils._flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(world_size())
    for g, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(synced)


def data_parallel(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> RemovableHandle | None:
    """Make ``model`` train data-parallel: copy rank 0's parameters and buffers to every
    rank, and average gradients before each step of ``optimizer``. Returns the hook's handle
    (None without torchrun). BatchNorm layers become SyncBatchNorm (in place: the optimizer's
    parameters stay the same) when :func:`init` was asked to."""
    if world_size() == 1:
        return None
    if _SYNC_BN:
        _convert_batchnorm(model)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor, src=0)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return optimizer.register_step_pre_hook(lambda *_: _average_gradients(params))


def _convert_batchnorm(model: torch.nn.Module) -> None:
    """Replace the BatchNorm layers below ``model`` by SyncBatchNorm sharing their
    parameters and running statistics."""
    for name, child in model.named_children():
        setattr(model, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(child))
