"""Name -> criterion factory (a plain dict), used by the training recipes."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses.balanced_softmax import BalancedSoftmaxLoss, LogitAdjustedLoss
from gpaco.losses.cross_entropy import CrossEntropyLoss
from gpaco.losses.multitask import MultiTaskLoss
from gpaco.losses.paco import PaCoLoss
from gpaco.losses.supcon import SupConLoss

Counts = Sequence[int] | Tensor | None


def _paco(num_classes: int, class_counts: Counts, **params: Any) -> nn.Module:
    return PaCoLoss(num_classes, class_counts=class_counts, **params)


def _supcon(num_classes: int, class_counts: Counts, **params: Any) -> nn.Module:
    return SupConLoss(**params)


def _ce(num_classes: int, class_counts: Counts, **params: Any) -> nn.Module:
    return CrossEntropyLoss(**params)


def _balanced_softmax(num_classes: int, class_counts: Counts, **params: Any) -> nn.Module:
    return BalancedSoftmaxLoss(_required_counts(class_counts, "balanced_softmax"), **params)


def _logit_adjusted(num_classes: int, class_counts: Counts, **params: Any) -> nn.Module:
    return LogitAdjustedLoss(_required_counts(class_counts, "logit_adjusted"), **params)


def _multitask(num_classes: int, class_counts: Counts, **params: Any) -> nn.Module:
    return MultiTaskLoss(class_counts, **params)


def _required_counts(class_counts: Counts, name: str) -> Sequence[int] | Tensor:
    if class_counts is None:
        raise UserError(f"criterion '{name}' needs the training class counts")
    return class_counts


# Each value also names the class whose keyword arguments `params` may hold.
CRITERIA: dict[str, tuple[Callable[..., nn.Module], type[nn.Module]]] = {
    "paco": (_paco, PaCoLoss),
    "gpaco": (_paco, PaCoLoss),  # GPaCo changes the model (anchors, views), not the loss
    "supcon": (_supcon, SupConLoss),
    "ce": (_ce, CrossEntropyLoss),
    "balanced_softmax": (_balanced_softmax, BalancedSoftmaxLoss),
    "logit_adjusted": (_logit_adjusted, LogitAdjustedLoss),
    "multitask": (_multitask, MultiTaskLoss),
}


def build_criterion(
    name: str, *, num_classes: int, class_counts: Counts = None, **params: Any
) -> nn.Module:
    """Build the criterion `name` (a key of CRITERIA).

    `class_counts` enables the log prior of PaCo and multitask (pass None to train without
    it) and is required by balanced_softmax and logit_adjusted. `params` are keyword
    arguments of the criterion class; unknown ones raise UserError.
    """
    if name not in CRITERIA:
        raise UserError(f"unknown criterion '{name}'; choose from {', '.join(CRITERIA)}")
    factory, cls = CRITERIA[name]
    signature = inspect.signature(cls).parameters
    allowed = set(signature) - {"num_classes", "class_counts"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise UserError(
            f"criterion '{name}' got unknown parameters {unknown}; allowed: {sorted(allowed)}"
        )
    required = {key for key in allowed if signature[key].default is inspect.Parameter.empty}
    missing = sorted(required - set(params))
    if missing:
        raise UserError(f"criterion '{name}' needs parameters {missing}")
    return factory(num_classes, class_counts, **params)
