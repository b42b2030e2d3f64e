"""Partial freezing for fine-tuning recipes."""

from __future__ import annotations

from torch import nn

from gpaco.errors import UserError


def freeze_convs_but_last_block(backbone: nn.Module) -> int:
    """Places-LT recipe: freeze every Conv2d weight except those of `layer4[-1]`.

    BN affine parameters, the projection head and the classifier stay trainable, as in the
    authors' `paco_fp16_places.py`. Returns the number of frozen tensors.
    """
    layer4 = getattr(backbone, "layer4", None)
    if layer4 is None:
        raise UserError("model.freeze=convs_but_last_block needs a ResNet-style backbone with layer4")
    keep = {id(m) for m in layer4[-1].modules()}
    frozen = 0
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d) and id(module) not in keep:
            module.weight.requires_grad_(False)
            frozen += 1
    return frozen


FREEZERS = {"convs_but_last_block": freeze_convs_but_last_block}


def freeze(model: nn.Module, how: str) -> int:
    if how not in FREEZERS:
        raise UserError(f"unknown model.freeze {how!r}; known: {', '.join(FREEZERS)}")
    return FREEZERS[how](model.backbone)
