"""Per-class segmentation reports: a CSV, IoU against pixel frequency, predictions beside labels."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpaco.tasks.segmentation.metrics import SegmentationScores


def write_class_csv(
    path: str | Path, result: SegmentationScores, classes: Sequence[str], pixel_counts: Sequence[int]
) -> Path:
    """One row per class: index, name, training pixels, pixel share, IoU, Acc (blank if undefined)."""
    path = Path(path)
    total = max(sum(pixel_counts), 1)

    def cell(value: float) -> str:
        return "" if math.isnan(value) else f"{value:.6f}"

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class_index", "class", "pixels", "pixel_share", "iou", "acc"])
        for k, name in enumerate(classes):
            writer.writerow([k, name, int(pixel_counts[k]), f"{pixel_counts[k] / total:.6g}",
                             cell(result.iou[k]), cell(result.acc[k])])
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_iou_vs_frequency(
    path: str | Path,
    result: SegmentationScores,
    classes: Sequence[str],
    pixel_counts: Sequence[int],
    title: str = "",
) -> Path:
    """Scatter of per-class IoU (%) against the class's training pixel share (log scale)."""
    plt = _pyplot()
    total = max(sum(pixel_counts), 1)
    share = np.array([max(c, 1) / total for c in pixel_counts])
    iou = np.array([100 * v for v in result.iou])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    defined = ~np.isnan(iou)
    ax.scatter(share[defined], iou[defined], s=14)
    if len(classes) <= 30:
        for k in np.flatnonzero(defined):
            ax.annotate(classes[k], (share[k], iou[k]), fontsize=6, alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("share of labelled training pixels")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title or f"per-class IoU (mIoU {100 * result.miou:.1f})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def palette(num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """(256, 3) uint8 colours: a fixed pseudo-random colour per class, white for ignore."""
    rng = np.random.default_rng(12345)
    colours = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    colours[0] = 0
    colours[ignore_index] = 255
    return colours


def plot_predictions(
    path: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    num_classes: int,
    ignore_index: int = 255,
) -> Path:
    """Rows of image | label | prediction. images (N, H, W, 3) uint8; labels, predictions (N, H, W)."""
    plt = _pyplot()
    colours = palette(num_classes, ignore_index)
    rows = len(images)
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.5 * rows), dpi=100, squeeze=False)
    for r in range(rows):
        panels = (images[r], colours[labels[r]], colours[predictions[r]])
        for c, (panel, name) in enumerate(zip(panels, ("image", "label", "prediction"))):
            axes[r][c].imshow(panel, interpolation="nearest")
            axes[r][c].set_axis_off()
            if r == 0:
                axes[r][c].set_title(name)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
