"""Per-anchor sample-to-sample terms shared by PaCo and SupCon.

The (A, M) similarity matrix is the only large tensor in both losses, and only its log-sum-exp
needs it. It lives in a custom autograd function that saves none of it: the backward
recomputes the similarities (one extra (A, d) x (d, M) matmul) and puts the softmax straight
into the two gradient matmuls, so one (A, M) float buffer exists at any time, forward or
backward. A small matrix (at most `KEEP_BYTES`, CIFAR's contrast sets) is cheaper to keep than
to recompute: its exponentials are saved for the backward instead.

The positive terms need no (A, M) mask: the sum of <f_i, f_j> over the positives j of anchor i
is <f_i, S_y - f_i> with S_y the sum of the contrast rows labelled y = labels[i], so they cost
O((A + M) d), forward and backward.
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


def _label_groups(labels: Tensor) -> Tensor:
    """Ids in [0, M), equal exactly for equal labels: each label's first index in sorted order
    (unlike torch.unique's inverse, no host sync)."""
    return torch.searchsorted(labels.sort().values, labels)


def _group_sums(rows: Tensor, groups: Tensor, num_groups: int) -> Tensor:
    """(num_groups, d): row g is the sum of the `rows` with group id g."""
    # index_add_ (not index_put_'s accumulation, whose CUDA sort path breaks CUDA-graph
    # capture): serial on the CPU, atomic adds on CUDA (the last bits vary run to run there).
    return rows.new_zeros(num_groups, rows.shape[1]).index_add_(0, groups, rows)


def _sample_log_sum_exp(
    feats: Tensor, num_anchors: int, temperature: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(exp(s - row max) (A, M), its row sums, lse) for s_ij = <f_i, f_j> / T over j != i."""
    # A finite fill (not -inf) keeps lse finite even for a row whose only column is the anchor
    # itself (its gradient is then exactly 0 in both callers); exp(fill - max) is exactly 0
    # otherwise.
    exp = _similarities(feats, num_anchors, temperature, torch.finfo(feats.dtype).min)
    shift = exp.amax(dim=1)
    exp.sub_(shift[:, None]).exp_()
    total = exp.sum(dim=1)
    return exp, total, total.log().add_(shift)


def _own_label_sums(
    feats: Tensor, groups: Tensor, num_anchors: int, valid: Tensor | None
) -> Tensor:
    """(A, d + 1): the sum of the rows [f_j, 1] over the positives j of each anchor."""
    rows = torch.cat([feats, feats.new_ones(feats.shape[0], 1)], dim=1)
    if valid is not None:  # ignored columns join no sum
        rows.mul_(valid[:, None])
    # The positives of anchor i are the rows of its label less its own row i.
    own = _group_sums(rows, groups, len(groups)).index_select(0, groups[:num_anchors])
    return own.sub_(rows[:num_anchors])


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
            exp, total, lse = _sample_log_sum_exp(feats, num_anchors, temperature)
            valid = None if ignore_index is None else (labels != ignore_index).to(feats.dtype)
            groups = _label_groups(labels)
            own = _own_label_sums(feats, groups, num_anchors, valid)
            pos_logit_sum = (feats[:num_anchors] * own[:, :-1]).sum(dim=1)
            pos_logit_sum *= 1.0 / temperature
        keep = exp.numel() * exp.element_size() <= KEEP_BYTES and ctx.needs_input_grad[0]
        # The backward's softmax: exp / total (kept) or exp(similarities - lse) (recomputed).
        ctx.save_for_backward(
            feats, groups, valid, own, exp if keep else None, total if keep else lse
        )
        ctx.num_anchors, ctx.temperature = num_anchors, temperature
        num_pos = own[:, -1]
        ctx.mark_non_differentiable(num_pos)
        return pos_logit_sum, num_pos, lse

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, grad_pos_sum: Tensor, _grad_num_pos: Tensor, grad_lse: Tensor
    ) -> tuple[Tensor | None, None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        feats, groups, valid, own, exp, scale = ctx.saved_tensors
        num_anchors, temperature = ctx.num_anchors, ctx.temperature
        anchors = feats[:num_anchors]
        with torch.autocast(feats.device.type, enabled=False):
            if exp is None:  # recompute the softmax in place of the similarities
                exp = _similarities(feats, num_anchors, temperature, -torch.inf)
                exp.sub_(scale[:, None]).exp_()
                weight = grad_lse * (1.0 / temperature)
            else:
                weight = grad_lse / scale * (1.0 / temperature)
            pos = grad_pos_sum * (1.0 / temperature)
            # s_ij = <f_i, f_j> / T with ds_ij = softmax_ij grad_lse_i + [j positive] grad_pos_i:
            # column j gets sum_i ds_ij f_i / T and anchor i sum_j ds_ij f_j / T. The (A,) row
            # weights go on the (A, d) factors of the matmuls, never on the (A, M) one.
            # Column j's positive part: the sum of pos_i f_i over the anchors of its label...
            grad = _group_sums(anchors * pos[:, None], groups[:num_anchors], len(groups))
            grad = grad.index_select(0, groups)
            if valid is not None:
                grad *= valid[:, None]
            grad.addmm_(exp.T, anchors * weight[:, None])
            # ... less the anchor's own row when j is anchor i; anchor i's positive part is the
            # sum of its positives' rows.
            anchor_valid = 1.0 if valid is None else valid[:num_anchors, None]
            grad[:num_anchors] += (exp @ feats) * weight[:, None] + pos[:, None] * (
                own[:, :-1] - anchors * anchor_valid
            )
        return grad, None, None, None, None


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
