"""Backbones by name: `create_backbone(name, pretrained=..., **kwargs)`.

Every backbone maps images (B, 3, H, W) to pooled features (B, feature_dim) and exposes
`.feature_dim`. The wrappers put the classifier and the projection head on top, so there are no
forward hooks: whatever yields a pooled feature can be a backbone.

Names: the CIFAR ResNets ("resnet20" ... "resnet110", 64-d), the SupCon-style CIFAR ResNets
("resnet18_cifar", "resnet50_cifar"), torchvision ImageNet ResNets/ResNeXts (fc replaced by
Identity), and any timm model as "timm:<model_name>" (or a bare name timm knows and gpaco does
not). timm is an optional extra and is imported only when asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from typing import Any, Callable

import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from gpaco.errors import UserError
from gpaco.models import resnet_big, resnet_cifar

BackboneBuilder = Callable[..., nn.Module]


def _scratch_only(name: str, build: Callable[[], nn.Module]) -> BackboneBuilder:
    """Builder for gpaco's own CIFAR networks, which have no pretrained weights or options."""

    def builder(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        if pretrained:
            raise UserError(f"backbone {name!r} has no pretrained weights; use pretrained=False")
        if kwargs:
            raise UserError(f"backbone {name!r} takes no options, got {sorted(kwargs)}")
        return build()

    return builder


@contextlib.contextmanager
def _download_errors(name: str) -> Iterator[None]:
    """Pretrained weights that cannot be fetched are a user-facing problem, not a traceback."""
    try:
        yield
    except OSError as err:  # URLError, HTTP and socket errors, a corrupt cache file
        raise UserError(f"cannot load pretrained weights for {name!r} ({err}); check the network "
                        "or torch.hub's cache (TORCH_HOME), or set model.pretrained=false") from None


def _torchvision_resnet(name: str) -> BackboneBuilder:
    """Builder for a torchvision ResNet/ResNeXt with `fc` replaced by Identity (2048-d)."""

    def builder(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        if name == "resnext101_32x4d":
            # torchvision ships only 32x8d; the authors' 32x4d is the same code with width 4.
            if pretrained:
                raise UserError(
                    "torchvision has no resnext101_32x4d weights; use 'timm:resnext101_32x4d' "
                    "for a pretrained one"
                )
            model = ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4, **kwargs)
        else:
            weights = "DEFAULT" if pretrained else None
            with _download_errors(name):
                model = torchvision.models.get_model(name, weights=weights, **kwargs)
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
    **{
        name: _torchvision_resnet(name)
        for name in (
            "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x4d",
        )
    },
}



def _vit_preset(name: str) -> BackboneBuilder:
    """gpaco's small ViTs (models/vit.py VIT_PRESETS): timm's ViT code, no pretrained weights."""

    def builder(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        from gpaco.models.vit import create_vit  # imports timm, an optional extra

        if pretrained:
            raise UserError(f"backbone {name!r} has no pretrained weights; use pretrained=False")
        return create_vit(name, **kwargs)

    return builder


BACKBONES["vit_micro_patch4_32"] = _vit_preset("vit_micro_patch4_32")
TIMM_PREFIX = "timm:"


def list_backbones() -> list[str]:
    """gpaco's own backbone names (any timm model is also available as "timm:<name>")."""
    return sorted(BACKBONES)


def create_backbone(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a backbone that maps (B, 3, H, W) images to (B, feature_dim) pooled features.

    Args:
        name: a name from `list_backbones()`, or "timm:<model_name>", or a bare timm model name.
        pretrained: load ImageNet weights (torchvision DEFAULT weights, or timm's).
        **kwargs: passed to the underlying constructor (torchvision / timm).

    Raises:
        UserError: unknown name, timm missing, or weights that do not exist.
    """
    if name in BACKBONES:
        return BACKBONES[name](pretrained=pretrained, **kwargs)
    timm_name = name[len(TIMM_PREFIX):] if name.startswith(TIMM_PREFIX) else name
    return _create_timm(timm_name, pretrained=pretrained, explicit=name != timm_name, **kwargs)


def _create_timm(name: str, *, pretrained: bool, explicit: bool, **kwargs: Any) -> nn.Module:
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
    with _download_errors(name):
        model = timm.create_model(name, pretrained=pretrained, num_classes=0, **kwargs)
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
