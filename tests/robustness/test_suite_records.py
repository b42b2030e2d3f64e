"""Robustness results are never replaced by a worse, empty or unasked-for evaluation, and an
unreadable image or folder is one line (issue 22, classes 1-3)."""

from __future__ import annotations

import json
import os

import pytest

from gpaco.cli import main
from gpaco.tasks.classification.robustness import imagenet_r_wnids, imagenet_wnids

from _robustness_fakes import write_class_folders, write_jpeg
from test_cli_suite import _checkpoint

WNIDS = list(imagenet_wnids())


def _eval(ck, suite, root, *extra):
    return main(["eval", "--checkpoint", str(ck), "--suite", suite, "--data-root", str(root),
                 "--workers", "0", *extra])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gpaco: error: "), err
    return err


def test_zero_images_is_an_error_and_keeps_earlier_results(tmp_path, capsys):
    ck = _checkpoint(tmp_path)
    good = tmp_path / "c"
    for s in (1, 2):
        write_jpeg(good / "fog" / str(s) / WNIDS[3] / "0.JPEG", 3)
    out = ck.parent / "robustness"
    assert _eval(ck, "imagenet-c", good, "--corruptions", "fog", "--partial") == 0
    before = (out / "imagenet-c.json").read_bytes()
    capsys.readouterr()
    # an ImageNet-R folder given as ImageNet-C, and a corruption whose folder does not exist
    r = tmp_path / "r"
    write_class_folders(r, list(imagenet_r_wnids())[:2], [1, 2])
    for args in ([r, "--partial", "--overwrite"],
                 [good, "--corruptions", "snow", "--partial", "--overwrite"]):
        assert _eval(ck, "imagenet-c", *args) == 2
        assert "none of the requested corruption folders" in _one_line(capsys)
    assert (out / "imagenet-c.json").read_bytes() == before


def test_earlier_results_are_replaced_only_with_overwrite(tmp_path, capsys):
    ck = _checkpoint(tmp_path)
    r = tmp_path / "r"
    write_class_folders(r, list(imagenet_r_wnids()), [WNIDS.index(w) for w in imagenet_r_wnids()])
    assert _eval(ck, "imagenet-r", r) == 0
    saved = ck.parent / "robustness" / "imagenet-r.json"
    before = saved.read_bytes()
    capsys.readouterr()
    assert _eval(ck, "imagenet-r", r) == 2
    assert "--overwrite" in _one_line(capsys) and saved.read_bytes() == before
    assert _eval(ck, "imagenet-r", r, "--overwrite") == 0
    assert json.loads(saved.read_text())["images"] == 200
    assert oct(saved.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_unwritable_out_is_refused_before_the_evaluation(tmp_path, capsys, monkeypatch):
    import gpaco.tasks.classification.robustness.evaluate as E

    ck = _checkpoint(tmp_path)
    r = tmp_path / "r"
    write_class_folders(r, list(imagenet_r_wnids()), [WNIDS.index(w) for w in imagenet_r_wnids()])
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(E, "_evaluate_part", lambda *a: pytest.fail("evaluated first"))
    assert _eval(ck, "imagenet-r", r, "--out", str(blocker / "res")) == 2
    assert "cannot write the results folder" in _one_line(capsys)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_an_unreadable_image_is_one_line_or_skipped(tmp_path, capsys, workers):
    ck = _checkpoint(tmp_path)
    r = tmp_path / "r"
    wnids = list(imagenet_r_wnids())
    write_class_folders(r, wnids, [WNIDS.index(w) for w in wnids])
    broken = r / wnids[5] / "broken.JPEG"
    broken.write_bytes(b"not an image")
    args = ["eval", "--checkpoint", str(ck), "--suite", "imagenet-r", "--data-root", str(r),
            "--workers", workers]
    assert main(args) == 2
    line = _one_line(capsys)
    assert "broken.JPEG" in line and "--on-bad-image skip" in line
    assert main(args + ["--on-bad-image", "skip"]) == 0
    saved = json.loads((ck.parent / "robustness" / "imagenet-r.json").read_text())
    assert saved["images"] == 200 and not saved["complete"]
    assert any("broken.JPEG" in n for n in saved["not_evaluated"])
