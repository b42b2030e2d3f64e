"""Iteration-based runs (mmseg's IterBasedRunner): `schedule.iterations` optimiser steps in all
and a linear warm-up over `schedule.warmup_iterations` steps, for the per-step schedules (poly,
warmup_cosine). The run still walks whole passes over the data: it takes ceil(iterations /
steps per epoch) epochs, the last one cut short, and the lr schedule sees the run's length and
warm-up as fractional epochs, so that its progress is step / iterations exactly.
"""

from __future__ import annotations

import math

from gpaco.config import ScheduleConfig


def epochs_for(schedule: ScheduleConfig, steps_per_epoch: int) -> int:
    """The number of (possibly partial) epochs the run walks."""
    if schedule.iterations is None:
        return schedule.epochs
    return math.ceil(schedule.iterations / steps_per_epoch)


def steps_in_epoch(schedule: ScheduleConfig, epoch: int, steps_per_epoch: int) -> int:
    """Optimiser steps of 0-based `epoch` (the last one of an iteration run is short)."""
    if schedule.iterations is None:
        return steps_per_epoch
    return max(0, min(steps_per_epoch, schedule.iterations - epoch * steps_per_epoch))


def lr_schedule(schedule: ScheduleConfig, steps_per_epoch: int) -> ScheduleConfig:
    """The schedule `lr_at` reads: an iteration run's length and warm-up in fractional epochs."""
    if schedule.iterations is None:
        return schedule
    return schedule.replace(epochs=schedule.iterations / steps_per_epoch,
                            warmup_epochs=(schedule.warmup_iterations or 0) / steps_per_epoch)
