"""CIFAR ResNets of He et al. (2016) as used by PaCo: ResNet-20/32/44/56/110.

Three stages of BasicBlocks with widths 16/32/64, option-A shortcuts (stride-2 subsampling plus
zero-padded channels, no parameters), Kaiming-normal init, global average pooling -> 64-d.
The classifier is not part of the backbone: the wrappers own it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class _PadShortcut(nn.Module):
    """Option-A shortcut: subsample by 2 and zero-pad the new channels (no parameters)."""

    def __init__(self, extra_channels: int) -> None:
        super().__init__()
        self.pad = extra_channels // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    """Two 3x3 convs; the shortcut is option A (zero padding) unless one is given."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1,
                 shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if shortcut is None:
            shortcut = nn.Identity()
            if stride != 1 or in_planes != planes:
                shortcut = _PadShortcut(planes - in_planes)
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """CIFAR ResNet with `blocks_per_stage` BasicBlocks in each of 3 stages; depth = 6n + 2."""

    def __init__(self, blocks_per_stage: int, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        stages = []
        for i, width in enumerate(widths):
            blocks = []
            for j in range(blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(BasicBlock(in_planes, width, stride))
                in_planes = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        # The classifier's slot, empty in a backbone: `models.plain.create_network` puts the
        # Linear that `gpaco export` writes as `fc.*` here, as torchvision's ResNets keep theirs.
        self.fc: nn.Module = nn.Identity()
        self.feature_dim = widths[-1]
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    @staticmethod
    def init_fc_(linear: nn.Linear) -> None:
        """Initialise `linear` as this network initialises its own classifier `fc`.

        The authors build the projection head around the backbone's `fc` (it becomes the
        head's last layer), so that layer keeps this init: Kaiming-normal weights (std
        sqrt(2 / fan_in), 0.177 for 64 inputs) and nn.Linear's default bias.
        """
        nn.init.kaiming_normal_(linear.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(self.avgpool(out).flatten(1))


def resnet8() -> ResNetCifar:
    """The smallest member (one block per stage): the default CPU run's backbone."""
    return ResNetCifar(1)


def resnet14() -> ResNetCifar:
    return ResNetCifar(2)


def resnet20() -> ResNetCifar:
    return ResNetCifar(3)


def resnet32() -> ResNetCifar:
    return ResNetCifar(5)


def resnet44() -> ResNetCifar:
    return ResNetCifar(7)


def resnet56() -> ResNetCifar:
    return ResNetCifar(9)


def resnet110() -> ResNetCifar:
    return ResNetCifar(18)
