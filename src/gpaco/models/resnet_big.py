"""SupCon-style CIFAR ResNets (GPaCo's CIFAR-100 ResNet-50): 3x3 stride-1 stem, no max-pool.

Same stage layout as the ImageNet ResNets (four stages, strides 1/2/2/2) but the stem keeps the
32x32 resolution. Global average pooling gives 2048-d (Bottleneck) or 512-d (BasicBlock) features.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.models import resnet_cifar


def _projection_shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes)
    )


class BasicBlock(resnet_cifar.BasicBlock):
    """The CIFAR ResNet block with a 1x1-conv projection shortcut (option B)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, planes, stride, _projection_shortcut(in_planes, planes, stride))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = _projection_shortcut(in_planes, out_planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNetBig(nn.Module):
    """Four-stage ResNet for 32x32 inputs; `forward` returns the pooled feature."""

    def __init__(
        self, block: type[BasicBlock] | type[Bottleneck], num_blocks: tuple[int, int, int, int]
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), num_blocks)):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(in_planes, planes, stride))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = nn.Identity()  # the classifier's slot, as in resnet_cifar.py
        self.feature_dim = in_planes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(self.avgpool(out).flatten(1))


def resnet18_cifar() -> ResNetBig:
    return ResNetBig(BasicBlock, (2, 2, 2, 2))


def resnet50_cifar() -> ResNetBig:
    return ResNetBig(Bottleneck, (3, 4, 6, 3))
