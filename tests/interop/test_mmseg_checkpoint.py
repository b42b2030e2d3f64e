"""The authors' released segmentation checkpoints (mmseg layout, generated here) through
`gpaco convert` and `gpaco eval --checkpoint FILE --recipe seg-...`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _mmseg_layouts import released_file, resnet18_v1c, sep_aspp_head, swin_tiny, uper_head
from gpaco.cli import main
from gpaco import run as C
from gpaco.weights.checkpoint import load_checkpoint
from gpaco.tasks.segmentation.task import build_segmenter
from gpaco.errors import UserError
from gpaco.weights.mmseg import load_mmseg_state, unfold_to_timm

DEMO = ["data.dataset=seg_demo", "data.root=null", "data.crop_size=[64,64]",
        "data.scale=[64,64]", "train.device=cpu", "train.eval_batch_size=16", "data.workers=0",
        "model.sync_bn=false", "output.progress=none"]
DEMO_CLASSES = ["background", "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _r18_file(path: Path, classes: int = 11) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    state = {**resnet18_v1c(g), **sep_aspp_head(g, classes)}
    torch.save(released_file(state, DEMO_CLASSES[:classes]), path)
    return state


def test_authors_r18_deeplabv3plus_converts_and_evaluates(tmp_path, capsys) -> None:
    state = _r18_file(tmp_path / "r18.pth")
    out = tmp_path / "gpaco.pt"
    recipe = "seg-cityscapes-deeplabv3plus-r18-gpaco"
    assert main(["convert", str(tmp_path / "r18.pth"), "--recipe", recipe, "--out", str(out),
                 *DEMO]) == 0
    report = capsys.readouterr().out
    assert f"loaded {len(state)} tensors (mmseg resnet layout); ignored 0" in report
    ckpt = load_checkpoint(out)
    model = ckpt["model"]
    pairs = {"backbone.stem.7.running_var": "encoder.model.bn1.running_var",
             "backbone.stem.3.weight": "encoder.model.conv1.3.weight",
             "backbone.layer3.0.downsample.0.weight": "encoder.model.layer3.0.downsample.0.weight",
             "decode_head.bottleneck.conv.weight": "decoder.bottleneck.conv.weight",
             "decode_head.sep_bottleneck.0.depthwise_conv.bn.bias":
                 "decoder.sep_bottleneck.0.depthwise_conv.bn.bias",
             "decode_head.image_pool.1.conv.weight": "decoder.image_pool.1.conv.weight",
             "decode_head.conv_seg.weight": "classifier.weight",
             "decode_head.mlp.1.bn.weight": "projection.1.1.weight",
             "decode_head.mlp.2.bias": "projection.2.bias",
             "auxiliary_head.convs.0.conv.weight": "aux_head.0.0.weight",
             "auxiliary_head.conv_seg.bias": "aux_head.2.bias"}
    for theirs, ours in pairs.items():
        assert torch.equal(model[ours], state[theirs]), theirs
    assert len(model) == len(state) and ckpt["classes"] == DEMO_CLASSES
    assert ckpt["converted_from"]["layout"] == "mmseg-resnet"
    # eval: the converted file, and the authors' file directly, give the same line.
    assert main(["eval", "--checkpoint", str(out)]) == 0
    converted_line = capsys.readouterr().out.strip()
    assert main(["eval", "--checkpoint", str(tmp_path / "r18.pth"), "--recipe", recipe,
                 *DEMO]) == 0
    direct = capsys.readouterr().out.strip()
    assert direct.startswith("test mIoU") and direct == converted_line


def test_a_file_that_does_not_fit_the_recipe_is_a_one_line_error(tmp_path, capsys) -> None:
    g = torch.Generator().manual_seed(0)
    state = {**resnet18_v1c(g), **sep_aspp_head(g, 11, c1=48)}  # smp's 48, not the authors' 12
    torch.save(released_file(state, DEMO_CLASSES), tmp_path / "r18.pth")
    assert main(["convert", str(tmp_path / "r18.pth"), "--recipe",
                 "seg-cityscapes-deeplabv3plus-r18-gpaco", "--out", str(tmp_path / "x.pt"),
                 *DEMO]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "c1_bottleneck" in err[0] and "shape" in err[0]
    assert not (tmp_path / "x.pt").exists()
    state["decode_head.extra.weight"] = torch.zeros(1)
    model = build_segmenter(C.load_config("seg-cityscapes-deeplabv3plus-r18-gpaco",
                                          overrides=["model.pretrained=false"]), 11)
    with pytest.raises(UserError, match="unexpected"):
        load_mmseg_state(model, state)


def test_unfold_order_matches_timm_patch_merging() -> None:
    """mmcv's PatchMerging (nn.Unfold 2x2, then norm and reduction) equals timm's with the
    converted weights."""
    from timm.models.swin_transformer import PatchMerging

    torch.manual_seed(0)
    c = 6
    x = torch.randn(2, 4, 6, c)  # NHWC, as timm's stage input
    norm_w, norm_b, red = torch.randn(4 * c), torch.randn(4 * c), torch.randn(2 * c, 4 * c)
    cols = F.unfold(x.permute(0, 3, 1, 2), kernel_size=2, stride=2).transpose(1, 2)
    want = F.linear(F.layer_norm(cols, (4 * c,), norm_w, norm_b), red)  # (N, L, 2C)
    timm = PatchMerging(c)
    with torch.no_grad():
        timm.norm.weight.copy_(unfold_to_timm(norm_w))
        timm.norm.bias.copy_(unfold_to_timm(norm_b))
        timm.reduction.weight.copy_(unfold_to_timm(red))
    got = timm(x).reshape(2, -1, 2 * c)
    torch.testing.assert_close(got, want)


@pytest.mark.slow
def test_authors_swin_t_upernet_loads_with_only_the_index_buffers_left(tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    state = {**swin_tiny(g), **uper_head(g, 150)}
    cfg = C.load_config("seg-ade20k-upernet-swin-t-gpaco",
                        overrides=["model.pretrained=false", "model.sync_bn=false"])
    model = build_segmenter(cfg, 150)
    report = load_mmseg_state(model, state)
    ignored = [k for k in state if k.endswith("relative_position_index")]
    assert report.ignored == ignored and len(ignored) == 12
    assert report.loaded == len(state) - 12 == len(model.state_dict())
    own = model.state_dict()
    assert torch.equal(own["encoder_norms.2.weight"], state["backbone.norm2.weight"])
    assert torch.equal(own["encoder.model.layers_1.blocks.1.mlp.fc2.weight"],
                       state["backbone.stages.1.blocks.1.ffn.layers.1.weight"])
    assert torch.equal(own["encoder.model.layers_2.downsample.reduction.weight"],
                       unfold_to_timm(state["backbone.stages.1.downsample.reduction.weight"]))
    assert torch.equal(own["decoder.psp_modules.3.1.bn.running_mean"],
                       state["decode_head.psp_modules.3.1.bn.running_mean"])
    assert sum(p.numel() for p in model.parameters()) == sum(
        v.numel() for k, v in state.items() if v.is_floating_point()
        and not any(s in k for s in ("running_", "relative_position_index")))
