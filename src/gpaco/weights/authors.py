"""Read the PaCo / GPaCo authors' released checkpoints and map them onto gpaco's models.

Formats (dvlab-research/Parametric-Contrastive-Learning):
- ResNet / ResNeXt / CIFAR ResNet files: `{"epoch", "arch", "state_dict", "optimizer", ...}`
  with DDP's `module.` prefix on every key of `state_dict`:
  `encoder_q.<backbone>` (the backbone's own `fc` is the projection head: PaCo
  `fc.{0,1,3}` = Linear-BN1d-ReLU-Linear, GPaCo `fc.{0,2,4}` = Linear-ReLU-Linear-ReLU-Linear),
  `linear` (the classifier on the pooled feature), PaCo only `encoder_k.*` (momentum encoder)
  and `linear_k` (its unused classifier copy), and the queue (`queue`, `queue_l`, `queue_ptr`).
- MAE-ViT files: `{"model", "optimizer", "epoch", "scaler", "args": argparse.Namespace}`;
  `model` is a timm VisionTransformer without prefix, `head` = the classifier, GPaCo only
  `mlp.{0,2,4}` (the GELU projection) and the queue; `fc_norm` instead of `norm` with
  global average pooling (`args.global_pool`).

gpaco names: `backbone.*`, `classifier.*`, `head.*` (projection), `key_backbone.*` /
`key_head.*` (PaCo's momentum encoder), `queue.*`. Loading (`part_loading.load_parts`) is
strict on the backbone and the classifier; the other parts are loaded when file and model both
have them with equal shapes, and everything else is reported in one line.

Files are read with `torch.load(weights_only=True)`, allowing one extra global,
`argparse.Namespace` (an attribute bag; the ViT files' `args`): no pickled code ever runs.
"""

from __future__ import annotations

import argparse
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.messages import missing_checkpoint
from gpaco.weights.part_loading import ImportReport, load_parts

# (authors' prefix, gpaco prefix), first match wins: the projection lives inside the encoder.
RESNET_RULES = (
    ("encoder_q.fc.", "head."),
    ("encoder_q.", "backbone."),
    ("encoder_k.fc.", "key_head."),
    ("encoder_k.", "key_backbone."),
    ("linear.", "classifier."),
)
VIT_RULES = (("head.", "classifier."), ("mlp.", "head."), ("", "backbone."))
# Authors' parts with no gpaco counterpart, by key prefix; named in the report.
NOT_MAPPED = (
    ("linear_k.", "linear_k (unused momentum classifier)"),
    ("queue", "queue"),  # queue, queue_l, queue_ptr: gpaco's queue starts empty
)

# The authors' ViT builders (models_vit*.py) and the timm models with the same layout.
VIT_ARCHS = {"vit_base_patch16": "vit_base_patch16_224",
             "vit_large_patch16": "vit_large_patch16_224",
             "vit_huge_patch14": "vit_huge_patch14_224"}
# The authors' arch names that gpaco builds under the same name (CIFAR and torchvision nets).
CIFAR_ARCHS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
RESNET_ARCHS = CIFAR_ARCHS + ("resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                              "resnext101_32x4d")
# SupCon-style CIFAR nets (their resnet_big.py) share names with torchvision's; 3x3 stem tells.
CIFAR_BIG_ARCHS = {"resnet18": "resnet18_cifar", "resnet50": "resnet50_cifar"}


@dataclass
class AuthorsCheckpoint:
    """An authors' file, its weights renamed to gpaco's names.

    Attributes:
        source: the file it came from (for messages).
        layout: "resnet" (ResNet / ResNeXt / CIFAR ResNet scripts) or "vit" (MAE-ViT scripts).
        method: the gpaco wrapper it fits: "paco" (momentum encoder), "gpaco" (projection
            head, no momentum encoder) or "ce" (classifier only, e.g. MAE fine-tuning).
        arch: the authors' architecture name (`arch` or `args.model`), if the file says.
        backbone: gpaco's backbone name for it (`create_backbone`), None when unknown.
        backbone_kwargs: options for `create_backbone` (the ViTs' pooling and image size).
        state: the weights under gpaco names (backbone., classifier., head., key_*).
        dropped: authors' parts with no gpaco counterpart -> number of tensors.
        num_classes, feature_dim: the classifier's shape.
        dim: projection width (None without a projection head); head: its gpaco kind.
        queue_size: rows of the authors' queue (None if the file has none).
        image_size: the test resolution the authors used.
        test_transform: gpaco's name of their test pipeline ("cifar_test": the raw 32x32
            image; "imagenet_test": resize + centre crop).
        meta: other entries of the file (epoch, acc, args as a dict, ...), without tensors.
    """

    source: str
    layout: str
    method: str
    arch: str | None
    backbone: str | None
    backbone_kwargs: dict[str, Any]
    state: dict[str, Tensor]
    dropped: dict[str, int]
    num_classes: int
    feature_dim: int
    dim: int | None
    head: str | None
    queue_size: int | None
    image_size: int
    test_transform: str
    meta: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# reading


def _unpickler_reason(err: Exception) -> str:
    """The one useful sentence of torch's long weights_only refusal."""
    text = " ".join(str(err).split())
    match = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\s*Please use|\s*Check the doc|$)", text)
    return match.group(1).strip() if match and match.group(1) else text[:200]


def safe_load(path: str | Path) -> Any:
    """`torch.load` on the CPU that never runs pickled code; bad files are one-line UserErrors."""
    path = Path(path)
    if not path.is_file():
        raise missing_checkpoint(path)
    try:
        # torch warns (on stderr) about odd pickle protocols before failing: the error says it.
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserError(f"refusing to read {path}: it is not a plain weights file "
                        f"({_unpickler_reason(err)}); gpaco never runs code stored in a "
                        "checkpoint") from None
    except Exception as err:  # truncated zip, foreign bytes, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}: {first}") from None


def _strip_module(state: dict[str, Any]) -> dict[str, Any]:
    # DDP's prefix; the ViT scripts save model_without_ddp, so theirs has none.
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def _rename(state: dict[str, Tensor], rules: tuple[tuple[str, str], ...],
            source: str) -> tuple[dict[str, Tensor], dict[str, int]]:
    """Apply the prefix rules; parts in NOT_MAPPED are counted as dropped."""
    mapped: dict[str, Tensor] = {}
    dropped: dict[str, int] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise UserError(f"{source}: entry {key!r} of the weights is not a tensor")
        label = next((what for p, what in NOT_MAPPED if key.startswith(p)), None)
        if label is not None:
            dropped[label] = dropped.get(label, 0) + 1
            continue
        rule = next(((a, g) for a, g in rules if key.startswith(a)), None)
        if rule is None:
            label = f"unknown part {key.split('.')[0]!r}"
            dropped[label] = dropped.get(label, 0) + 1
            continue
        mapped[rule[1] + key[len(rule[0]):]] = value
    return mapped, dropped


def _head_kind(state: dict[str, Tensor], prefix: str, layout: str) -> tuple[str | None, int | None]:
    """gpaco's projection-head kind and output width from the mapped `head.` keys."""
    if f"{prefix}1.running_mean" in state and f"{prefix}3.weight" in state:
        return "bn", state[f"{prefix}3.weight"].shape[0]
    if f"{prefix}4.weight" in state:
        return ("gelu" if layout == "vit" else "nobn"), state[f"{prefix}4.weight"].shape[0]
    return None, None


def _classifier_shape(state: dict[str, Tensor], source: str) -> tuple[int, int]:
    weight = state.get("classifier.weight")
    if weight is None or weight.dim() != 2:
        raise UserError(f"{source}: no classifier weights (expected the authors' `linear` or "
                        "`head` layer)")
    return int(weight.shape[0]), int(weight.shape[1])


def _plain_meta(raw: dict[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    """The file's small entries (epoch, acc, args), tensors turned into numbers."""
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if key in skip:
            continue
        if isinstance(value, argparse.Namespace):
            value = vars(value)
        if isinstance(value, Tensor):
            value = value.item() if value.numel() == 1 else None
        if value is not None:
            meta[key] = value
    return meta


def _resnet_backbone(arch: str | None, state: dict[str, Tensor]) -> str | None:
    if arch is None:
        return None
    stem = state.get("backbone.conv1.weight")
    if arch in CIFAR_BIG_ARCHS and stem is not None and stem.shape[-1] == 3:
        return CIFAR_BIG_ARCHS[arch]
    return arch if arch in RESNET_ARCHS else None


def _from_resnet_file(raw: dict[str, Any], source: str) -> AuthorsCheckpoint:
    state = _strip_module(raw["state_dict"])
    if not any(k.startswith("encoder_q.") for k in state):
        raise UserError(f"{source}: no `encoder_q` weights; not a PaCo/GPaCo ResNet checkpoint")
    mapped, dropped = _rename(state, RESNET_RULES, source)
    num_classes, feature_dim = _classifier_shape(mapped, source)
    head, dim = _head_kind(mapped, "head.", "resnet")
    has_key_encoder = any(k.startswith("key_backbone.") for k in mapped)
    method = "paco" if has_key_encoder else ("gpaco" if head else "ce")
    arch = raw.get("arch") if isinstance(raw.get("arch"), str) else None
    backbone = _resnet_backbone(arch, mapped)
    cifar = backbone in CIFAR_ARCHS or (backbone or "").endswith("_cifar")
    queue = state.get("queue")
    return AuthorsCheckpoint(
        source=source, layout="resnet", method=method, arch=arch, backbone=backbone,
        backbone_kwargs={}, state=mapped, dropped=dropped, num_classes=num_classes,
        feature_dim=feature_dim, dim=dim, head=head,
        queue_size=int(queue.shape[0]) if isinstance(queue, Tensor) else None,
        image_size=32 if cifar else 224,
        test_transform="cifar_test" if cifar else "imagenet_test",
        meta=_plain_meta(raw, ("state_dict", "optimizer")))


def _from_vit_file(raw: dict[str, Any], source: str) -> AuthorsCheckpoint:
    state = _strip_module(raw["model"])
    if "patch_embed.proj.weight" not in state or "cls_token" not in state:
        raise UserError(f"{source}: its `model` is not a ViT (no patch_embed / cls_token)")
    args = vars(raw["args"]) if isinstance(raw.get("args"), argparse.Namespace) else {}
    mapped, dropped = _rename(state, VIT_RULES, source)
    num_classes, feature_dim = _classifier_shape(mapped, source)
    head, dim = _head_kind(mapped, "head.", "vit")
    arch = args.get("model") if isinstance(args.get("model"), str) else None
    image_size = int(args.get("input_size") or 224)
    # fc_norm exists exactly when the authors pooled the patch tokens (MAE's global_pool).
    pool = "avg" if "backbone.fc_norm.weight" in mapped else "token"
    queue = state.get("queue")
    return AuthorsCheckpoint(
        source=source, layout="vit", method="gpaco" if head else "ce", arch=arch,
        backbone=f"timm:{VIT_ARCHS[arch]}" if arch in VIT_ARCHS else None,
        backbone_kwargs={"global_pool": pool, "img_size": image_size}, state=mapped,
        dropped=dropped, num_classes=num_classes, feature_dim=feature_dim, dim=dim, head=head,
        queue_size=int(queue.shape[0]) if isinstance(queue, Tensor) else None,
        image_size=image_size, test_transform="imagenet_test",
        meta=_plain_meta(raw, ("model", "optimizer", "scaler")))


def read_authors_checkpoint(path: str | Path) -> AuthorsCheckpoint:
    """Read and map one of the authors' files (ResNet-family or MAE-ViT layout).

    Raises:
        UserError: unreadable or unsafe file, a gpaco checkpoint, or an unknown layout.
    """
    return authors_checkpoint_from(safe_load(path), str(path))


def authors_checkpoint_from(raw: Any, source: str) -> AuthorsCheckpoint:
    """Map what `safe_load` read from an authors' file (`source` names it in messages)."""
    if not isinstance(raw, dict):
        raise UserError(f"{source} holds a {type(raw).__name__}, not a checkpoint dict")
    if "config" in raw and "model" in raw:
        raise UserError(f"{source} is already a gpaco checkpoint; load it with "
                        "gpaco.weights.checkpoint.load_checkpoint")
    if isinstance(raw.get("state_dict"), dict):
        return _from_resnet_file(raw, source)
    if isinstance(raw.get("model"), dict):
        return _from_vit_file(raw, source)
    raise UserError(f"{source} is not one of the authors' checkpoints (no 'state_dict' or "
                    f"'model' entry; it has {', '.join(map(str, list(raw)[:6])) or 'nothing'})")


# ---------------------------------------------------------------------------------------------
# into gpaco models


def load_authors_checkpoint(model: nn.Module,
                            source: str | Path | AuthorsCheckpoint) -> ImportReport:
    """Load an authors' file into a gpaco wrapper (`Classifier`, `PaCoModel`, `GPaCoModel`).

    The backbone and the classifier must match exactly; the projection head and PaCo's key
    encoder are loaded where they fit, the queue starts empty (see `load_parts`).

    Raises:
        UserError: a model without `backbone` / `classifier`, or weights that do not fit.
    """
    ckpt = source if isinstance(source, AuthorsCheckpoint) else read_authors_checkpoint(source)
    return load_parts(model, ckpt.state, source=ckpt.source, arch=ckpt.arch,
                      dropped=ckpt.dropped)
