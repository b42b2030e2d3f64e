"""Per-class segmentation reports: a CSV, IoU against pixel frequency, predictions beside labels.
Every number is in percent, as in summary.json and metrics.jsonl."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gpaco.tasks.segmentation.metrics import SegmentationScores

CSV_COLUMNS = ("class_index", "class", "train_pixels", "train_pixel_share_percent",
               "iou_percent", "acc_percent")


def write_class_csv(
    path: str | Path, result: SegmentationScores, classes: Sequence[str], pixel_counts: Sequence[int]
) -> Path:
    """One row per class (CSV_COLUMNS): index, name, labelled training pixels, their share of
    all of them, IoU and Acc, the last three in percent (IoU / Acc blank where undefined)."""
    path = Path(path)
    total = max(sum(pixel_counts), 1)

    def cell(fraction: float) -> str:
        return "" if math.isnan(fraction) else f"{100 * fraction:.4f}"

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for k, name in enumerate(classes):
            writer.writerow([k, name, int(pixel_counts[k]), f"{100 * pixel_counts[k] / total:.6g}",
                             cell(result.iou[k]), cell(result.acc[k])])
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


# Where a class label may sit beside its point (offset in points, horizontal alignment), tried
# in this order; a label that fits none of them is left out.
_LABEL_SPOTS = ((4, 2, "left"), (4, -8, "left"), (-4, 2, "right"), (-4, -8, "right"),
                (0, 5, "center"), (0, -12, "center"), (8, 9, "left"), (-8, 9, "right"),
                (8, -16, "left"), (-8, -16, "right"))


def _overlaps(box: Any, others: list[Any]) -> bool:
    return any(box.overlaps(o) for o in others)


def _place_labels(fig: Any, ax: Any, points: list[tuple[str, float, float]]) -> int:
    """Label each (name, x, y) at the first spot whose text box stays inside the axes and
    overlaps no placed label and no point; returns how many were placed. The layout must be
    final: boxes are measured in display units."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    xy = ax.transData.transform([(x, y) for _, x, y in points]) if points else []
    radius = 3.0 * fig.dpi / 72  # a marker of s=14 has a radius of about 2 points
    taken = [Bbox.from_extents(px - radius, py - radius, px + radius, py + radius)
             for px, py in xy]
    placed = 0
    for name, x, y in points:
        for dx, dy, ha in _LABEL_SPOTS:
            text = ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points",
                               ha=ha, fontsize=6)
            box = text.get_window_extent(renderer).padded(1)
            if frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1) \
                    and not _overlaps(box, taken):
                taken.append(box)
                placed += 1
                break
            text.remove()
    return placed


def iou_vs_frequency_figure(
    result: SegmentationScores, classes: Sequence[str], pixel_counts: Sequence[int],
    title: str = "",
) -> Any:
    """Per-class IoU (%) against the class's share of the labelled training pixels (%, log
    scale), the rarest classes' labels placed first and none overlapping. Classes with no
    training pixel have no place on a log axis: the x label counts them."""
    plt = _pyplot()
    counts = np.asarray(pixel_counts, dtype=np.float64)
    share = 100 * counts / max(counts.sum(), 1)
    iou = np.array([100 * v for v in result.iou])
    shown = [k for k in np.argsort(share, kind="stable") if counts[k] > 0 and not np.isnan(iou[k])]
    unseen = sum(1 for k in range(len(classes)) if counts[k] == 0 and not np.isnan(iou[k]))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.scatter(share[shown], iou[shown], s=14)
    ax.set_xscale("log")
    if shown:  # room for labels beside the extreme points
        ax.set_xlim(share[shown].min() / 3, share[shown].max() * 3)
    ax.set_xlabel("share of labelled training pixels (%, log)"
                  + (f"; {unseen} class{'es' if unseen > 1 else ''} with none not shown"
                     if unseen else ""))
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(-5, 105)
    ax.set_title(title or f"per-class IoU (mIoU {100 * result.miou:.1f} %)", fontsize=10)
    fig.tight_layout()
    placed = _place_labels(fig, ax, [(classes[k], share[k], iou[k]) for k in shown])
    if placed < len(shown):
        ax.set_title(ax.get_title() + f"; {placed} of {len(shown)} classes labelled "
                     "(the others would overlap)", fontsize=8)
    return fig


def plot_iou_vs_frequency(
    path: str | Path,
    result: SegmentationScores,
    classes: Sequence[str],
    pixel_counts: Sequence[int],
    title: str = "",
) -> Path:
    """`iou_vs_frequency_figure` saved to `path`."""
    # saved as laid out (no bbox change): the labels were placed on this layout
    return _save(iou_vs_frequency_figure(result, classes, pixel_counts, title), path)


def palette(num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """(256, 3) uint8 colours: black for class 0, matplotlib's 20 `tab20` colours for classes
    1-20 (the strong ten first: told apart in a legend), a fixed pseudo-random colour for the
    others, white for ignore."""
    from matplotlib import colormaps

    rng = np.random.default_rng(12345)
    colours = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    tab20 = np.asarray(colormaps["tab20"].colors)
    colours[1:21] = np.round(255 * np.concatenate([tab20[0::2], tab20[1::2]]))
    colours[0] = 0
    colours[ignore_index] = 255
    return colours


def _legend_handles(classes: Sequence[str], colours: np.ndarray, maps: Sequence[np.ndarray],
                    ignore_index: int) -> list[Any]:
    """A colour patch per class (and ignore) that appears in `maps`, in class order."""
    from matplotlib.patches import Patch

    present = sorted(set().union(*(np.unique(m).tolist() for m in maps)))
    names = {k: classes[k] for k in present if 0 <= k < len(classes)}
    if ignore_index in present:
        names[ignore_index] = "ignored (not scored)"
    return [Patch(facecolor=colours[k] / 255, edgecolor="grey", label=name)
            for k, name in names.items()]


def predictions_figure(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    classes: Sequence[str],
    ignore_index: int = 255,
) -> Any:
    """Rows of image | label | prediction, with a legend naming every class shown. images
    (H, W, 3) uint8; labels, predictions (H, W) class ids (sizes may differ between rows)."""
    plt = _pyplot()
    colours = palette(len(classes), ignore_index)
    rows = len(images)
    handles = _legend_handles(classes, colours, [*labels, *predictions], ignore_index)
    columns = min(4, max(len(handles), 1))
    legend_inches = 0.25 * math.ceil(len(handles) / columns) + 0.2
    height = 2.5 * rows + legend_inches
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, height), dpi=100, squeeze=False)
    for r in range(rows):
        panels = (images[r], colours[labels[r]], colours[predictions[r]])
        for c, (panel, name) in enumerate(zip(panels, ("image", "label", "prediction"))):
            axes[r][c].imshow(panel, interpolation="nearest")
            axes[r][c].set_axis_off()
            if r == 0:
                axes[r][c].set_title(name)
    fig.legend(handles=handles, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    # fixed margins: tight_layout packs rows of axis-less images without a gap
    fig.subplots_adjust(left=0.02, right=0.98, bottom=legend_inches / height,
                        top=1 - 0.35 / height, wspace=0.05, hspace=0.08)
    return fig


def plot_predictions(
    path: str | Path,
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    classes: Sequence[str],
    ignore_index: int = 255,
) -> Path:
    """`predictions_figure` saved to `path`."""
    return _save(predictions_figure(images, labels, predictions, classes, ignore_index), path)


def _save(fig: Any, path: str | Path) -> Path:
    """Write `fig` to `path` as it is laid out, and free it."""
    fig.savefig(path)
    _pyplot().close(fig)
    return Path(path)
