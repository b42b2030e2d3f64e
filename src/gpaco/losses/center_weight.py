"""How strongly PaCo / GPaCo discount each class's center, on top of the log prior.

The PaCo loss of an anchor is a cross-entropy against a target that gives the own-class center
weight beta and each of the anchor's |P| same-class samples weight alpha, normalised by
beta + alpha |P|. At its optimum the center therefore takes the share beta / (beta + alpha |P|)
of the softmax (paper Remark 2). A contrast set of M samples drawn at the training frequencies
holds |P_c| ~ pi_c M positives for a class-c anchor, so frequent classes get a smaller center
share: at test time (raw center logits) class c is discounted by log w_c nats relative to a
Balanced-Softmax classifier. How strong this is depends on alpha * M * pi_c, which the papers'
recipes set very differently (docs/rebalancing.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def center_weights(class_counts: Sequence[int] | Tensor, *, alpha: float, contrast_size: int,
                   beta: float = 1.0) -> Tensor:
    """w_c = beta / (beta + alpha * pi_c * contrast_size), the expected optimal center share per class.

    `contrast_size` is M, the samples an anchor contrasts with: 2 x global batch + queue size.
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    expected_positives = counts / counts.sum() * contrast_size
    return beta / (beta + alpha * expected_positives)
