"""The authors' released segmentation checkpoints as gpaco checkpoints (`gpaco convert` /
`gpaco eval --checkpoint FILE --recipe seg-...`).

A file in mmseg's layout (gpaco.weights.mmseg) carries no gpaco config: the recipe
names the architecture and the data. The result has the keys `Run.state` writes that
`gpaco eval` reads (`model`, `config`, `num_classes`, `classes`, ...), plus `converted_from`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpaco.weights.checkpoint import FORMAT_KEY, FORMAT_VERSION, atomic_save
from gpaco import config, tasks
from gpaco.config import Config, to_dict
from gpaco.tasks.segmentation.task import build_segmenter
from gpaco.errors import UserError
from gpaco.weights.authors import safe_load
from gpaco.weights.mmseg import is_mmseg_state, load_mmseg_state


def _state_and_meta(raw: Any, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(raw, dict) or not isinstance(raw.get("state_dict"), dict):
        raise UserError(f"{source} is not an mmseg checkpoint (no 'state_dict' entry)")
    state = {k.removeprefix("module."): v for k, v in raw["state_dict"].items()}
    if not is_mmseg_state(state):
        raise UserError(f"{source} holds no decode_head.* weights: not a segmentation checkpoint")
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    return state, meta


def convert_segmentation(source: str | Path, recipe: Config,
                         overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The gpaco checkpoint of an authors' segmentation file under a segmentation recipe.

    Raises:
        UserError: not an mmseg file, or weights that do not fit the recipe's model.
    """
    state, meta = _state_and_meta(safe_load(source), str(source))
    num_classes = int(state["decode_head.conv_seg.weight"].shape[0])
    layer = {"model": {"pretrained": False}}  # the file brings every weight
    catalogue = tasks.catalogue()
    cfg = config.resolve([(f"recipe {recipe.name}", to_dict(recipe)), (str(source), layer),
                          ("the command line", config.parse_overrides(list(overrides), catalogue))],
                         catalogue, saved=0)
    model = build_segmenter(cfg, num_classes)
    report = load_mmseg_state(model, state)
    classes = meta.get("CLASSES")
    if classes is not None and len(classes) != num_classes:
        raise UserError(f"{source}: meta names {len(classes)} classes, its classifier has "
                        f"{num_classes}")
    return {
        FORMAT_KEY: FORMAT_VERSION, "model": model.state_dict(), "epoch": 0,
        "config": to_dict(cfg), "best": None, "num_classes": num_classes, "class_counts": None,
        "classes": [str(c) for c in classes] if classes else
        [str(c) for c in range(num_classes)],
        "converted_from": {"file": str(source), "layout": f"mmseg-{report.backbone}",
                           "meta": {k: v for k, v in meta.items() if k != "CLASSES"},
                           "import": str(report)},
    }


def evaluate_authors_segmentation(paths: list[str], split: str | None, recipe: Config,
                                  overrides: list[str] | tuple[str, ...] = ()) -> str:
    """`gpaco eval --checkpoint FILE --recipe seg-...`: the file's mIoU line on the recipe's data
    (one file; the papers report no segmentation ensembles)."""
    if len(paths) != 1:
        raise UserError("segmentation evaluates one checkpoint at a time, not an ensemble")
    ckpt = convert_segmentation(paths[0], recipe, overrides)
    cfg = config.from_dict(ckpt["config"], f"the converted {paths[0]}",
                           catalogue=tasks.catalogue())
    task = tasks.task_of(cfg)
    return task.file_line(split, task.evaluate_file(ckpt, cfg, split, paths[0]))


def write_converted_segmentation(source: str | Path, destination: str | Path, *, recipe: Config,
                                 overrides: list[str] | tuple[str, ...] = ()) -> str:
    """`gpaco convert FILE --recipe seg-...`: the mmseg file as a gpaco checkpoint, saved
    atomically; returns the one-line import report."""
    ckpt = convert_segmentation(source, recipe, overrides)
    atomic_save(ckpt, destination)
    return ckpt["converted_from"]["import"]
