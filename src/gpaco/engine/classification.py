"""The classification task as the engine runs it (see engine.tasks): builders of engine.build,
top-1 / many / medium / few evaluation, per-class accuracy files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gpaco.losses import PaCoLoss, center_weights
from gpaco.metrics import EvalResult, format_pct

from . import parallel
from .build import Data, build_criterion, build_data, build_model
from .checkpoint_eval import evaluate_loaded
from .forward import TrainForward
from .input_check import check_model_takes_input
from .loop import evaluate
from .report import write_per_class_csv, write_plots
from . import run_dir as rd

if TYPE_CHECKING:
    from .config import Config
    from .trainer import Run


def class_names(data: Data) -> list[str]:
    names = getattr(data.train, "classes", None)
    return list(names) if names else [str(c) for c in range(data.num_classes)]


class ClassificationTask:
    def build_data(self, cfg: Config, device: torch.device, *, with_train: bool = True,
                   augment_in_step: bool = False) -> Data:
        return build_data(cfg, device, with_train=with_train, augment_in_step=augment_in_step)

    def build_model(self, cfg: Config, data: Data) -> nn.Module:
        return build_model(cfg, data.num_classes)

    def check_input(self, cfg: Config, model: nn.Module, device: torch.device) -> None:
        check_model_takes_input(model, cfg.data.image_size, device, cfg.model.backbone)

    def build_criterion(self, cfg: Config, data: Data) -> nn.Module:
        return build_criterion(cfg, data.num_classes, data.class_counts)

    def train_forward(self, model: nn.Module) -> nn.Module:
        return TrainForward(model)

    def start_lines(self, run: Run) -> list[str]:
        if isinstance(run.criterion, PaCoLoss):
            return [_center_weight_line(run.cfg, run.data.class_counts)]
        return []

    def evaluate(self, run: Run, loader: Any) -> EvalResult:
        t = run.cfg.train
        return evaluate(run.model, loader, run.data.num_classes, run.data.class_counts,
                        run.device, amp=t.amp, channels_last=t.channels_last,
                        reduce=parallel.reduce_counter)  # each rank evaluated its shard

    def summary(self, result: EvalResult) -> dict[str, Any]:
        return result.summary()

    def score(self, summary: dict[str, Any]) -> float:
        return summary["top1"]

    def describe(self, split: str, summary: dict[str, Any]) -> str:
        f = format_pct
        return (f"{split} top1 {summary['top1']:.2f} top5 {summary['top5']:.2f} | many "
                f"{f(summary['many'])} medium {f(summary['medium'])} few {f(summary['few'])}")

    def final_line(self, summary: dict[str, Any]) -> str:
        f = format_pct
        return (f"final (last epoch) accuracy: overall {f(summary['top1'])} | many "
                f"{f(summary['many'])} | medium {f(summary['medium'])} | few {f(summary['few'])}")

    def evaluate_checkpoint(self, ckpt: dict[str, Any], cfg: Config, split: str,
                            path: str) -> str:
        result = evaluate_loaded(ckpt, cfg, split, path)
        f = format_pct
        return (f"{split}: top1 {f(result.top1)} top5 {f(result.top5)} | many {f(result.many)} "
                f"| medium {f(result.medium)} | few {f(result.few)} "
                f"({result.num_samples} images)")

    def write_outputs(self, run: Run, result: EvalResult) -> None:
        folder, data = run.folder, run.data
        write_per_class_csv(folder, class_names(data), data.class_counts, result.per_class)
        if run.cfg.output.plots:
            write_plots(folder, data.class_counts, result.per_class, rd.read_metrics(folder),
                        class_names(data))


def _center_weight_line(cfg: Config, class_counts: list[int]) -> str:
    """The extra head-class discount of this run's alpha (gpaco.losses.center_weight)."""
    contrast = 2 * cfg.train.batch_size + cfg.model.queue_size
    w = center_weights(class_counts, alpha=cfg.loss.alpha, beta=cfg.loss.beta,
                       contrast_size=contrast)
    return (f"center share at the loss optimum: {float(w.min()):.2f} for the most frequent class, "
            f"{float(w.max()):.2f} for the rarest (alpha={cfg.loss.alpha}, "
            f"{contrast} contrast samples; docs/rebalancing.md)")
