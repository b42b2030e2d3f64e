"""The classification task: its tables (methods, datasets), its own keys, and what the trainer
asks of it (train/task.py): builders (build.py), top-1 / many / medium / few evaluation,
per-class accuracy files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gpaco.config import Config
from gpaco.config.options import TaskEntry
from gpaco.evaluation.plots import RELIABILITY_PNG, write_reliability
from gpaco.tasks.classification import options
from gpaco.tasks.classification.build import (build_batch_mix, build_criterion, build_data,
                                              build_model)
from gpaco.tasks.classification.checkpoint_eval import evaluate_loaded
from gpaco.tasks.classification.datasets import DATASETS
from gpaco.tasks.classification.evaluate import evaluate
from gpaco.tasks.classification.methods import METHODS
from gpaco.tasks.classification.metrics import EvalResult, format_pct, result_lines
from gpaco.tasks.entries import task_entry
from gpaco.tasks.classification.report import PICTURES, write_per_class_csv, write_plots
from gpaco.train import parallel
from gpaco.train import run_dir as rd
from gpaco.train.data import Data
from gpaco.train.forward import TrainForward
from gpaco.train.input_check import check_model_takes_input, evaluation_input_size

if TYPE_CHECKING:
    from gpaco.train.trainer import Run


def _sum_over_ranks(counter: Any) -> None:
    parallel.sum_over_ranks(counter.correct, counter.total, counter.topk_hits)


def class_names(data: Data) -> list[str]:
    names = getattr(data.train, "classes", None)
    return list(names) if names else [str(c) for c in range(data.num_classes)]


class ClassificationTask:
    """Image classification: top-1 and many / medium / few accuracy."""

    methods = METHODS
    datasets = DATASETS
    pictures = PICTURES

    def entry(self) -> TaskEntry:
        """The task as the config sees it (gpaco.config.options)."""
        return task_entry(options.OPTIONS, options.check, self.methods, self.datasets,
                          options.CONDITIONS, options.settle)

    def build_data(self, cfg: Config, device: torch.device, *, with_train: bool = True,
                   augment_in_step: bool = False) -> Data:
        return build_data(cfg, device, with_train=with_train, augment_in_step=augment_in_step)

    def build_model(self, cfg: Config, data: Data) -> nn.Module:
        return build_model(cfg, data.num_classes)

    def model_for(self, cfg: Config, num_classes: int) -> nn.Module:
        """The run's model for `num_classes` classes, without its data (gpaco config)."""
        return build_model(cfg, num_classes)

    def check_input(self, cfg: Config, data: Data, model: nn.Module,
                    device: torch.device) -> None:
        size = cfg.data.image_size
        check_model_takes_input(model, size, device, cfg.model.backbone)
        # In-memory datasets are evaluated at their own size, whatever data.image_size crops
        # for training (Fashion-MNIST 28, CIFAR 32): the model must take that size too.
        test_size = evaluation_input_size(data.test_loader)
        if test_size is not None and test_size != (size, size):
            h, w = test_size
            check_model_takes_input(
                model, test_size, device, cfg.model.backbone,
                key=f"the {cfg.data.dataset} test images' size", fix=(
                    f"data.image_size={size} sets the training crops only; set data.image_size={h} "
                    f"or build the model for {h}x{w} (e.g. model.backbone_kwargs={{img_size: {h}}}"
                    " for a ViT)"))

    def build_criterion(self, cfg: Config, data: Data) -> nn.Module:
        return build_criterion(cfg, data.num_classes, data.class_counts)

    def train_forward(self, model: nn.Module) -> nn.Module:
        return TrainForward(model)

    def batch_mix(self, cfg: Config, data: Data) -> Any:
        return build_batch_mix(cfg, data.num_classes)

    def checkpoint_extras(self, data: Data) -> dict[str, Any]:
        return {"classes": class_names(data)}

    def start_lines(self, run: Run) -> list[str]:
        line = self.methods[run.cfg.method].start_line
        return [line(run.cfg, run.data.class_counts)] if line is not None else []

    def evaluate(self, run: Run, loader: Any) -> EvalResult:
        t = run.cfg.train
        return evaluate(run.model, loader, run.data.num_classes, run.data.class_counts,
                        run.device, amp=t.amp, channels_last=t.channels_last,
                        reduce=_sum_over_ranks)  # each rank evaluated its shard

    def summary(self, result: EvalResult) -> dict[str, Any]:
        return result.summary()

    def score(self, summary: dict[str, Any]) -> float:
        return summary["top1"]

    def describe(self, split: str, summary: dict[str, Any]) -> str:
        f = format_pct
        ece = (summary.get("calibration") or {}).get("overall") or {}
        return (f"{split} top1 {summary['top1']:.2f} top5 {summary['top5']:.2f} | many "
                f"{f(summary['many'])} medium {f(summary['medium'])} few {f(summary['few'])}"
                + (f" | ECE {ece['ece']:.2f}" if ece else ""))

    def final_line(self, summary: dict[str, Any]) -> str:
        f = format_pct
        return (f"final (last epoch) accuracy: overall {f(summary['top1'])} | many "
                f"{f(summary['many'])} | medium {f(summary['medium'])} | few {f(summary['few'])}")

    def evaluate_file(self, ckpt: dict[str, Any], cfg: Config, split: str | None,
                      path: str) -> EvalResult:
        """`gpaco eval` of a run's checkpoint `path` (loaded as `ckpt`) on `split` (None:
        test)."""
        return evaluate_loaded(ckpt, cfg, split or "test", path)

    def file_line(self, split: str | None, result: EvalResult) -> str:
        """What `gpaco eval` prints of `evaluate_file`'s result."""
        return result_lines(split or "test", result)

    def write_outputs(self, run: Run, result: EvalResult) -> None:
        folder, data = run.folder, run.data
        write_per_class_csv(folder, class_names(data), data.class_counts, result.per_class)
        if run.cfg.output.plots:
            write_plots(folder, data.class_counts, result.per_class, rd.read_metrics(folder),
                        class_names(data))
            write_reliability(folder / RELIABILITY_PNG, result.calibration,
                              title="test, last epoch")
