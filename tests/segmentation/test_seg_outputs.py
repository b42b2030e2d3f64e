"""What a segmentation run shows (issue 22, class 7): one unit (percent) in every file and
line, the split named as it is (val for the benchmarks whose papers evaluate on val), a report
with the run's pictures, a legend in predictions.png, class labels that do not overlap in
iou_vs_frequency.png, and run folders written before these changes still readable."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from gpaco.cli import main
from gpaco.tasks.segmentation.metrics import SegmentationScores
from gpaco.tasks.segmentation.report import iou_vs_frequency_figure, predictions_figure
from gpaco.train import run_dir as rd
from test_seg_eval_sizes import TINY as REAL_TINY, _voc

FIXTURE = Path(__file__).parents[1] / "fixtures" / "seg_run_v0"
DEMO = ["train.max_steps_per_epoch=2", "train.batch_size=4", "train.device=cpu",
        "output.progress=none", "output.tensorboard=false", "train.eval_every=1",
        "schedule.epochs=1", "data.num_images=16", "inference.predictions=2"]


def _links(report: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)


def test_every_number_of_a_demo_run_is_in_percent_and_the_report_shows_its_pictures(
        tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--recipe", "seg-default", *DEMO, f"output.dir={run}"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run / rd.SUMMARY).read_text())
    last = summary["last"]
    # seg_demo's held-out canvases are drawn from Fashion-MNIST's test split: "test"
    assert summary["split"] == last["split"] == "test"
    assert re.search(r"evaluation on the test split \(\d+ images; numbers in %\)", out)
    assert f"final (last epoch) test mIoU {last['miou']:.2f}% mAcc {last['macc']:.2f}% " \
           f"aAcc {last['aacc']:.2f}%" in out
    record = [json.loads(line) for line in (run / rd.METRICS).read_text().splitlines()][-1]
    assert record["test"]["miou"] == pytest.approx(last["miou"])

    rows = list(csv.DictReader((run / "per_class_iou.csv").open()))
    assert list(rows[0]) == ["class_index", "class", "train_pixels",
                             "train_pixel_share_percent", "iou_percent", "acc_percent"]
    for row, iou in zip(rows, last["iou"]):  # the CSV and summary.json agree, both in percent
        assert (row["iou_percent"] == "") == (iou is None)
        if iou is not None:
            assert float(row["iou_percent"]) == pytest.approx(iou, abs=1e-4)
    defined = [v for v in last["iou"] if v is not None]
    assert sum(defined) / len(defined) == pytest.approx(last["miou"])
    assert sum(float(r["train_pixel_share_percent"]) for r in rows) == pytest.approx(100, abs=1e-3)

    assert main(["report", str(run)]) == 0
    report = capsys.readouterr().out
    assert "| evaluation | mIoU (%) | mAcc (%) | aAcc (%) |" in report
    assert f"| test, last epoch (1) | {last['miou']:.2f} |" in report
    assert _links(report) == ["predictions.png", "iou_vs_frequency.png"]
    assert all((run / link).is_file() for link in _links(report))


def test_a_run_on_a_val_split_says_val_in_its_lines_files_report_and_eval(tmp_path,
                                                                          capsys) -> None:
    data = _voc(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--recipe", "seg-default", *REAL_TINY, *data, "train.batch_size=2",
                 f"output.dir={run}"]) == 0
    out = capsys.readouterr().out
    assert "  val mIoU " in out and "final (last epoch) val mIoU " in out and "test mIoU" not in out
    assert "evaluation on the val split (3 images; numbers in %)" in out
    summary = json.loads((run / rd.SUMMARY).read_text())
    assert summary["split"] == summary["last"]["split"] == "val"
    records = [json.loads(line) for line in (run / rd.METRICS).read_text().splitlines()]
    assert "val" in records[-1] and "test" not in records[-1]

    assert main(["report", str(run)]) == 0
    assert f"| val, last epoch (1) | {summary['last']['miou']:.2f} |" in capsys.readouterr().out
    (run / rd.SUMMARY).unlink()  # an unfinished run: the report reads metrics.jsonl
    assert main(["report", str(run)]) == 0
    assert "| val, epoch 1 (unfinished) |" in capsys.readouterr().out

    for split in ([], ["--split", "val"]):
        assert main(["eval", "--checkpoint", str(run / rd.CHECKPOINT), *split]) == 0
        line = capsys.readouterr().out
        assert line.startswith(f"val mIoU {summary['last']['miou']:.2f}% ") and "(3 images)" in line
    assert main(["eval", "--checkpoint", str(run / rd.CHECKPOINT), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'val'" in err and "--split val" in err


def test_a_run_folder_written_before_the_changes_still_reports(tmp_path, capsys) -> None:
    old = tmp_path / "old"
    shutil.copytree(FIXTURE, old)
    assert main(["report", str(old)]) == 0
    report = capsys.readouterr().out
    assert "| test, last epoch (1) | 0.45 | 9.09 | 4.97 |" in report
    (old / rd.SUMMARY).unlink()
    assert main(["report", str(old)]) == 0
    assert "| test, epoch 1 (unfinished) | 0.45 | 9.09 | 4.97 |" in capsys.readouterr().out
    # resumed after the change on a val-split dataset: the latest evaluation is a "val" record
    first = json.loads((old / rd.METRICS).read_text().splitlines()[0])
    scores = first.pop("test")
    later = {**first, "epoch": 2, "val": {**scores, "miou": 7.5, "split": "val"}}
    with (old / rd.METRICS).open("a") as f:
        f.write(json.dumps(later) + "\n")
    assert main(["report", str(old)]) == 0
    assert "| val, epoch 2 (unfinished) | 7.50 | 9.09 | 4.97 |" in capsys.readouterr().out


def _scores(iou: list[float]) -> SegmentationScores:
    defined = [v for v in iou if not math.isnan(v)]
    return SegmentationScores(miou=sum(defined) / len(defined), macc=0.5, aacc=0.5, iou=iou,
                              acc=iou)


def test_the_predictions_legend_names_every_class_shown_and_ignore() -> None:
    classes = ["background", "cat", "dog", "bird", "fish"]
    label = np.zeros((8, 8), dtype=np.int64)
    label[0] = 255
    label[2:4, 2:4] = 2
    prediction = np.ones((8, 8), dtype=np.int64)
    prediction[5:, 5:] = 4
    images = [np.zeros((8, 8, 3), dtype=np.uint8)] * 2
    fig = predictions_figure(images, [label, label], [prediction, prediction], classes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "background", "cat", "dog", "fish", "ignored (not scored)"]
    colours = [tuple(np.round(np.asarray(h.get_facecolor()[:3]) * 255)) for h in
               legend.legend_handles]
    assert len(set(colours)) == len(colours)  # one colour per name


def _label_boxes(fig):
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return ax.get_window_extent(renderer), [t.get_window_extent(renderer) for t in ax.texts]


def test_iou_vs_frequency_labels_never_overlap_and_stay_inside() -> None:
    rng = np.random.default_rng(0)
    n = 150  # ADE20K: many rare classes close together on the log axis
    counts = (10 ** rng.uniform(2, 4.5, n)).astype(int).tolist()
    iou = rng.uniform(0, 0.3, n).tolist()  # rare classes crowd near IoU 0
    classes = [f"class-{k}" for k in range(n)]
    fig = iou_vs_frequency_figure(_scores(iou), classes, counts)
    frame, boxes = _label_boxes(fig)
    assert 10 <= len(boxes) < n and f"{len(boxes)} of {n} classes labelled" in fig.axes[0].get_title()
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), a


def test_iou_vs_frequency_labels_every_class_when_there_is_room() -> None:
    fig = iou_vs_frequency_figure(_scores([0.9, 0.4, 0.05, math.nan]), ["bg", "cat", "dog", "fox"],
                                  [9000, 900, 90, 0])
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["bg", "cat", "dog"]
    assert "labelled" not in fig.axes[0].get_title()
    fig = iou_vs_frequency_figure(_scores([0.9, 0.0]), ["bg", "cat"], [9000, 0])
    assert "1 class with none not shown" in fig.axes[0].get_xlabel()
