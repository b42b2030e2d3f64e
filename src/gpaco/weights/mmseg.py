"""The authors' segmentation checkpoints (mmseg 0.17 layout) loaded into a gpaco `Segmenter`.

Their files are `{"meta": {..., "CLASSES": [...]}, "state_dict": {...}, "optimizer": ...}` with
`backbone.*` (mmseg's ResNetV1c or SwinTransformer), `decode_head.*` (DepthwiseSeparableASPPHead
or UPerHead, `conv_seg` the classifier, `mlp` the GPaCo projection) and `auxiliary_head.*`
(FCNHead). Each key is renamed to gpaco's (the decoders keep mmseg's module names, see
gpaco.models.mmseg_decoders); Swin's patch-merging weights are permuted from mmcv's
`nn.Unfold` channel order (channel-major) to timm's (the four 2x2 positions, each C channels).

Keys without meaning in gpaco (MEANINGLESS): Swin's `relative_position_index` buffers, which
timm recomputes from the window size (not saved). Every other key must land on a gpaco tensor
of the same shape, and every gpaco tensor must be given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from gpaco.errors import UserError

MEANINGLESS = ("relative_position_index",)

_HEADS = (
    (r"^decode_head\.conv_seg\.", "classifier."),
    (r"^decode_head\.mlp\.([01])\.conv\.", r"projection.\1.0."),
    (r"^decode_head\.mlp\.([01])\.bn\.", r"projection.\1.1."),
    (r"^decode_head\.mlp\.2\.", "projection.2."),
    (r"^decode_head\.", "decoder."),
    (r"^auxiliary_head\.convs\.0\.conv\.", "aux_head.0.0."),
    (r"^auxiliary_head\.convs\.0\.bn\.", "aux_head.0.1."),
    (r"^auxiliary_head\.conv_seg\.", "aux_head.2."),
)
# mmseg ResNetV1c -> timm's deep-stem ResNet inside smp's encoder.
_RESNET = (
    (r"^backbone\.stem\.([0-6])\.", r"encoder.model.conv1.\1."),
    (r"^backbone\.stem\.7\.", "encoder.model.bn1."),
    (r"^backbone\.(layer\d)\.", r"encoder.model.\1."),
)
# mmseg SwinTransformer -> timm's Swin inside smp's encoder (+ gpaco's encoder_norms).
_SWIN = (
    (r"^backbone\.norm(\d)\.", r"encoder_norms.\1."),
    (r"^backbone\.patch_embed\.projection\.", "encoder.model.patch_embed.proj."),
    (r"^backbone\.patch_embed\.norm\.", "encoder.model.patch_embed.norm."),
    (r"^backbone\.stages\.(\d)\.downsample\.",
     lambda m: f"encoder.model.layers_{int(m.group(1)) + 1}.downsample."),
    (r"^backbone\.stages\.(\d)\.blocks\.(\d+)\.attn\.w_msa\.",
     r"encoder.model.layers_\1.blocks.\2.attn."),
    (r"^backbone\.stages\.(\d)\.blocks\.(\d+)\.ffn\.layers\.0\.0\.",
     r"encoder.model.layers_\1.blocks.\2.mlp.fc1."),
    (r"^backbone\.stages\.(\d)\.blocks\.(\d+)\.ffn\.layers\.1\.",
     r"encoder.model.layers_\1.blocks.\2.mlp.fc2."),
    (r"^backbone\.stages\.(\d)\.blocks\.(\d+)\.", r"encoder.model.layers_\1.blocks.\2."),
)


@dataclass
class SegmentationImport:
    """What loading an authors' segmentation state did."""

    backbone: str  # "resnet" or "swin"
    loaded: int
    ignored: list[str] = field(default_factory=list)  # their keys without meaning here

    def __str__(self) -> str:
        return (f"loaded {self.loaded} tensors (mmseg {self.backbone} layout); ignored "
                f"{len(self.ignored)} without meaning in gpaco ({', '.join(MEANINGLESS)})")


def is_mmseg_state(state: dict[str, Any]) -> bool:
    """True for a state dict in mmseg's EncoderDecoder layout (`decode_head.*` keys)."""
    return any(isinstance(k, str) and k.startswith("decode_head.") for k in state)


def unfold_to_timm(weight: Tensor) -> Tensor:
    """Reorder the last dimension (4C) of a patch-merging tensor from mmcv's nn.Unfold order
    (index c*4 + 2*row + col) to timm's / the original Swin's ((2*col + row)*C + c)."""
    c = weight.shape[-1] // 4
    lead = weight.shape[:-1]
    w = weight.reshape(*lead, c, 2, 2)  # (..., C, row, col)
    return w.movedim(-3, -1).transpose(-3, -2).reshape(*lead, 4 * c)  # (..., col, row, C)


def _rename(key: str, rules: tuple[tuple[str, Any], ...]) -> str | None:
    for pattern, replacement in rules:
        new, hits = re.subn(pattern, replacement, key)
        if hits:
            return new
    return None


def map_mmseg_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], SegmentationImport]:
    """Rename an authors' segmentation state dict to gpaco `Segmenter` keys.

    Raises:
        UserError: a backbone that is neither ResNetV1c nor Swin, or a key no rule maps.
    """
    if "backbone.stem.0.weight" in state:
        kind, rules = "resnet", _RESNET + _HEADS
    elif "backbone.patch_embed.projection.weight" in state:
        kind, rules = "swin", _SWIN + _HEADS
    else:
        raise UserError("the segmentation checkpoint's backbone is neither mmseg's ResNetV1c "
                        "(backbone.stem.*) nor its SwinTransformer (backbone.patch_embed.*)")
    report = SegmentationImport(kind, 0)
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        if any(part in key for part in MEANINGLESS):
            report.ignored.append(key)
            continue
        name = _rename(key, rules)
        if name is None:
            raise UserError(f"the segmentation checkpoint's key {key!r} has no place in gpaco's "
                            "model")
        if kind == "swin" and ".downsample." in name:
            value = unfold_to_timm(value)
        mapped[name] = value
    return mapped, report


def load_mmseg_state(model: nn.Module, state: dict[str, Tensor]) -> SegmentationImport:
    """Load an authors' segmentation state dict into `model` (a gpaco Segmenter), strictly.

    Raises:
        UserError: a key the model lacks or a model tensor the file lacks (both named), or a
            shape that differs (the recipe's architecture is not the file's).
    """
    mapped, report = map_mmseg_state(state)
    own = model.state_dict()
    extra = sorted(set(mapped) - set(own))
    missing = sorted(set(own) - set(mapped))
    if extra or missing:
        raise UserError(f"the segmentation checkpoint does not fit the recipe's model: "
                        f"{len(missing)} model tensors missing (e.g. {missing[:1]}), "
                        f"{len(extra)} unexpected (e.g. {extra[:1]})")
    for name, value in mapped.items():
        if value.shape != own[name].shape:
            raise UserError(f"the segmentation checkpoint's {name} has shape "
                            f"{tuple(value.shape)}, the recipe's model {tuple(own[name].shape)}")
    with torch.no_grad():
        model.load_state_dict(mapped)
    report.loaded = len(mapped)
    return report
