"""Ensembles as in the papers (`paco_lt_ensemble.py`): the plain sum of raw member logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gpaco.errors import UserError


def _num_classes(member: nn.Module) -> int | None:
    classifier = getattr(member, "classifier", None)
    return classifier.out_features if isinstance(classifier, nn.Linear) else None


class LogitEnsemble(nn.Module):
    """`forward(x)` = sum of the members' logits (equal weights, no softmax, no prior).

    Args:
        members: models mapping (B, 3, H, W) to (B, C) logits, all with the same C.
        class_names: each member's class names in label order, where known (None entries
            are not checked); members that order classes differently cannot be summed.

    Raises:
        UserError: no members, different class counts, or different class orders.
    """

    def __init__(self, members: Sequence[nn.Module],
                 class_names: Sequence[Sequence[str] | None] | None = None) -> None:
        super().__init__()
        if not members:
            raise UserError("an ensemble needs at least one member")
        counts = [_num_classes(m) for m in members]
        known = {c for c in counts if c is not None}
        if len(known) > 1:
            listed = ", ".join(f"member {i}: {c}" for i, c in enumerate(counts))
            raise UserError(f"ensemble members have different class counts ({listed})")
        _check_class_order(class_names or [])
        self.members = nn.ModuleList(members)
        self.num_classes = known.pop() if known else None

    def forward(self, x: Tensor) -> Tensor:
        total: Tensor | None = None
        for i, member in enumerate(self.members):
            logits = member(x)
            if total is not None and logits.shape != total.shape:
                raise UserError(f"ensemble member {i} gives logits {tuple(logits.shape)}, "
                                f"member 0 {tuple(total.shape)}")
            total = logits if total is None else total + logits
        assert total is not None
        return total


def _check_class_order(class_names: Sequence[Sequence[str] | None]) -> None:
    named = [(i, list(n)) for i, n in enumerate(class_names) if n is not None]
    for i, names in named[1:]:
        if names != named[0][1]:
            first = next((c for c, (a, b) in enumerate(zip(names, named[0][1])) if a != b),
                         min(len(names), len(named[0][1])))
            raise UserError(f"ensemble member {i} labels its classes differently from member "
                            f"{named[0][0]} (first difference at class {first}); summing their "
                            "logits would mix classes")
