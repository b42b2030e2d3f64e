"""Parametric contrastive loss (PaCo, ICCV 2021; GPaCo, TPAMI 2023).

For anchor i with label y the softmax runs over the C class centers (classifier logits, plus the
log class prior when class counts are given) and the samples j != i of the contrast set
(<f_i, f_j> / T, weighted by gamma in the normaliser). Positives are the own-class center
(weight beta, optionally label-smoothed over all classes) and every same-label sample
(weight alpha); the loss of an anchor is the weighted mean negative log-probability of its
positives, i.e. it is divided by beta + alpha * |P(i)| (paper-spec section 1.3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses._contrast import sample_terms
from gpaco.losses._numerics import row_logsumexp, upcast
from gpaco.losses.prior import log_prior as compute_log_prior


def _center_numerator(
    center: Tensor, labels: Tensor, has_center: Tensor, label_smoothing: float
) -> Tensor:
    """sum_c t_c * center[i, c] for the (unit-mass) center target t of each anchor."""
    num_classes = center.shape[1]
    target_index = torch.where(has_center, labels, torch.zeros_like(labels))
    target_logit = center.gather(1, target_index[:, None]).squeeze(1)
    if label_smoothing == 0.0 or num_classes == 1:
        return target_logit
    off_target = label_smoothing / (num_classes - 1)
    return (1.0 - label_smoothing) * target_logit + off_target * (center.sum(1) - target_logit)


def paco_loss(
    features: Tensor,
    labels: Tensor,
    center_logits: Tensor,
    *,
    alpha: float,
    beta: float = 1.0,
    gamma: float = 1.0,
    temperature: float = 0.07,
    label_smoothing: float = 0.0,
    log_prior: Tensor | None = None,
    ignore_index: int | None = None,
) -> Tensor:
    """PaCo / GPaCo loss: a scalar, fp32 for fp16/bf16/fp32 inputs.

    Args:
        features: (M, d) L2-normalised contrast set; its first A rows are the anchors.
        labels: (M,) int64 labels of the contrast set.
        center_logits: (A, C) raw classifier logits of the anchors.
        alpha: weight of each sample positive.
        beta: weight of the own-class center (spread over classes by `label_smoothing`).
        gamma: weight of the sample terms in the normaliser (0 = centers only).
        temperature: divides the sample similarities only, not the center logits.
        log_prior: (C,) added to the center logits (numerator and normaliser).
        ignore_index: anchors with this label have weight 0 and are left out of the mean;
            columns with it are never positives but stay in the normaliser.
    """
    num_anchors, num_classes = center_logits.shape
    anchor_labels = labels[:num_anchors]

    center = upcast(center_logits)
    if log_prior is not None:
        center = center + log_prior.to(center)
    samples = sample_terms(features, labels, num_anchors, temperature, ignore_index)

    # The normaliser is logsumexp over [centers, log(gamma) + samples] without building the
    # (A, C + M) concatenation. log(0) = -inf makes gamma = 0 drop the samples exactly, and
    # logaddexp(x, -inf) = x with a zero gradient on the -inf side.
    log_gamma = math.log(gamma) if gamma > 0 else -math.inf
    lse = torch.logaddexp(row_logsumexp(center), samples.lse + log_gamma)

    # Labels >= C (e.g. the segmentation dummy class) and ignored anchors have no center.
    has_center = (anchor_labels >= 0) & (anchor_labels < num_classes)
    if ignore_index is not None:
        has_center = has_center & (anchor_labels != ignore_index)
    center_weight = beta * has_center.to(center.dtype)
    target_logit = _center_numerator(center, anchor_labels, has_center, label_smoothing)
    center_num = torch.where(has_center, beta * target_logit, 0.0)

    # sum_j w_j * log p_j = sum_j w_j * L_j - (sum_j w_j) * LSE.
    weight = center_weight + alpha * samples.num_pos
    numerator = center_num + alpha * samples.pos_logit_sum - weight * lse
    # Anchors with no positive at all (zero weight) contribute 0 instead of 0 / 0.
    per_anchor = torch.where(weight > 0, -numerator / weight.clamp_min(1e-12), 0.0)

    if ignore_index is None:
        return per_anchor.mean()
    num_valid = (anchor_labels != ignore_index).sum().clamp_min(1)
    return per_anchor.sum() / num_valid


class PaCoLoss(nn.Module):
    """Module form of `paco_loss`; the log prior of `class_counts` is kept as a buffer.

    Called as `criterion(features, labels, center_logits)` (see docs/design.md). The same
    loss serves PaCo (anchors = the B queries) and GPaCo (anchors = both views, 2B).
    """

    log_prior: Tensor | None

    def __init__(
        self,
        num_classes: int,
        alpha: float,
        beta: float = 1.0,
        gamma: float = 1.0,
        temperature: float = 0.07,
        label_smoothing: float = 0.0,
        class_counts: Sequence[int] | Tensor | None = None,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise UserError(f"num_classes must be >= 1, got {num_classes}")
        if min(alpha, beta, gamma) < 0:
            raise UserError(f"alpha, beta, gamma must be >= 0, got {alpha}, {beta}, {gamma}")
        if temperature <= 0:
            raise UserError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= label_smoothing < 1.0:
            raise UserError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes = num_classes
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.temperature = float(temperature)
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = ignore_index
        prior = None
        if class_counts is not None:
            prior = compute_log_prior(class_counts)
            if prior.numel() != num_classes:
                raise UserError(f"class_counts has {prior.numel()} entries, expected {num_classes}")
        # Not persistent: derived from the dataset, so checkpoints do not depend on it.
        self.register_buffer("log_prior", prior, persistent=False)

    def forward(self, features: Tensor, labels: Tensor, center_logits: Tensor) -> Tensor:
        if center_logits.shape[1] != self.num_classes:
            raise ValueError(
                f"center_logits has {center_logits.shape[1]} classes, expected {self.num_classes}"
            )
        return paco_loss(
            features,
            labels,
            center_logits,
            alpha=self.alpha,
            beta=self.beta,
            gamma=self.gamma,
            temperature=self.temperature,
            label_smoothing=self.label_smoothing,
            log_prior=self.log_prior,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, alpha={self.alpha}, beta={self.beta}, "
            f"gamma={self.gamma}, temperature={self.temperature}, "
            f"label_smoothing={self.label_smoothing}, prior={self.log_prior is not None}, "
            f"ignore_index={self.ignore_index}"
        )
