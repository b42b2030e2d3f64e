"""A trained gpaco model's backbone + classifier as a plain torchvision / timm state dict.

gpaco's backbones are the plain networks with their classifier replaced by Identity
(torchvision ResNets: `fc`; timm models built with `num_classes=0`: `head`, `fc`, ...; gpaco's
CIFAR ResNets have none, and get `fc` as the authors' `resnet_cifar.py`). Exporting puts the
wrapper's `classifier` back under that name, so `torchvision.models.resnet50(num_classes=C)`
or `timm.create_model(name, num_classes=C, ...)` loads the result with `strict=True` and
computes the same logits. The projection head, key encoder and queue are training-only and
are left out.
"""

from __future__ import annotations

from torch import Tensor, nn

from gpaco.errors import UserError


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


def classifier_name(backbone: nn.Module) -> str:
    """The attribute under which the plain network keeps its classifier."""
    cfg = getattr(backbone, "pretrained_cfg", None) or getattr(backbone, "default_cfg", None)
    if isinstance(cfg, dict) and isinstance(cfg.get("classifier"), str):
        return cfg["classifier"]  # timm records it per model ("head", "fc", "classifier")
    return "fc"  # torchvision ResNets/ResNeXts and the authors' CIFAR ResNets


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
