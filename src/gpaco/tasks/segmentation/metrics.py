"""Confusion-matrix segmentation metrics (mmsegmentation's definitions).

For class c: intersect = M[c, c], label area = sum_j M[c, j], predicted area = sum_i M[i, c];
IoU_c = intersect / (label + predicted - intersect), Acc_c = intersect / label. mIoU and mAcc
are the means over classes whose value is defined (0/0 = NaN is left out: a class absent from
both labels and predictions has no IoU; one predicted but never labelled has IoU 0 and no Acc).
aAcc = sum_c intersect / sum_c label. Pixels labelled `ignore_index` are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SegmentationScores:
    """Fractions in [0, 1]; per-class values are NaN where undefined. Every file and line of a
    run shows them in percent (`percent`)."""

    miou: float
    macc: float
    aacc: float
    iou: list[float]
    acc: list[float]
    num_images: int = 0  # evaluated images, where known
    split: str = "test"  # the dataset split evaluated, as its papers name it ("val", "test")


def percent(fraction: float) -> float | None:
    """A fraction as a percentage for the run's files; None where undefined (NaN)."""
    return None if math.isnan(fraction) else 100 * float(fraction)


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255) -> Tensor:
    """(C, C) int64 counts, rows = label, columns = prediction, over non-ignored pixels."""
    valid = target != ignore_index
    labels = target[valid].long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels outside 0..{num_classes - 1} that are not {ignore_index}")
    flat = labels * num_classes + pred[valid].long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(matrix: Tensor) -> SegmentationScores:
    """mIoU / mAcc / aAcc and per-class IoU / Acc of a confusion matrix."""
    m = matrix.double().cpu()
    intersect = m.diagonal()
    label_area = m.sum(1)
    union = label_area + m.sum(0) - intersect
    iou = intersect / union  # 0/0 -> NaN, left out of the mean
    acc = intersect / label_area
    return SegmentationScores(
        miou=float(iou.nanmean()),
        macc=float(acc.nanmean()),
        aacc=float(intersect.sum() / label_area.sum()),
        iou=iou.tolist(),
        acc=acc.tolist(),
    )


class ConfusionMatrix:
    """Accumulates the confusion matrix over batches (on the predictions' device).

    For several processes, all-reduce (sum) `matrix` before `compute()`.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix: Tensor = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        counts = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        self.matrix = self.matrix.to(counts.device) + counts

    def compute(self) -> SegmentationScores:
        return scores(self.matrix)
