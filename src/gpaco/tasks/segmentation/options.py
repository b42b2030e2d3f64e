"""The segmentation task's own keys (mmseg's ADE20K-like defaults; every recipe states its own)
and the checks of a resolved segmentation config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gpaco.config import Config
from gpaco.config.options import NON_NEGATIVE, POSITIVE, Option, options_of
from gpaco.errors import UserError


@dataclass
class DataOptions:
    # The training crop (H, W), the rescale base (long, short side; mmseg's img_scale, also the
    # test scale), the random rescale's ratio range and the crop's largest class share.
    crop_size: list[int] = field(default_factory=lambda: [512, 512])
    scale: list[int] = field(default_factory=lambda: [2048, 512])
    ratio_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    cat_max_ratio: float = 0.75


@dataclass
class ModelOptions:
    # The smp decoder, its width, the FCN aux head's width, the DeepLabV3+ encoder's output
    # stride (8: the authors' D8 ResNets). model.backbone is the encoder, model.pretrained a
    # local encoder weight file.
    arch: Literal["upernet", "deeplabv3plus"] = "deeplabv3plus"
    decoder_channels: int = field(default=512, metadata=POSITIVE)
    aux_channels: int = field(default=256, metadata=POSITIVE)
    output_stride: int | None = None


@dataclass
class LossOptions:
    aux_weight: float = field(default=0.4, metadata=NON_NEGATIVE)  # the FCN aux CE's weight
    ce_average: Literal["all", "valid"] = "all"  # CE mean over all or valid pixels


@dataclass
class InferenceOptions:
    """Segmentation evaluation (tasks/segmentation/inference.py)."""

    mode: Literal["whole", "slide"] = "whole"
    crop: list[int] | None = None  # slide window (H, W)
    stride: list[int] | None = None  # slide step (H, W)
    ratios: list[float] = field(default_factory=lambda: [1.0])  # test scales x data.scale
    flip: bool = False  # also average the horizontally flipped image
    predictions: int = field(default=4, metadata=POSITIVE)  # test images in predictions.png


OPTIONS: dict[str, Option] = {
    **options_of(DataOptions, "data"), **options_of(ModelOptions, "model"),
    **options_of(LossOptions, "loss"), **options_of(InferenceOptions, "inference")}


def _pair(value: list[Any] | None, path: str) -> None:
    if value is not None and (len(value) != 2 or min(value) <= 0):
        raise UserError(f"{path} must be two positive numbers (H, W), not {value!r}")


def check(cfg: Config) -> None:
    """What no segmentation run could use."""
    d, inf, loss = cfg.data, cfg.inference, cfg.loss
    for path, value in (("data.crop_size", d.crop_size), ("data.scale", d.scale),
                        ("data.ratio_range", d.ratio_range),
                        ("inference.crop", inf.crop), ("inference.stride", inf.stride)):
        _pair(value, path)
    if inf.mode == "slide" and (inf.crop is None or inf.stride is None):
        raise UserError("inference.mode=slide needs inference.crop and inference.stride")
    if not inf.ratios or min(inf.ratios) <= 0:
        raise UserError(f"inference.ratios must list positive scales, not {inf.ratios!r}")
    if loss.num_samples is not None and (loss.num_samples == 0 or loss.num_samples < -1):
        raise UserError(f"loss.num_samples must be -1 (all pixels) or >= 1, not {loss.num_samples}")
    if not 0 < d.cat_max_ratio <= 1:
        raise UserError(f"data.cat_max_ratio must be in (0, 1], not {d.cat_max_ratio}")
    if cfg.model.output_stride not in (None, 8, 16):
        raise UserError(f"model.output_stride must be 8 or 16, not {cfg.model.output_stride}")
