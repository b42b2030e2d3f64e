"""The tasks: one table, name -> task. A task owns its method table, its dataset table, its own
config keys and everything the trainer asks of it (gpaco.train.task.Task).

A new task is a class with that interface and an `entry()` for the config, registered here
(`register_task`), by gpaco itself or by a user's own code.
"""

from __future__ import annotations

from typing import Any

from gpaco.config import Catalogue, Config
from gpaco.config.options import Entry, options_of
from gpaco.errors import UserError
from gpaco.tasks.classification.task import ClassificationTask
from gpaco.tasks.segmentation.task import SegmentationTask
from gpaco.train.optimizer import OPTIMIZERS
from gpaco.train.schedule import SCHEDULES

TASKS: dict[str, Any] = {
    "classification": ClassificationTask(),
    "segmentation": SegmentationTask(),
}


def register_task(name: str, task: Any) -> None:
    """Add a task (see gpaco.train.task.Task and the two above) under `task=NAME`."""
    if name in TASKS:
        raise UserError(f"a task {name!r} exists already")
    TASKS[name] = task


def catalogue() -> Catalogue:
    """Every choice a config may make, as the config sees it (gpaco.config.options)."""
    return Catalogue(
        tasks={name: task.entry() for name, task in TASKS.items()},
        choices={"optim.name": {n: Entry(options_of(o.options, "optim"), o.check)
                                for n, o in OPTIMIZERS.items()},
                 "schedule.name": {n: Entry(options_of(s.options, "schedule"), s.check)
                                   for n, s in SCHEDULES.items()}})


def pictures() -> dict[str, tuple[str, ...]]:
    """Each task's picture files, in the order `gpaco report` embeds them."""
    return {name: tuple(getattr(task, "pictures", ())) for name, task in TASKS.items()}


def task_of(cfg: Config) -> Any:
    """The task object of a resolved config."""
    if cfg.task not in TASKS:
        raise UserError(f"task must be one of {', '.join(TASKS)}, not {cfg.task!r}")
    return TASKS[cfg.task]
