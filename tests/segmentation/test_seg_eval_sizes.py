"""Segmentation runs on real layouts: images of different sizes in one evaluation batch, and a
batch too small for batch norm (issue 22, class 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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


@pytest.mark.parametrize("crop", [[1, 1], [30, 32]])
def test_a_crop_the_encoder_cannot_take_is_one_line_before_the_first_step(tmp_path, capsys, crop):
    """Swin's patch embedding takes multiples of 4 only: the crop is refused naming both keys."""
    from _dataset_fakes import write_ade20k

    write_ade20k(tmp_path / "data", 48, 64, train=2)
    code = main(["train", "--recipe", "seg-ade20k-upernet-swin-t-ce", "train.device=cpu",
                 "data.workers=0", "output.progress=none", "train.batch_size=2",
                 f"data.root={tmp_path / 'data'}", "model.pretrained=false",
                 "model.backbone_kwargs={img_size: 32}", f"data.crop_size=[{crop[0]},{crop[1]}]",
                 "schedule.iterations=1", "schedule.warmup_iterations=0",
                 f"output.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert (f"model.backbone=tu-swin_tiny_patch4_window7_224 cannot take the run's input, "
            f"data.crop_size={crop} (Input height ({crop[0]}) should be divisible") in err


@pytest.mark.parametrize("crop", [[1, 1], [7, 9], [200, 120]])
def test_tiny_odd_and_larger_than_image_crops_train_and_evaluate(tmp_path, capsys, crop):
    """A crop larger than the (rescaled) images is padded with ignore, as mmseg's; tiny and odd
    crops train on an encoder that takes them."""
    run = tmp_path / "run"
    assert main(["train", "--recipe", "seg-default", *TINY, "train.batch_size=2",
                 "data.num_images=8", f"data.crop_size=[{crop[0]},{crop[1]}]",
                 f"output.dir={run}"]) == 0, capsys.readouterr().err
    assert "test mIoU" in capsys.readouterr().out
