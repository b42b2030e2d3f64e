"""The one door for weights files: `load_into(model, file)` tells a file's kind once
(FILE_KINDS) and loads it; `weights_file` tells a file from the name of released weights.

`model.pretrained` is the exact weights a run starts from.

A value is either the name of released weights of the backbone (torchvision's `IMAGENET1K_V1`,
a timm tag; gpaco.models.create_backbone loads those) or a local file: a gpaco checkpoint, an
authors' file, a plain torchvision / timm state dict (what `gpaco export` writes), or a ViT
encoder: an MAE pretrained file (`{"model": encoder}`, also plain) or a timm `.safetensors`
file, loaded into the ViT backbone by `gpaco.weights.mae` (pos_embed resampled to the
model's grid).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.models.layer_decay import is_vit
from gpaco.weights.authors import authors_checkpoint_from, safe_load
from gpaco.weights.mae import LoadReport, load_mae_checkpoint
from gpaco.weights.export import classifier_name
from gpaco.weights.part_loading import ImportReport, load_parts

from gpaco.weights.checkpoint import check_format, strip_prefixes


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


def _is_vit_encoder(raw: Any) -> bool:
    """An MAE encoder file: ViT keys at the top (after "model" / "state_dict" / "module."),
    no classifier `head` (an authors' fine-tuned ViT, or `gpaco export`'s, has one)."""
    if is_gpaco_checkpoint(raw) or not isinstance(raw, dict):
        return False
    inner = next((raw[k] for k in ("model", "state_dict") if isinstance(raw.get(k), dict)), raw)
    keys = {str(k).removeprefix("module.") for k in inner}
    return "patch_embed.proj.weight" in keys and "head.weight" not in keys


def _load_vit_encoder(model: nn.Module, path: str | Path) -> LoadReport:
    if not is_vit(model.backbone):
        raise UserError(f"{path} is a ViT (MAE / timm) file but model.backbone is a "
                        f"{type(model.backbone).__name__}, not a ViT")
    return load_mae_checkpoint(model.backbone, path)


def _load_gpaco(model: nn.Module, raw: dict[str, Any], path: str | Path) -> ImportReport:
    check_format(raw, path)
    model_cfg = raw["config"].get("model") if isinstance(raw["config"], dict) else None
    arch = model_cfg.get("backbone") if isinstance(model_cfg, dict) else None
    return load_parts(model, strip_prefixes(raw["model"]), source=str(path), arch=arch,
                      strict=("backbone.",))


def _load_plain(model: nn.Module, raw: dict[str, Tensor], path: str | Path) -> ImportReport:
    return load_parts(model, _from_plain(model, raw), source=str(path), strict=("backbone.",))


def _load_authors(model: nn.Module, raw: Any, path: str | Path) -> ImportReport:
    ckpt = authors_checkpoint_from(raw, str(path))
    return load_parts(model, ckpt.state, source=ckpt.source, arch=ckpt.arch,
                      strict=("backbone.",), dropped=ckpt.dropped)


# The kinds of weights file, in the order they are told apart: (name, test of the loaded
# object, loader). The authors' layouts come last: `authors_checkpoint_from` names the file's
# problem when it is none of them.
FILE_KINDS: list[tuple[str, Callable[[Any], bool], Callable[..., Any]]] = [
    ("vit-encoder", _is_vit_encoder, lambda model, raw, path: _load_vit_encoder(model, path)),
    ("gpaco", is_gpaco_checkpoint, _load_gpaco),
    ("state-dict", _is_plain_state_dict, _load_plain),
    ("authors", lambda raw: True, _load_authors),
]


def file_kind(raw: Any) -> str:
    """Which of FILE_KINDS a loaded weights file is."""
    return next(name for name, test, _ in FILE_KINDS if test(raw))


def load_into(model: nn.Module, path: str | Path) -> ImportReport | LoadReport:
    """Start `model` (e.g. for fine-tuning) from a weights file of any kind: a gpaco checkpoint,
    an authors' file, a plain torchvision / timm state dict, an MAE / timm ViT encoder.

    The backbone must match; the classifier, projection head and key encoder are taken where
    their shapes fit (a new class count keeps the fresh classifier), the queue never. A ViT
    encoder loads into the backbone only (missing / unexpected keys in the report).
    """
    if Path(path).suffix == ".safetensors":  # timm's ViT files; never pickled
        return _load_vit_encoder(model, path)
    raw = safe_load(path)
    loaders = {name: load for name, _, load in FILE_KINDS}
    return loaders[file_kind(raw)](model, raw, path)
