"""A DataLoader replacement for small in-memory image sets kept on the device as uint8.

The whole set is copied once; each batch is an index_select plus batched augmentation
(`gpaco.data.batched_views`), with no worker processes and no host synchronisation inside an epoch.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gpaco.data.samplers import rank_slices
from gpaco.errors import UserError
from gpaco.seeding import epoch_seed

View = Callable[..., Tensor]  # view(batch_uint8_nchw, generator) -> float tensor


class TensorLoader:
    """Yield `(views, labels)` batches from uint8 images held on `device`.

    Args:
        images: (N, H, W, C) uint8 (numpy or tensor); stored on the device as (N, C, H, W).
        targets: (N,) integer labels.
        batch_size: images per batch.
        views: callables `view(batch, generator) -> Tensor`, one output view each (for example
            `batched_views.build_batched_transform(...)`); a single callable means one view.
        shuffle: draw a new permutation each epoch (else the natural order).
        drop_last: drop the last incomplete batch.
        device: where the data and the augmentation live.
        seed: epoch e uses a generator seeded with `epoch_seed(seed, e)`, for the permutation and all
            augmentation draws, so `set_epoch(e)` reproduces epoch e exactly (for resume).
        rank, world_size: read this process's shard under DDP (`batch_size` is then the
            per-process batch). Training (drop_last): every rank draws the same permutation
            and takes its contiguous slice of each global batch of batch_size * world_size,
            as `gpaco.data.samplers.ShardedBatchSampler` does; otherwise indices
            rank, rank + world_size, ... (an evaluation shard, no padding). Augmentation
            draws use a generator seeded per rank, so shards are not augmented alike.

    The epoch advances by one after each complete pass; `set_epoch` sets it explicitly.
    `generator_state()` after batch k and `start_at(k, that state)` make the next pass continue
    with batch k + 1 exactly (resuming from a checkpoint inside an epoch).
    """

    def __init__(
        self,
        images: Tensor | np.ndarray,
        targets: Tensor | Sequence[int] | np.ndarray,
        *,
        batch_size: int,
        views: Sequence[View] | View,
        shuffle: bool = True,
        drop_last: bool = True,
        device: str | torch.device = "cuda",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise UserError(
                f"TensorLoader needs uint8 (N, H, W, C) images, got {images.dtype} {tuple(images.shape)}"
            )
        targets = torch.as_tensor(targets, dtype=torch.long)
        if len(targets) != len(images):
            raise UserError(f"{len(images)} images but {len(targets)} targets")
        if batch_size <= 0:
            raise UserError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        # stored NCHW once, so that each batch is a plain index_select in the layout the ops use
        self.images = images.permute(0, 3, 1, 2).contiguous().to(self.device)
        self.targets = targets.to(self.device)
        self.batch_size = batch_size
        self.views: list[View] = [views] if callable(views) else list(views)
        if not self.views:
            raise UserError("TensorLoader needs at least one view")
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        self._generator_now: torch.Generator | None = None  # the running pass's augmentation draws
        self._start: tuple[int, Tensor] | None = None
        if not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is not in [0, {world_size})")
        self.rank, self.world_size = rank, world_size

    @classmethod
    def from_dataset(cls, dataset: Any, **kwargs: Any) -> TensorLoader:
        """Build from an in-memory dataset with `data` (N, H, W, 3) uint8 and `targets`."""
        data = getattr(dataset, "data", None)
        if not isinstance(data, (np.ndarray, Tensor)):
            raise UserError(
                f"{type(dataset).__name__} does not hold its images in memory (`data` is not an array); "
                "batched augmentation (data.batched_augment) needs an in-memory dataset such as CIFAR or "
                "Fashion-MNIST"
            )
        return cls(data, dataset.targets, **kwargs)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.targets) // (self.batch_size * self.world_size)
        n = len(range(self.rank, len(self.targets), self.world_size))
        return math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def generator_state(self) -> Tensor:
        """The augmentation generator's state after the batch last yielded."""
        if self._generator_now is None:
            raise RuntimeError("generator_state() is only defined during a pass")
        return self._generator_now.get_state()

    def start_at(self, step: int, generator_state: Tensor) -> None:
        """The next pass skips its first `step` batches and draws on from `generator_state`."""
        self._start = (int(step), generator_state)

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device=self.device)
        g.manual_seed(epoch_seed(self.seed, self.epoch))
        return g

    def _shard(self, order: Tensor) -> Tensor:
        """This rank's part of the epoch order (everything on one process)."""
        if self.world_size == 1:
            return order
        if self.drop_last:
            return rank_slices(order, self.batch_size, self.rank, self.world_size)
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[tuple[list[Tensor], Tensor]]:
        g = self._generator()
        n = len(self.targets)
        if self.shuffle:
            order = torch.randperm(n, generator=g, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        order = self._shard(order)
        if self.world_size > 1:  # same permutation everywhere, different augmentation draws
            g = torch.Generator(device=self.device)
            g.manual_seed(epoch_seed(self.seed, self.epoch, self.rank))
        first = 0
        if self._start is not None:
            (first, state), self._start = self._start, None
            g.set_state(state)
        self._generator_now = g
        for k in range(first, len(self)):  # slicing with Python ints: no host sync
            idx = order[k * self.batch_size : (k + 1) * self.batch_size]
            batch = self.images.index_select(0, idx)
            labels = self.targets.index_select(0, idx)
            yield [view(batch, g) for view in self.views], labels
        self.epoch += 1
