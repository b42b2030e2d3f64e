"""build_criterion: names, parameters and errors."""

from __future__ import annotations

import pytest
import torch

from gpaco.errors import UserError
from gpaco.losses import (
    CRITERIA,
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    LogitAdjustedLoss,
    MultiTaskLoss,
    PaCoLoss,
    SupConLoss,
    build_criterion,
)
from loss_reference import gpaco_shaped

COUNTS = [9, 5, 3, 1]
EXPECTED = {
    "paco": PaCoLoss,
    "gpaco": PaCoLoss,
    "supcon": SupConLoss,
    "ce": CrossEntropyLoss,
    "balanced_softmax": BalancedSoftmaxLoss,
    "logit_adjusted": LogitAdjustedLoss,
    "multitask": MultiTaskLoss,
}
REQUIRED = {"paco": {"alpha": 0.05}, "gpaco": {"alpha": 0.05}}


def test_every_name_builds_a_working_criterion() -> None:
    assert set(CRITERIA) == set(EXPECTED)
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=4)
    for name, cls in EXPECTED.items():
        params = REQUIRED.get(name, {})
        criterion = build_criterion(name, num_classes=4, class_counts=COUNTS, **params)
        assert type(criterion) is cls
        assert torch.isfinite(criterion(feats, labels, logits))


def test_params_are_forwarded_and_counts_enable_the_prior() -> None:
    criterion = build_criterion(
        "gpaco", num_classes=4, class_counts=None, alpha=0.2, label_smoothing=0.1
    )
    assert criterion.alpha == 0.2 and criterion.label_smoothing == 0.1
    assert criterion.log_prior is None
    with_prior = build_criterion("paco", num_classes=4, class_counts=COUNTS, alpha=0.2)
    assert with_prior.log_prior is not None
    assert build_criterion("logit_adjusted", num_classes=4, class_counts=COUNTS, tau=0.5).tau == 0.5


@pytest.mark.parametrize(
    "name, counts, params",
    [
        ("nope", COUNTS, {}),
        ("ce", COUNTS, {"alpha": 1.0}),
        ("paco", COUNTS, {}),
        ("balanced_softmax", None, {}),
        ("logit_adjusted", None, {}),
    ],
)
def test_user_errors(name: str, counts, params: dict) -> None:
    with pytest.raises(UserError):
        build_criterion(name, num_classes=4, class_counts=counts, **params)
