"""State dicts in the key layout of the authors' released segmentation checkpoints (their
mmseg 0.17 fork: ResNetV1c / SwinTransformer backbones, DepthwiseSeparableASPPHead / UPerHead
decode heads with the GPaCo `mlp`, FCNHead auxiliary heads), written from mmseg's module
structure, independently of gpaco's renaming rules. Values are random."""

from __future__ import annotations

import torch
from torch import Tensor

State = dict[str, Tensor]


def _bn(state: State, prefix: str, c: int, g: torch.Generator) -> None:
    state[f"{prefix}.weight"] = torch.rand(c, generator=g) + 0.5
    state[f"{prefix}.bias"] = torch.randn(c, generator=g)
    state[f"{prefix}.running_mean"] = torch.randn(c, generator=g)
    state[f"{prefix}.running_var"] = torch.rand(c, generator=g) + 0.5
    state[f"{prefix}.num_batches_tracked"] = torch.tensor(1000)


def _w(state: State, key: str, *shape: int, g: torch.Generator) -> None:
    state[key] = torch.randn(*shape, generator=g) * 0.05


def _conv_module(state: State, prefix: str, cin: int, cout: int, k: int, g: torch.Generator,
                 groups: int = 1) -> None:
    _w(state, f"{prefix}.conv.weight", cout, cin // groups, k, k, g=g)
    _bn(state, f"{prefix}.bn", cout, g)


def _separable(state: State, prefix: str, cin: int, cout: int, g: torch.Generator) -> None:
    _conv_module(state, f"{prefix}.depthwise_conv", cin, cin, 3, g, groups=cin)
    _conv_module(state, f"{prefix}.pointwise_conv", cin, cout, 1, g)


def resnet18_v1c(g: torch.Generator) -> State:
    """mmseg ResNetV1c-18 (deep stem 32-32-64, BasicBlocks [2, 2, 2, 2])."""
    s: State = {}
    for i, (cin, cout) in zip((0, 3, 6), ((3, 32), (32, 32), (32, 64))):
        _w(s, f"backbone.stem.{i}.weight", cout, cin, 3, 3, g=g)
        _bn(s, f"backbone.stem.{i + 1}", cout, g)
    cin = 64
    for layer, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"backbone.layer{layer}.{block}"
            _w(s, f"{p}.conv1.weight", cout, cin, 3, 3, g=g)
            _bn(s, f"{p}.bn1", cout, g)
            _w(s, f"{p}.conv2.weight", cout, cout, 3, 3, g=g)
            _bn(s, f"{p}.bn2", cout, g)
            if block == 0 and cin != cout:
                _w(s, f"{p}.downsample.0.weight", cout, cin, 1, 1, g=g)
                _bn(s, f"{p}.downsample.1", cout, g)
            cin = cout
    return s


def swin_tiny(g: torch.Generator, window: int = 7) -> State:
    """mmseg SwinTransformer, Swin-T (96 wide, depths 2-2-6-2, heads 3-6-12-24), norm0-3."""
    s: State = {}
    dims, depths, heads = (96, 192, 384, 768), (2, 2, 6, 2), (3, 6, 12, 24)
    _w(s, "backbone.patch_embed.projection.weight", 96, 3, 4, 4, g=g)
    _w(s, "backbone.patch_embed.projection.bias", 96, g=g)
    _w(s, "backbone.patch_embed.norm.weight", 96, g=g)
    _w(s, "backbone.patch_embed.norm.bias", 96, g=g)
    for i, (d, n, h) in enumerate(zip(dims, depths, heads)):
        for j in range(n):
            p = f"backbone.stages.{i}.blocks.{j}"
            for norm in ("norm1", "norm2"):
                _w(s, f"{p}.{norm}.weight", d, g=g)
                _w(s, f"{p}.{norm}.bias", d, g=g)
            _w(s, f"{p}.attn.w_msa.relative_position_bias_table", (2 * window - 1) ** 2, h, g=g)
            s[f"{p}.attn.w_msa.relative_position_index"] = torch.zeros(
                window * window, window * window, dtype=torch.long)
            _w(s, f"{p}.attn.w_msa.qkv.weight", 3 * d, d, g=g)
            _w(s, f"{p}.attn.w_msa.qkv.bias", 3 * d, g=g)
            _w(s, f"{p}.attn.w_msa.proj.weight", d, d, g=g)
            _w(s, f"{p}.attn.w_msa.proj.bias", d, g=g)
            _w(s, f"{p}.ffn.layers.0.0.weight", 4 * d, d, g=g)
            _w(s, f"{p}.ffn.layers.0.0.bias", 4 * d, g=g)
            _w(s, f"{p}.ffn.layers.1.weight", d, 4 * d, g=g)
            _w(s, f"{p}.ffn.layers.1.bias", d, g=g)
        if i < 3:
            _w(s, f"backbone.stages.{i}.downsample.norm.weight", 4 * d, g=g)
            _w(s, f"backbone.stages.{i}.downsample.norm.bias", 4 * d, g=g)
            _w(s, f"backbone.stages.{i}.downsample.reduction.weight", 2 * d, 4 * d, g=g)
        _w(s, f"backbone.norm{i}.weight", d, g=g)
        _w(s, f"backbone.norm{i}.bias", d, g=g)
    return s


def _mlp_and_classifier(s: State, ch: int, classes: int, g: torch.Generator) -> None:
    _conv_module(s, "decode_head.mlp.0", ch, ch, 1, g)
    _conv_module(s, "decode_head.mlp.1", ch, ch, 1, g)
    _w(s, "decode_head.mlp.2.weight", 128, ch, 1, 1, g=g)
    _w(s, "decode_head.mlp.2.bias", 128, g=g)
    _w(s, "decode_head.conv_seg.weight", classes, ch, 1, 1, g=g)
    _w(s, "decode_head.conv_seg.bias", classes, g=g)


def _fcn_aux(s: State, cin: int, ch: int, classes: int, g: torch.Generator) -> None:
    _conv_module(s, "auxiliary_head.convs.0", cin, ch, 3, g)
    _w(s, "auxiliary_head.conv_seg.weight", classes, ch, 1, 1, g=g)
    _w(s, "auxiliary_head.conv_seg.bias", classes, g=g)


def sep_aspp_head(g: torch.Generator, classes: int, cin: int = 512, c1_in: int = 64,
                  ch: int = 128, c1: int = 12, aux_in: int = 256, aux_ch: int = 64) -> State:
    """DepthwiseSeparableASPPHead (paco: mlp) + FCNHead; defaults: the authors' R18."""
    s: State = {}
    _conv_module(s, "decode_head.image_pool.1", cin, ch, 1, g)
    _conv_module(s, "decode_head.aspp_modules.0", cin, ch, 1, g)
    for i in (1, 2, 3):
        _separable(s, f"decode_head.aspp_modules.{i}", cin, ch, g)
    _conv_module(s, "decode_head.bottleneck", 5 * ch, ch, 3, g)
    _conv_module(s, "decode_head.c1_bottleneck", c1_in, c1, 1, g)
    _separable(s, "decode_head.sep_bottleneck.0", ch + c1, ch, g)
    _separable(s, "decode_head.sep_bottleneck.1", ch, ch, g)
    _mlp_and_classifier(s, ch, classes, g)
    _fcn_aux(s, aux_in, aux_ch, classes, g)
    return s


def uper_head(g: torch.Generator, classes: int, cins: tuple[int, ...] = (96, 192, 384, 768),
              ch: int = 512, aux_ch: int = 256) -> State:
    """UPerHead_paco (PPM 1-2-3-6, FPN, mlp) + FCNHead on stage 3; defaults: Swin-T."""
    s: State = {}
    for i in range(4):
        _conv_module(s, f"decode_head.psp_modules.{i}.1", cins[-1], ch, 1, g)
    _conv_module(s, "decode_head.bottleneck", cins[-1] + 4 * ch, ch, 3, g)
    for i, cin in enumerate(cins[:-1]):
        _conv_module(s, f"decode_head.lateral_convs.{i}", cin, ch, 1, g)
        _conv_module(s, f"decode_head.fpn_convs.{i}", ch, ch, 3, g)
    _conv_module(s, "decode_head.fpn_bottleneck", 4 * ch, ch, 3, g)
    _mlp_and_classifier(s, ch, classes, g)
    _fcn_aux(s, cins[2], aux_ch, classes, g)
    return s


def released_file(state: State, classes: list[str]) -> dict:
    """The dict mmcv's `save_checkpoint` writes (meta with CLASSES, state_dict, optimizer)."""
    return {"meta": {"mmseg_version": "0.17.0", "CLASSES": tuple(classes), "iter": 80000},
            "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}
