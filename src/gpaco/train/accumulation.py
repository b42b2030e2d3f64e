"""Gradient accumulation: one optimiser step over a batch run as several micro-batches.

`train.batch_size` stays the batch of an optimiser step; the loader hands each process its
whole share and the step splits it, so the samples, the lr schedule's steps and the epoch
length do not depend on `train.accum_iter`. (MAE's 1024 = 8 GPUs x 32 x 4 micro-steps is
`batch_size=1024 accum_iter=4` on 8 processes.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from gpaco.errors import UserError


def micro_batches(views: list[torch.Tensor], labels: torch.Tensor | None,
                  parts: int) -> Iterator[tuple[list[torch.Tensor], torch.Tensor | None]]:
    """`parts` equal slices of the batch (views and labels alike), in order."""
    if parts == 1:
        yield views, labels
        return
    batch = views[0].shape[0]
    if batch % parts:
        raise UserError(f"a batch of {batch} images does not split into "
                        f"train.accum_iter={parts} equal micro-batches")
    size = batch // parts
    for i in range(parts):
        part = slice(i * size, (i + 1) * size)
        yield [v[part] for v in views], None if labels is None else labels[part]


def sync_on_last(module: nn.Module, index: int, parts: int) -> contextlib.AbstractContextManager:
    """DDP's `no_sync` for all but the last micro-batch (one gradient all-reduce per step)."""
    no_sync = getattr(module, "no_sync", None)
    return no_sync() if no_sync is not None and index < parts - 1 else contextlib.nullcontext()
