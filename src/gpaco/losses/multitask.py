"""The papers' multi-task baseline: (balanced) cross-entropy + alpha * SupCon on one contrast set.

The authors' `MultiTaskLoss` also reweights the SupCon term per anchor by class-balanced
"effective number" weights (paper-spec section 1.8); this module keeps SupCon unweighted.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gpaco.losses.balanced_softmax import BalancedSoftmaxLoss
from gpaco.losses.cross_entropy import CrossEntropyLoss
from gpaco.losses.supcon import SupConLoss


class MultiTaskLoss(nn.Module):
    """Balanced Softmax on `center_logits` (plain CE without `class_counts`) + alpha * SupCon."""

    def __init__(
        self,
        class_counts: Sequence[int] | Tensor | None = None,
        alpha: float = 0.5,
        temperature: float = 0.07,
        label_smoothing: float = 0.0,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.classification: nn.Module
        if class_counts is None:
            self.classification = CrossEntropyLoss(label_smoothing, ignore_index)
        else:
            self.classification = BalancedSoftmaxLoss(class_counts, label_smoothing, ignore_index)
        self.contrastive = SupConLoss(temperature, ignore_index)

    def forward(self, features: Tensor, labels: Tensor, center_logits: Tensor) -> Tensor:
        classification = self.classification(None, labels, center_logits)
        return classification + self.alpha * self.contrastive(features, labels, center_logits)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
