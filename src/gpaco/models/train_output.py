"""What a wrapper's `forward_train` hands to the criterion."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class TrainOutput:
    """One training step's criterion inputs (see the criterion contract in docs/design.md).

    Attributes:
        features: (M, d) L2-normalised contrast set whose first A rows are the anchors, or None
            for wrappers without a contrastive branch (`Classifier`).
        labels: (M,) int64 labels of the contrast set (for `Classifier`: the batch labels).
        center_logits: (A, C) raw classifier logits of the anchors (no log prior).
    """

    features: Tensor | None
    labels: Tensor
    center_logits: Tensor
