"""What every task hands the trainer as its data, the device of a run, and the per-sample loader
of a dataset (seeded, resumable, sharded over processes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gpaco import distributed as gdist
from gpaco.data.samplers import ShardedBatchSampler, StridedSampler
from gpaco.data.seeded_samples import PositionSeededSampler, SeededSamples
from gpaco.errors import UserError
from gpaco.train.cpu import choose_workers


@dataclass
class Data:
    train: Dataset | None  # None when built for evaluation only
    test: Dataset
    val: Dataset | None
    train_loader: Iterable | None
    test_loader: Iterable
    val_loader: Iterable | None
    num_classes: int
    class_counts: list[int]
    augment: list[Callable] | None = None  # views the training step applies itself, if any
    # What metrics.jsonl, summary.json and the printed lines call the `test` dataset's split
    # (segmentation: "val" for the benchmarks whose papers evaluate on their val split).
    test_name: str = "test"


def resolve_device(name: str) -> torch.device:
    """`auto` / `cuda` mean this process's GPU (torchrun's LOCAL_RANK), or the CPU for `auto`."""
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    device = torch.device("cuda" if name == "auto" else name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"train.device={name} but no CUDA device is available")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", gdist.local_rank())
    return device


def cpu_loader(ds: Dataset, batch: int, train: bool, workers: int | str, pin: bool,
                seed: int, collate_fn: Callable | None = None) -> DataLoader:
    # Training: this rank's slice of each global batch of one seeded permutation (the same on
    # every process count, see data/samplers.py), each sample augmented under a seed of its
    # position (data/seeded_samples.py: any worker count, resumable inside an epoch);
    # evaluation: a strided shard under DDP.
    rank, world = gdist.rank(), gdist.world_size()
    sampler: Sampler | None = None
    if train:
        order = ShardedBatchSampler(len(ds), batch, rank=rank, world=world, seed=seed)
        sampler, ds = PositionSeededSampler(order, seed=seed), SeededSamples(ds)
    elif world > 1:
        sampler = StridedSampler(len(ds), rank=rank, world=world)
    return DataLoader(ds, batch_size=batch, shuffle=False, sampler=sampler,
                      num_workers=choose_workers(workers, on_gpu=pin), pin_memory=pin,
                      drop_last=train, collate_fn=collate_fn)
