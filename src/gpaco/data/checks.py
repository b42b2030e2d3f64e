"""Checks of a built training set that hold for every dataset."""

from __future__ import annotations

from collections.abc import Sequence

from gpaco.errors import UserError

MAX_LISTED = 8


def _listed(items: Sequence[object]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(str(i) for i in items[:MAX_LISTED]) + more


def check_every_class_trained(class_counts: Sequence[int], dataset: str) -> None:
    """A class without a training image cannot be learnt (and its log prior would be -inf):
    usually a typo in a label (labels 0, 1, 2, 7 make classes 3-6) or a class left out of the
    list. Refused for every dataset, naming the empty classes and the labels the data has."""
    empty = [c for c, n in enumerate(class_counts) if n == 0]
    if not empty:
        return
    present = [c for c, n in enumerate(class_counts) if n > 0]
    raise UserError(f"data.dataset={dataset}: {len(empty)} of {len(class_counts)} classes have "
                    f"no training image (class {_listed(empty)}; the training labels are "
                    f"{_listed(present)}); check the labels (a typo adds classes) or give "
                    "the missing classes training images")
