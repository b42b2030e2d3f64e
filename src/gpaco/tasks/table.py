"""What a task is: one table, read by the config (which choices and keys a run may have) and by
the engine (`gpaco.tasks.runners`: how the run's objects are built, evaluated and reported).

A task has its own method table, its own dataset table and the config keys only it uses, each
with its default (None: the config field's own default stands). A key of another task is an
error naming the task that uses it (see gpaco.config.core).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gpaco.data.registry import DATASETS
from gpaco.data.segmentation import SEGMENTATION_DATASETS
from gpaco.errors import UserError
from gpaco.tasks.classification.methods import METHODS
from gpaco.tasks.segmentation.methods import SEGMENTATION_METHODS


@dataclass(frozen=True)
class Task:
    """methods: name -> an entry with `model_options` / `loss_options` (key -> default);
    datasets: name -> dataset class (torchvision signature); keys: dotted config key ->
    default, the keys only this task uses; summary: one line."""

    methods: Mapping[str, Any]
    datasets: Mapping[str, Callable[..., Any]]
    keys: Mapping[str, Any]
    summary: str


_CLASSIFICATION_KEYS = MappingProxyType(dict.fromkeys((
    "data.views", "data.test_transform", "data.image_size", "data.randaug_n", "data.randaug_m",
    "data.batched_augment", "data.mixup_alpha", "data.cutmix_alpha", "model.freeze",
    "model.ghost_bn", "model.classifier_init_std", "train.cuda_graph")))

# The defaults are mmseg's (ADE20K-like); every recipe states its own.
_SEGMENTATION_KEYS = MappingProxyType({
    "data.crop_size": [512, 512], "data.scale": [2048, 512], "data.ratio_range": [0.5, 2.0],
    "data.cat_max_ratio": 0.75,
    "model.arch": "deeplabv3plus", "model.decoder_channels": 512, "model.aux_channels": 256,
    "model.output_stride": None, "loss.aux_weight": 0.4, "loss.ce_average": "all",
    "inference.mode": "whole", "inference.crop": None, "inference.stride": None,
    "inference.ratios": [1.0], "inference.flip": False, "inference.predictions": 4,
})

TASKS: Mapping[str, Task] = MappingProxyType({
    "classification": Task(METHODS, DATASETS, _CLASSIFICATION_KEYS,
                           "image classification: top-1 and many / medium / few accuracy"),
    "segmentation": Task(SEGMENTATION_METHODS, SEGMENTATION_DATASETS, _SEGMENTATION_KEYS,
                         "semantic segmentation: mIoU / mAcc / aAcc and per-class IoU"),
})


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"task must be one of {', '.join(TASKS)}, not {name!r}")
    return TASKS[name]


def tasks_using(path: str) -> list[str]:
    """The tasks whose own keys include `path` (empty: a key every task shares)."""
    return [name for name, task in TASKS.items() if path in task.keys]


def task_of_dataset(name: str) -> str | None:
    """The task whose dataset table holds `name`, for error messages."""
    return next((t for t, task in TASKS.items() if name in task.datasets), None)


def methods_using(task: Task, section: str, key: str) -> list[str]:
    """The methods of `task` whose `section` ("model" or "loss") options include `key`."""
    return [name for name, m in task.methods.items()
            if key in (m.model_options if section == "model" else m.loss_options)]
