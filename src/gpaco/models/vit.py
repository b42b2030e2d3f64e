"""Vision Transformers for MAE fine-tuning, and the GPaCo / CE wrappers of that recipe.

`create_vit(name)` builds a timm ViT as a gpaco backbone: global average pooling of the patch
tokens (the cls token is left out) followed by `fc_norm` (LayerNorm, eps 1e-6), no classifier,
`.feature_dim = embed_dim`. This is MAE's `global_pool=True` fine-tuning model, with timm's
parameter names, so an MAE checkpoint loads with missing {fc_norm.*} and unexpected {norm.*}
(see `gpaco.weights.mae`).

The GPaCo ViT variant composes with the existing `GPaCoModel`: its "gelu" projection head is
the authors' Linear(D,D)-GELU-Linear(D,D)-GELU-Linear(D,128) with PyTorch's default init, and the
wrapper's `classifier` is the centers. The only change is the centers' init (trunc-normal std
2e-5, bias 0, as MAE's `head`), done by `init_centers_`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gpaco.errors import UserError
from gpaco.models.timm_names import TIMM_PREFIX

# Small ViTs for tests and CPU demos; the full-size names come from timm.
# vit_micro_patch4_32: 32x32 images, 4x4 patches (8x8 grid), width 32, 2 blocks, 2 heads.
VIT_PRESETS: dict[str, dict[str, Any]] = {
    "vit_micro_patch4_32": dict(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=2),
}
# The presets override the architecture of this timm ViT (same block layout as ViT-B/16).
_PRESET_BASE = "vit_tiny_patch16_224"

CENTER_INIT_STD = 2e-5


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise UserError("ViT backbones need timm: pip install 'gpaco[timm]'") from None
    return timm


def create_vit(
    name: str,
    *,
    drop_path_rate: float = 0.0,
    global_pool: str = "avg",
    img_size: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A timm VisionTransformer mapping (B, 3, H, W) to pooled features (B, embed_dim).

    Args:
        name: a timm ViT name ("vit_base_patch16_224", "vit_large_patch16_224", ...), optionally
            as "timm:<name>", or a key of `VIT_PRESETS`.
        drop_path_rate: stochastic depth rate (MAE recipes: 0.1 for ViT-B, 0.2 for ViT-L).
        global_pool: "avg" = mean of the patch tokens then `fc_norm` (MAE fine-tuning); "token"
            = the cls token after `norm` (the original ViT).
        img_size: input side, if not the model's default (pos_embed is sized for it).
        **kwargs: passed to `timm.create_model` (e.g. `attn_drop_rate`). `pretrained` is not
            accepted: load weights with `gpaco.weights.mae.load_mae_checkpoint`.

    Raises:
        UserError: timm missing, unknown name, or a timm model that is not a VisionTransformer.
    """
    if "pretrained" in kwargs or "num_classes" in kwargs:
        raise UserError("create_vit takes no pretrained/num_classes: it returns a pooled-feature "
                        "backbone; load weights with load_mae_checkpoint")
    timm = _timm()
    from timm.models.vision_transformer import VisionTransformer

    base = name[len(TIMM_PREFIX):] if name.startswith(TIMM_PREFIX) else name
    args: dict[str, Any] = dict(VIT_PRESETS.get(base, {}))
    timm_name = _PRESET_BASE if base in VIT_PRESETS else base
    if not timm.is_model(timm_name):
        raise UserError(f"unknown ViT {name!r}; use a timm ViT name (timm.list_models('vit_*')) "
                        f"or one of {', '.join(VIT_PRESETS)}")
    if img_size is not None:
        args["img_size"] = img_size
    args.update(kwargs)
    model = timm.create_model(timm_name, pretrained=False, num_classes=0, global_pool=global_pool,
                              drop_path_rate=drop_path_rate, **args)
    if not isinstance(model, VisionTransformer):
        raise UserError(f"{name!r} is a timm {type(model).__name__}, not a VisionTransformer")
    model.feature_dim = model.embed_dim
    return model


def init_centers_(linear: nn.Linear, std: float = CENTER_INIT_STD) -> nn.Linear:
    """MAE's head init: weight ~ trunc-normal(0, std) (cut at +-2, i.e. untruncated), bias 0."""
    nn.init.trunc_normal_(linear.weight, std=std)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear
