"""Per-epoch learning-rate schedules of the papers' recipes."""

from __future__ import annotations

import math

import torch

from .config import ScheduleConfig


def warmup_factor(epoch: int, warmup_epochs: int) -> float | None:
    """Linear warm-up lr*(epoch+1)/W for epoch < W, as the authors' scripts; None after it.

    The authors' CIFAR script warms up while `epoch <= 10`, so its epoch 10 runs at 1.1 x lr; gpaco
    stops warming up at W (epoch 10 runs at lr), a deliberate fix of that off-by-one.
    """
    if epoch < warmup_epochs:
        return (epoch + 1) / warmup_epochs
    return None


def step_factor(epoch: int, milestones: list[int], decay: float) -> float:
    """x decay for every milestone passed: epochs (0-based) after m, as the authors' `epoch > m`.

    CIFAR (400 epochs, milestones 320 and 360): epochs 321-360 at 0.1 x lr, 361-399 at 0.01 x lr.
    """
    return decay ** sum(epoch > m for m in milestones)


def cosine_factor(epoch: int, warmup_epochs: int, epochs: int) -> float:
    """Half cosine after warm-up: 0.5*(1+cos(pi*(e-W+1)/(E-W+1))), as in `paco_lt.py`."""
    progress = (epoch - warmup_epochs + 1) / (epochs - warmup_epochs + 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_at(epoch: int, base_lr: float, schedule: ScheduleConfig) -> float:
    """Learning rate for `epoch` (0-based) under the config's `schedule` section."""
    warm = warmup_factor(epoch, schedule.warmup_epochs)
    if warm is not None:
        return base_lr * warm
    if schedule.name == "cosine":
        return base_lr * cosine_factor(epoch, schedule.warmup_epochs, schedule.epochs)
    return base_lr * step_factor(epoch, schedule.milestones, schedule.decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group `lr` times its own `lr_scale` (timm's convention: 1 if
    absent), so per-group scales such as layer-wise decay survive every schedule step."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
