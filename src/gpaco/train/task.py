"""What the trainer asks of a task (gpaco.tasks implements it for classification and
segmentation): the trainer is handed one and imports none."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch
from torch import nn

from gpaco.config import Config
from gpaco.train.data import Data

if TYPE_CHECKING:
    from gpaco.train.trainer import Run


class Task(Protocol):
    def build_data(self, cfg: Config, device: torch.device, *, with_train: bool = True,
                   augment_in_step: bool = False) -> Data: ...

    def build_model(self, cfg: Config, data: Data) -> nn.Module: ...

    def build_criterion(self, cfg: Config, data: Data) -> nn.Module: ...

    def train_forward(self, model: nn.Module) -> nn.Module:
        """The module the step calls as `module(views, labels)`; its output's fields are the
        criterion's arguments (train.forward.forward_loss)."""

    def batch_mix(self, cfg: Config, data: Data) -> Callable | None:
        """A hook that mixes each training batch (Mixup / CutMix), or None."""

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

    # Optional: `check_input(cfg, data, model, device)` refuses, in one line and before the
    # first step, a model that cannot take the run's input (classification: its image size and
    # its test images' size; segmentation: its training crop).
    # Optional: `pictures`, the picture files `write_outputs` leaves in the run folder, in the
    # order `gpaco report` embeds them.

    def checkpoint_extras(self, data: Data) -> dict[str, Any]:
        """What a checkpoint carries beside the weights for this task (class names...)."""

    def write_outputs(self, run: Run, result: Any) -> None:
        """The result files of a finished run (rank 0)."""
