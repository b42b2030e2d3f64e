"""The papers' multi-task baseline: (balanced) cross-entropy + alpha * SupCon on one contrast set.

Two variants in the authors' code: `MultiTaskBLoss` (CIFAR: plain CE + alpha * SupCon) and
`MultiTaskLoss` (ImageNet-LT: Balanced Softmax + alpha * SupCon with each anchor weighted by
the class-balanced "effective number" weight of its class, Cui et al. 2019, beta 0.999).
`effective_number_beta` switches that weighting on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses.balanced_softmax import BalancedSoftmaxLoss
from gpaco.losses.cross_entropy import CrossEntropyLoss
from gpaco.losses.supcon import SupConLoss, supcon_loss


def effective_number_weights(counts: Sequence[int] | Tensor, beta: float) -> Tensor:
    """w_c = mean_k(E_k) / E_c with E_c = (1 - beta^n_c) / (1 - beta) (Cui et al., 2019)."""
    n = torch.as_tensor(counts, dtype=torch.float64)
    effective = (1.0 - beta ** n) / (1.0 - beta)
    return effective.mean() / effective  # float64: cast to the loss dtype where used


class MultiTaskLoss(nn.Module):
    """Balanced Softmax on `center_logits` (plain CE without `class_counts`) + alpha * SupCon."""

    def __init__(
        self,
        class_counts: Sequence[int] | Tensor | None = None,
        alpha: float = 0.5,
        temperature: float = 0.07,
        label_smoothing: float = 0.0,
        ignore_index: int | None = None,
        effective_number_beta: float | None = None,
    ) -> None:
        super().__init__()
        self.alpha = float(alpha)
        if effective_number_beta is not None and class_counts is None:
            raise UserError("effective_number_beta weights SupCon by the class counts, which come "
                            "with the prior (loss.prior=true), as in the authors' ImageNet-LT loss")
        self.register_buffer("class_weights", None if effective_number_beta is None else
                             effective_number_weights(class_counts, effective_number_beta))
        self.classification: nn.Module
        if class_counts is None:
            self.classification = CrossEntropyLoss(label_smoothing, ignore_index)
        else:
            self.classification = BalancedSoftmaxLoss(class_counts, label_smoothing, ignore_index)
        self.contrastive = SupConLoss(temperature, ignore_index)

    def forward(self, features: Tensor, labels: Tensor, center_logits: Tensor) -> Tensor:
        classification = self.classification(None, labels, center_logits)
        if self.class_weights is None:
            contrastive = self.contrastive(features, labels, center_logits)
        else:
            anchors = labels[: center_logits.shape[0]]
            contrastive = supcon_loss(features, labels, num_anchors=anchors.shape[0],
                                      temperature=self.contrastive.temperature,
                                      ignore_index=self.contrastive.ignore_index,
                                      anchor_weights=self.class_weights[anchors.clamp_min(0)])
        return classification + self.alpha * contrastive

    def extra_repr(self) -> str:
        weighted = "" if self.class_weights is None else ", effective-number SupCon weights"
        return f"alpha={self.alpha}{weighted}"
