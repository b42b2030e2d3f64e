"""Thin helpers over torch.distributed that degrade to single-process no-ops."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def is_main() -> bool:
    return rank() == 0


@torch.no_grad()
def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` from every rank along dim 0 (rank order); identity without DDP.

    No gradient flows through the result: it is meant for queue keys and labels.
    """
    if not is_dist() or world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def local_rank() -> int:
    import os

    return int(os.environ.get("LOCAL_RANK", 0))


def init_from_env() -> None:
    """Join the process group that torchrun describes in the environment (no-op otherwise)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_dist():
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend)


def barrier() -> None:
    if is_dist():
        dist.barrier()


def shutdown() -> None:
    if is_dist():
        dist.destroy_process_group()
