"""Learning-rate schedules of the papers' recipes, and their application at each optimiser step.

`step` and `cosine` (the PaCo / GPaCo ResNet recipes) change the lr once per epoch;
`warmup_cosine` (MAE's ViT fine-tuning) and `poly` (mmsegmentation's iteration schedules)
change it before every optimiser step, from the fractional epoch `epoch + step / steps`.
`lr_at` takes that fractional epoch for all four, so one `ScheduledStep` serves every run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from gpaco.config import Config, ScheduleConfig
from gpaco.config.options import NON_NEGATIVE, POSITIVE, NoOptions
from gpaco.errors import UserError
from gpaco.train.step import Step


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


def warmup_cosine_lr(epoch: float, lr: float, *, min_lr: float, warmup_epochs: float,
                     epochs: float) -> float:
    """MAE's `adjust_learning_rate`: linear from 0 over W epochs, then a half cosine from lr
    down to min_lr at E: `min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * (e - W) / (E - W)))`."""
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    progress = (epoch - warmup_epochs) / (epochs - warmup_epochs)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def poly_lr(epoch: float, lr: float, *, min_lr: float, power: float, warmup_epochs: float,
            epochs: float) -> float:
    """mmcv's `PolyLrUpdaterHook` with linear warm-up: `(lr - min_lr) * (1 - e/E)**power +
    min_lr` over the whole run, times `e / W` during the warm-up (mmcv's warm-up multiplies the
    regular lr; its warmup_ratio of 1e-6 is taken as 0)."""
    regular = (lr - min_lr) * max(0.0, 1.0 - epoch / epochs) ** power + min_lr
    return regular * epoch / warmup_epochs if epoch < warmup_epochs else regular


def _step(epoch: float, lr: float, s: ScheduleConfig) -> float:
    warm = warmup_factor(int(epoch), s.warmup_epochs)
    return lr * (warm if warm is not None else step_factor(int(epoch), s.milestones, s.decay))


def _cosine(epoch: float, lr: float, s: ScheduleConfig) -> float:
    warm = warmup_factor(int(epoch), s.warmup_epochs)
    return lr * (warm if warm is not None else cosine_factor(int(epoch), s.warmup_epochs,
                                                             s.epochs))


def _warmup_cosine(epoch: float, lr: float, s: ScheduleConfig) -> float:
    return warmup_cosine_lr(epoch, lr, min_lr=s.min_lr, warmup_epochs=s.warmup_epochs,
                            epochs=s.epochs)


def _poly(epoch: float, lr: float, s: ScheduleConfig) -> float:
    return poly_lr(epoch, lr, min_lr=s.min_lr, power=s.power, warmup_epochs=s.warmup_epochs,
                   epochs=s.epochs)


@dataclass
class StepOptions:
    milestones: list[int] = field(default_factory=lambda: [320, 360])
    decay: float = 0.1


@dataclass
class _Iterations:
    # Run this many optimiser steps in all (epochs then follows from the data, the last epoch
    # cut short) with a warm-up of warmup_iterations steps (gpaco.train.iterations); None:
    # whole epochs.
    iterations: int | None = field(default=None, metadata=POSITIVE)
    warmup_iterations: int = field(default=0, metadata=NON_NEGATIVE)


@dataclass
class WarmupCosineOptions(_Iterations):
    min_lr: float = field(default=1e-6, metadata=NON_NEGATIVE)


@dataclass
class PolyOptions(_Iterations):
    min_lr: float = field(default=0.0, metadata=NON_NEGATIVE)
    power: float = field(default=0.9, metadata=POSITIVE)


def _warmup_reaches_lr(cfg: Config) -> None:
    """step / cosine run warm-up epoch e at lr x (e+1)/W, so W = E still reaches optim.lr in
    the last epoch; warmup_cosine and poly rise continuously from 0 and reach it at W."""
    s = cfg.schedule
    per_epoch = SCHEDULES[s.name].per_epoch
    if s.warmup_epochs > s.epochs or (s.warmup_epochs == s.epochs and not per_epoch
                                      and s.epochs):
        bound = f"at most {s.epochs}" if per_epoch else f"below {s.epochs}"
        raise UserError(f"schedule.warmup_epochs ({s.warmup_epochs}) must be {bound} for "
                        f"{s.name} in schedule.epochs={s.epochs}: the lr would never reach "
                        "optim.lr; give fewer warm-up epochs (0: none) or more epochs")


def _step_checks(cfg: Config) -> None:
    _warmup_reaches_lr(cfg)
    m, epochs = cfg.schedule.milestones, cfg.schedule.epochs
    if m != sorted(set(m)):
        raise UserError(f"schedule.milestones must be increasing epochs, not {m}")
    # A milestone m lowers the lr of the (0-based) epochs after m: from epoch m + 2 counted from 1.
    unused = [x for x in m if x >= epochs - 1]
    if unused:
        raise UserError(f"schedule.milestones {m}: {unused} never take effect in "
                        f"schedule.epochs={epochs} (milestone m lowers the lr from epoch m + 2 "
                        f"on); give milestones below {epochs - 1} ([] for none) or more epochs")


def _min_lr_below_lr(cfg: Config) -> None:
    s = cfg.schedule
    if s.iterations is not None and s.warmup_iterations >= s.iterations:
        raise UserError(f"schedule.warmup_iterations ({s.warmup_iterations}) must be fewer "
                        f"than schedule.iterations ({s.iterations})")
    if cfg.schedule.min_lr > cfg.optim.lr:
        raise UserError(f"schedule.min_lr ({cfg.schedule.min_lr}) is above optim.lr "
                        f"({cfg.optim.lr})")


def _warmup_and_min_lr(cfg: Config) -> None:
    _warmup_reaches_lr(cfg)
    _min_lr_below_lr(cfg)


@dataclass(frozen=True)
class Schedule:
    """`lr(fractional epoch, peak lr, schedule section)`, its options (`schedule.*` keys) and a
    check of a resolved config."""

    lr: Callable[[float, float, ScheduleConfig], float]
    options: type
    check: Callable[[Config], None] | None = None
    per_epoch: bool = False  # the lr changes once per epoch (step, cosine), not every step


SCHEDULES: dict[str, Schedule] = {
    "step": Schedule(_step, StepOptions, _step_checks, per_epoch=True),
    "cosine": Schedule(_cosine, NoOptions, _warmup_reaches_lr, per_epoch=True),
    "warmup_cosine": Schedule(_warmup_cosine, WarmupCosineOptions, _warmup_and_min_lr),
    "poly": Schedule(_poly, PolyOptions, _warmup_and_min_lr),
}


def lr_at(epoch: float, base_lr: float, schedule: ScheduleConfig) -> float:
    """Learning rate at `epoch` (0-based; fractional for the per-step schedules)."""
    return SCHEDULES[schedule.name].lr(epoch, base_lr, schedule)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group `lr` times its own `lr_scale` (timm's convention: 1 if
    absent), so per-group scales such as layer-wise decay survive every schedule step."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


class ScheduledStep:
    """A step that first sets the lr of its fractional epoch (`begin_epoch` tells it where it
    is); with accumulation that is once per optimiser step, as MAE sets it on the first
    micro-batch of each window."""

    def __init__(self, step: Step, optimizer: torch.optim.Optimizer, base_lr: float,
                 schedule: ScheduleConfig):
        self.step, self.optimizer = step, optimizer
        self.base_lr, self.schedule = base_lr, schedule
        self.lays_out_inputs = step.lays_out_inputs
        self.epoch, self.steps_per_epoch, self.index = 0, 1, 0

    def begin_epoch(self, epoch: int, steps_per_epoch: int) -> float:
        """Start `epoch` of `steps_per_epoch` optimiser steps; returns its first lr."""
        self.epoch, self.steps_per_epoch, self.index = epoch, max(steps_per_epoch, 1), 0
        return self.lr()

    def skip(self, steps: int) -> None:
        """Go on from optimiser step `steps` of this epoch (resuming inside it)."""
        self.index = steps

    def lr(self) -> float:
        return lr_at(self.epoch + self.index / self.steps_per_epoch, self.base_lr, self.schedule)

    def __call__(self, views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        set_lr(self.optimizer, self.lr())
        self.index += 1
        return self.step(views, labels)
