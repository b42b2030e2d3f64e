"""`gpaco predict` through the CLI: never replaces a file it did not write, shows what it
predicted, and can leave unreadable images out (issue 22, classes 2 and 7)."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from gpaco.cli import main


def _image(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (value, 255 - value, 0)).save(path)
    return path


def test_an_existing_csv_is_replaced_only_with_overwrite(tmp_path, make_gpaco_checkpoint,
                                                          capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ck = make_gpaco_checkpoint(1, classes=["cat", "dog", "owl"])
    image = _image(tmp_path / "a.png", 30)
    Path("predictions.csv").write_text("someone's own file\n")
    assert main(["predict", "--checkpoint", str(ck), str(image), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err
    assert Path("predictions.csv").read_text() == "someone's own file\n"
    assert main(["predict", "--checkpoint", str(ck), str(image), "--device", "cpu",
                 "--overwrite"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.reader(open("predictions.csv")))
    # the single file's prediction is printed, not only "wrote ..."
    assert f"{image}: {rows[1][2]} (class {rows[1][1]}) p={float(rows[1][3]):.3f}" in out


def test_a_broken_image_can_be_skipped(tmp_path, make_gpaco_checkpoint, capsys):
    ck = make_gpaco_checkpoint(1)
    folder = tmp_path / "imgs"
    _image(folder / "a.png", 30)
    _image(folder / "b.png", 200)
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "p.csv"
    args = ["predict", "--checkpoint", str(ck), str(folder), "--device", "cpu", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.png" in err and "--on-bad-image skip" in err
    assert main(args + ["--on-bad-image", "skip"]) == 0
    captured = capsys.readouterr()
    assert "skipped unreadable image" in captured.err and "broken.png" in captured.err
    rows = list(csv.reader(out.open()))
    assert [Path(r[0]).name for r in rows[1:]] == ["a.png", "b.png"]
    assert "predictions of 2 images" in captured.out
