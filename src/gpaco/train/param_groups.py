"""AdamW parameter groups with layer-wise lr decay, as MAE / BEiT fine-tune ViTs.

Layer ids (MAE's `get_layer_id_for_vit`, on names relative to the ViT): cls_token, pos_embed and
patch_embed.* are layer 0; blocks.i.* is layer i + 1; everything else (fc_norm, and outside the
ViT the wrapper's classifier and projection head) is layer depth + 1. A group's lr scale is
layer_decay ** (depth + 1 - layer id), so the last layer trains at the full lr.
gpaco extension, not reachable with MAE's ViTs: `reg_token` / `dist_token` (other timm ViTs)
are embedding-level tokens and get layer 0 too.

No weight decay on 1-D (and 0-D) parameters (biases, LayerNorm) or on the ViT's
`no_weight_decay()` names (pos_embed, cls_token, ...). Each group carries `lr_scale`; a
scheduler sets `group["lr"] = lr * group["lr_scale"]` (`gpaco.train.schedule.set_lr`)
and never overwrites the scale (timm's convention).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gpaco.errors import UserError

_EMBEDDING_TOKENS = ("cls_token", "pos_embed", "reg_token", "dist_token")


def vit_layer_id(name: str, depth: int) -> int:
    """Layer id of a parameter named relative to a ViT with `depth` blocks (MAE's rule)."""
    if name in _EMBEDDING_TOKENS or name.startswith("patch_embed."):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


def find_vit(model: nn.Module) -> tuple[str, nn.Module]:
    """(name prefix, module) of the one ViT inside `model` (it has `.blocks` and `.patch_embed`).

    Raises:
        UserError: no ViT, or several (layer decay would be ambiguous).
    """
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(getattr(m, "blocks", None), nn.Sequential | nn.ModuleList)
             and hasattr(m, "patch_embed")]
    if len(found) != 1:
        raise UserError(f"layer-wise lr decay needs exactly one ViT in the model, found {len(found)} "
                        "(a module with .blocks and .patch_embed)")
    name, vit = found[0]
    return (f"{name}." if name else ""), vit


def layer_decay_param_groups(
    model: nn.Module,
    *,
    weight_decay: float = 0.05,
    layer_decay: float = 0.75,
    no_weight_decay: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Param groups for `torch.optim.AdamW(groups, lr=...)`.

    Args:
        model: a ViT, or a wrapper holding one (e.g. `gpaco_vit(create_vit(...))`).
        weight_decay: for parameters with 2+ dims not in the no-decay set (MAE: 0.05).
        layer_decay: per-layer lr decay (MAE recipes: 0.65 for ViT-B, 0.75 for ViT-L).
        no_weight_decay: names relative to the ViT exempt from weight decay; default its
            `no_weight_decay()` (timm: pos_embed, cls_token, dist_token, reg_token).

    Returns:
        One dict per (layer, decay / no-decay) in first-seen order, like MAE's `param_groups_lrd`:
        {"params", "param_names" (full names), "lr_scale", "weight_decay", "layer_id"}.
        Frozen parameters (requires_grad False) are left out.
    """
    prefix, vit = find_vit(model)
    depth = len(vit.blocks)
    if no_weight_decay is None:
        no_weight_decay = set(vit.no_weight_decay()) if hasattr(vit, "no_weight_decay") else set()
    groups: dict[str, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        inside = name.startswith(prefix)
        rel = name[len(prefix):] if inside else None
        layer = vit_layer_id(rel, depth) if rel is not None else depth + 1
        exempt = param.ndim <= 1 or (rel is not None and rel in no_weight_decay)
        key = f"layer_{layer}_{'no_decay' if exempt else 'decay'}"
        if key not in groups:
            groups[key] = {"params": [], "param_names": [], "layer_id": layer,
                           "lr_scale": layer_decay ** (depth + 1 - layer),
                           "weight_decay": 0.0 if exempt else weight_decay}
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    return list(groups.values())
