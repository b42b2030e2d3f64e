"""`model.pretrained`: the exact weights a run starts from.

A value is either the name of released weights of the backbone (torchvision's `IMAGENET1K_V1`,
a timm tag; gpaco.models.create_backbone loads those) or a local file: a gpaco checkpoint, an
authors' file or a plain torchvision / timm state dict (what `gpaco export` writes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from gpaco.models.authors_checkpoint import authors_checkpoint_from, safe_load
from gpaco.models.export import classifier_name
from gpaco.models.part_loading import ImportReport, load_parts

from .checkpoint import strip_prefixes


WEIGHTS_FILE_SUFFIXES = (".pth", ".pt", ".tar", ".safetensors", ".bin", ".ckpt")


def weights_file(value: str) -> bool:
    """Whether `model.pretrained=value` names a local file (a path, a weights-file suffix, or
    an existing file) rather than released weights (`IMAGENET1K_V1`)."""
    return ("/" in value or "\\" in value or value.lower().endswith(WEIGHTS_FILE_SUFFIXES)
            or Path(value).expanduser().exists())


def is_gpaco_checkpoint(raw: Any) -> bool:
    return isinstance(raw, dict) and "config" in raw and "model" in raw


def _is_plain_state_dict(raw: Any) -> bool:
    return isinstance(raw, dict) and bool(raw) and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in raw.items())


def _from_plain(model: nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A torchvision/timm state dict (what `gpaco export` writes) under gpaco's names."""
    head = f"{classifier_name(model.backbone)}."
    return {(f"classifier.{k[len(head):]}" if k.startswith(head) else f"backbone.{k}"): v
            for k, v in strip_prefixes(state).items()}


def load_pretrained(model: nn.Module, path: str | Path) -> ImportReport:
    """Start a model (e.g. for fine-tuning) from a gpaco checkpoint's or an authors' weights.

    The backbone must match; the classifier, projection head and key encoder are taken where
    their shapes fit (a new class count keeps the fresh classifier), the queue never.
    """
    raw = safe_load(path)
    if is_gpaco_checkpoint(raw):
        model_cfg = raw["config"].get("model") if isinstance(raw["config"], dict) else None
        arch = model_cfg.get("backbone") if isinstance(model_cfg, dict) else None
        return load_parts(model, strip_prefixes(raw["model"]), source=str(path), arch=arch,
                          strict=("backbone.",))
    if _is_plain_state_dict(raw):
        return load_parts(model, _from_plain(model, raw), source=str(path),
                          strict=("backbone.",))
    ckpt = authors_checkpoint_from(raw, str(path))
    return load_parts(model, ckpt.state, source=ckpt.source, arch=ckpt.arch,
                      strict=("backbone.",), dropped=ckpt.dropped)
