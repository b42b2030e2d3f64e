"""Per-anchor sample-to-sample terms shared by PaCo and SupCon.

The (A, M) similarity matrix is the only large tensor in both losses, and only its log-sum-exp
needs it. That log-sum-exp lives in a custom autograd function that saves none of it: the
backward recomputes the similarities (one extra (A, d) x (d, M) matmul) and puts the softmax
straight into the two gradient matmuls, so one (A, M) float buffer exists at any time, forward
or backward. A small matrix (at most `KEEP_BYTES`, CIFAR's contrast sets) is cheaper to keep
than to recompute: its exponentials are saved for the backward instead.

The positive terms need no (A, M) mask: the sum of <f_i, f_j> over the positives j of anchor i
is <f_i, S_y - f_i> with S_y the sum of the contrast rows labelled y = labels[i], so they cost
O((A + M) d) through ordinary autograd ops.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gpaco.losses._numerics import upcast


# Largest (A, M) fp32 buffer kept from forward to backward (4 MiB: 1024 x 1024). CIFAR's
# 128 x 1280 and 256 x 1280 fit; ImageNet-LT's 256 x 8448 is recomputed.
KEEP_BYTES = 4 * 2**20


class SampleTerms(NamedTuple):
    """Reductions over the contrast columns j != i of every anchor i, each of shape (A,)."""

    pos_logit_sum: Tensor  # sum of <f_i, f_j> / T over the sample positives j
    num_pos: Tensor  # number of sample positives (no gradient)
    lse: Tensor  # log sum_{j != i} exp(<f_i, f_j> / T)


def _similarities(feats: Tensor, num_anchors: int, temperature: float, diagonal: float) -> Tensor:
    """(f[:A] / T) @ f.T with `diagonal` in the place of anchor i's own column i."""
    # Scaling the (A, d) anchors instead of the (A, M) product saves one large pass.
    sims = (feats[:num_anchors] * (1.0 / temperature)) @ feats.T
    sims.diagonal().fill_(diagonal)
    return sims


class _SampleLogSumExp(torch.autograd.Function):
    """log sum_{j != i} exp(<f_i, f_j> / T) for the first A rows i of f, shape (A,)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, feats: Tensor, num_anchors: int, temperature: float
    ) -> Tensor:
        # fp32 (or fp64) math even under autocast: the inputs were upcast by the caller.
        with torch.autocast(feats.device.type, enabled=False):
            # A finite fill (not -inf) keeps lse finite even for a row whose only column is
            # the anchor itself (its gradient is then exactly 0 in both callers);
            # exp(fill - max) is exactly 0 otherwise.
            exp = _similarities(feats, num_anchors, temperature, torch.finfo(feats.dtype).min)
            shift = exp.amax(dim=1)
            exp.sub_(shift[:, None]).exp_()
            total = exp.sum(dim=1)
            lse = total.log() + shift
            keep = exp.numel() * exp.element_size() <= KEEP_BYTES
        if keep:  # softmax = exp / total
            ctx.save_for_backward(feats, exp, total)
        else:
            ctx.save_for_backward(feats, None, lse)
        ctx.num_anchors, ctx.temperature = num_anchors, temperature
        return lse

    @staticmethod
    def backward(ctx, grad_lse: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        feats, exp, scale = ctx.saved_tensors
        num_anchors, temperature = ctx.num_anchors, ctx.temperature
        with torch.autocast(feats.device.type, enabled=False):
            if exp is None:  # recompute the softmax in place of the similarities
                exp = _similarities(feats, num_anchors, temperature, -torch.inf)
                exp.sub_(scale[:, None]).exp_()
                weight = grad_lse
            else:
                weight = grad_lse / scale
            # d lse_i / d s_ij = softmax_ij, s = (a / T) @ f.T with a = f[:A]: both factors are
            # rows of f. The (A,) row weights go on the (A, d) factors, never on the (A, M) one.
            anchors = feats[:num_anchors] * (weight / temperature)[:, None]
            grad_feats = exp.T @ anchors
            grad_feats[:num_anchors] += (exp @ feats) * (weight / temperature)[:, None]
        return grad_feats, None, None


def _label_groups(labels: Tensor) -> Tensor:
    """Ids in [0, M) with equal ids exactly for equal labels; by sorting, so no host sync."""
    sorted_labels, order = labels.sort()
    group = torch.diff(sorted_labels, prepend=sorted_labels[:1]).ne_(0).cumsum(0)
    return torch.empty_like(group).scatter_(0, order, group)


def sample_terms(
    features: Tensor,
    labels: Tensor,
    num_anchors: int,
    temperature: float,
    ignore_index: int | None = None,
) -> SampleTerms:
    """Reduce the anchor-vs-contrast similarities of `features` (M, d) to per-anchor terms.

    Positives of anchor i are the columns j != i with labels[j] == labels[i]; columns labelled
    `ignore_index` are never positives but stay in the log-sum-exp (segmentation variant).
    bf16/fp16 features are upcast to fp32 first; fp64 stays fp64.
    """
    feats = upcast(features)
    with torch.autocast(feats.device.type, enabled=False):
        lse = _SampleLogSumExp.apply(feats, num_anchors, temperature)
        # Rows [f_j, 1] summed per label: S_y and the count of y in one accumulation
        # (index_put's accumulation is deterministic on CUDA, unlike index_add's).
        rows = torch.cat([feats, feats.new_ones(feats.shape[0], 1)], dim=1)
        if ignore_index is not None:  # ignored columns join no sum
            rows = rows * (labels != ignore_index).to(rows.dtype)[:, None]
        groups = _label_groups(labels)
        sums = torch.zeros_like(rows).index_put_((groups,), rows, accumulate=True)
        # Leave out column i itself: the positives of anchor i are the other rows of its sum.
        own = sums[groups[:num_anchors]] - rows[:num_anchors]
        anchors = feats[:num_anchors] * (1.0 / temperature)
        pos_logit_sum = (anchors * own[:, :-1]).sum(dim=1)
        num_pos = own[:, -1].detach()
    return SampleTerms(pos_logit_sum, num_pos, lse)
