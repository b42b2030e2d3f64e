"""Image folders with train/ val/ test/: val selects the best epoch, test reports, as split files."""

import json

import numpy as np
import pytest
from PIL import Image

from gpaco.cli import main

ARGS = ["data.dataset=image_folder", "train.device=cpu", "epochs=2", "warmup_epochs=0",
        "schedule.milestones=[]", "batch_size=8", "model.backbone=resnet8", "method=ce", "image_size=16",
        "output.progress=none", "output.tensorboard=false", "output.plots=false"]


def _folders(root, splits: dict[str, int]) -> None:
    """3 classes; `splits` maps a split folder to its images per class."""
    rng = np.random.default_rng(0)
    for split, n in splits.items():
        for c in range(3):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                    root / split / f"c{c}" / f"{i}.png")


def _eval_images(capsys, *argv: str) -> int:
    assert main(["eval", *argv]) == 0, capsys.readouterr().err
    return int(capsys.readouterr().out.split("(")[-1].split()[0])


def test_train_val_test_folders_select_on_val_and_report_test(tmp_path, capsys):
    _folders(tmp_path / "data", {"train": 8, "val": 2, "test": 5})
    run = tmp_path / "run"
    assert main(["train", *ARGS, f"data.root={tmp_path / 'data'}", f"output.dir={run}",
                 "output.tensorboard=true"]) == 0
    out = capsys.readouterr().out
    assert "val top1" in out  # the validation folder is evaluated
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_on_val"]["epoch"] in (1, 2) and (run / "best.pt").is_file()
    _assert_one_epoch_numbering(run, out, summary, capsys)
    assert _eval_images(capsys, "--checkpoint", str(run / "last.pt")) == 15  # test/: 3 x 5
    assert _eval_images(capsys, "--checkpoint", str(run / "last.pt"), "--split", "val") == 6


def _assert_one_epoch_numbering(run, out, summary, capsys) -> None:
    """Console, metrics.jsonl, summary.json, report.md and TensorBoard all count epochs from 1."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert "epoch 1/2 loss" in out and "epoch 2/2 loss" in out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    best = summary["best_on_val"]
    assert next(r for r in records if r["epoch"] == best["epoch"])["val"] == best["val"]
    assert main(["report", str(run)]) == 0
    report = capsys.readouterr().out
    assert f"val, best epoch ({best['epoch']})" in report and "last epoch (2)" in report
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train_loss")] == [1, 2]


def test_train_and_val_folders_keep_val_as_the_test_split(tmp_path, capsys):
    _folders(tmp_path / "data", {"train": 8, "val": 4})
    run = tmp_path / "run"
    assert main(["train", *ARGS, f"data.root={tmp_path / 'data'}", f"output.dir={run}"]) == 0
    assert "val top1" not in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["best_on_val"] is None
    assert _eval_images(capsys, "--checkpoint", str(run / "last.pt")) == 12


@pytest.mark.parametrize("choice", [["data.val_split=test"], ["data.val_split=val"]])
def test_selecting_on_the_test_folder_is_refused(tmp_path, capsys, choice):
    # train/ val/ test/: val_split=test is the test set; train/ val/: val/ is the test split
    layout = {"train": 8, "val": 2, "test": 5} if choice == ["data.val_split=test"] else \
        {"train": 8, "val": 2}
    _folders(tmp_path / "data", layout)
    assert main(["train", *ARGS, f"data.root={tmp_path / 'data'}", *choice,
                 f"output.dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would select on the test set" in err[0]
    assert not (tmp_path / "run").exists()
