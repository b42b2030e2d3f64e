"""Which samples each process reads: the layout that makes N processes train like one.

Every rank draws the same permutation of the dataset per epoch (seeded by seed and epoch);
global batch k is perm[kB:(k+1)B] with B = local batch x world, and rank r reads the r-th
contiguous slice of it. One process therefore sees [rank 0's samples; rank 1's; ...], so ghost
batch-norm groups dividing the local batch are the per-rank batch-norm batches, the queue receives
the keys in the same order, and the global contrast set (gpaco.distributed.gather_batch) holds
the same rows. Evaluation shards are strided (rank, rank + world, ...), without padding.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

from gpaco.seeding import epoch_seed


def rank_slices(order: Tensor, local_batch: int, rank: int, world: int) -> Tensor:
    """Rank `rank`'s entries of `order` for training: each global batch (local_batch x world
    consecutive entries) is cut into `world` contiguous slices and the rank takes its own; the
    incomplete last global batch is dropped."""
    steps = len(order) // (local_batch * world)
    return order[: steps * local_batch * world].view(steps, world, local_batch)[:, rank].reshape(-1)


class ShardedBatchSampler(Sampler[int]):
    """This rank's indices: its contiguous slice of every global batch of one shared permutation.

    Args:
        num_samples: dataset length.
        local_batch: this rank's batch (the global batch is local_batch x world).
        rank, world: this process and the number of processes.
        seed: epoch e draws the permutation from a generator seeded with epoch_seed(seed, e).

    Use with `DataLoader(batch_size=local_batch, drop_last=True)`; the incomplete last global
    batch is dropped on every rank.
    """

    def __init__(self, num_samples: int, local_batch: int, *, rank: int = 0, world: int = 1,
                 seed: int = 0) -> None:
        self.num_samples, self.local_batch = num_samples, local_batch
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return (self.num_samples // (self.local_batch * self.world)) * self.local_batch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(epoch_seed(self.seed, self.epoch))
        perm = torch.randperm(self.num_samples, generator=g)
        return iter(rank_slices(perm, self.local_batch, self.rank, self.world).tolist())


class StridedSampler(Sampler[int]):
    """Indices rank, rank + world, ... in order: an evaluation shard, no padding, no repeats."""

    def __init__(self, num_samples: int, *, rank: int = 0, world: int = 1) -> None:
        self.indices = range(rank, num_samples, world)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)
