"""`predict`: CSV of top-k classes for image files and folders, logits saved as .npy."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gpaco.data.transforms import build_transform
from gpaco.tasks.classification.restore import load_model
from gpaco.errors import UserError
from gpaco.tasks.classification.predict import list_images, predict_files


def _image(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (value, 200 - value, value // 3)).save(path)
    return path


def _hand_logits(checkpoints: list[Path], files: list[Path]) -> torch.Tensor:
    transform = build_transform("cifar_test", image_size=32)
    x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    with torch.no_grad():
        logits = [load_model(c).model(x) for c in checkpoints]
    return logits[0] if len(logits) == 1 else logits[0] + logits[1]


@pytest.mark.parametrize("members", [1, 2], ids=["single", "ensemble"])
def test_predictions_csv_and_logits(tmp_path: Path, make_gpaco_checkpoint: Callable[..., Path],
                                    members: int) -> None:
    names = ["ant", "bee", "cow", "doe"]
    checkpoints = [make_gpaco_checkpoint(s, classes=names) for s in range(1, members + 1)]
    loose = _image(tmp_path / "one.png", 10)
    for i, v in enumerate((40, 90, 160)):
        _image(tmp_path / "folder" / f"sub{i % 2}" / f"{i}.jpg", v)
    (tmp_path / "folder" / "notes.txt").write_text("not an image")
    out, npy = tmp_path / "pred.csv", tmp_path / "pred.npy"
    n = predict_files(checkpoints, [loose, tmp_path / "folder"], out, k=2, logits_npy=npy,
                      device="cpu", batch_size=3)
    files = [loose] + list_images([tmp_path / "folder"])
    assert n == 4 and [f.name for f in files] == ["one.png", "0.jpg", "2.jpg", "1.jpg"]
    saved = torch.from_numpy(np.load(npy))
    # batches of 3 + 1 against one batch of 4: the same values up to summation order
    torch.testing.assert_close(saved, _hand_logits(checkpoints, files), rtol=1e-5, atol=1e-5)
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["file", "class_1", "name_1", "prob_1", "class_2", "name_2", "prob_2"]
    probs, top = saved.softmax(1).topk(2, dim=1)
    for row, f, p, c in zip(rows[1:], files, probs.tolist(), top.tolist()):
        assert row[0] == str(f)
        assert [int(row[1]), row[2], int(row[4]), row[5]] == [c[0], names[c[0]], c[1], names[c[1]]]
        assert float(row[3]) == pytest.approx(p[0], abs=1e-6)
        assert float(row[3]) >= float(row[6])


def test_unnamed_classes_leave_the_name_empty(tmp_path: Path,
                                              make_gpaco_checkpoint: Callable[..., Path]) -> None:
    out = tmp_path / "p.csv"
    predict_files([make_gpaco_checkpoint(1)], [_image(tmp_path / "a.png", 3)], out, k=9,
                  device="cpu")
    rows = list(csv.reader(out.open()))
    assert len(rows[0]) == 1 + 3 * 3  # k is capped at the 3 classes
    assert rows[1][2] == rows[1][5] == ""


def test_bad_inputs(tmp_path: Path, make_gpaco_checkpoint: Callable[..., Path]) -> None:
    with pytest.raises(UserError, match="no such file or folder"):
        list_images([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images under"):
        list_images([tmp_path / "empty"])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image"):
        predict_files([make_gpaco_checkpoint(1)], [broken], tmp_path / "p.csv", device="cpu")
    with pytest.raises(UserError, match="at least one checkpoint"):
        predict_files([], [broken], tmp_path / "p.csv")
