"""A run's numbers come from the data and settings the user meant (issue 22, class 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from gpaco import run, tasks
from gpaco.cli import main
from gpaco.train.input_check import evaluation_input_size


def _split_file_data(root: Path, train_labels: list[int]) -> list[str]:
    """root/img/*.png with a train and a test list; the test list has classes 0-3."""
    (root / "img").mkdir(parents=True)
    train, test = [], []
    for i, label in enumerate(train_labels):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(root / "img" / f"tr{i}.png")
        train.append(f"img/tr{i}.png {label}")
    for c in range(4):
        Image.new("RGB", (8, 8), (0, c, 0)).save(root / "img" / f"te{c}.png")
        test.append(f"img/te{c}.png {c}")
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "test.txt").write_text("\n".join(test) + "\n")
    return ["data.dataset=split_file", f"data.root={root}", f"data.train_split={root}/train.txt",
            f"data.test_split={root}/test.txt", "data.image_size=8",
            "schedule.name=cosine", "warmup_epochs=0"]


@pytest.mark.parametrize("labels,empty", [([0, 1, 2, 7] * 8, "class 3, 4, 5, 6"),
                                          ([0, 2, 3] * 8, "class 1;")])
def test_a_class_without_training_images_is_refused(tmp_path, capsys, tiny_args, labels, empty):
    # a typo (7 for 3) adds classes 3-6; a class left out of the list has 0 images
    data = _split_file_data(tmp_path / "d", labels)
    assert main(["train", *tiny_args, *data, "epochs=1", f"output.dir={tmp_path / 'r'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no training image" in err and empty in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args,key", [
    (["schedule.name=step", "epochs=3", "warmup_epochs=4", "schedule.milestones=[1]"],
     "warmup_epochs"),
    (["schedule.name=cosine", "epochs=3", "warmup_epochs=5"], "warmup_epochs"),
    (["schedule.name=poly", "epochs=3", "warmup_epochs=3"], "warmup_epochs"),
    (["schedule.name=step", "epochs=5", "warmup_epochs=0", "schedule.milestones=[2,4]"],
     "milestones"),
    (["schedule.name=step", "epochs=5", "warmup_epochs=0"], "milestones"),  # default 320, 360
])
def test_a_schedule_that_never_reaches_its_lr_or_milestone_is_refused(capsys, args, key):
    assert main(["config", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err


def test_a_schedule_that_reaches_everything_is_accepted(capsys):
    # step / cosine warm epoch e at lr*(e+1)/W: W = E still reaches optim.lr in the last epoch
    assert main(["config", "schedule.name=cosine", "epochs=2", "warmup_epochs=2"]) == 0
    assert main(["config", "schedule.name=step", "epochs=5", "warmup_epochs=1",
                 "schedule.milestones=[2,3]"]) == 0


@pytest.mark.parametrize("args", [["model.backbone=vit_micro_patch4_32", "data.image_size=48"],
                                  ["model.backbone=vit_micro_patch4_32", "data.image_size=16"]])
def test_a_model_that_cannot_take_the_input_is_one_line_before_any_step(tmp_path, capsys,
                                                                         tiny_args, args):
    assert main(["train", *tiny_args, *args, "epochs=1", f"output.dir={tmp_path / 'r'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot take the run's input" in err
    assert "data.image_size" in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("batched", ["true", "false"])
def test_images_of_another_size_are_evaluated_at_the_training_size(tmp_path, capsys, tiny_args,
                                                                   batched):
    """The embedded images are 28 px: with data.image_size=32 the batched path trained at 32 and
    evaluated at 28 (a ViT built for 32 died in its first evaluation); both paths now resize
    first, as the per-sample path did, and the input check sees the size evaluation gives."""
    over = ["data.image_size=32", f"data.batched_augment={batched}"]
    cfg = run.load_config(None, None, [*tiny_args, *over])
    data = tasks.task_of(cfg).build_data(cfg, torch.device("cpu"))
    assert evaluation_input_size(data.test_loader) == (32, 32)
    assert main(["train", *tiny_args, *over, "model.backbone=vit_micro_patch4_32", "epochs=1",
                 f"output.dir={tmp_path / 'r'}"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("batched", ["true", "false"])
def test_an_image_size_below_what_the_augmentations_take_is_one_line(capsys, batched):
    """A 1 px image comes back 2 px wide from the batched AutoAugment / RandAugment and trains
    to a nan loss on the per-sample path: refused up front."""
    assert main(["config", "data.image_size=1", f"data.batched_augment={batched}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.image_size=1 is below 2" in err
    assert main(["config", "data.image_size=2", f"data.batched_augment={batched}"]) == 0


@pytest.mark.parametrize("size", [2, 3])
def test_tiny_images_train_on_the_per_sample_augmentation(tmp_path, capsys, tiny_args, size):
    run = tmp_path / "r"
    assert main(["train", *tiny_args, "data.batched_augment=false", f"data.image_size={size}",
                 "epochs=1", "train.eval_batch_size=2000", f"output.dir={run}"]) == 0, \
        capsys.readouterr().err
    assert (run / "last.pt").is_file()
