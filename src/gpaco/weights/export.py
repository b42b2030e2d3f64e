"""A trained gpaco model's backbone + classifier as a plain torchvision / timm state dict.

gpaco's backbones are the plain networks with their classifier replaced by Identity
(torchvision ResNets: `fc`; timm models built with `num_classes=0`: `head`, `fc`, ...; gpaco's
CIFAR ResNets have none, and get `fc` as the authors' `resnet_cifar.py`). Exporting puts the
wrapper's `classifier` back under that name, so `torchvision.models.resnet50(num_classes=C)`
or `timm.create_model(name, num_classes=C, ...)` loads the result with `strict=True` and
computes the same logits. The projection head, key encoder and queue are training-only and
are left out. The file records the backbone's name and options in its metadata, so
`load_exported(file)` (`gpaco.load_exported`) rebuilds the plain network and loads it.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.models.backbone_names import same_backbone
from gpaco.models.backbones import create_backbone
from gpaco.models.plain import attach_classifier, classifier_name
from gpaco.weights.authors import safe_load


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        for name in ("module", "_orig_mod"):
            inner = getattr(model, name, None)
            if isinstance(inner, nn.Module):
                model = inner
                break
        else:
            return model


def export_state_dict(model: nn.Module, *, with_classifier: bool = True) -> dict[str, Tensor]:
    """The backbone's weights (and the classifier under the plain network's name), detached.

    Args:
        model: a gpaco wrapper (`Classifier`, `PaCoModel`, `GPaCoModel`), possibly wrapped in
            DDP or torch.compile.
        with_classifier: add the classifier (`fc.weight`, `head.weight`, ...); without it the
            result loads into the plain network whose classifier is Identity / num_classes=0.

    Raises:
        UserError: not a gpaco wrapper, or a classifier on L2-normalised features, which the
            plain network cannot reproduce.
    """
    model = unwrap(model)
    backbone, classifier = getattr(model, "backbone", None), getattr(model, "classifier", None)
    if not isinstance(backbone, nn.Module) or not isinstance(classifier, nn.Linear):
        raise UserError(f"{type(model).__name__} is not a gpaco wrapper (needs .backbone and a "
                        "Linear .classifier)")
    state = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    if not with_classifier:
        return state
    if getattr(model, "normalize_feature", False):
        raise UserError("this model's classifier reads L2-normalised features; a plain network "
                        "would not compute its logits (export with with_classifier=False)")
    name = classifier_name(backbone)
    if any(k.startswith(f"{name}.") for k in state):
        raise UserError(f"the backbone already has weights under {name!r}; cannot add the "
                        "classifier there")
    for part, value in classifier.state_dict().items():
        state[f"{name}.{part}"] = value.detach().clone()
    return state


# The export's own record, in the state dict's `_metadata` (torch keeps it through save / load
# and `load_state_dict` ignores unknown entries), so the file stays a plain state dict.
EXPORT_TAG = "gpaco_export"


def tag_export(state: dict[str, Tensor], backbone: str,
               backbone_kwargs: dict[str, Any] | None) -> OrderedDict[str, Tensor]:
    """`state` with the backbone that `load_exported` rebuilds recorded in its metadata."""
    tagged = OrderedDict(state)
    tagged._metadata = {"": {EXPORT_TAG: {"backbone": backbone,  # type: ignore[attr-defined]
                                          "backbone_kwargs": dict(backbone_kwargs or {})}}}
    return tagged


def _export_record(raw: dict[str, Any]) -> dict[str, Any]:
    record = (getattr(raw, "_metadata", None) or {}).get("", {}).get(EXPORT_TAG)
    return record if isinstance(record, dict) else {}


def load_exported(path: str | Path, backbone: str | None = None, *,
                  num_classes: int | None = None, **backbone_kwargs: Any) -> nn.Module:
    """The plain network of a `gpaco export` file, its weights loaded (strict), in eval mode.

    `model(images)` gives the trained model's logits: a gpaco CIFAR ResNet, torchvision
    ResNet/ResNeXt or timm model with its classifier (`fc`, or timm's name) as exported. A file
    written with `--no-classifier` gives the backbone (pooled features).

    Args:
        path: the exported file.
        backbone: the `model.backbone` it came from; recorded in files of this gpaco, needed
            for other plain state dicts (torchvision's or older exports).
        num_classes: if given, the class count the file must have.
        **backbone_kwargs: `create_backbone` options over the recorded ones.

    Raises:
        UserError: not a plain state dict, no backbone known, another backbone or class count
            than the file's, or keys that do not fit the network.
    """
    raw = safe_load(path)
    if not isinstance(raw, dict) or not raw or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in raw.items()):
        raise UserError(f"{path} is not a plain state dict (what `gpaco export` writes); a gpaco "
                        "checkpoint loads with gpaco.load_model")
    record = _export_record(raw)
    recorded = record.get("backbone")
    if backbone and recorded and not same_backbone(backbone, recorded):
        raise UserError(f"{path} was exported from backbone {recorded!r}, not {backbone!r}")
    name = backbone or recorded
    if not name:
        raise UserError(f"{path} does not record its backbone; name it: "
                        "gpaco.load_exported(path, 'resnet50')")
    net = create_backbone(name, **{**record.get("backbone_kwargs", {}), **backbone_kwargs})
    weight = raw.get(f"{classifier_name(net)}.weight")
    if weight is None and num_classes is not None:
        raise UserError(f"{path} has no classifier ({classifier_name(net)}.weight; exported with "
                        "--no-classifier?), so it has no class count to check")
    if weight is not None:
        if num_classes is not None and weight.shape[0] != num_classes:
            raise UserError(f"{path} has {weight.shape[0]} classes, not num_classes={num_classes}")
        attach_classifier(net, weight.shape[0])
    missing, unexpected = net.load_state_dict(raw, strict=False)
    if missing or unexpected:
        raise UserError(f"{path} does not fit backbone {name!r}: missing {_few(missing)}, "
                        f"unexpected {_few(unexpected)}")
    return net.eval()


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" (+{len(keys) - 3})" if len(keys) > 3 else "") or "none"
