"""Plain networks: a backbone with its classifier where the plain family keeps it.

`gpaco export` writes a trained model as the state dict of such a network: torchvision's
ResNets/ResNeXts and gpaco's CIFAR ResNets keep the classifier as `fc` (the authors'
`resnet_cifar.py` name), timm models where their `pretrained_cfg` says (`head`, `head.fc`,
`fc`, `classifier`). `create_network(name, num_classes)` builds exactly that network, so an
export loads into it with `strict=True` and `model(x)` gives the trained model's logits.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gpaco.errors import UserError
from gpaco.models.backbones import create_backbone, feature_dim_of


def classifier_name(backbone: nn.Module) -> str:
    """The attribute under which the plain network keeps its classifier."""
    cfg = getattr(backbone, "pretrained_cfg", None) or getattr(backbone, "default_cfg", None)
    if isinstance(cfg, dict) and isinstance(cfg.get("classifier"), str):
        return cfg["classifier"]  # timm records it per model ("head", "fc", "classifier")
    return "fc"  # torchvision ResNets/ResNeXts and gpaco's CIFAR ResNets


def attach_classifier(backbone: nn.Module, num_classes: int) -> nn.Module:
    """Give a `create_backbone` network a fresh Linear classifier under `classifier_name`.

    timm models rebuild their own head (`reset_classifier`, as `timm.create_model(name,
    num_classes=C)` builds it); the others get `fc = Linear(feature_dim, num_classes)` in place
    of their Identity. Returns the same module, whose forward now gives logits.
    """
    if num_classes < 1:
        raise UserError(f"num_classes must be a positive integer, got {num_classes}")
    name, dim = classifier_name(backbone), feature_dim_of(backbone)
    if callable(getattr(backbone, "reset_classifier", None)):
        backbone.reset_classifier(num_classes)
    elif isinstance(getattr(backbone, name, None), nn.Identity):
        setattr(backbone, name, nn.Linear(dim, num_classes))
    else:
        raise UserError(f"{type(backbone).__name__} has no Identity {name!r} to put a "
                        "classifier in; build it with gpaco.models.create_backbone")
    weight = backbone.state_dict().get(f"{name}.weight")
    if weight is None or tuple(weight.shape) != (num_classes, dim):
        raise UserError(f"{type(backbone).__name__}'s classifier {name!r} is not a "
                        f"Linear({dim}, {num_classes}) after adding it")
    return backbone


def create_network(name: str, num_classes: int, *, weights: str | None = None,
                   **kwargs: Any) -> nn.Module:
    """The plain network of backbone `name` with a `num_classes`-way classifier.

    Its state dict has the key names `gpaco export` writes (`fc.*` for gpaco's CIFAR ResNets
    and torchvision's ResNets, timm's own for timm models), so an export loads with
    `load_state_dict(..., strict=True)`; `gpaco.load_exported(file)` does both steps.

    Args:
        name, weights, **kwargs: as for `create_backbone`.
        num_classes: the classifier's outputs.
    """
    return attach_classifier(create_backbone(name, weights=weights, **kwargs), num_classes)
