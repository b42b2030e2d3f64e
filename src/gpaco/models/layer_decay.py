"""Layer ids per parameter, and AdamW groups with layer-wise lr decay, for every backbone family.

A model's layers come from the module that has them (the "body": a ViT, or the backbone):
- a ViT (`is_vit`: `.patch_embed` and `.blocks`) keeps MAE's `param_groups_lrd` rule exactly:
  cls_token, pos_embed and patch_embed.* are layer 0, blocks.i.* layer i + 1, everything else
  (fc_norm, and outside the ViT the wrapper's classifier and projection head) depth + 1.
  gpaco extension, not reachable with MAE's ViTs: `reg_token` / `dist_token` (other timm ViTs)
  are embedding-level tokens and get layer 0 too.
- any other body is grouped by a timm-format `group_matcher(coarse=False)`: its own method (every
  timm model, or a user's backbone) or, for classes gpaco does not own or shares a rule among,
  an entry of `MATCHERS` (the ResNets). timm's own grouping (`group_with_matcher`) turns it into
  layer ids, so a timm model gets exactly `timm.optim.param_groups_layer_decay`'s ids. Names
  the matcher does not match (a timm model's head norm) share the top layer, and so do the
  wrapper's trainable parameters (classifier / centers, projection head, decoder): they sit
  where timm puts a model's own classifier.
A group's lr scale is layer_decay ** (top - layer id), so the top layer trains at the full lr.
No weight decay on 1-D (and 0-D) parameters (biases, norms) nor on `no_weight_decay()` names.
Each group carries `lr_scale`; a scheduler sets `group["lr"] = lr * group["lr_scale"]` and
never overwrites the scale (timm's convention). Frozen parameters (a momentum key encoder)
are left out of the groups.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torchvision.models.resnet import ResNet

from gpaco.errors import UserError
from gpaco.models.resnet_big import ResNetBig
from gpaco.models.resnet_cifar import ResNetCifar

Matcher = dict[str, Any] | Callable[[str], Any]
ParamGroups = list[dict[str, Any]]

# The ResNet layout shared by torchvision, timm and gpaco's CIFAR / SupCon ResNets (conv1, bn1,
# layer<i>.<j>, fc): the stem is one layer, then every residual block is its own (timm's rule).
RESNET_MATCHER: dict[str, Any] = {"stem": r"^(?:conv1|bn1)\.", "blocks": r"^layer(\d+)\.(\d+)\."}
MATCHERS: dict[type[nn.Module], Matcher] = {
    ResNet: RESNET_MATCHER, ResNetCifar: RESNET_MATCHER, ResNetBig: RESNET_MATCHER}

_EMBEDDING_TOKENS = ("cls_token", "pos_embed", "reg_token", "dist_token")
# Wrapper parameters are handed to the body's matcher under this prefix, which no anchored
# pattern matches, so timm's grouping puts them in its unmatched (top) group.
_OUTSIDE = "<outside>."


def is_vit(module: nn.Module) -> bool:
    """A ViT: a `.patch_embed` and a Sequential / ModuleList of `.blocks` (gpaco's one test)."""
    return (isinstance(getattr(module, "blocks", None), nn.Sequential | nn.ModuleList)
            and hasattr(module, "patch_embed"))


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def find_vit(model: nn.Module) -> tuple[str, nn.Module]:
    """(name prefix, module) of the one trainable ViT inside `model` (a frozen key encoder's
    copy does not count).

    Raises:
        UserError: no ViT, or several (layer decay would be ambiguous).
    """
    found = [(name, m) for name, m in model.named_modules() if is_vit(m) and _trainable(m)]
    if len(found) != 1:
        raise UserError(f"layer-wise lr decay needs exactly one ViT in the model, found "
                        f"{len(found)} (a module with .blocks and .patch_embed)")
    name, vit = found[0]
    return (f"{name}." if name else ""), vit


def holds_vit(model: nn.Module) -> bool:
    return any(is_vit(m) for m in model.modules())


def vit_layer_id(name: str, depth: int) -> int:
    """Layer id of a parameter named relative to a ViT with `depth` blocks (MAE's rule)."""
    if name in _EMBEDDING_TOKENS or name.startswith("patch_embed."):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


def matcher_of(module: nn.Module) -> Matcher | None:
    """The module's timm-format group matcher: its `group_matcher(coarse=False)`, else its class's
    `MATCHERS` entry (subclasses too: smp's ResNet encoders are torchvision ResNets), else None
    (no layer structure gpaco knows)."""
    if callable(getattr(module, "group_matcher", None)):
        return module.group_matcher(coarse=False)
    return next((m for cls, m in MATCHERS.items() if isinstance(module, cls)), None)


def _find_body(model: nn.Module) -> tuple[str, nn.Module]:
    """(prefix, module) of the outermost trainable module with a matcher (a wrapper's backbone
    comes before its frozen key copy)."""
    for name, module in model.named_modules():
        if _trainable(module) and matcher_of(module) is not None:
            return (f"{name}." if name else ""), module
    body = getattr(model, "backbone", model)
    raise UserError(f"optim.layer_decay needs layer ids, and {type(body).__name__} has none (no "
                    "group_matcher(); see gpaco.models.layer_decay.MATCHERS); leave it at 1.0")


def _matched_layer_ids(model: nn.Module) -> dict[str, int]:
    from timm.models._manipulate import group_with_matcher  # timm's grouping of a matcher

    prefix, body = _find_body(model)
    body_names = {prefix + n for n, _ in body.named_parameters()}
    # timm groups all of the body's parameters, frozen ones too, so its ids are the same.
    named = [(n, n) for n, _ in body.named_parameters()]
    named += [(_OUTSIDE + n, n) for n, p in model.named_parameters()
              if p.requires_grad and n not in body_names]
    ids = group_with_matcher(named, matcher_of(body), reverse=True)
    layers = {(n[len(_OUTSIDE):] if n.startswith(_OUTSIDE) else prefix + n): i
              for n, i in ids.items()}
    if len(set(layers.values())) < 2:
        raise UserError(f"optim.layer_decay needs layer ids, and {type(body).__name__}'s "
                        "group_matcher puts every parameter in one layer; leave it at 1.0")
    return layers


def layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """({parameter name: layer id}, top layer id) for every trainable parameter of `model`.

    Raises:
        UserError: the model has no layer structure gpaco knows, or a non-ViT model without timm.
    """
    if holds_vit(model):
        prefix, vit = find_vit(model)
        depth = len(vit.blocks)
        return {n: vit_layer_id(n[len(prefix):], depth) if n.startswith(prefix) else depth + 1
                for n, p in model.named_parameters() if p.requires_grad}, depth + 1
    try:
        layers = _matched_layer_ids(model)
    except ImportError:
        raise UserError("optim.layer_decay for a non-ViT model needs timm: "
                        "pip install 'gpaco[timm]'") from None
    return layers, max(layers.values())


def _no_weight_decay(model: nn.Module) -> set[str]:
    """Full names of the `no_weight_decay()` names of `model` and of every submodule."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        if callable(getattr(module, "no_weight_decay", None)):
            names |= {f"{prefix}.{n}" if prefix else n for n in module.no_weight_decay()}
    return names


def layer_decay_param_groups(
    model: nn.Module,
    *,
    weight_decay: float = 0.05,
    layer_decay: float = 0.75,
    no_weight_decay: set[str] | None = None,
) -> ParamGroups:
    """Param groups for `torch.optim.AdamW(groups, lr=...)`.

    Args:
        model: a backbone or a wrapper holding one (Classifier, PaCo / GPaCo model, Segmenter).
        weight_decay: for parameters with 2+ dims not in the no-decay set (MAE: 0.05).
        layer_decay: per-layer lr decay (MAE recipes: 0.65 for ViT-B, 0.75 for ViT-L).
        no_weight_decay: names relative to the ViT exempt from weight decay (ViTs only; default
            its `no_weight_decay()`); other models exempt every module's `no_weight_decay()`.

    Returns:
        One dict per (layer, decay / no-decay) in first-seen order, like MAE's `param_groups_lrd`:
        {"params", "param_names" (full names), "lr_scale", "weight_decay", "layer_id"}.
    """
    layers, top = layer_ids(model)
    if holds_vit(model):
        prefix, vit = find_vit(model)
        if no_weight_decay is None:
            no_weight_decay = set(getattr(vit, "no_weight_decay", set)())
        skip = {prefix + n for n in no_weight_decay}
    else:
        skip = _no_weight_decay(model)
    groups: dict[str, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = layers[name]
        exempt = param.ndim <= 1 or name in skip
        key = f"layer_{layer}_{'no_decay' if exempt else 'decay'}"
        if key not in groups:
            groups[key] = {"params": [], "param_names": [], "layer_id": layer,
                           "lr_scale": layer_decay ** (top - layer),
                           "weight_decay": 0.0 if exempt else weight_decay}
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    return list(groups.values())
