"""Shared fixtures for the model tests: a tiny BatchNorm conv backbone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn


class TinyNet(nn.Module):
    """conv-BN-ReLU-conv-BN-ReLU-avgpool; has BatchNorm so key-encoder buffers are exercised."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.feature_dim = width

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


@pytest.fixture
def tiny_backbone() -> Callable[..., TinyNet]:
    torch.manual_seed(0)
    return TinyNet
