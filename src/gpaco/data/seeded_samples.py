"""Training samples whose augmentation is seeded by their position in the epoch.

A DataLoader's workers each draw from their own random stream, so which augmentation a sample
gets depends on which worker loaded it and on what that worker loaded before; none of it can be
saved from the main process. Seeding every sample from (epoch seed, its position in the epoch's
global order) instead makes it get the same augmentation whatever the number of workers or
processes, and lets an epoch start at any position (`start_at`) exactly as if the earlier
positions had been read: what resuming from a checkpoint inside an epoch needs.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import Dataset, Sampler

from gpaco.data.samplers import ShardedBatchSampler
from gpaco.seeding import epoch_seed, seed_all


def sample_seed(epoch_seed_value: int, position: int) -> int:
    """The seed of the sample at `position` of an epoch whose seed is `epoch_seed_value`."""
    return (epoch_seed_value * 2_654_435_761 + position * 40_503 + 1) % 2**32


class PositionSeededSampler(Sampler[tuple[int, int]]):
    """Yields `(sample seed, index)` for the indices of this rank's `ShardedBatchSampler`.

    The seed of a sample is `sample_seed(epoch_seed(seed, epoch), g)`, g its position in the
    epoch's global order (global batch after global batch), the same on every process count.
    """

    def __init__(self, inner: ShardedBatchSampler, *, seed: int) -> None:
        self.inner, self.seed = inner, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.inner.set_epoch(epoch)

    def start_at(self, position: int) -> None:
        """The next pass begins at `position` (later passes at 0 again)."""
        self.start = position

    def __len__(self) -> int:
        return len(self.inner)

    def global_position(self, position: int) -> int:
        """Where this rank's `position` is in the epoch's global order."""
        local, world = self.inner.local_batch, self.inner.world
        batch, offset = divmod(position, local)
        return (batch * world + self.inner.rank) * local + offset

    def __iter__(self) -> Iterator[tuple[int, int]]:
        base = epoch_seed(self.seed, self.epoch)
        start, self.start = self.start, 0
        for position, index in enumerate(self.inner):
            if position >= start:
                yield sample_seed(base, self.global_position(position)), index


class SeededSamples(Dataset):
    """`dataset[index]` under the seed its `PositionSeededSampler` gives: item `(seed, index)`.

    Every random source (random, numpy, torch) is seeded before the sample is read, in the loader
    worker or, without workers, in the main process, where the training step's own randomness
    then follows from the batch's last sample seed, as deterministic as the rest.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        seed, index = item
        seed_all(seed)
        return self.dataset[index]
