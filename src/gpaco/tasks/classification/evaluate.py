"""The classification evaluation pass: top-1/5, per-class and many / medium / few accuracy and
calibration (gpaco.evaluation.calibration)."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from gpaco.evaluation.calibration import CalibrationCounter
from gpaco.tasks.classification.metrics import ConfusionCounter, EvalResult, shot_groups, summarize
from gpaco.train.amp import autocast
from gpaco.train.loop import as_views, to_device


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, num_classes: int, train_counts: list[int],
             device: torch.device, *, amp: str = "none", channels_last: bool = False,
             reduce: Callable[[ConfusionCounter], None] | None = None) -> EvalResult:
    """Top-1/5, per-class and many/medium/few accuracy and calibration of raw classifier
    logits."""
    was_training = model.training
    model.eval()
    counter = ConfusionCounter(num_classes, device)
    calibration = CalibrationCounter(num_classes, device)
    for x, y in loader:
        x = to_device(as_views(x)[0], device, channels_last)
        with autocast(device, amp):
            logits = model(x)
        y = y.to(device, non_blocking=True)
        counter.update(logits.float(), y)
        calibration.update(logits, y)
    if reduce is not None:
        reduce(counter)
        calibration.reduce()
    model.train(was_training)
    result = summarize(counter, train_counts)
    result.calibration = calibration.result(shot_groups(train_counts) if train_counts else None)
    return result
