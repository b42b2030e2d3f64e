"""Long-tail profiles (images per class) and the Cao et al. (LDAM) per-class subsampler.

This is the generator of `imbalance_cifar.py` used by LDAM-DRW, PaCo and GPaCo, reproduced
exactly so that a given (imb_factor, seed) selects the same images as the published code.
"""
from __future__ import annotations

from typing import Literal

from collections.abc import Sequence
from numbers import Real

import numpy as np

from gpaco.errors import UserError

IMB_TYPES = ("exp", "step")


def check_imbalance(imb_factor: float, imb_type: str) -> None:
    """Raise UserError unless 0 < imb_factor <= 1 and imb_type is "exp" or "step"."""
    if imb_type not in IMB_TYPES:
        raise UserError(f"data.imb_type must be one of {IMB_TYPES}, got {imb_type!r}")
    if not isinstance(imb_factor, Real) or not 0 < imb_factor <= 1:
        raise UserError(
            f"data.imb_factor must be in (0, 1] (0.01 = imbalance ratio 100), got {imb_factor!r}"
        )


def longtail_counts(
    n_max: int, num_classes: int, imb_factor: float, imb_type: Literal["exp", "step"] = "exp"
) -> list[int]:
    """Images per class, class 0 being the head.

    "exp":  n_c = int(n_max * imb_factor ** (c / (C - 1))).
    "step": the first C // 2 classes keep n_max, the others int(n_max * imb_factor).
    imb_factor = 1 gives a balanced set.
    """
    check_imbalance(imb_factor, imb_type)
    if num_classes < 1 or n_max < 1:
        raise UserError(f"need n_max >= 1 and num_classes >= 1, got {n_max} and {num_classes}")
    if imb_type == "step":
        # Cao et al. write two loops of C // 2, which drops a class when C is odd; the extra
        # class goes to the tail here.
        head = num_classes // 2
        if int(n_max * imb_factor) == 0:
            raise UserError(f"data.imb_factor={imb_factor} leaves the tail classes with 0 of {n_max} "
                            "training images; use a larger data.imb_factor or more images per class")
        return [int(n_max)] * head + [int(n_max * imb_factor)] * (num_classes - head)
    if num_classes == 1:
        return [int(n_max)]
    counts = [int(n_max * imb_factor ** (c / (num_classes - 1.0))) for c in range(num_classes)]
    if not all(counts):
        # A class with no training image cannot be learnt, and its prior would be log(0).
        raise UserError(f"data.imb_factor={imb_factor} leaves class {counts.index(0)} with 0 of "
                        f"{n_max} training images (n_c = int(n_max * imb_factor^(c/(C-1)))); "
                        "use a larger data.imb_factor or more images per class")
    return counts


def longtail_indices(targets: Sequence[int] | np.ndarray, counts: Sequence[int], seed: int) -> np.ndarray:
    """Indices of the long-tailed subset, class-major (class 0's images first).

    For c = 0, 1, ...: shuffle np.where(targets == c)[0] (original order) in place and keep the
    first counts[c] (fewer if the class has fewer images, as in the original code).
    """
    # RandomState(seed) draws exactly what np.random.seed(seed) + np.random.shuffle draw from the
    # legacy global RNG of the reference code, without touching the user's global RNG.
    rng = np.random.RandomState(seed)
    targets = np.asarray(targets)
    picked = []
    for c, n_c in enumerate(counts):
        idx = np.where(targets == c)[0]
        rng.shuffle(idx)
        picked.append(idx[:n_c])
    return np.concatenate(picked).astype(np.int64) if picked else np.zeros(0, np.int64)


def class_counts(targets: Sequence[int] | np.ndarray, num_classes: int) -> list[int]:
    """Number of samples of each class 0..num_classes-1."""
    targets = np.asarray(targets, dtype=np.int64)
    return np.bincount(targets, minlength=num_classes).tolist()
