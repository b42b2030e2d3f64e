"""mmsegmentation's decode heads as the GPaCo authors built them (gpaco's own code).

`SeparableASPPDecoder` is mmseg's `DepthwiseSeparableASPPHead` (DeepLabV3+) and `UPerDecoder`
its `UPerHead`, without their `conv_seg` (gpaco's `Segmenter` owns the classifier, the GPaCo
projection and the auxiliary head). Module and attribute names follow mmseg's, so that the
authors' `decode_head.*` keys name the same tensors here (gpaco.weights.mmseg).
Facts: docs/segmentation.md and extensions-spec section D.

- `ConvModule` is mmcv's conv (no bias) + BN + ReLU, the conv initialised kaiming normal with
  fan_out (mmcv's `kaiming_init` defaults), BN weight 1 and bias 0.
- Depthwise-separable modules carry BN + ReLU after the depthwise conv too (mmcv's default).
- Every resize is bilinear with align_corners False (the authors' configs).
- Both decoders read the encoder's stage list as `Segmenter` passes it: the last four entries
  are the stride-4, 8, 16 and 32 (or 8, 8, 8 for a D8 ResNet) features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ASPP_DILATIONS = (1, 12, 24, 36)  # the authors' DeepLabV3+ configs (output stride 8)
PPM_SCALES = (1, 2, 3, 6)


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ConvModule(nn.Module):
    """mmcv's ConvModule with BN and ReLU: `conv` (no bias), `bn`, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 dilation: int = 1, groups: int = 1) -> None:
        super().__init__()
        padding = 0 if kernel_size == 1 else dilation * (kernel_size // 2)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding,
                              dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = nn.ReLU(inplace=True)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.bn(self.conv(x)))


class SeparableConvModule(nn.Module):
    """mmcv's DepthwiseSeparableConvModule: a depthwise ConvModule, then a 1x1 ConvModule."""

    def __init__(self, in_channels: int, out_channels: int, *, dilation: int = 1) -> None:
        super().__init__()
        self.depthwise_conv = ConvModule(in_channels, in_channels, 3, dilation=dilation,
                                         groups=in_channels)
        self.pointwise_conv = ConvModule(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


def _pooled(in_channels: int, channels: int, scale: int) -> nn.Sequential:
    """Adaptive average pool to `scale` x `scale`, then a 1x1 ConvModule (mmseg's image pool
    and PPM branches; index 1 holds the ConvModule, as in their keys)."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(scale), ConvModule(in_channels, channels, 1))


class SeparableASPPDecoder(nn.Module):
    """DeepLabV3+ as mmseg's DepthwiseSeparableASPPHead (without conv_seg).

    Args:
        in_channels: channels of the last stage (2048 for R50, 512 for R18).
        c1_in_channels: channels of the stride-4 stage (256 for R50, 64 for R18).
        channels: the head's width (512; 128 for the authors' R18).
        c1_channels: the low-level branch's width (48; 12 for the authors' R18).
        dilations: ASPP dilations; 1 is the 1x1 branch, the others separable 3x3 branches.
    """

    def __init__(self, in_channels: int, c1_in_channels: int, channels: int = 512,
                 c1_channels: int = 48, dilations: Sequence[int] = ASPP_DILATIONS) -> None:
        super().__init__()
        self.image_pool = _pooled(in_channels, channels, 1)
        self.aspp_modules = nn.ModuleList(
            ConvModule(in_channels, channels, 1) if d == 1
            else SeparableConvModule(in_channels, channels, dilation=d) for d in dilations)
        self.bottleneck = ConvModule((len(dilations) + 1) * channels, channels, 3)
        self.c1_bottleneck = ConvModule(c1_in_channels, c1_channels, 1)
        self.sep_bottleneck = nn.Sequential(
            SeparableConvModule(channels + c1_channels, channels),
            SeparableConvModule(channels, channels))

    def forward(self, stages: Sequence[Tensor]) -> Tensor:
        x = stages[-1]
        outs = [_resize(self.image_pool(x), x.shape[-2:])]
        outs += [branch(x) for branch in self.aspp_modules]
        out = self.bottleneck(torch.cat(outs, dim=1))
        c1 = self.c1_bottleneck(stages[-4])
        out = torch.cat([_resize(out, c1.shape[-2:]), c1], dim=1)
        return self.sep_bottleneck(out)


class UPerDecoder(nn.Module):
    """UPerNet as mmseg's UPerHead (without conv_seg): a pyramid pooling module on the last
    stage, an FPN over the four stages, all levels resized to stride 4 and fused by a 3x3
    ConvModule.

    Args:
        in_channels: the four stages' channels ([96, 192, 384, 768] for Swin-T).
        channels: the head's width (512).
        pool_scales: the PPM's output sizes.
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 512,
                 pool_scales: Sequence[int] = PPM_SCALES) -> None:
        super().__init__()
        *lower, last = in_channels
        self.psp_modules = nn.ModuleList(_pooled(last, channels, s) for s in pool_scales)
        self.bottleneck = ConvModule(last + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1) for c in lower)
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3) for _ in lower)
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3)

    def _psp(self, x: Tensor) -> Tensor:
        outs = [x] + [_resize(branch(x), x.shape[-2:]) for branch in self.psp_modules]
        return self.bottleneck(torch.cat(outs, dim=1))

    def forward(self, stages: Sequence[Tensor]) -> Tensor:
        feats = list(stages[-len(self.lateral_convs) - 1:])
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, feats)]
        laterals.append(self._psp(feats[-1]))
        for i in range(len(laterals) - 1, 0, -1):  # top-down: add the coarser level
            laterals[i - 1] = laterals[i - 1] + _resize(laterals[i], laterals[i - 1].shape[-2:])
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals)] + [laterals[-1]]
        size = outs[0].shape[-2:]
        return self.fpn_bottleneck(torch.cat([outs[0]] + [_resize(o, size) for o in outs[1:]],
                                             dim=1))
