"""model.pretrained=FILE with an MAE / timm ViT encoder: through the config and build_model."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from gpaco import run as C
from gpaco.tasks.classification.build import build_model
from gpaco.errors import UserError

pytest.importorskip("timm")

from gpaco.models.vit import create_vit  # noqa: E402  (needs timm)

VIT = ["method=gpaco", "model.backbone=vit_micro_patch4_32", "model.head=gelu",
       "model.classifier_init_std=2e-5", "model.queue_size=16"]


def _encoder(img_size: int, seed: int = 3, **kw) -> dict[str, torch.Tensor]:
    """An MAE encoder's keys: a cls-token ViT ending in `norm`, no head."""
    torch.manual_seed(seed)
    return create_vit("vit_micro_patch4_32", img_size=img_size, global_pool="token",
                      **kw).state_dict()


def _build(path: Path, *extra: str):
    return build_model(C.load_config(overrides=[*VIT, f"model.pretrained={path}", *extra]), 10)


def _save(fmt: str, path: Path, sd: dict[str, torch.Tensor]) -> Path:
    if fmt == "mae":
        torch.save({"model": sd, "epoch": 799, "args": argparse.Namespace(blr=1.5e-4)}, path)
    elif fmt == "plain":
        torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    else:
        from safetensors.torch import save_file
        save_file(sd, str(path))
    return path


@pytest.mark.parametrize("fmt,name", [("mae", "mae.pth"), ("plain", "enc.pth"),
                                      ("safetensors", "vit.safetensors")])
def test_encoder_files_load_into_the_vit_backbone(tmp_path, fmt, name, capsys):
    sd = _encoder(img_size=16)  # a 4x4 grid; the model's is 8x8
    model = _build(_save(fmt, tmp_path / name, sd))
    state = model.backbone.state_dict()
    for key in ("blocks.1.attn.qkv.weight", "patch_embed.proj.weight", "cls_token"):
        assert torch.equal(state[key], sd[key]), key
    assert state["pos_embed"].shape == (1, 65, 32)
    assert torch.equal(state["pos_embed"][:, 0], sd["pos_embed"][:, 0])  # the cls token's
    line = capsys.readouterr().out
    assert "pos_embed resampled 4x4 -> 8x8" in line and "missing: fc_norm" in line
    assert "unexpected: norm.bias, norm.weight" in line
    # the centers keep MAE's init: the file has no head
    assert model.classifier.weight.abs().max() < 1e-3 and model.classifier.bias.abs().max() == 0


def test_encoder_file_into_a_resnet_is_one_line_error(tmp_path):
    path = _save("mae", tmp_path / "mae.pth", _encoder(32))
    with pytest.raises(UserError, match="is a ViT .* not a ViT") as err:
        build_model(C.load_config(overrides=[f"model.pretrained={path}"]), 10)
    assert "\n" not in str(err.value)


def test_encoder_of_another_size_is_one_line_error(tmp_path):
    path = _save("mae", tmp_path / "wide.pth", _encoder(32, embed_dim=48, num_heads=2))
    with pytest.raises(UserError, match="not a ViT of the chosen size: file has embed_dim 48"):
        _build(path)
