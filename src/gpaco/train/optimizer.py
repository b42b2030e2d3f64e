"""The optimiser of a run: parameter groups from a function of the model, then SGD or AdamW.

Any task plugs in its own groups (`build_optimizer(cfg.optim, groups)`); each group may carry
`lr_scale` (the schedule multiplies, never overwrites it) and its own `weight_decay`.
`param_groups` is the default: for SGD one group of everything (the PaCo / GPaCo ResNet
recipes decay every parameter); for AdamW no weight decay on 1-D parameters (biases, norms)
nor on the model's `no_weight_decay()` names, and layer-wise lr decay (`optim.layer_decay`) for
any backbone family (gpaco.models.layer_decay: MAE's rule for ViTs, timm's group matchers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gpaco.errors import UserError
from gpaco.config import Config, OptimConfig
from gpaco.config.options import POSITIVE, NON_NEGATIVE
from gpaco.models.layer_decay import holds_vit, layer_decay_param_groups

ParamGroups = list[dict[str, Any]]


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


def one_group(model: nn.Module, o: OptimConfig) -> ParamGroups:
    """Every trainable parameter in one group, all decayed (the PaCo / GPaCo SGD recipes)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": params, "weight_decay": o.weight_decay, "lr_scale": 1.0}]


def adamw_groups(model: nn.Module, o: OptimConfig) -> ParamGroups:
    """No decay on 1-D parameters and `no_weight_decay()` names; layer-wise lr decay for any
    family that has layer ids (gpaco.models.layer_decay; ViTs keep MAE's per-layer groups)."""
    if o.layer_decay == 1.0 and not holds_vit(model):
        return decay_groups(model, o.weight_decay)
    return layer_decay_param_groups(model, weight_decay=o.weight_decay, layer_decay=o.layer_decay)


def param_groups(model: nn.Module, o: OptimConfig) -> ParamGroups:
    """The default groups of `model` under the config's optimiser (see the module doc)."""
    return OPTIMIZERS[o.name].groups(model, o)


@dataclass
class SGDOptions:
    momentum: float = field(default=0.9, metadata=NON_NEGATIVE)
    nesterov: bool = False


@dataclass
class AdamWOptions:
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    layer_decay: float = field(default=1.0, metadata=POSITIVE)  # layer-wise lr decay


def _check_betas(cfg: Config) -> None:
    betas = cfg.optim.betas
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise UserError(f"optim.betas must be two numbers in [0, 1), not {betas}")


def _sgd(groups: ParamGroups, o: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                           weight_decay=o.weight_decay)


def _adamw(groups: ParamGroups, o: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


@dataclass(frozen=True)
class Optimizer:
    """`make(groups, optim section)`, the default `groups(model, optim section)`, its options (`optim.*` keys) and a check of a config."""

    make: Callable[[ParamGroups, OptimConfig], torch.optim.Optimizer]
    groups: Callable[[nn.Module, OptimConfig], ParamGroups]
    options: type
    check: Callable[[Config], None] | None = None


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(_sgd, one_group, SGDOptions),
    "adamw": Optimizer(_adamw, adamw_groups, AdamWOptions, _check_betas),
}


def build_optimizer(o: OptimConfig, groups: ParamGroups) -> torch.optim.Optimizer:
    """The optimiser `o.name` over `groups` at lr `o.lr` (a schedule then sets each group's lr)."""
    return OPTIMIZERS[o.name].make([g for g in groups if g["params"]], o)


def optimizer_of(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """A run's optimiser: the config's, over the model's default parameter groups."""
    return build_optimizer(cfg.optim, param_groups(model, cfg.optim))
