"""`gpaco eval`: evaluate a checkpoint on its run's test (or val) split."""

from __future__ import annotations

from typing import Any

from gpaco.errors import UserError
from gpaco.tasks.classification.metrics import EvalResult
from gpaco.tasks.classification.build import build_data, build_model
from gpaco.train.data import resolve_device
from gpaco.weights.checkpoint import check_classes, load_weights
from gpaco.config import Config
from gpaco.tasks.classification.evaluate import evaluate


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
