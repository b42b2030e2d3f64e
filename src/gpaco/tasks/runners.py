"""How the engine runs each task of `gpaco.tasks.table.TASKS`: the trainer asks the run's task for its
data, model, criterion, training forward, evaluation and result files, and holds no task's
specifics itself. A new task is an entry in gpaco.tasks.table plus a class with this interface here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from gpaco.errors import UserError

from gpaco.tasks.classification.build import Data
from gpaco.tasks.classification.checkpoint_eval import load_run_checkpoint
from gpaco.tasks.classification.runner import ClassificationTask
from gpaco.tasks.segmentation.runner import SegmentationTask

if TYPE_CHECKING:
    from gpaco.config.core import Config
    from gpaco.train.trainer import Run


class TaskRunner(Protocol):
    def build_data(self, cfg: Config, device: torch.device, *, with_train: bool = True,
                   augment_in_step: bool = False) -> Data: ...

    def build_model(self, cfg: Config, data: Data) -> nn.Module: ...

    def build_criterion(self, cfg: Config, data: Data) -> nn.Module: ...

    def train_forward(self, model: nn.Module) -> nn.Module:
        """The module the step calls as `module(views, labels)`; its output's fields are the
        criterion's arguments (engine.forward.forward_loss)."""

    def start_lines(self, run: Run) -> list[str]:
        """What the run prints before its first epoch (rank 0)."""

    def evaluate(self, run: Run, loader: Any) -> Any:
        """A result of the whole split (each rank evaluates its shard; counts are summed)."""

    def summary(self, result: Any) -> dict[str, Any]:
        """The result as JSON numbers (metrics.jsonl, summary.json, checkpoints)."""

    def score(self, summary: dict[str, Any]) -> float:
        """Higher is better: the validation number (of a summary) that picks `best.pt`."""

    def describe(self, split: str, summary: dict[str, Any]) -> str:
        """One line of a result's summary, as printed after an evaluation."""

    def final_line(self, summary: dict[str, Any]) -> str:
        """The last evaluation, as `gpaco train` prints it at the end."""

    def write_outputs(self, run: Run, result: Any) -> None:
        """The result files of a finished run (rank 0)."""

    def evaluate_checkpoint(self, ckpt: dict[str, Any], cfg: Config, split: str,
                            path: str) -> str:
        """`gpaco eval` of a run's checkpoint `path` (loaded as `ckpt`): the line it prints."""


RUNNERS: dict[str, TaskRunner] = {
    "classification": ClassificationTask(),
    "segmentation": SegmentationTask(),
}


def runner_for(cfg: Config) -> TaskRunner:
    if cfg.task not in RUNNERS:
        raise UserError(f"task must be one of {', '.join(RUNNERS)}, not {cfg.task!r}")
    return RUNNERS[cfg.task]


def evaluate_run_checkpoint(path: str, split: str = "test", overrides: list[str] = ()) -> str:
    """`gpaco eval --checkpoint RUN/last.pt`: the checkpoint's task evaluates it on `split`."""
    ckpt, cfg = load_run_checkpoint(path, overrides)
    return runner_for(cfg).evaluate_checkpoint(ckpt, cfg, split, path)


