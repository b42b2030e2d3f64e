"""Loading MAE-format / plain / safetensors ViT files into `create_vit` backbones."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gpaco.errors import UserError
from gpaco.weights.mae import load_mae_checkpoint, read_state_dict, resample_pos_embed
from gpaco.models.vit import create_vit

pytest.importorskip("timm")


def _mae_encoder(img_size: int = 32, **kw) -> dict[str, torch.Tensor]:
    """The key set of an MAE pretrained encoder: a cls-token ViT (ends with `norm`), no head."""
    torch.manual_seed(1)
    return create_vit("vit_micro_patch4_32", img_size=img_size, global_pool="token",
                      **kw).state_dict()


def _save_mae(path: Path, sd: dict[str, torch.Tensor]) -> Path:
    """MAE's training-checkpoint layout, argparse.Namespace included."""
    torch.save({"model": sd, "optimizer": {"state": {}}, "epoch": 399,
                "scaler": {"scale": 65536.0}, "args": argparse.Namespace(blr=1.5e-4)}, path)
    return path


def test_mae_file_loads_with_the_documented_missing_and_unexpected_keys(tmp_path: Path) -> None:
    sd = _mae_encoder()
    sd["mask_token"] = torch.zeros(1, 1, 32)  # MAE pretraining leftovers are reported, not loaded
    sd["decoder_embed.weight"] = torch.zeros(16, 32)
    model = create_vit("vit_micro_patch4_32")
    report = load_mae_checkpoint(model, _save_mae(tmp_path / "mae.pth", sd))
    assert report.missing == ["fc_norm.bias", "fc_norm.weight"]
    assert report.unexpected == ["decoder_embed.weight", "mask_token", "norm.bias", "norm.weight"]
    assert report.pos_embed_grid is None and report.dropped_shape == []
    state = model.state_dict()
    for key in report.loaded:
        torch.testing.assert_close(state[key], sd[key], rtol=0, atol=0)
    assert "blocks.1.mlp.fc2.weight" in report.loaded and "pos_embed" in report.loaded
    assert "missing: fc_norm.bias, fc_norm.weight" in report.summary()


def test_pos_embed_is_resampled_bicubically_to_the_model_grid(tmp_path: Path) -> None:
    sd = _mae_encoder(img_size=16)  # 4x4 grid in the file
    model = create_vit("vit_micro_patch4_32")  # 8x8 grid
    report = load_mae_checkpoint(model, _save_mae(tmp_path / "mae16.pth", sd))
    assert report.pos_embed_grid == ((4, 4), (8, 8))
    old = sd["pos_embed"]
    grid = old[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False)
    expected = torch.cat([old[:, :1], expected.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)
    torch.testing.assert_close(model.pos_embed.detach(), expected)
    assert torch.equal(model.pos_embed.detach()[:, 0], old[:, 0])  # cls token kept as is


def test_resample_matches_timm_when_upsampling() -> None:
    from timm.layers import resample_abs_pos_embed

    torch.manual_seed(0)
    pe = torch.randn(1, 1 + 7 * 7, 16)
    ours = resample_pos_embed(pe, (14, 14), num_extra_tokens=1)
    theirs = resample_abs_pos_embed(pe, (14, 14), num_prefix_tokens=1, antialias=False)
    torch.testing.assert_close(ours, theirs)
    assert resample_pos_embed(pe, (7, 7), 1) is pe


def test_plain_state_dict_with_ddp_prefix_and_a_head_of_another_size(tmp_path: Path) -> None:
    sd = {f"module.{k}": v for k, v in _mae_encoder().items()}
    model = create_vit("vit_micro_patch4_32")
    torch.save(sd, tmp_path / "plain.pth")
    report = load_mae_checkpoint(model, tmp_path / "plain.pth")
    assert report.unexpected == ["norm.bias", "norm.weight"] and not report.dropped_shape
    # A fine-tuned 1000-class head cannot go into a 10-class timm head: dropped and said so.
    vit_with_head = create_vit("vit_micro_patch4_32", global_pool="avg")
    vit_with_head.reset_classifier(10)
    sd2 = _mae_encoder()
    sd2["head.weight"], sd2["head.bias"] = torch.zeros(1000, 32), torch.zeros(1000)
    torch.save({"state_dict": sd2}, tmp_path / "head.pth")
    report = load_mae_checkpoint(vit_with_head, tmp_path / "head.pth")
    assert report.dropped_shape == ["head.bias", "head.weight"]
    assert "head.weight" in report.missing


def test_timm_safetensors_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(2)
    src = create_vit("vit_micro_patch4_32")  # timm avg-pool weights: fc_norm present, no norm
    src.reset_classifier(1000)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()},
              str(tmp_path / "model.safetensors"))
    model = create_vit("vit_micro_patch4_32")
    report = load_mae_checkpoint(model, tmp_path / "model.safetensors")
    assert report.missing == [] and report.unexpected == ["head.bias", "head.weight"]
    x = torch.randn(2, 3, 32, 32)
    src.reset_classifier(0)
    torch.testing.assert_close(model.eval()(x), src.eval()(x))


def test_vit_of_another_size_is_one_line_user_error(tmp_path: Path) -> None:
    path = _save_mae(tmp_path / "wide.pth", _mae_encoder(embed_dim=48, num_heads=3))
    with pytest.raises(UserError, match="not a ViT of the chosen size") as err:
        load_mae_checkpoint(create_vit("vit_micro_patch4_32"), path)
    assert "embed_dim 48 (model 32)" in str(err.value) and "\n" not in str(err.value)
    deep = _save_mae(tmp_path / "deep.pth", _mae_encoder(depth=3))
    with pytest.raises(UserError, match=r"depth 3 \(model 2\)"):
        load_mae_checkpoint(create_vit("vit_micro_patch4_32"), deep)


def test_non_vit_file_is_user_error(tmp_path: Path) -> None:
    torch.save({"model": torch.nn.Conv2d(3, 4, 3).state_dict()}, tmp_path / "cnn.pth")
    with pytest.raises(UserError, match="is not a ViT checkpoint"):
        load_mae_checkpoint(create_vit("vit_micro_patch4_32"), tmp_path / "cnn.pth")


def test_incomplete_encoder_is_refused_and_model_untouched(tmp_path: Path) -> None:
    sd = _mae_encoder()
    del sd["blocks.1.attn.qkv.weight"]
    model = create_vit("vit_micro_patch4_32")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match=r"blocks\.\*\.attn\.qkv\.weight"):
        load_mae_checkpoint(model, _save_mae(tmp_path / "cut.pth", sd))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class _Payload:
    """Anything outside the weights-only allow-list must not be unpickled."""


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    torch.save({"model": _mae_encoder(), "extra": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match="weights_only=True refused"):
        read_state_dict(tmp_path / "evil.pth")


def test_missing_and_tensorless_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    with pytest.raises(UserError, match="holds no state dict"):
        read_state_dict(tmp_path / "empty.pth")
