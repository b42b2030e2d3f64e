"""Segmentation runs on real layouts: images of different sizes in one evaluation batch, and a
batch too small for batch norm (issue 22, class 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gpaco.cli import main
from gpaco.train import run_dir as rd

TINY = ["train.max_steps_per_epoch=1", "train.log_every=1", "train.device=cpu",
        "output.progress=none", "output.tensorboard=false", "output.plots=false",
        "schedule.epochs=1", "data.crop_size=[32,32]", "data.scale=[48,32]",
        "data.workers=0", "train.threads=1"]


def _voc(root: Path) -> list[str]:
    """VOCdevkit/VOC2012 with 4 train and 3 val images of 3 different sizes."""
    base = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = {"train": [], "val": []}
    for i, (h, w) in enumerate([(40, 50), (30, 60), (44, 36), (40, 50), (36, 52), (50, 40),
                                (32, 32)]):
        name = f"2007_{i:06d}"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            base / "JPEGImages" / f"{name}.jpg")
        mask = Image.fromarray(rng.integers(0, 3, (h, w), dtype=np.uint8), mode="P")
        mask.putpalette([0] * 768)
        mask.save(base / "SegmentationClass" / f"{name}.png")
        names["train" if i < 4 else "val"].append(name)
    for split, items in names.items():
        (base / "ImageSets/Segmentation" / f"{split}.txt").write_text("\n".join(items) + "\n")
    return ["data.dataset=voc2012", f"data.root={root}"]


def test_an_eval_batch_of_different_sizes_and_the_last_checkpoint(tmp_path, capsys):
    data = _voc(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--recipe", "seg-default", *TINY, *data, "train.batch_size=2",
                 "train.eval_batch_size=32", f"output.dir={run}"]) == 0, capsys.readouterr().err
    assert (run / rd.CHECKPOINT).is_file() and "val mIoU" in capsys.readouterr().out


def test_batch_size_one_with_batch_norm_is_one_line(tmp_path, capsys):
    data = _voc(tmp_path / "data")
    assert main(["train", "--recipe", "seg-default", *TINY, *data, "train.batch_size=1",
                 f"output.dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.batch_size >= 2" in err
