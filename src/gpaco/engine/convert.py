"""The authors' released checkpoints as gpaco checkpoints (`gpaco convert`).

The result has the keys of a checkpoint written by `Run.state` that evaluation, prediction and
fine-tuning read: `model` (the whole gpaco model's state_dict, empty queue included), `epoch`,
`config` (a full config that rebuilds the same model), `best`, `num_classes`, `class_counts`,
`classes`; plus `backbone_kwargs` (the backbone options, e.g. a ViT's pooling and size) and
`converted_from` (file, arch, layout, the authors' epoch / accuracy / args, the import report).
It has no `optimizer` / `scaler`: a converted file starts a run's weights, it does not resume
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from gpaco.errors import UserError
from gpaco.models.authors_checkpoint import (
    AuthorsCheckpoint, ImportReport, build_model_from_authors, model_params,
    read_authors_checkpoint,
)

from .checkpoint import atomic_save
from .config import DEFAULTS, Config, resolve

TWO_VIEW_METHODS = ("paco", "gpaco", "multitask")


@dataclass
class Converted:
    """A converted file: the gpaco checkpoint dict, the loaded model and what the load did."""

    checkpoint: dict[str, Any]
    model: nn.Module
    report: ImportReport


def config_layer(ckpt: AuthorsCheckpoint, method: str, backbone: str,
                 backbone_kwargs: dict[str, Any]) -> Config:
    """The config keys that describe the file's model and its test-time input."""
    model: dict[str, Any] = {"backbone": backbone, "pretrained": False,
                             **model_params(ckpt, method)}
    if backbone_kwargs and "backbone_kwargs" in DEFAULTS["model"]:
        model["backbone_kwargs"] = dict(backbone_kwargs)  # once the schema has the key
    return {"name": Path(ckpt.source).name.split(".")[0],
            "description": f"converted from the authors' {Path(ckpt.source).name}",
            "method": method, "model": model,
            "data": {"num_classes": ckpt.num_classes, "image_size": ckpt.image_size,
                     "test_transform": ckpt.test_transform}}


def _names(values: Sequence[Any] | None, num_classes: int, what: str) -> list[Any] | None:
    if values is None:
        return None
    if len(values) != num_classes:
        raise UserError(f"{len(values)} {what} given for a checkpoint with {num_classes} classes")
    return list(values)


def convert_authors(source: str | Path | AuthorsCheckpoint, *, backbone: str | None = None,
                    method: str | None = None, classes: Sequence[str] | None = None,
                    class_counts: Sequence[int] | None = None,
                    overrides: Sequence[str] = (),
                    backbone_kwargs: dict[str, Any] | None = None) -> Converted:
    """Build the gpaco model for an authors' file, load it and describe it as a checkpoint.

    Args:
        source: the authors' file (or what `read_authors_checkpoint` made of it).
        backbone, method: as `build_model_from_authors` (default: what the file says).
        classes: class names in label order, if known (the authors' files have none; label
            order matters, see the spec's note on their issue #21).
        class_counts: training images per class, for many/medium/few at evaluation.
        overrides: `key=value` config overrides (e.g. `data.dataset=imagenet_lt`).
        backbone_kwargs: `create_backbone` options over the file's own (kept in the result).

    Raises:
        UserError: as `build_model_from_authors`, or names/counts of the wrong length.
    """
    ckpt = source if isinstance(source, AuthorsCheckpoint) else read_authors_checkpoint(source)
    extra = dict(backbone_kwargs or {})
    model, report = build_model_from_authors(ckpt, backbone=backbone, method=method, **extra)
    method = method or ckpt.method
    name = backbone or ckpt.backbone
    assert name is not None  # build_model_from_authors refused otherwise
    kwargs = {**ckpt.backbone_kwargs, **extra}
    cfg = resolve([config_layer(ckpt, method, name, kwargs)], list(overrides))
    names = _names(classes, ckpt.num_classes, "class names")
    epoch = ckpt.meta.get("epoch")
    checkpoint = {
        "model": model.state_dict(), "epoch": epoch if isinstance(epoch, int) else 0,
        "config": cfg, "best": None, "num_classes": ckpt.num_classes,
        "class_counts": _names(class_counts, ckpt.num_classes, "class counts"),
        "classes": names or [str(c) for c in range(ckpt.num_classes)],
        "backbone_kwargs": kwargs,
        "converted_from": {"file": ckpt.source, "arch": ckpt.arch, "layout": ckpt.layout,
                           "meta": ckpt.meta, "import": str(report)},
    }
    return Converted(checkpoint, model, report)


def authors_to_gpaco(source: str | Path, **kwargs: Any) -> dict[str, Any]:
    """The gpaco checkpoint dict of an authors' file (options as `convert_authors`)."""
    return convert_authors(source, **kwargs).checkpoint


def write_converted(source: str | Path, destination: str | Path, **kwargs: Any) -> str:
    """Convert an authors' file and save it atomically; returns the one-line import report."""
    converted = convert_authors(source, **kwargs)
    atomic_save(converted.checkpoint, destination)
    return str(converted.report)
