"""The authors' mmseg decoders: parameter counts per recipe family, mmcv's initialisation, the
forward pass against a functional reference written from mmseg's head code, and the Swin AdamW
rule of their paramwise_cfg."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gpaco import run as C
from gpaco.train.optimizer import param_groups
from gpaco.tasks.segmentation.task import build_segmenter
from gpaco.models.mmseg_decoders import ConvModule, SeparableASPPDecoder, UPerDecoder


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _recipe_model(name: str, classes: int) -> torch.nn.Module:
    cfg = C.load_config(name, overrides=["model.pretrained=false", "model.sync_bn=false"])
    return build_segmenter(cfg, classes)


# Decoder parameters without projection and conv_seg: extensions-spec section D for the
# DeepLabV3+ heads; UPerHead at Swin-T by hand: PPM 4 x (768*512 + 2*512) = 1,576,960,
# bottleneck (768 + 4*512)*512*9 + 1,024 = 12,977,152, laterals (96+192+384)*512 + 3*1,024 =
# 347,136, FPN convs 3 x (512*512*9 + 1,024) = 7,080,960, fpn_bottleneck 2048*512*9 + 1,024 =
# 9,438,208: 31,420,416; mmseg's Swin norm0-3: 2 x (96+192+384+768) = 2,880.
@pytest.mark.parametrize("recipe,classes,decoder,norms", [
    ("seg-cityscapes-deeplabv3plus-r50-gpaco", 19, 17_688_176, 0),
    ("seg-cityscapes-deeplabv3plus-r18-gpaco", 19, 1_121_948, 0),
    ("seg-ade20k-upernet-swin-t-gpaco", 150, 31_420_416, 2_880),
])
def test_recipe_decoders_have_the_authors_parameter_counts(recipe, classes, decoder, norms,
                                                           capsys) -> None:
    model = _recipe_model(recipe, classes)
    with capsys.disabled():
        print(f"\n{recipe}: encoder {_count(model.encoder):,} decoder {_count(model.decoder):,} "
              f"encoder norms {_count(model.encoder_norms) if model.encoder_norms else 0:,}")
    assert _count(model.decoder) == decoder
    assert (_count(model.encoder_norms) if model.encoder_norms is not None else 0) == norms
    width = model.classifier.in_channels
    # projection and aux head as the authors' (1x1 ConvModules + conv to 128; FCN conv 3x3).
    assert _count(model.projection) == 2 * (width * width + 2 * width) + width * 128 + 128
    assert _count(model.classifier) == classes * width + classes


def test_conv_modules_have_mmcv_initialisation() -> None:
    torch.manual_seed(0)
    m = ConvModule(64, 256, 3)
    fan_out = 256 * 9
    assert abs(m.conv.weight.std().item() - (2 / fan_out) ** 0.5) < 0.03 * (2 / fan_out) ** 0.5
    assert m.conv.bias is None
    assert torch.equal(m.bn.weight, torch.ones(256)) and torch.equal(m.bn.bias, torch.zeros(256))


def _cm(m: ConvModule, x: torch.Tensor) -> torch.Tensor:
    """mmcv's ConvModule in eval mode, functionally."""
    c = m.conv
    y = F.conv2d(x, c.weight, None, 1, c.padding, c.dilation, c.groups)
    return F.relu(F.batch_norm(y, m.bn.running_mean, m.bn.running_var, m.bn.weight, m.bn.bias))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, like.shape[-2:], mode="bilinear", align_corners=False)


def _randomise_bn(module: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.weight.data.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.bias.data.copy_(torch.randn(bn.num_features, generator=g) * 0.1)


@torch.no_grad()
def test_separable_aspp_matches_mmseg_forward() -> None:
    """mmseg DepthwiseSeparableASPPHead.forward: image pool + ASPP, 3x3 bottleneck over the
    concat, c1 1x1, resize (align_corners False), concat, two separable modules."""
    torch.manual_seed(0)
    dec = SeparableASPPDecoder(32, 8, channels=16, c1_channels=4, dilations=(1, 2, 3, 4)).eval()
    _randomise_bn(dec)
    c1, x = torch.randn(2, 8, 12, 10), torch.randn(2, 32, 6, 5)
    pool = _up(_cm(dec.image_pool[1], F.adaptive_avg_pool2d(x, 1)), x)
    branches = [_cm(dec.aspp_modules[0], x)] + [
        _cm(b.pointwise_conv, _cm(b.depthwise_conv, x)) for b in dec.aspp_modules[1:]]
    assert [b.depthwise_conv.conv.dilation for b in dec.aspp_modules[1:]] == [(2, 2), (3, 3), (4, 4)]
    out = _cm(dec.bottleneck, torch.cat([pool, *branches], 1))
    low = _cm(dec.c1_bottleneck, c1)
    out = torch.cat([_up(out, low), low], 1)
    for sep in dec.sep_bottleneck:
        out = _cm(sep.pointwise_conv, _cm(sep.depthwise_conv, out))
    got = dec([torch.zeros(1), c1, torch.zeros(1), torch.zeros(1), x])
    torch.testing.assert_close(got, out)
    assert dec.bottleneck.conv.kernel_size == (3, 3) and dec.bottleneck.conv.in_channels == 80


@torch.no_grad()
def test_uper_decoder_matches_mmseg_forward() -> None:
    """mmseg UPerHead.forward: PPM on the last level, laterals, top-down sums, FPN convs,
    everything resized to the first level and fused by a 3x3 ConvModule."""
    torch.manual_seed(0)
    ins = (4, 8, 12, 16)
    dec = UPerDecoder(ins, channels=8).eval()
    _randomise_bn(dec)
    feats = [torch.randn(2, c, 16 // 2**i, 20 // 2**i) for i, c in enumerate(ins)]
    last = feats[-1]
    ppm = [last] + [_up(_cm(p[1], F.adaptive_avg_pool2d(last, s)), last)
                    for p, s in zip(dec.psp_modules, (1, 2, 3, 6))]
    lat = [_cm(c, f) for c, f in zip(dec.lateral_convs, feats)] + [
        _cm(dec.bottleneck, torch.cat(ppm, 1))]
    for i in (3, 2, 1):
        lat[i - 1] = lat[i - 1] + _up(lat[i], lat[i - 1])
    outs = [_cm(c, v) for c, v in zip(dec.fpn_convs, lat)] + [lat[3]]
    want = _cm(dec.fpn_bottleneck, torch.cat([outs[0]] + [_up(o, outs[0]) for o in outs[1:]], 1))
    torch.testing.assert_close(dec([torch.zeros(1), *feats]), want)


@pytest.mark.slow
def test_swin_recipe_decays_exactly_the_authors_parameters() -> None:
    """paramwise_cfg custom_keys: decay_mult 0 only for names containing absolute_pos_embed,
    relative_position_bias_table or norm; every bias and the heads' BN are decayed."""
    cfg = C.load_config("seg-ade20k-upernet-swin-t-gpaco",
                        overrides=["model.pretrained=false", "model.sync_bn=false"])
    model = build_segmenter(cfg, 150)
    groups = param_groups(model, cfg.optim)
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.01 for p in g["params"]}
    names = dict(model.named_parameters())
    keys = ("absolute_pos_embed", "relative_position_bias_table", "norm")
    rule = {n for n in names if not any(k in n for k in keys)}
    assert {n for n, p in names.items() if id(p) in decayed} == rule
    assert "decoder.bottleneck.bn.weight" in rule and "encoder_norms.0.weight" not in rule
    assert any("qkv.bias" in n for n in rule)
    exempt = [n for n in names if n not in rule]
    # Swin-T: 12 blocks x (norm1, norm2: 4 + 1 table) + patch_embed.norm 2 + 3 downsample
    # norms x 2 + norm0-3 x 2 = 60 + 2 + 6 + 8 tensors, as in the authors' model.
    assert len(exempt) == 76
