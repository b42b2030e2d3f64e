"""CrossEntropyLoss, BalancedSoftmaxLoss, LogitAdjustedLoss and log_prior."""

from __future__ import annotations

import math

import pytest
import torch

from gpaco.errors import UserError
from gpaco.losses import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    LogitAdjustedLoss,
    log_prior,
)
from loss_reference import contrast_set, grads, ref_cross_entropy

COUNTS = [100, 30, 10, 5, 2, 0]
NUM_CLASSES = len(COUNTS)
IGNORE = 255


def _inputs(seed: int = 0):
    feats, labels, logits = contrast_set(8, 20, NUM_CLASSES, seed=seed)
    return labels, logits  # features are not used by CE-like losses


def test_log_prior_values() -> None:
    prior = log_prior(COUNTS)
    total = sum(COUNTS)
    expected = torch.tensor([math.log(n / total + 1e-9) for n in COUNTS], dtype=torch.float32)
    torch.testing.assert_close(prior, expected)
    assert prior.dtype == torch.float32 and torch.isfinite(prior).all()


@pytest.mark.parametrize("counts", [[], [0, 0], [3, -1]])
def test_log_prior_rejects_bad_counts(counts: list[int]) -> None:
    with pytest.raises(UserError):
        log_prior(counts)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize(
    "make, tau",
    [
        (lambda s, i: CrossEntropyLoss(s, i), None),
        (lambda s, i: BalancedSoftmaxLoss(COUNTS, s, i), 1.0),
        (lambda s, i: LogitAdjustedLoss(COUNTS, 0.5, s, i), 0.5),
        (lambda s, i: LogitAdjustedLoss(COUNTS, 2.0, s, i), 2.0),
    ],
)
def test_matches_brute_force(make, tau, smoothing: float, ignore: bool) -> None:
    labels, logits = _inputs()
    ignore_index = None
    if ignore:
        labels = labels.clone()
        labels[[1, 5]] = IGNORE
        ignore_index = IGNORE
    shift = None if tau is None else tau * log_prior(COUNTS).double()
    loss = make(smoothing, ignore_index)(None, labels, logits)
    expected = ref_cross_entropy(logits, labels[:8], shift=shift, label_smoothing=smoothing,
                                 ignore_index=ignore_index)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(
        grads(loss, logits)[0], grads(expected, logits)[0], rtol=1e-6, atol=1e-12
    )


def test_logit_adjusted_tau_one_is_balanced_softmax() -> None:
    labels, logits = _inputs(1)
    torch.testing.assert_close(
        LogitAdjustedLoss(COUNTS, tau=1.0)(None, labels, logits),
        BalancedSoftmaxLoss(COUNTS)(None, labels, logits),
    )


@pytest.mark.parametrize(
    "criterion", [CrossEntropyLoss(), BalancedSoftmaxLoss(COUNTS), LogitAdjustedLoss(COUNTS, 0.3)]
)
def test_invariant_to_a_constant_on_the_logits(criterion) -> None:
    labels, logits = _inputs(2)
    base = criterion(None, labels, logits)
    for shift in (-1e4, 5.0, 1e4):
        torch.testing.assert_close(criterion(None, labels, logits + shift), base, rtol=1e-9, atol=0)
    row_shift = torch.randn(logits.shape[0], 1, dtype=logits.dtype)
    torch.testing.assert_close(criterion(None, labels, logits + row_shift), base, rtol=1e-9, atol=0)


def test_all_ignored_gives_zero_not_nan() -> None:
    _, logits = _inputs()
    labels = torch.full((8,), IGNORE)
    criteria = (
        CrossEntropyLoss(ignore_index=IGNORE),
        BalancedSoftmaxLoss(COUNTS, ignore_index=IGNORE),
    )
    for criterion in criteria:
        assert criterion(None, labels, logits).item() == 0.0


def test_low_precision_logits_give_fp32_loss() -> None:
    labels, logits = _inputs()
    criterion = BalancedSoftmaxLoss(COUNTS)
    loss = criterion(None, labels, logits.detach().bfloat16())
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, criterion(None, labels, logits.float()), rtol=2e-2, atol=0)
