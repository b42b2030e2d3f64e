"""Models from checkpoint files, gpaco's or the authors', for eval / predict / export / ensembles.

`load_model(path)` accepts a gpaco checkpoint (`Run.state`, or `gpaco convert` output) or one
of the authors' released files, which it converts in memory (`convert.convert_authors`).
Starting a configured model from a file (`model.pretrained=<file>`) is weights/load.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from gpaco.data.transforms import build_transform
from gpaco.errors import UserError
from gpaco.weights.authors import authors_checkpoint_from, safe_load
from gpaco.weights.ensemble import LogitEnsemble
from gpaco.weights.export import classifier_name, export_state_dict, tag_export

from gpaco.tasks.classification.build import build_model
from gpaco.weights.load import is_gpaco_checkpoint
from gpaco.weights.checkpoint import atomic_save, check_format, known_class_names, load_weights
from gpaco import config, tasks
from gpaco.config import Config
from gpaco.tasks.classification.task import ClassificationTask
from gpaco.tasks.classification.convert import convert_authors


@dataclass
class LoadedModel:
    """A model in eval mode with what its file says about classes and test-time input.

    Attributes:
        classes: class names in label order, None where the file knows only indices.
        note: the one-line import report for an authors' file, else None.
    """

    model: nn.Module
    config: Config
    num_classes: int
    classes: list[str] | None
    class_counts: list[int] | None
    source: str
    note: str | None = None

    @property
    def transform(self) -> Callable:
        """The test-time pipeline the model was evaluated with (PIL image -> tensor)."""
        return eval_transform(self.config)


def model_from_checkpoint(ckpt: dict[str, Any], overrides: Sequence[str] = (),
                          source: str = "checkpoint") -> LoadedModel:
    """Rebuild a gpaco checkpoint's model from its config and load its weights.

    Raises:
        UserError: weights that do not fit, or backbone options the config cannot express.
    """
    if not isinstance(ckpt.get("config"), dict):
        raise UserError(f"{source} holds no run config (not a checkpoint written by gpaco)")
    check_format(ckpt, source)
    cfg = config.from_dict(ckpt["config"], f"the config of {source}", overrides,
                           catalogue=tasks.catalogue())
    if not isinstance(tasks.task_of(cfg), ClassificationTask):
        raise UserError(f"{source} is a {cfg.task} checkpoint; predict, export, ensembles and "
                        "robustness suites take classification checkpoints (evaluate it with "
                        f"`gpaco eval --checkpoint {source}`)")
    cfg.model.pretrained = False  # the checkpoint brings every weight
    num_classes = ckpt.get("num_classes") or cfg.data.num_classes
    if not isinstance(num_classes, int) or num_classes <= 0:
        raise UserError(f"{source} records no number of classes; set data.num_classes")
    model = build_model(cfg, num_classes)
    load_weights(model, ckpt)
    return LoadedModel(model.eval(), cfg, num_classes,
                       known_class_names(ckpt.get("classes")),
                       ckpt.get("class_counts"), source)


def load_model(path: str | Path, overrides: Sequence[str] = (),
               recipe: Config | None = None, *, recipe_unused_ok: bool = False) -> LoadedModel:
    """The model of a gpaco checkpoint or of an authors' file, in eval mode on the CPU.

    `recipe` gives an authors' file its architecture and data (see `convert_authors`); a gpaco
    checkpoint brings its own config, so a recipe given with one is refused, not ignored
    (`recipe_unused_ok`: an ensemble member, where another member uses it).
    """
    raw = safe_load(path)
    if is_gpaco_checkpoint(raw):
        if recipe is not None and not recipe_unused_ok:
            raise UserError(f"{path} is a gpaco checkpoint: its own config gives the model and "
                            f"data, and --recipe (for authors' files) would be ignored; drop it "
                            "(key=value overrides such as data.root= apply)")
        return model_from_checkpoint(raw, overrides, str(path))
    converted = convert_authors(authors_checkpoint_from(raw, str(path)), overrides=overrides,
                                recipe=recipe)
    ckpt = converted.checkpoint
    cfg = config.from_dict(ckpt["config"], f"the config converted from {path}",
                           catalogue=tasks.catalogue())
    return LoadedModel(converted.model.eval(), cfg, ckpt["num_classes"], None, None,
                       str(path), str(converted.report))


def eval_transform(cfg: Config) -> Callable:
    """The config's test-time pipeline, data.test_transform (PIL image -> normalised tensor).

    Named eval_ so that pytest never collects it when a test imports it.
    """
    d = cfg.data
    return build_transform(d.test_transform, image_size=d.image_size, mean=d.mean, std=d.std)


def _input_spec(cfg: Config) -> str:
    d = cfg.data
    norm = "default" if d.mean is None and d.std is None else f"{d.mean}/{d.std}"
    return f"{d.test_transform} at {d.image_size} px, mean/std {norm}"


def ensemble_from_files(paths: Sequence[str | Path], overrides: Sequence[str] = (),
                        recipe: Config | None = None) -> LoadedModel:
    """A `LogitEnsemble` of the files' models (the papers' plain logit sum).

    The members must agree on the class count, on the class names where known and on the
    test-time input (one transform feeds them all, as in the authors' ensemble script).
    """
    members = [load_model(p, overrides, recipe, recipe_unused_ok=True) for p in paths]
    if recipe is not None and all(m.note is None for m in members):
        raise UserError("every file is a gpaco checkpoint with its own config: --recipe (for "
                        "authors' files) would be ignored; drop it")
    ensemble = LogitEnsemble([m.model for m in members], [m.classes for m in members])
    first = members[0]
    for i, m in enumerate(members[1:], 1):
        if _input_spec(m.config) != _input_spec(first.config):
            raise UserError(f"ensemble member {i} ({m.source}) expects "
                            f"{_input_spec(m.config)}, member 0 {_input_spec(first.config)}; "
                            "one test transform must fit all")
    classes = next((m.classes for m in members if m.classes is not None), None)
    notes = "; ".join(m.note for m in members if m.note) or None
    return LoadedModel(ensemble.eval(), first.config, first.num_classes, classes,
                       first.class_counts, " + ".join(m.source for m in members), notes)


def export_file(source: str | Path, destination: str | Path, *, with_classifier: bool = True,
                overrides: Sequence[str] = (), recipe: Config | None = None) -> str:
    """Write the plain torchvision/timm state dict of a checkpoint's model; returns one line."""
    loaded = load_model(source, overrides, recipe)
    model_cfg = loaded.config.model
    state = tag_export(export_state_dict(loaded.model, with_classifier=with_classifier),
                       model_cfg.backbone, model_cfg.backbone_kwargs)
    atomic_save(state, destination)
    backbone = loaded.model.backbone
    head = f", classifier as {classifier_name(backbone)}.*" if with_classifier else ""
    return (f"wrote {len(state)} tensors of {type(backbone).__name__} "
            f"({loaded.config.model.backbone}{head}) to {destination}; "
            f"gpaco.load_exported({str(destination)!r}) builds the network and loads it")
