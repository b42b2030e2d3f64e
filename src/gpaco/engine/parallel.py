"""Several processes (torchrun + DDP) training like one process with the same global batch.

What the engine calls, all no-ops (or plain single-process behaviour) without DDP:
- `convert_norms(model, cfg, local_batch)`: ghost batch norm (model.ghost_bn) or SyncBN
  (model.sync_bn), chosen by the recipe;
- `wrap_for_training(train_module, device, cfg)`: DDP around the training forward;
- `train_sampler` / `eval_sampler` / `gpu_loader_shard`: which samples each rank reads;
- `end_epoch(model, stats)`: average batch-norm running statistics over ranks and make the
  epoch's loss / throughput global;
- `reduce_counter(counter)`: sum the evaluation counts of every rank's shard of the test set;
- `rank_failures_as_errors`: turn a collective that failed because a peer died into one line.

The layout that makes N processes equal one process: every rank draws the same permutation of
the dataset per epoch (seeded by seed and epoch); global batch k is perm[kB:(k+1)B] and rank r reads the r-th
contiguous slice of it. One process therefore sees [rank 0's samples; rank 1's; ...], so ghost
groups of G (G dividing the per-process batch) are the per-rank batch-norm batches, the queue
receives the keys in the same order, and the global contrast set (gpaco.distributed.gather_batch)
holds the same rows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Sampler

from gpaco import distributed as gdist
from gpaco.errors import UserError
from gpaco.metrics import ConfusionCounter
from gpaco.models.ghost_bn import convert_to_ghost_bn
from gpaco.seeding import epoch_seed

from .config import Config
from .loop import EpochStats

F = TypeVar("F", bound=Callable[..., Any])


class ShardedBatchSampler(Sampler[int]):
    """This rank's indices: its contiguous slice of every global batch of one shared permutation.

    Args:
        num_samples: dataset length.
        global_batch: B, the batch over all ranks (divisible by `world`).
        rank, world: this process and the number of processes.
        seed: epoch e draws the permutation from a generator seeded with epoch_seed(seed, e).

    Use with `DataLoader(batch_size=B // world, drop_last=True)`; the incomplete last global
    batch is dropped on every rank.
    """

    def __init__(self, num_samples: int, global_batch: int, *, rank: int = 0, world: int = 1,
                 seed: int = 0) -> None:
        if global_batch % world:
            raise UserError(
                f"train.batch_size={global_batch} is not divisible by the {world} processes")
        self.num_samples, self.global_batch = num_samples, global_batch
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return (self.num_samples // self.global_batch) * (self.global_batch // self.world)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(epoch_seed(self.seed, self.epoch))
        perm = torch.randperm(self.num_samples, generator=g)
        mine = gdist.rank_slices(perm, self.global_batch // self.world, self.rank, self.world)
        return iter(mine.tolist())


class StridedSampler(Sampler[int]):
    """Indices rank, rank + world, ... in order: an evaluation shard, no padding, no repeats."""

    def __init__(self, num_samples: int, *, rank: int = 0, world: int = 1) -> None:
        self.indices = range(rank, num_samples, world)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


def train_sampler(num_samples: int, global_batch: int, seed: int) -> ShardedBatchSampler:
    return ShardedBatchSampler(num_samples, global_batch, rank=gdist.rank(),
                               world=gdist.world_size(), seed=seed)


def eval_sampler(num_samples: int) -> StridedSampler | None:
    """This rank's evaluation shard under DDP; None (the whole set in order) on one process."""
    if gdist.world_size() == 1:
        return None
    return StridedSampler(num_samples, rank=gdist.rank(), world=gdist.world_size())


def gpu_loader_shard() -> dict[str, int]:
    """Keyword arguments that make a GPUTensorLoader read this rank's shard."""
    return {"rank": gdist.rank(), "world_size": gdist.world_size()}


def convert_norms(model: nn.Module, cfg: Config, local_batch: int) -> nn.Module:
    """Apply the recipe's batch-norm choice: model.ghost_bn=G (groups of G samples) or
    model.sync_bn=true (statistics over the global batch); neither: per-process statistics."""
    m = cfg["model"]
    ghost, sync = m["ghost_bn"], bool(m["sync_bn"])
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


def wrap_for_training(train_module: nn.Module, device: torch.device, cfg: Config) -> nn.Module:
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


def reduce_counter(counter: ConfusionCounter) -> None:
    """Sum the evaluation counts of every rank's shard (no-op on one process)."""
    if gdist.world_size() == 1:
        return
    for t in (counter.correct, counter.total, counter.topk_hits):
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
