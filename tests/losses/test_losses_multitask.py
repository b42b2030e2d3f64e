"""MultiTaskLoss = (balanced) CE + alpha * SupCon."""

from __future__ import annotations

import torch

from gpaco.losses import BalancedSoftmaxLoss, CrossEntropyLoss, MultiTaskLoss, SupConLoss, log_prior
from loss_reference import gpaco_shaped, grads, ref_cross_entropy, ref_supcon

COUNTS = [50, 20, 5, 2]


def test_is_balanced_softmax_plus_alpha_supcon() -> None:
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=4)
    loss = MultiTaskLoss(COUNTS, alpha=0.3, temperature=0.1)(feats, labels, logits)
    expected = ref_cross_entropy(logits, labels[:8], shift=log_prior(COUNTS).double())
    expected = expected + 0.3 * ref_supcon(feats, labels, 8, temperature=0.1)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-12)
    for got, want in zip(grads(loss, feats, logits), grads(expected, feats, logits)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-12)


def test_without_counts_uses_plain_ce() -> None:
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=4, seed=1)
    criterion = MultiTaskLoss(alpha=0.5)
    assert isinstance(criterion.classification, CrossEntropyLoss)
    expected = CrossEntropyLoss()(None, labels, logits) + 0.5 * SupConLoss()(feats, labels, logits)
    torch.testing.assert_close(criterion(feats, labels, logits), expected)
    assert isinstance(MultiTaskLoss(COUNTS).classification, BalancedSoftmaxLoss)


def test_effective_number_weighting_is_the_authors_imagenet_lt_loss() -> None:
    """Balanced Softmax + alpha * SupCon, each anchor weighted by mean_k(E_k) / E_y with
    E_c = (1 - beta^n_c) / (1 - beta): the authors' `MultiTaskLoss` (multitask_lt.py)."""
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=4, seed=2)
    beta = 0.999
    effective = [(1 - beta ** n) / (1 - beta) for n in COUNTS]
    weight = {c: (sum(effective) / len(effective)) / effective[c] for c in range(len(COUNTS))}
    loss = MultiTaskLoss(COUNTS, alpha=0.5, temperature=0.2, effective_number_beta=beta)(
        feats, labels, logits)
    expected = ref_cross_entropy(logits, labels[:8], shift=log_prior(COUNTS).double())
    expected = expected + 0.5 * ref_supcon(feats, labels, 8, temperature=0.2, class_weight=weight)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-12)
    for got, want in zip(grads(loss, feats, logits), grads(expected, feats, logits)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-12)


def test_effective_number_weighting_needs_the_prior_counts() -> None:
    import pytest

    from gpaco.errors import UserError

    with pytest.raises(UserError, match="loss.prior=true"):
        MultiTaskLoss(None, effective_number_beta=0.999)
