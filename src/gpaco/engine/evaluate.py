"""`gpaco eval`: evaluate a checkpoint on its run's test (or val) split."""

from __future__ import annotations

import torch

from gpaco.errors import UserError
from gpaco.metrics import EvalResult

from .build import build_data, build_model_from_config, resolve_device
from .checkpoint import load_checkpoint, strip_prefixes
from .config import DEFAULTS, _merge, apply_overrides, validate
from .loop import evaluate


def evaluate_checkpoint(path: str, split: str = "test", overrides: list[str] = ()) -> EvalResult:
    ckpt = load_checkpoint(path)
    import copy

    cfg = copy.deepcopy(DEFAULTS)
    _merge(cfg, ckpt["config"], DEFAULTS, "")
    apply_overrides(cfg, list(overrides))
    validate(cfg)
    device = resolve_device(cfg["train"]["device"])
    data = build_data(cfg, device)
    model = build_model_from_config(cfg, data.num_classes).to(device)
    model.load_state_dict(strip_prefixes(ckpt["model"]))
    loader = data.test_loader if split == "test" else data.val_loader
    if loader is None:
        raise UserError("this run has no validation split (data.val_split)")
    counts = ckpt.get("class_counts") or data.class_counts
    return evaluate(model, loader, data.num_classes, counts, device, amp=cfg["train"]["amp"],
                    channels_last=cfg["train"]["channels_last"])
