"""`gpaco eval`: evaluate a checkpoint on its run's test (or val) split."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from gpaco.errors import UserError
from gpaco.tasks.classification.metrics import EvalResult

from gpaco.tasks.classification.build import build_data, build_model, resolve_device
from gpaco.weights.checkpoint import known_class_names, load_checkpoint, load_weights
from gpaco.config.core import Config, from_dict
from gpaco.train.loop import evaluate


def load_run_checkpoint(path: str, overrides: list[str] = ()) -> tuple[dict[str, Any], Config]:
    """A checkpoint written by `gpaco train` and its run config (`overrides` apply)."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt.get("config"), dict):
        raise UserError(f"{path} holds no run config (not a checkpoint written by gpaco "
                        "train); for one of the authors' files add --recipe NAME")
    cfg = from_dict(ckpt["config"], f"the config of {path}", overrides)
    cfg.model.pretrained = False  # the checkpoint brings every weight
    return ckpt, cfg


def evaluate_checkpoint(path: str, split: str = "test", overrides: list[str] = ()) -> EvalResult:
    """Metrics of the checkpoint's weights on `split` of its run's data (`overrides` apply)."""
    ckpt, cfg = load_run_checkpoint(path, overrides)
    return evaluate_loaded(ckpt, cfg, split, path)


def evaluate_loaded(ckpt: dict[str, Any], cfg: Config, split: str, path: str) -> EvalResult:
    """A classification checkpoint's metrics (see `evaluate_checkpoint`)."""
    device = resolve_device(cfg.train.device)
    data = build_data(cfg, device, with_train=False)
    num_classes = ckpt.get("num_classes") or data.num_classes
    model = build_model(cfg, num_classes).to(device)
    load_weights(model, ckpt)
    loader = data.test_loader if split == "test" else data.val_loader
    if loader is None:
        raise UserError("this run has no validation split (data.val_split)")
    check_classes(ckpt.get("num_classes"), ckpt.get("classes"),
                  data.val if split == "val" else data.test, path)
    counts = ckpt.get("class_counts")  # None: many/medium/few unknown, never the test's own
    return evaluate(model, loader, num_classes, counts, device, amp=cfg.train.amp,
                    channels_last=cfg.train.channels_last)


def check_classes(trained: int | None, classes: Any, dataset: Dataset, path: str) -> None:
    """Refuse data whose classes are not the model's (`trained` classes named `classes`, as far
    as the file knows them): the numbers would be meaningless."""
    have = getattr(dataset, "num_classes", None)
    if trained is not None and have is not None and trained != have:
        raise UserError(f"{path} was trained on {trained} classes but the evaluation data has "
                        f"{have}; point data.* at the data it was trained on")
    ours = known_class_names(classes)
    theirs = known_class_names(getattr(dataset, "classes", None))
    if ours is not None and theirs is not None and ours != theirs:
        first = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
        raise UserError(f"{path}'s class {first} is {ours[first]!r} but the evaluation data's is "
                        f"{theirs[first]!r}: not the classes it was trained on")

