"""Per-anchor sample-to-sample terms shared by PaCo and SupCon.

The (A, M) similarity matrix is the only large tensor in both losses. It is reduced to three
(A,) vectors inside a custom autograd function that saves none of it: the backward recomputes
the similarities (one extra (A, d) x (d, M) matmul) and builds the gradient in place, so at
most two (A, M) float buffers exist at any time, forward or backward. A small matrix (at most
`KEEP_BYTES`, CIFAR's contrast sets) is cheaper to keep than to recompute: its softmax is
saved for the backward instead (one buffer of at most 4 MiB held between the passes).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gpaco.losses._numerics import upcast


# Largest (A, M) softmax kept from forward to backward (4 MiB: 1024 x 1024 fp32). CIFAR's
# 128 x 1280 and 256 x 1280 fit; ImageNet-LT's 256 x 8448 is recomputed.
KEEP_BYTES = 4 * 2**20


class SampleTerms(NamedTuple):
    """Reductions over the contrast columns j != i of every anchor i, each of shape (A,)."""

    pos_logit_sum: Tensor  # sum of <f_i, f_j> / T over the sample positives j
    num_pos: Tensor  # number of sample positives (no gradient)
    lse: Tensor  # log sum_{j != i} exp(<f_i, f_j> / T)


def _similarities(feats: Tensor, num_anchors: int, temperature: float) -> Tensor:
    # Scaling the (A, d) anchors instead of the (A, M) product saves one large buffer.
    return (feats[:num_anchors] * (1.0 / temperature)) @ feats.T


def _positive_mask(labels: Tensor, num_anchors: int, ignore_index: int | None) -> Tensor:
    """Bool (A, M): column j has anchor i's label, j != i, and j is not ignored."""
    positive = labels[:num_anchors, None] == labels[None, :]
    if ignore_index is not None:
        positive &= (labels != ignore_index)[None, :]
    positive.diagonal().fill_(False)  # anchor i is contrast column i
    return positive


class _SampleTermsFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        feats: Tensor,
        labels: Tensor,
        num_anchors: int,
        temperature: float,
        ignore_index: int | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        # fp32 (or fp64) math even under autocast: the inputs were upcast by the caller.
        with torch.autocast(feats.device.type, enabled=False):
            sims = _similarities(feats, num_anchors, temperature)
            positive = _positive_mask(labels, num_anchors, ignore_index)
            pos_logit_sum = torch.where(positive, sims, 0.0).sum(dim=1)
            num_pos = positive.sum(dim=1).to(sims.dtype)
            # A finite fill (not -inf) keeps lse finite even for a row whose only column is
            # the anchor itself; exp(fill - max) is exactly 0 otherwise.
            sims.diagonal().fill_(torch.finfo(sims.dtype).min)
            lse = torch.logsumexp(sims, dim=1)
            keep = sims.numel() * sims.element_size() <= KEEP_BYTES and feats.requires_grad
            # the softmax over j != i (the diagonal's exp underflows to exactly 0)
            softmax = sims.sub_(lse[:, None]).exp_() if keep else None
        ctx.save_for_backward(feats, labels, lse, softmax)
        ctx.num_anchors, ctx.temperature, ctx.ignore_index = num_anchors, temperature, ignore_index
        ctx.mark_non_differentiable(num_pos)
        return pos_logit_sum, num_pos, lse

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, grad_pos_sum: Tensor, _grad_num_pos: Tensor, grad_lse: Tensor
    ) -> tuple[Tensor | None, None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        feats, labels, lse, softmax = ctx.saved_tensors
        num_anchors, temperature = ctx.num_anchors, ctx.temperature
        with torch.autocast(feats.device.type, enabled=False):
            # d lse_i / d s_ij = softmax_j over j != i;  d pos_sum_i / d s_ij = positive_ij.
            if softmax is None:
                grad = _similarities(feats, num_anchors, temperature)
                grad.diagonal().fill_(-torch.inf)
                grad.sub_(lse[:, None]).exp_().mul_(grad_lse[:, None])
            else:
                grad = softmax * grad_lse[:, None]
            positive = _positive_mask(labels, num_anchors, ctx.ignore_index)
            grad.add_(positive * grad_pos_sum[:, None])
            del positive
            # s = (a / T) @ f.T with a = f[:A]: both factors are rows of f.
            grad_feats = grad.T @ (feats[:num_anchors] * (1.0 / temperature))
            grad_feats[:num_anchors] += (grad @ feats) * (1.0 / temperature)
        return grad_feats, None, None, None, None


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
    pos_logit_sum, num_pos, lse = _SampleTermsFunction.apply(
        upcast(features), labels, num_anchors, temperature, ignore_index
    )
    return SampleTerms(pos_logit_sum, num_pos, lse)
