"""Training samples whose augmentation is seeded by their position in the epoch.

A DataLoader's workers each draw from their own random stream, so which augmentation a sample
gets depends on which worker loaded it and on what that worker loaded before; none of it can be
saved from the main process. Seeding every sample from (epoch seed, its position in the epoch's
global order) instead makes it get the same augmentation whatever the number of workers or
processes, and lets an epoch start at any position (`start_at`) exactly as if the earlier
positions had been read: what resuming from a checkpoint inside an epoch needs.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

from gpaco.data.samplers import ShardedBatchSampler
from gpaco.seeding import epoch_seed


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


def _seed_cpu(seed: int) -> None:
    # the CPU sources only: torch.manual_seed would also reseed the GPUs' generators
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)


class SeededSamples(Dataset):
    """`dataset[index]` under the seed its `PositionSeededSampler` gives: item `(seed, index)`.

    The CPU random sources (random, numpy, torch) are seeded before the sample is read. In the
    main process (no loader workers) their previous states are put back afterwards, so that the
    training step's own draws (shuffle-BN's permutation) go on as if no sample had been read.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: list[tuple[int, int]]) -> list[Any]:
        """A batch at once (the DataLoader's fetcher asks for it so): in the main process the
        random states are saved and put back once per batch, not per sample (~0.2 ms a
        sample, 15 % of a CIFAR two-view sample)."""
        if get_worker_info() is not None:  # a loader worker: its random state is its own
            return [self._read(item) for item in items]
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            return [self._read(item) for item in items]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])

    def _read(self, item: tuple[int, int]) -> Any:
        seed, index = item
        _seed_cpu(seed)
        return self.dataset[index]
