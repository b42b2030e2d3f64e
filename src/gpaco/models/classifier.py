"""Backbone + linear classifier, for the cross-entropy / Balanced Softmax baselines."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.models.backbones import feature_dim_of
from gpaco.models.train_output import TrainOutput


class Classifier(nn.Module):
    """`forward(x)` = raw logits; `forward_train` uses the first view only.

    Args:
        backbone: maps images to (B, feature_dim) with `.feature_dim`.
        num_classes: number of classifier outputs.
        normalize_feature: L2-normalise the pooled feature before the classifier.
    """

    def __init__(
        self, backbone: nn.Module, num_classes: int, *, normalize_feature: bool = False
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(feature_dim_of(backbone), num_classes)
        self.normalize_feature = normalize_feature

    def _center_input(self, h: Tensor) -> Tensor:
        return F.normalize(h, dim=1) if self.normalize_feature else h

    def forward(self, x: Tensor) -> Tensor:
        """Inference: raw classifier logits (B, C) on the pooled feature (no prior)."""
        return self.classifier(self._center_input(self.backbone(x)))

    def forward_train(self, views: Sequence[Tensor] | Tensor, labels: Tensor) -> TrainOutput:
        """TrainOutput(None, labels, logits of views[0]); a bare (B, 3, H, W) batch also works."""
        x = views if isinstance(views, Tensor) and views.dim() == 4 else views[0]
        return TrainOutput(None, labels, self(x))
