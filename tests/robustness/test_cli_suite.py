"""`gpaco eval --checkpoint CK --suite ... --data-root DIR`: a real (tiny, 1000-class) gpaco
checkpoint on generated folders of the exact layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gpaco.cli import main
from gpaco import run as C
from gpaco.tasks.classification.build import build_model
from gpaco.tasks.classification.restore import load_model
from gpaco.tasks.classification.robustness import CORRUPTIONS, evaluate_suite, imagenet_r_wnids, imagenet_wnids

from _robustness_fakes import write_class_folders, write_jpeg

WNIDS = list(imagenet_wnids())


def _checkpoint(folder: Path) -> Path:
    """A ResNet-8 CE model with 1000 classes at 8 px, saved as gpaco saves runs."""
    cfg = C.load_config(overrides=["method=ce", "model.backbone=resnet8", "data.image_size=8",
                                   "views=[cifar_regular]"])
    torch.manual_seed(0)
    model = build_model(cfg, 1000)
    path = folder / "run" / "last.pt"
    path.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": C.to_dict(cfg), "num_classes": 1000,
                "classes": WNIDS, "epoch": 1}, path)
    return path


def _same_as_the_library(ck: Path, suite: str, root: Path, **kw) -> dict:
    """The library's numbers for the model the CLI loads: its input (8 px: Resize 9 +
    CenterCrop 8; the embedded data's mean / std) and bilinear for a ResNet."""
    loaded = load_model(ck)
    d = loaded.config.data
    result = evaluate_suite(loaded.model, suite, root, image_size=8, resize_size=9, mean=d.mean,
                            std=d.std, interpolation="bilinear", progress=False, **kw)
    return result.to_dict()


def test_imagenet_r_and_sketch_through_the_cli(tmp_path, capsys):
    ck = _checkpoint(tmp_path)
    r_wnids = list(imagenet_r_wnids())
    write_class_folders(tmp_path / "data" / "imagenet-r", r_wnids,
                        [WNIDS.index(w) for w in r_wnids])
    write_class_folders(tmp_path / "data" / "sketch", WNIDS, range(1000))
    assert main(["eval", "--checkpoint", str(ck), "--suite", "imagenet-r", "--data-root",
                 str(tmp_path / "data" / "imagenet-r"), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    saved = json.loads((ck.parent / "robustness" / "imagenet-r.json").read_text())
    assert saved["images"] == 200 and saved["complete"]
    expected = _same_as_the_library(ck, "imagenet-r", tmp_path / "data" / "imagenet-r")
    assert saved["summary"] == pytest.approx(expected["summary"])
    assert (ck.parent / "robustness" / "imagenet-r.md").read_text().strip() in out
    assert main(["eval", "--checkpoint", str(ck), "--suite", "imagenet-sketch", "--data-root",
                 str(tmp_path / "data" / "sketch"), "--workers", "0"]) == 0
    saved = json.loads((ck.parent / "robustness" / "imagenet-sketch.json").read_text())
    assert saved["images"] == 1000 and saved["summary"] == pytest.approx(
        _same_as_the_library(ck, "imagenet-sketch", tmp_path / "data" / "sketch")["summary"])
    # --suite all needs the three folders; imagenet-c is missing here
    assert main(["eval", "--checkpoint", str(ck), "--suite", "all", "--data-root",
                 str(tmp_path / "data")]) == 2
    assert "imagenet-c" in capsys.readouterr().err


def test_imagenet_c_partial_through_the_cli(tmp_path, capsys):
    ck = _checkpoint(tmp_path)
    root = tmp_path / "c"
    for s in (1, 2):
        for k in (3, 700):
            write_jpeg(root / "fog" / str(s) / WNIDS[k] / "0.JPEG", k)
    args = ["eval", "--checkpoint", str(ck), "--suite", "imagenet-c", "--data-root", str(root),
            "--corruptions", "fog", "--workers", "0", "--out", str(tmp_path / "res")]
    assert main(args) == 2  # a subset is refused without --partial, in one line
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "partial" in err
    assert main(args + ["--partial", "--protocol", "hendrycks"]) == 0
    saved = json.loads((tmp_path / "res" / "imagenet-c.json").read_text())
    assert not saved["complete"] and saved["protocol"] == "hendrycks"
    assert [p["name"] for p in saved["parts"]] == ["fog/1", "fog/2"]
    assert any("fog/3" in n for n in saved["not_evaluated"])
    assert len([c for c in CORRUPTIONS if any(c in n for n in saved["not_evaluated"])]) == 15


def test_suite_errors_are_one_line(tmp_path, capsys):
    ck = _checkpoint(tmp_path)
    assert main(["eval", "--checkpoint", str(ck), "--suite", "imagenet-r"]) == 2
    assert "--data-root" in capsys.readouterr().err
    cfg = C.load_config(overrides=["method=ce", "model.backbone=resnet8"])
    small = tmp_path / "ten.pt"
    torch.save({"model": build_model(cfg, 10).state_dict(), "config": C.to_dict(cfg),
                "num_classes": 10}, small)
    (tmp_path / "r").mkdir()
    assert main(["eval", "--checkpoint", str(small), "--suite", "imagenet-r", "--data-root",
                 str(tmp_path / "r")]) == 2
    assert "10 classes" in capsys.readouterr().err
