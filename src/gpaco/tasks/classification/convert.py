"""The authors' released checkpoints as gpaco checkpoints (`gpaco convert`).

The result has the keys of a checkpoint written by `Run.state` that evaluation, prediction and
fine-tuning read: `model` (the whole gpaco model's state_dict, empty queue included), `epoch`,
`config` (a full config that rebuilds the same model), `best`, `num_classes`, `class_counts`,
`classes`; the backbone options (a ViT's pooling and size) are the config's
`model.backbone_kwargs`. Plus `converted_from` (file, arch, layout, the authors' epoch / accuracy / args, the import report).
It has no `optimizer` / `scaler`: a converted file starts a run's weights, it does not resume
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from gpaco.tasks.classification.datasets import known_num_classes
from gpaco.errors import UserError
from gpaco.tasks.classification.methods import build_model, defaults, get_method
from gpaco.models import create_backbone
from gpaco.models.backbone_names import same_backbone
from gpaco.weights.authors import (
    AuthorsCheckpoint, ImportReport, load_authors_checkpoint, read_authors_checkpoint,
)

from gpaco.weights.checkpoint import FORMAT_KEY, FORMAT_VERSION, atomic_save
from gpaco import tasks
from gpaco.config import Config, parse_overrides, resolve, to_dict

def build_model_from_authors(source: str | Path | AuthorsCheckpoint, *,
                             backbone: str | None = None, method: str | None = None,
                             **backbone_kwargs: Any) -> tuple[nn.Module, ImportReport]:
    """Build the gpaco model that fits an authors' file and load it.

    Args:
        source: the file, or what `read_authors_checkpoint` made of it.
        backbone: gpaco backbone name; default: the one the file's arch names.
        method: gpaco method (a key of `gpaco.tasks.classification.methods.METHODS`); default: the file's
            ("paco" with a momentum encoder, "gpaco" with a projection head, else "ce").
        **backbone_kwargs: for `create_backbone`, over the file's own (ViT pooling and size,
            which also apply to a backbone given by name).

    Raises:
        UserError: the file's arch has no gpaco backbone and none is given, or load errors.
    """
    ckpt = source if isinstance(source, AuthorsCheckpoint) else read_authors_checkpoint(source)
    name = backbone or ckpt.backbone
    if name is None:
        raise UserError(f"{ckpt.source}: arch {ckpt.arch!r} has no gpaco backbone; pass one "
                        "(e.g. backbone='resnet50' or 'timm:<name>')")
    kwargs = {**ckpt.backbone_kwargs, **backbone_kwargs}
    method = method or ckpt.method
    model = build_model(method, create_backbone(name, **kwargs), ckpt.num_classes,
                        **model_params(ckpt, method))
    return model, load_authors_checkpoint(model, ckpt)


def model_params(ckpt: AuthorsCheckpoint, method: str) -> dict[str, Any]:
    """The wrapper options (`build_model`) that match the file: projection width, head, queue."""
    takes = defaults(get_method(method).model_options)
    params: dict[str, Any] = {}
    if ckpt.dim is not None and "dim" in takes:
        params["dim"], params["head"] = ckpt.dim, ckpt.head
    if ckpt.queue_size is not None and "queue_size" in takes:
        params["queue_size"] = ckpt.queue_size
    return params


@dataclass
class Converted:
    """A converted file: the gpaco checkpoint dict, the loaded model and what the load did."""

    checkpoint: dict[str, Any]
    model: nn.Module
    report: ImportReport


def config_layer(ckpt: AuthorsCheckpoint, method: str, backbone: str,
                 backbone_kwargs: dict[str, Any], *, with_data: bool) -> dict[str, Any]:
    """The config keys that describe the file's model (and, `with_data`, its test input)."""
    model: dict[str, Any] = {"backbone": backbone, "pretrained": False,
                             "backbone_kwargs": dict(backbone_kwargs) or None,
                             **model_params(ckpt, method)}
    layer: dict[str, Any] = {"name": Path(ckpt.source).name.split(".")[0],
                             "description": f"converted from the authors' "
                                            f"{Path(ckpt.source).name}",
                             "method": method, "model": model}
    if with_data:  # without a recipe the file's own resolution and test pipeline
        layer["data"] = {"image_size": ckpt.image_size, "test_transform": ckpt.test_transform}
    return layer


def _check_recipe(ckpt: AuthorsCheckpoint, recipe: Config | None) -> None:
    """Name both sides when the file is not the recipe's architecture or class count."""
    if recipe is None:
        return
    theirs, ours = ckpt.backbone, recipe.model.backbone
    if theirs is not None and not same_backbone(theirs, ours):
        raise UserError(f"{ckpt.source} holds a {ckpt.arch or theirs} backbone ({theirs}) but "
                        f"the recipe {recipe.name!r} builds {ours}")
    expected = known_num_classes(recipe.data.dataset, recipe.data.num_classes)
    if expected is not None and expected != ckpt.num_classes:
        raise UserError(f"{ckpt.source} has a {ckpt.num_classes}-class classifier but the recipe "
                        f"{recipe.name!r} has {expected} classes")


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
                    backbone_kwargs: dict[str, Any] | None = None,
                    recipe: Config | None = None) -> Converted:
    """Build the gpaco model for an authors' file, load it and describe it as a checkpoint.

    Args:
        source: the authors' file (or what `read_authors_checkpoint` made of it).
        backbone, method: as `build_model_from_authors` (default: what the file says).
        classes: class names in label order, if known (the authors' files have none; label
            order matters, see the spec's note on their issue #21).
        class_counts: training images per class, for many/medium/few at evaluation.
        overrides: `key=value` config overrides (e.g. `data.dataset=imagenet_lt`).
        backbone_kwargs: `create_backbone` options over the file's own (kept in the result).
        recipe: a resolved recipe that gives the architecture (backbone, method, backbone
            options) and the data; the file must fit it (backbone strict, same class count).

    Raises:
        UserError: as `build_model_from_authors`, or names/counts of the wrong length.
    """
    ckpt = source if isinstance(source, AuthorsCheckpoint) else read_authors_checkpoint(source)
    _check_recipe(ckpt, recipe)
    if recipe is not None:  # the recipe names the architecture, explicit arguments win
        backbone, method = backbone or recipe.model.backbone, method or recipe.method
        backbone_kwargs = {**(recipe.model.backbone_kwargs or {}), **(backbone_kwargs or {})}
    extra = dict(backbone_kwargs or {})
    model, report = build_model_from_authors(ckpt, backbone=backbone, method=method, **extra)
    method = method or ckpt.method
    name = backbone or ckpt.backbone
    assert name is not None  # build_model_from_authors refused otherwise
    kwargs = {**ckpt.backbone_kwargs, **extra}
    # The recipe counts as a saved config: its keys for another method are dropped, not errors.
    base = to_dict(recipe) if recipe is not None else {}
    catalogue = tasks.catalogue()
    cfg = resolve([(f"recipe {recipe.name}" if recipe else "defaults", base),
                   (ckpt.source, config_layer(ckpt, method, name, kwargs,
                                              with_data=recipe is None)),
                   ("the command line", parse_overrides(list(overrides), catalogue))],
                  catalogue, saved=0)
    names = _names(classes, ckpt.num_classes, "class names")
    epoch = ckpt.meta.get("epoch")
    checkpoint = {
        FORMAT_KEY: FORMAT_VERSION, "model": model.state_dict(), "epoch": epoch if isinstance(epoch, int) else 0,
        "config": to_dict(cfg), "best": None, "num_classes": ckpt.num_classes,
        "class_counts": _names(class_counts, ckpt.num_classes, "class counts"),
        "classes": names or [str(c) for c in range(ckpt.num_classes)],
        "converted_from": {"file": ckpt.source, "arch": ckpt.arch, "layout": ckpt.layout,
                           "meta": ckpt.meta, "import": str(report)},
    }
    return Converted(checkpoint, model, report)


def write_converted(source: str | Path, destination: str | Path, **kwargs: Any) -> str:
    """Convert an authors' file and save it atomically; returns the one-line import report."""
    converted = convert_authors(source, **kwargs)
    atomic_save(converted.checkpoint, destination)
    return str(converted.report)
