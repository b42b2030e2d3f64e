"""Several processes (torchrun + DDP) training like one process with the same global batch.

What the trainer calls, all no-ops (or plain single-process behaviour) without DDP:
- `local_batch(global_batch)`: this process's share of the batch;
- `convert_norms(model, ghost, sync, local_batch)`: ghost batch norm (model.ghost_bn) or SyncBN
  (model.sync_bn), chosen by the recipe;
- `wrap_for_training(train_module, device)`: DDP around the training forward;
- `end_epoch(model, stats)`: average batch-norm running statistics over ranks and make the
  epoch's loss / throughput global;
- `sum_over_ranks(*tensors)`: sum the evaluation counts of every rank's shard of a split;
- `rank_failures_as_errors`: turn a collective that failed because a peer died into one line.

Which samples each rank reads is gpaco.data.samplers' layout (one process = N processes).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from gpaco import distributed as gdist
from gpaco.errors import UserError
from gpaco.models.ghost_bn import convert_to_ghost_bn

from gpaco.train.loop import EpochStats

F = TypeVar("F", bound=Callable[..., Any])


def local_batch(global_batch: int) -> int:
    """This process's share of `train.batch_size` (the global batch over all processes)."""
    world = gdist.world_size()
    if global_batch % world:
        raise UserError(f"train.batch_size={global_batch} is not divisible by the {world} processes")
    return global_batch // world


def convert_norms(model: nn.Module, ghost: int | None, sync: bool, local_batch: int) -> nn.Module:
    """Apply the recipe's batch-norm choice: model.ghost_bn=G (groups of G samples) or
    model.sync_bn=true (statistics over the global batch); neither: per-process statistics."""
    if ghost is not None and sync:
        raise UserError("model.ghost_bn and model.sync_bn exclude each other: pick one")
    if ghost is not None:
        if not isinstance(ghost, int) or isinstance(ghost, bool) or ghost < 2:
            raise UserError(
                f"model.ghost_bn must be an integer >= 2 (the group size), not {ghost!r}")
        if local_batch % ghost:
            raise UserError(f"model.ghost_bn={ghost} must divide the per-process batch "
                            f"{local_batch} (train.batch_size / number of processes)")
        return convert_to_ghost_bn(model, ghost)
    if sync:
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def wrap_for_training(train_module: nn.Module, device: torch.device) -> nn.Module:
    """DDP around the training forward when several processes run; unchanged otherwise.

    Buffers are not broadcast from rank 0 at every forward: each rank's batch-norm running
    statistics follow its own batches and `end_epoch` averages them, which is what one process
    over the global batch computes (see gpaco.models.ghost_bn). The other buffers (queue, key
    encoder parameters' EMA) are identical on every rank by construction.
    """
    if gdist.world_size() == 1:
        return train_module
    from torch.nn.parallel import DistributedDataParallel as DDP

    sync = any(isinstance(m, nn.SyncBatchNorm) for m in train_module.modules())
    if device.type == "cpu" and sync:
        # SyncBatchNorm refuses CPU tensors only at the first forward, with a less clear message.
        raise UserError("model.sync_bn needs one GPU per process (SyncBatchNorm does not run on "
                        "CPU processes); use model.ghost_bn=G for per-group statistics instead")

    ids = [device.index] if device.type == "cuda" else None
    return DDP(train_module, device_ids=ids, broadcast_buffers=False,
               find_unused_parameters=False)


@torch.no_grad()
def average_bn_stats(model: nn.Module) -> None:
    """Average every batch-norm running mean and variance over the ranks (no-op on one)."""
    if gdist.world_size() == 1:
        return
    tensors = [t for mod in model.modules() if isinstance(mod, _BatchNorm)
               for t in (mod.running_mean, mod.running_var) if t is not None]
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1).double() for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= gdist.world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def end_epoch(model: nn.Module, stats: EpochStats) -> EpochStats:
    """Synchronise what ranks hold differently after an epoch: batch-norm running statistics
    (averaged) and the epoch's statistics (mean loss, total images, slowest rank's time)."""
    if gdist.world_size() == 1:
        return stats
    average_bn_stats(model)
    device = next(iter(model.buffers()), torch.zeros(())).device
    sums = torch.tensor([stats.loss, float(stats.images)], dtype=torch.float64, device=device)
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    seconds = torch.tensor([stats.seconds], dtype=torch.float64, device=device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    return EpochStats(float(sums[0]) / gdist.world_size(), stats.steps, int(sums[1]),
                      float(seconds[0]))


def sum_over_ranks(*tensors: torch.Tensor) -> None:
    """Sum each tensor in place over every rank's copy (no-op on one process): the counts of
    every rank's shard of an evaluation."""
    if gdist.world_size() == 1:
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def rank_failures_as_errors(fn: F) -> F:
    """Re-raise a collective that failed because another process died (or went silent past
    the timeout) as a one-line UserError; the checkpoint on disk is the last completed epoch's.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if isinstance(err, UserError) or not gdist.is_peer_failure(err):
                raise
            raise gdist.PeerFailure(
                f"process {gdist.rank()} of {gdist.world_size()}: a collective failed, another "
                f"process probably died ({_short(err)}); the last completed epoch's checkpoint "
                "is kept") from None

    return wrapper  # type: ignore[return-value]


def _short(err: BaseException) -> str:
    """The gist of a backend error: no source path prefix, first sentence, bounded length."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # gloo's "[.../pair.cc:545] " prefix
    return text.split(". ")[0][:160]
