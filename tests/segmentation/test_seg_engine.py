"""Segmentation through the same engine and CLI as classification: `gpaco train` / `eval` /
`prepare`, the run directory, resume, and one-line errors for bad data."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gpaco.cli import main
from gpaco import run as C
from gpaco.train import run_dir as rd
from gpaco import run as T
from gpaco.train import trainer
from gpaco.weights.checkpoint import load_checkpoint
from gpaco.losses.segmentation import SegmentationLoss

# seg-default, a few steps: the embedded canvases, batch 4 (BN in the ASPP pooling needs >= 2).
TINY = ["train.max_steps_per_epoch=2", "train.batch_size=4", "train.log_every=1",
        "train.device=cpu", "output.progress=none", "output.tensorboard=false",
        "train.eval_every=1"]


def _cfg(folder: Path, *extra: str) -> C.Config:
    return C.load_config("seg-default", overrides=[*TINY, f"output.dir={folder}", *extra])


def test_gpaco_train_writes_the_segmentation_run_dir_and_eval_agrees(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--recipe", "seg-default", *TINY, "schedule.epochs=1",
                 f"output.dir={run}"]) == 0
    out = capsys.readouterr().out
    assert "final (last epoch) test mIoU" in out
    for name in ("per_class_iou.csv", "iou_vs_frequency.png", "predictions.png", rd.SUMMARY,
                 rd.CONFIG, rd.CHECKPOINT, "pixel_counts.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / rd.SUMMARY).read_text())
    assert summary["task"] == "segmentation" and 0 <= summary["last"]["miou"] <= 100
    rows = list(csv.DictReader((run / "per_class_iou.csv").open()))
    assert [r["class"] for r in rows][:2] == ["background", "T-shirt/top"] and len(rows) == 11
    counts = json.loads((run / "pixel_counts.json").read_text())
    assert counts[1] > counts[10] > 0  # the long tail of the demo's training pixels
    assert main(["eval", "--checkpoint", str(run / rd.CHECKPOINT)]) == 0
    line = capsys.readouterr().out
    assert f"test mIoU {summary['last']['miou']:.2f}%" in line and "(128 images)" in line
    assert main(["report", str(run)]) == 0
    report = capsys.readouterr().out
    assert "| evaluation | mIoU (%) | mAcc (%) | aAcc (%) |" in report
    assert f"| {summary['last']['miou']:.2f} |" in report


def test_the_ce_baseline_has_no_projection_and_no_gpaco_term(tmp_path) -> None:
    run = T.build_run(_cfg(tmp_path / "ce", "method=ce"), tmp_path / "ce")
    assert run.model.projection is None and isinstance(run.criterion, SegmentationLoss)
    assert run.criterion.pixel_paco is None and run.model.aux_head is not None
    gpaco = T.build_run(_cfg(tmp_path / "g"), tmp_path / "g")
    assert gpaco.model.projection is not None and gpaco.criterion.pixel_paco.num_samples == 128


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path,
                                                                  train_until_killed) -> None:
    full = _cfg(tmp_path / "full", "schedule.epochs=2", "loss.num_samples=64")
    T.train(full, Path(full.output.dir))
    cut = _cfg(tmp_path / "cut", "schedule.epochs=2", "loss.num_samples=64")
    train_until_killed(cut, 1)
    ckpt = load_checkpoint(tmp_path / "cut" / rd.CHECKPOINT)
    assert ckpt["epoch"] == 1 and "criterion" in ckpt  # the pixel sampler's state travels
    T.train(cut, Path(cut.output.dir), resume=True)
    a = load_checkpoint(tmp_path / "full" / rd.CHECKPOINT)["model"]
    b = load_checkpoint(tmp_path / "cut" / rd.CHECKPOINT)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _ade_layout(root: Path, mask: np.ndarray, image_size: tuple[int, int] | None = None) -> Path:
    base = root / "ADEChallengeData2016"
    for split, name in (("training", "ADE_train_00000001"), ("training", "ADE_train_00000002"),
                        ("validation", "ADE_val_00000001")):
        (base / "images" / split).mkdir(parents=True, exist_ok=True)
        (base / "annotations" / split).mkdir(parents=True, exist_ok=True)
        h, w = image_size or mask.shape
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(base / "images" / split / f"{name}.jpg")
        Image.fromarray(mask.astype(np.uint8), mode="L").save(
            base / "annotations" / split / f"{name}.png")
    return base


@pytest.mark.parametrize("problem, message", [
    ("value", r"mask .*ADE_train_0000000\d\.png has values \[200\] outside 0\.\.150"),
    ("size", r"mask .*ADE_train_0000000\d\.png is 32x32 but its image .*\.jpg is 40x32"),
    ("missing", r"missing file .*ADE_val_00000001\.png"),
    ("layout", r"ADE20K not found under"),
])
def test_bad_segmentation_data_is_a_one_line_error_naming_the_file(tmp_path, capsys, problem,
                                                                   message) -> None:
    mask = np.full((32, 32), 3)
    mask[0, 0] = 200 if problem == "value" else 3
    base = _ade_layout(tmp_path / "data", mask, (32, 40) if problem == "size" else None)
    if problem == "missing":
        (base / "annotations/validation/ADE_val_00000001.png").unlink()
    root = tmp_path / "elsewhere" if problem == "layout" else tmp_path / "data"
    code = main(["train", "task=segmentation", "data.dataset=ade20k", f"data.root={root}",
                 "method=ce", "model.backbone=resnet18", "data.crop_size=[32,32]",
                 "data.scale=[32,32]", "train.batch_size=2", "schedule.epochs=1",
                 "schedule.warmup_epochs=0", "schedule.milestones=[]", "train.device=cpu", "output.progress=none", f"output.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert re.search("^gpaco: error: " + message, err), err


def test_gpaco_prepare_writes_pascal_context_labels(tmp_path, capsys) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    voc, mats = tmp_path / "VOCdevkit/VOC2010", tmp_path / "trainval"
    (voc / "ImageSets/Main").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    mats.mkdir()
    (voc / "ImageSets/Main/train.txt").write_text("2008_000002\n")
    (voc / "ImageSets/Main/val.txt").write_text("2008_000007\n")
    label = np.array([[2, 284], [0, 458]], np.uint16).repeat(4, 0).repeat(4, 1)  # 8 x 8
    for name in ("2008_000002", "2008_000007"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(voc / "JPEGImages" / f"{name}.jpg")
        scipy_io.savemat(mats / f"{name}.mat", {"LabelMap": label})
    assert main(["prepare", "pascal_context59", str(tmp_path / "VOCdevkit"), str(mats)]) == 0
    assert "{'train': 1, 'val': 1}" in capsys.readouterr().out
    png = np.array(Image.open(voc / "SegmentationClassContext/2008_000002.png"))
    assert png.shape == (8, 8) and png[0, 0] == 1 and png[7, 0] == 0  # aeroplane; 0 = none
    assert main(["prepare", "pascal_context59", str(voc)]) == 2  # a missing source


@pytest.mark.parametrize("cut", [0, 100, -10])  # no header, a cut header, cut data
def test_prepare_on_a_truncated_mat_file_is_one_line_naming_it(tmp_path, capsys, cut) -> None:
    from _dataset_fakes import write_pascal_context_release

    voc, mats = write_pascal_context_release(tmp_path, 12, 16, train=1)
    damaged = mats / "2008_000000.mat"
    damaged.write_bytes(damaged.read_bytes()[:cut])
    assert main(["prepare", "pascal_context59", str(voc), str(mats)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot read {damaged}" in err and "download the Pascal-Context trainval files again" in err


def test_a_truncated_coco_stuff_annotation_is_one_line_naming_it(tmp_path) -> None:
    from _dataset_fakes import write_coco_stuff10k
    from gpaco.data.segmentation import COCOStuff10k
    from gpaco.errors import UserError

    base = write_coco_stuff10k(tmp_path, 12, 16, train=1)
    name = (base / "imageLists" / "train.txt").read_text().split()[0]
    damaged = base / "annotations" / f"{name}.mat"
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(UserError, match=f"cannot read {re.escape(str(damaged))} .*truncated"):
        COCOStuff10k(base)[0]
