"""Layer-wise lr decay groups (MAE's rule)."""

from __future__ import annotations

import math

import pytest
import torch

from gpaco.models.layer_decay import find_vit, layer_decay_param_groups, vit_layer_id
from gpaco.train.schedule import set_lr
from gpaco.errors import UserError

timm = pytest.importorskip("timm")

from gpaco.models.gpaco import GPaCoModel  # noqa: E402
from gpaco.models.vit import create_vit, init_centers_  # noqa: E402  (needs timm)


def gpaco_vit(backbone, num_classes, **kwargs):
    """The authors' GPaCo MAE-ViT model (GELU head, centers initialised as MAE's head)."""
    model = GPaCoModel(backbone, num_classes, head="gelu", **kwargs)
    init_centers_(model.classifier)
    return model


def _by_name(groups: list[dict]) -> dict[str, tuple[float, float, int]]:
    return {n: (g["lr_scale"], g["weight_decay"], g["layer_id"])
            for g in groups for n in g["param_names"]}


def test_layer_ids_follow_mae() -> None:
    assert [vit_layer_id(n, 12) for n in (
        "cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.norm1.weight",
        "blocks.11.mlp.fc2.bias", "fc_norm.weight", "norm.bias", "head.weight",
    )] == [0, 0, 0, 1, 12, 13, 13, 13]


def test_gpaco_vit_groups_by_hand() -> None:
    """Depth 2, decay 0.65: embeddings 0.65^3, block 0 0.65^2, block 1 0.65, the rest 1."""
    model = gpaco_vit(create_vit("vit_micro_patch4_32"), 10, queue_size=8)
    got = _by_name(layer_decay_param_groups(model, weight_decay=0.05, layer_decay=0.65))
    assert set(got) == {n for n, _ in model.named_parameters()}
    d = 0.65
    expected = {
        "backbone.cls_token": (d**3, 0.0, 0),
        "backbone.pos_embed": (d**3, 0.0, 0),
        "backbone.patch_embed.proj.weight": (d**3, 0.05, 0),
        "backbone.patch_embed.proj.bias": (d**3, 0.0, 0),
        "backbone.blocks.0.attn.qkv.weight": (d**2, 0.05, 1),
        "backbone.blocks.0.norm1.weight": (d**2, 0.0, 1),
        "backbone.blocks.1.mlp.fc2.weight": (d, 0.05, 2),
        "backbone.blocks.1.mlp.fc2.bias": (d, 0.0, 2),
        "backbone.fc_norm.weight": (1.0, 0.0, 3),
        "classifier.weight": (1.0, 0.05, 3),
        "classifier.bias": (1.0, 0.0, 3),
        "head.0.weight": (1.0, 0.05, 3),  # the projection head: outside the ViT, last layer
        "head.4.bias": (1.0, 0.0, 3),
    }
    for name, (scale, wd, layer) in expected.items():
        assert got[name][0] == pytest.approx(scale), name
        assert got[name][1:] == (wd, layer), name


def test_groups_drive_adamw_and_frozen_params_are_left_out() -> None:
    model = gpaco_vit(create_vit("vit_micro_patch4_32"), 10, queue_size=8)
    model.backbone.patch_embed.requires_grad_(False)
    groups = layer_decay_param_groups(model, weight_decay=0.05, layer_decay=0.75)
    names = [n for g in groups for n in g["param_names"]]
    assert not any(n.startswith("backbone.patch_embed") for n in names)
    opt = torch.optim.AdamW(groups, lr=1e-3)
    set_lr(opt, 4e-3)
    for group in opt.param_groups:
        assert group["lr"] == pytest.approx(4e-3 * group["lr_scale"])
    scales = [g["lr_scale"] for g in opt.param_groups]
    set_lr(opt, 1e-3)  # a second call multiplies again from the untouched scales
    assert [g["lr_scale"] for g in opt.param_groups] == scales
    assert all(g["lr"] == pytest.approx(1e-3 * g["lr_scale"]) for g in opt.param_groups)


def _timm_vit(global_pool: str) -> torch.nn.Module:
    return timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=4, embed_dim=32,
                             depth=2, num_heads=2, num_classes=10, global_pool=global_pool)


def test_equal_to_timm_param_groups_layer_decay_for_the_avg_pool_vit() -> None:
    from timm.optim import param_groups_layer_decay

    vit = _timm_vit("avg")
    theirs = param_groups_layer_decay(vit, weight_decay=0.05, layer_decay=0.65,
                                      no_weight_decay_list=vit.no_weight_decay())
    names = {id(p): n for n, p in vit.named_parameters()}
    theirs_by_name = {names[id(p)]: (g["lr_scale"], g["weight_decay"])
                      for g in theirs for p in g["params"]}
    ours = {n: v[:2] for n, v in _by_name(
        layer_decay_param_groups(vit, weight_decay=0.05, layer_decay=0.65)).items()}
    assert ours.keys() == theirs_by_name.keys()
    for name, (scale, wd) in ours.items():
        assert math.isclose(scale, theirs_by_name[name][0]), name
        assert wd == theirs_by_name[name][1], name
    assert len(theirs) == len(layer_decay_param_groups(vit, weight_decay=0.05, layer_decay=0.65))


def test_timm_differs_on_the_final_norm_of_a_cls_token_vit() -> None:
    """State difference: for a cls-token ViT timm puts `norm` in the last block's layer
    (scale 0.65 here); MAE's rule, and gpaco, give it depth + 1 (scale 1). MAE fine-tuning uses
    average pooling, where `norm` is Identity, so its recipes are unaffected."""
    from timm.optim import param_groups_layer_decay

    vit = _timm_vit("token")
    theirs = param_groups_layer_decay(vit, weight_decay=0.05, layer_decay=0.65,
                                      no_weight_decay_list=vit.no_weight_decay())
    names = {id(p): n for n, p in vit.named_parameters()}
    theirs_by_name = {names[id(p)]: g["lr_scale"] for g in theirs for p in g["params"]}
    ours = {n: v[0] for n, v in _by_name(
        layer_decay_param_groups(vit, weight_decay=0.05, layer_decay=0.65)).items()}
    differ = sorted(n for n in ours if not math.isclose(ours[n], theirs_by_name[n]))
    assert differ == ["norm.bias", "norm.weight"]
    assert theirs_by_name["norm.weight"] == pytest.approx(0.65) and ours["norm.weight"] == 1.0


def test_no_vit_is_user_error() -> None:
    with pytest.raises(UserError, match="exactly one ViT"):
        find_vit(torch.nn.Linear(2, 2))
