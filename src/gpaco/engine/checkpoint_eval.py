"""`gpaco eval`: evaluate a checkpoint on its run's test (or val) split."""

from __future__ import annotations

from gpaco.errors import UserError
from gpaco.metrics import EvalResult

from .build import build_data, build_model, resolve_device
from .checkpoint import load_checkpoint, load_weights
from .config import from_dict
from .loop import evaluate


def evaluate_checkpoint(path: str, split: str = "test", overrides: list[str] = ()) -> EvalResult:
    """Metrics of the checkpoint's weights on `split` of its run's data (`overrides` apply)."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt.get("config"), dict):
        raise UserError(f"{path} holds no run config (not a checkpoint written by gpaco "
                        "train); for one of the authors' files add --recipe NAME")
    cfg = from_dict(ckpt["config"], f"the config of {path}", overrides)
    cfg.model.pretrained = False  # the checkpoint brings every weight
    device = resolve_device(cfg.train.device)
    data = build_data(cfg, device, with_train=False)
    num_classes = ckpt.get("num_classes") or data.num_classes
    model = build_model(cfg, num_classes).to(device)
    load_weights(model, ckpt)
    loader = data.test_loader if split == "test" else data.val_loader
    if loader is None:
        raise UserError("this run has no validation split (data.val_split)")
    counts = ckpt.get("class_counts") or data.class_counts
    return evaluate(model, loader, num_classes, counts, device, amp=cfg.train.amp,
                    channels_last=cfg.train.channels_last)
