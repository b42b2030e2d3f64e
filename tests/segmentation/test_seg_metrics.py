"""Confusion-matrix mIoU / mAcc / aAcc against a per-pixel loop and torchmetrics 1.9."""

from __future__ import annotations

import math

import pytest
import torch

from gpaco.tasks.segmentation.metrics import ConfusionMatrix, confusion_matrix, scores

C = 5


def _loop_scores(pred: torch.Tensor, target: torch.Tensor) -> tuple[list[float], list[float], float]:
    """IoU / Acc per class and aAcc from explicit pixel sets (NaN where 0/0)."""
    pairs = [(int(t), int(p)) for t, p in zip(target.flatten(), pred.flatten()) if int(t) != 255]
    iou, acc = [], []
    for c in range(C):
        inter = sum(1 for t, p in pairs if t == c and p == c)
        union = sum(1 for t, p in pairs if t == c or p == c)
        label = sum(1 for t, _ in pairs if t == c)
        iou.append(inter / union if union else math.nan)
        acc.append(inter / label if label else math.nan)
    aacc = sum(1 for t, p in pairs if t == p) / len(pairs)
    return iou, acc, aacc


def _case(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, C, (2, 8, 8), generator=gen)
    pred = torch.randint(0, C, (2, 8, 8), generator=gen)
    target[0, :2] = 255
    if name == "absent":  # class 4 neither labelled nor predicted
        target[target == 4], pred[pred == 4] = 0, 1
    if name == "predicted_only":  # class 3 predicted but never labelled
        target[target == 3] = 0
    return pred, target


def _nan_equal(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or abs(x - y) < 1e-12 for x, y in zip(a, b))


@pytest.mark.parametrize("name", ["all", "absent", "predicted_only"])
def test_scores_match_pixel_loop(name: str) -> None:
    pred, target = _case(name)
    result = scores(confusion_matrix(pred, target, C))
    iou, acc, aacc = _loop_scores(pred, target)
    assert _nan_equal(result.iou, iou) and _nan_equal(result.acc, acc)
    assert result.miou == pytest.approx(sum(v for v in iou if not math.isnan(v))
                                        / sum(not math.isnan(v) for v in iou), abs=1e-12)
    assert result.aacc == pytest.approx(aacc, abs=1e-12)


def test_accumulation_over_batches_equals_one_shot() -> None:
    pred, target = _case("all")
    matrix = ConfusionMatrix(C)
    matrix.update(pred[:1], target[:1])
    matrix.update(pred[1:], target[1:])
    assert torch.equal(matrix.matrix, confusion_matrix(pred, target, C))
    with pytest.raises(ValueError):
        confusion_matrix(pred, torch.full_like(target, 7), C)


@pytest.mark.parametrize("name", ["all", "absent", "predicted_only"])
def test_torchmetrics_agrees_on_miou_and_aacc(name: str) -> None:
    tm = pytest.importorskip("torchmetrics.classification")
    pred, target = _case(name)
    ours = scores(confusion_matrix(pred, target, C))
    miou = tm.MulticlassJaccardIndex(C, ignore_index=255, average="macro")(pred, target)
    aacc = tm.MulticlassAccuracy(C, ignore_index=255, average="micro")(pred, target)
    macc = tm.MulticlassAccuracy(C, ignore_index=255, average="macro")(pred, target)
    assert float(miou) == pytest.approx(ours.miou, abs=1e-6)
    assert float(aacc) == pytest.approx(ours.aacc, abs=1e-6)
    if name == "predicted_only":
        # torchmetrics gives the never-labelled class Acc 0 and averages it in; mmseg's mAcc
        # (ours) leaves the undefined 0/0 out. This is why gpaco keeps its own matrix.
        assert float(macc) < ours.macc - 0.01
    else:
        assert float(macc) == pytest.approx(ours.macc, abs=1e-6)
