"""The keys every run has, whatever its task, method, dataset, optimiser or schedule.

The keys a choice owns are declared by their owner, once, with type and default: a method's
`model.*` / `loss.*` options by its entry in its task's method table, a dataset's `data.*` options
by its class's keyword-only parameters, a task's own keys (and sections, such as segmentation's
`inference`) by the task, an optimiser's or schedule's by its table in train/.
"""

from __future__ import annotations

from typing import Any, Literal

from .section import Section


class DataConfig(Section):
    dataset: str = "embedded"  # a key of the task's dataset table
    root: str | None = None
    mean: list[float] | None = None  # None: the transform family's default
    std: list[float] | None = None
    # DataLoader worker processes; auto: from the usable cores (gpaco.train.cpu)
    workers: int | Literal["auto"] = "auto"


class ModelConfig(Section):
    backbone: str = "resnet32"
    # false, or the exact weights: a name of the backbone's released weights (torchvision's
    # IMAGENET1K_V1, a timm tag) or a local file (gpaco.weights.load). Never `true`: "the best
    # available" changes over time.
    pretrained: bool | str = False
    backbone_kwargs: dict[str, Any] | None = None  # create_backbone options (a ViT's pooling)
    sync_bn: bool = False


class LossConfig(Section):
    """Only the method's own options (its task's method table)."""


class OptimConfig(Section):
    name: str = "sgd"  # a key of gpaco.train.optimizer.OPTIMIZERS
    lr: float = 0.05  # the peak lr; see blr
    # MAE's base lr: lr = blr * train.batch_size / 256 (the effective batch). A later layer
    # that sets lr drops it.
    blr: float | None = None
    weight_decay: float = 5e-4


class ScheduleConfig(Section):
    # a key of gpaco.train.schedule.SCHEDULES: step / cosine set the lr once per epoch,
    # warmup_cosine (MAE) / poly (mmseg) at every optimiser step from the fractional epoch.
    name: str = "step"
    epochs: int = 400
    warmup_epochs: int = 10


class TrainConfig(Section):
    batch_size: int = 128  # global batch over all processes, per optimiser step
    # Split each process's batch into this many micro-batches, one backward each, one
    # optimiser step: the same batch_size in less memory.
    accum_iter: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    compile: bool = False
    eval_every: int = 1  # test-set evaluation (curves); the last epoch always
    val_every: int = 1  # validation (selects the best epoch), where the data has a val split
    eval_batch_size: int = 512
    log_every: int = 20
    max_steps_per_epoch: int | None = None  # cap steps per epoch (smoke tests, benchmarks)
    # Also write last.pt every N steps inside an epoch; --resume continues there exactly.
    checkpoint_every_steps: int | None = None
    threads: int | Literal["auto"] = "auto"  # CPU intra-op threads; auto: gpaco.train.cpu


class OutputConfig(Section):
    dir: str | None = None  # default: runs/<name>
    tensorboard: bool = True
    plots: bool = True
    progress: Literal["auto", "bar", "lines", "none"] = "auto"


class OriginConfig(Section):
    """Where a recipe's values come from (`gpaco recipes` shows it); changes nothing in a run.

    values: "authors" (every value from the authors' launcher `source`), "extrapolated" (no
    launcher: the closest one's values on the authors' code path), "reconstruction" (their
    launcher exists but its script cannot run), "demo" (gpaco's own small settings).
    """

    paper: str | None = None  # the number it targets, e.g. "top-1 57.0 (PaCo, ICCV 2021)"
    source: str | None = None  # the authors' launcher (path in their repository)
    values: Literal["authors", "extrapolated", "reconstruction", "demo"] | None = None
    differences: list[str] = []  # deliberate, each with its reason


class Config(Section):
    name: str = "run"
    description: str = ""
    origin: OriginConfig
    task: str = "classification"  # a key of gpaco.tasks.TASKS
    method: str = "paco"  # a key of the task's method table
    seed: int = 0
    data: DataConfig
    model: ModelConfig
    loss: LossConfig
    optim: OptimConfig
    schedule: ScheduleConfig
    train: TrainConfig
    output: OutputConfig


# The shared sections by name.
SECTIONS: dict[str, type[Section]] = {
    "origin": OriginConfig, "data": DataConfig, "model": ModelConfig, "loss": LossConfig,
    "optim": OptimConfig, "schedule": ScheduleConfig, "train": TrainConfig,
    "output": OutputConfig,
}
