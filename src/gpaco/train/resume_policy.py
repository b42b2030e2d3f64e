"""What `--resume` may change: not the learning-rate schedule nor what fixes the sample order.

A resumed run continues the schedule it started with. Changing `schedule.epochs` (or the
warm-up, milestones, decay, schedule name, base lr) so that the learning rate of the epochs
still to run changes would give a curve no single run follows, and the numbers would match
neither setting: refused, naming each key. A change that leaves every remaining lr as it was
continues the original schedule and is accepted (more or fewer epochs of a step schedule before
or after its milestones). The batch size and seed fix the order of batches: never changed. To
train on with another schedule, start a new run from the weights (`model.pretrained=...`).
"""

from __future__ import annotations

import math
from typing import Any

from gpaco.errors import UserError

from gpaco.config import Config, OptimConfig, ScheduleConfig, as_flat, flat_dict
from gpaco.train.schedule import lr_at

# Keys fixed when a run starts: the lr schedule (schedule.*) and its base, and the batch order.
FIXED_PREFIXES = ("schedule.",)
FIXED_KEYS = ("optim.lr", "train.batch_size", "seed")
LR_KEYS = ("optim.lr",)  # with schedule.*: changes allowed where the lr ahead stays the same
FRACTIONS = (0.0, 0.25, 0.5, 0.75)  # where in each epoch the per-step schedules are compared


def _fixed(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if k.startswith(FIXED_PREFIXES) or k in FIXED_KEYS}


def _same_lr_ahead(before: dict[str, Any], now: Config, start_epoch: int) -> bool:
    """Whether every epoch from `start_epoch` on runs at the lr the original schedule gives."""
    optim, schedule = OptimConfig(**before["optim"]), ScheduleConfig(**before["schedule"])
    return all(math.isclose(lr_at(e + f, optim.lr, schedule),
                            lr_at(e + f, now.optim.lr, now.schedule), rel_tol=1e-9)
               for e in range(start_epoch, now.schedule.epochs) for f in FRACTIONS)


def check_resume(saved: dict[str, Any] | None, cfg: Config, source: str,
                 start_epoch: int = 0) -> None:
    """Refuse to resume the run whose checkpoint config is `saved` (after `start_epoch`
    epochs) with a schedule that changes the lr ahead, or another batch size or seed."""
    if not isinstance(saved, dict):
        raise UserError(f"{source} holds no run config (not a checkpoint written by gpaco "
                        "train) and cannot be resumed")
    # The saved config was resolved when the run started: its values are what ran.
    before, now = _fixed(flat_dict(saved)), _fixed(as_flat(cfg))
    keys = [k for k in {**before, **now} if before.get(k) != now.get(k)]
    if all(k.startswith(FIXED_PREFIXES) or k in LR_KEYS for k in keys) and \
            _same_lr_ahead(saved, cfg, start_epoch):
        return
    changed = [f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in keys]
    if changed:
        raise UserError(f"--resume continues the run's own schedule; refusing the change of "
                        f"{', '.join(changed)}. To train on with a new schedule, start a new run "
                        f"from its weights: model.pretrained={source}")
