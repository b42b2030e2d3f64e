"""CSV and PNG reports of per-class IoU."""

from __future__ import annotations

import csv
import math

import numpy as np
from PIL import Image

from gpaco.tasks.segmentation.metrics import SegmentationScores
from gpaco.tasks.segmentation.report import plot_iou_vs_frequency, plot_predictions, write_class_csv


def _result() -> SegmentationScores:
    return SegmentationScores(miou=0.5, macc=0.6, aacc=0.9, iou=[0.9, 0.1, math.nan],
                              acc=[0.95, 0.2, math.nan])


def test_csv_has_one_row_per_class(tmp_path) -> None:
    path = write_class_csv(tmp_path / "iou.csv", _result(), ["bg", "cat", "dog"], [900, 100, 0])
    rows = list(csv.DictReader(path.open()))
    assert [r["class"] for r in rows] == ["bg", "cat", "dog"]
    assert float(rows[1]["iou_percent"]) == 10 and rows[2]["iou_percent"] == ""
    assert float(rows[0]["train_pixel_share_percent"]) == 90 and rows[0]["train_pixels"] == "900"


def test_pngs_are_written(tmp_path) -> None:
    freq = plot_iou_vs_frequency(tmp_path / "freq.png", _result(), ["bg", "cat", "dog"], [900, 100, 0])
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    labels = np.zeros((2, 8, 8), dtype=np.int64)
    labels[:, 0] = 255
    preds = np.ones((2, 8, 8), dtype=np.int64)
    grid = plot_predictions(tmp_path / "pred.png", images, labels, preds, ["bg", "cat", "dog"])
    for path in (freq, grid):
        with Image.open(path) as img:
            assert img.width > 100 and img.height > 100
