"""The optimiser of a run: parameter groups from a function of the model, then SGD or AdamW.

Any task plugs in its own groups (`build_optimizer(cfg.optim, groups)`); each group may carry
`lr_scale` (the schedule multiplies, never overwrites it) and its own `weight_decay`.
`param_groups` is the default: for SGD one group of everything (the PaCo / GPaCo ResNet
recipes decay every parameter); for AdamW no weight decay on 1-D parameters (biases, norms)
nor on the model's `no_weight_decay()` names, and MAE's layer-wise lr decay when the model
holds a ViT (engine/param_groups.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gpaco.errors import UserError

from gpaco.config.core import OptimConfig
from gpaco.train.param_groups import find_vit, layer_decay_param_groups

ParamGroups = list[dict[str, Any]]


def _holds_vit(model: nn.Module) -> bool:
    return any(hasattr(m, "patch_embed") and hasattr(m, "blocks") for m in model.modules())


def decay_groups(model: nn.Module, weight_decay: float) -> ParamGroups:
    """Two groups: weight decay on parameters of 2+ dims, none on 1-D ones or the model's
    `no_weight_decay()` names (timm's `param_groups_weight_decay`)."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name in skip else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
            {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0}]


def param_groups(model: nn.Module, o: OptimConfig) -> ParamGroups:
    """The default groups of `model` under the config's optimiser (see the module doc)."""
    if o.name == "sgd":
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": params, "weight_decay": o.weight_decay, "lr_scale": 1.0}]
    if _holds_vit(model):
        find_vit(model)  # exactly one
        return layer_decay_param_groups(model, weight_decay=o.weight_decay,
                                        layer_decay=o.layer_decay)
    if o.layer_decay != 1.0:
        raise UserError(f"optim.layer_decay={o.layer_decay} needs a ViT backbone (layer ids "
                        "follow its blocks); leave it at 1.0 for this model")
    return decay_groups(model, o.weight_decay)


def build_optimizer(o: OptimConfig, groups: ParamGroups) -> torch.optim.Optimizer:
    """SGD or AdamW over `groups` at lr `o.lr` (a schedule then sets each group's lr)."""
    groups = [g for g in groups if g["params"]]
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                               weight_decay=o.weight_decay)
    return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
