"""The classification evaluation pass: top-1/5, per-class and many / medium / few accuracy."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from gpaco.tasks.classification.metrics import ConfusionCounter, EvalResult, summarize
from gpaco.train.amp import autocast
from gpaco.train.loop import as_views, to_device


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, num_classes: int, train_counts: list[int],
             device: torch.device, *, amp: str = "none", channels_last: bool = False,
             reduce: Callable[[ConfusionCounter], None] | None = None) -> EvalResult:
    """Top-1/5, per-class and many/medium/few accuracy of raw classifier logits."""
    was_training = model.training
    model.eval()
    counter = ConfusionCounter(num_classes, device)
    for x, y in loader:
        x = to_device(as_views(x)[0], device, channels_last)
        with autocast(device, amp):
            logits = model(x)
        counter.update(logits.float(), y.to(device, non_blocking=True))
    if reduce is not None:
        reduce(counter)
    model.train(was_training)
    return summarize(counter, train_counts)
