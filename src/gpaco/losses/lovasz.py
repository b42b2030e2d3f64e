"""Lovasz-softmax (Berman et al., CVPR 2018): a convex surrogate of the per-class Jaccard loss.

As the authors' `UPerHead_paco11` uses it (their lovasz_loss.py, LovaszLoss defaults): decode
logits upsampled bilinearly (align_corners False) to the label size, softmax over the classes,
all pixels of the batch pooled (per_image False), ignored pixels dropped, the mean over the
classes present in the labels (classes='present').

For one class c with foreground indicator g and errors e = |g - p_c| sorted descending, the
loss is sum_i e_(i) * (J_i - J_(i-1)), where J_i = i / (|g| + #background among the first i)
is the Jaccard loss of calling the i worst pixels wrong (the Lovasz extension).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gpaco.losses._numerics import upcast


def _class_term(errors: Tensor, fg: Tensor) -> Tensor:
    """The Lovasz extension of the Jaccard loss for one class (errors, fg: (P,))."""
    errors_sorted, order = torch.sort(errors, descending=True)
    fg_sorted = fg[order]
    wrong_bg = torch.cumsum(1.0 - fg_sorted, 0)
    ranks = torch.arange(1, len(fg) + 1, device=fg.device, dtype=fg.dtype)
    jaccard = ranks / (fg.sum() + wrong_bg)
    steps = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return torch.dot(errors_sorted, steps)


def lovasz_softmax(logits: Tensor, labels: Tensor, *, ignore_index: int = 255) -> Tensor:
    """Lovasz-softmax of (N, C, h, w) logits against (N, H, W) labels (see the module doc)."""
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear",
                               align_corners=False)
    probs = torch.softmax(upcast(logits), dim=1)
    probs = probs.permute(0, 2, 3, 1).reshape(-1, probs.shape[1])
    flat = labels.reshape(-1)
    valid = flat != ignore_index
    probs, flat = probs[valid], flat[valid]
    present = torch.unique(flat)
    if present.numel() == 0:  # only void pixels: zero with a gradient path
        return logits.sum() * 0.0
    terms = []
    for c in present.tolist():
        fg = (flat == c).to(probs.dtype)
        terms.append(_class_term((fg - probs[:, c]).abs(), fg))
    return torch.stack(terms).mean()
