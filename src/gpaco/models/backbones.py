"""Backbones by name: `create_backbone(name, weights=..., **kwargs)`.

Every backbone maps images (B, 3, H, W) to pooled features (B, feature_dim) and exposes
`.feature_dim`. The wrappers put the classifier and the projection head on top, so there are no
forward hooks: whatever yields a pooled feature can be a backbone.

Names: the CIFAR ResNets ("resnet20" ... "resnet110", 64-d), the SupCon-style CIFAR ResNets
("resnet18_cifar", "resnet50_cifar"), torchvision ImageNet ResNets/ResNeXts (fc replaced by
Identity; "resnet200" and "resnext101_32x4d" in the same layout, which torchvision lacks), and any timm model as "timm:<model_name>" (or a bare name timm knows and gpaco does
not). timm is an optional extra and is imported only when asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from gpaco.errors import UserError
from gpaco.models.timm_names import TIMM_PREFIX
from gpaco.models import resnet_big, resnet_cifar

BackboneBuilder = Callable[..., nn.Module]

# Weights are always named (torchvision's `IMAGENET1K_V1`, a timm pretrained tag): "DEFAULT" is
# a moving alias (V1 -> V2 for the ResNets), so a recipe that leaned on it would train on other
# features after a torchvision upgrade.
MOVING_ALIASES = ("DEFAULT",)


def _scratch_only(name: str, build: Callable[[], nn.Module]) -> BackboneBuilder:
    """Builder for gpaco's own networks, which have no released weights or options."""

    def builder(weights: str | None = None, **kwargs: Any) -> nn.Module:
        if weights:
            raise UserError(f"backbone {name!r} has no released weights; model.pretrained takes "
                            "a weights file for it (a gpaco or authors' checkpoint)")
        if kwargs:
            raise UserError(f"backbone {name!r} takes no options, got {sorted(kwargs)}")
        return build()

    return builder


@contextlib.contextmanager
def _download_errors(name: str, where: str = "") -> Iterator[None]:
    """Weights that cannot be fetched are a user-facing problem, not a traceback."""
    try:
        yield
    except OSError as err:  # URLError, HTTP and socket errors, a corrupt cache file
        hint = f"; place the file at {where}" if where else ""
        raise UserError(f"cannot load pretrained weights for {name!r} ({err}){hint}, or give "
                        "model.pretrained=<local file>") from None


def torchvision_weights(name: str, weights: str) -> Any:
    """torchvision's weights enum member `weights` of model `name` (`IMAGENET1K_V1`, or the full
    `ResNet152_Weights.IMAGENET1K_V1`), refusing moving aliases and names the model lacks."""
    enum = torchvision.models.get_model_weights(name)
    short = weights.split(".", 1)[1] if weights.startswith(enum.__name__ + ".") else weights
    choices = ", ".join(w.name for w in enum)
    if short in MOVING_ALIASES:
        raise UserError(f"model.pretrained={weights} is torchvision's moving alias; name the "
                        f"weights of {name!r}: {choices}")
    if short not in enum.__members__:
        raise UserError(f"{name!r} has no torchvision weights {weights!r}; choose one of {choices}")
    return enum[short]


def hub_cache_path(url: str) -> Path:
    """Where torch.hub keeps (and looks for) the file of `url`: put it there to work offline."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _torchvision_resnet(name: str, layers: list[int] | None = None, **arch: Any) -> BackboneBuilder:
    """A torchvision-layout ResNet/ResNeXt with `fc` replaced by Identity. `layers` builds an
    architecture torchvision has no constructor for (ResNet-200, ResNeXt-101 32x4d): no weights."""

    def builder(weights: str | None = None, **kwargs: Any) -> nn.Module:
        if layers is not None:
            if weights:
                raise UserError(f"torchvision has no {name} weights; give model.pretrained="
                                "<local file> (a torchvision-style .pth or a checkpoint)")
            model = ResNet(Bottleneck, layers, **arch, **kwargs)
        else:
            enum = torchvision_weights(name, weights) if weights else None
            where = str(hub_cache_path(enum.url)) if enum is not None else ""
            with _download_errors(name, where):
                model = torchvision.models.get_model(name, weights=enum, **kwargs)
        model.feature_dim = model.fc.in_features
        model.fc = nn.Identity()
        return model

    return builder


BACKBONES: dict[str, BackboneBuilder] = {
    "resnet8": _scratch_only("resnet8", resnet_cifar.resnet8),
    "resnet14": _scratch_only("resnet14", resnet_cifar.resnet14),
    "resnet20": _scratch_only("resnet20", resnet_cifar.resnet20),
    "resnet32": _scratch_only("resnet32", resnet_cifar.resnet32),
    "resnet44": _scratch_only("resnet44", resnet_cifar.resnet44),
    "resnet56": _scratch_only("resnet56", resnet_cifar.resnet56),
    "resnet110": _scratch_only("resnet110", resnet_cifar.resnet110),
    "resnet18_cifar": _scratch_only("resnet18_cifar", resnet_big.resnet18_cifar),
    "resnet50_cifar": _scratch_only("resnet50_cifar", resnet_big.resnet50_cifar),
    **{name: _torchvision_resnet(name) for name in (
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d")},
    # The authors' own layouts (PaCo/Full-ImageNet/models/resnet.py, models/resnet_imagenet.py).
    "resnet200": _torchvision_resnet("resnet200", [3, 24, 36, 3]),
    "resnext101_32x4d": _torchvision_resnet("resnext101_32x4d", [3, 4, 23, 3], groups=32,
                                            width_per_group=4),
}



def _vit_preset(name: str) -> BackboneBuilder:
    """gpaco's small ViTs (models/vit.py VIT_PRESETS): timm's ViT code, no released weights."""

    def builder(weights: str | None = None, **kwargs: Any) -> nn.Module:
        from gpaco.models.vit import create_vit  # imports timm, an optional extra

        if weights:
            raise UserError(f"backbone {name!r} has no released weights; model.pretrained takes "
                            "a weights file for it (an MAE-format ViT file or a checkpoint)")
        return create_vit(name, **kwargs)

    return builder


BACKBONES["vit_micro_patch4_32"] = _vit_preset("vit_micro_patch4_32")


def list_backbones() -> list[str]:
    """gpaco's own backbone names (any timm model is also available as "timm:<name>")."""
    return sorted(BACKBONES)


def create_backbone(name: str, *, weights: str | None = None, **kwargs: Any) -> nn.Module:
    """Build a backbone that maps (B, 3, H, W) images to (B, feature_dim) pooled features.

    Args:
        name: a name from `list_backbones()`, or "timm:<model_name>", or a bare timm model name.
        weights: None (random init) or the exact released weights: a torchvision weights name
            of the model (`IMAGENET1K_V1`) or a timm pretrained tag (`a1_in1k`); never a
            moving alias such as "DEFAULT".
        **kwargs: passed to the underlying constructor (torchvision / timm).

    Raises:
        UserError: unknown name, timm missing, or weights that do not exist or cannot be read.
    """
    if "num_classes" in kwargs:
        raise UserError("create_backbone returns pooled features and takes no num_classes; "
                        f"gpaco.models.create_network({name!r}, num_classes) adds the classifier")
    if name in BACKBONES:
        return BACKBONES[name](weights=weights, **kwargs)
    timm_name = name[len(TIMM_PREFIX):] if name.startswith(TIMM_PREFIX) else name
    return _create_timm(timm_name, weights=weights, explicit=name != timm_name, **kwargs)


def _create_timm(name: str, *, weights: str | None, explicit: bool, **kwargs: Any) -> nn.Module:
    known = ", ".join(list_backbones())
    try:
        import timm
    except ImportError:
        if explicit:
            raise UserError(
                f"backbone 'timm:{name}' needs timm: pip install 'gpaco[timm]'"
            ) from None
        raise UserError(
            f"unknown backbone {name!r}; known: {known} (or 'timm:<name>' with timm installed)"
        ) from None
    if not timm.is_model(name):
        raise UserError(f"unknown backbone {name!r}; known: {known}, or any timm model as "
                        "'timm:<name>' (see timm.list_models())")
    if weights:
        if weights in MOVING_ALIASES or "." in name:
            raise UserError(f"name the timm weights by tag: model.backbone=timm:<model> "
                            f"model.pretrained=<tag> (see timm.list_pretrained({name!r}))")
        tags = [t.split(".", 1)[1] for t in timm.list_pretrained(name + ".*")]
        if weights not in tags:
            raise UserError(f"timm model {name!r} has no pretrained tag {weights!r}; its tags: "
                            f"{', '.join(tags) or 'none'}")
        name = f"{name}.{weights}"
    with _download_errors(name):
        model = timm.create_model(name, pretrained=bool(weights), num_classes=0, **kwargs)
    # With num_classes=0 timm returns the pre-logits feature, whose width is head_hidden_size
    # when the head has a hidden layer (e.g. MobileNetV3) and num_features otherwise.
    model.feature_dim = getattr(model, "head_hidden_size", None) or model.num_features
    return model


def feature_dim_of(backbone: nn.Module) -> int:
    """The backbone's pooled feature width (`.feature_dim`, as `create_backbone` sets it)."""
    dim = getattr(backbone, "feature_dim", None)
    if not isinstance(dim, int) or dim <= 0:
        raise UserError(
            f"backbone {type(backbone).__name__} has no positive integer `.feature_dim`; build it "
            "with gpaco.models.create_backbone or set the attribute"
        )
    return dim
