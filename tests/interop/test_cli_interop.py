"""The interop commands through `gpaco.cli.main`: convert, eval (files, ensembles, logits),
export, predict, model.pretrained=<file>, and one-line errors for bad files."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from _authors_layouts import pooled_logits, r32_file, val_folder
from gpaco.cli import main
from gpaco.tasks.classification.build import build_model
from gpaco.run import load_config, to_dict
from gpaco.tasks.classification.restore import load_model

C = 3


@pytest.fixture
def images(tmp_path: Path) -> tuple[list[str], list[Path], torch.Tensor]:
    """An image folder (root/val/<class>/<image>, 3 classes x 2); overrides, files, inputs."""
    files, x = val_folder(tmp_path / "data")
    overrides = ["data.dataset=image_folder", f"data.root={tmp_path / 'data'}",
                 "train.device=cpu", "output.progress=none", "data.workers=0"]
    return overrides, files, x


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Runs a command that must fail; returns its one error line."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpaco: error: "), lines
    return lines[0]


def test_convert_then_eval_gives_the_files_logits(tmp_path: Path, images) -> None:
    overrides, _, x = images
    src, wrapper = r32_file(tmp_path, "paco", C)
    out = tmp_path / "gpaco.pt"
    # the recipe's data: a 3-class folder (CIFAR-100 would have 100 classes, refused)
    assert main(["convert", str(src), "--recipe", "cifar100-lt-paco", "--out", str(out),
                 *overrides]) == 0
    logits = tmp_path / "logits.npy"
    assert main(["eval", "--checkpoint", str(out), "--save-logits", str(logits),
                 *overrides]) == 0
    with torch.no_grad():
        expected = pooled_logits(wrapper.encoder_q, wrapper.linear, x)
    assert np.array_equal(np.load(logits), expected.numpy())
    # The authors' file itself, given the recipe, evaluates to the same logits.
    direct = tmp_path / "direct.npy"
    assert main(["eval", "--checkpoint", str(src), "--recipe", "cifar100-lt-paco",
                 "--save-logits", str(direct), *overrides]) == 0
    assert np.array_equal(np.load(direct), expected.numpy())


def test_ensemble_eval_is_the_sum_of_the_members_logits(tmp_path: Path, images) -> None:
    overrides, _, x = images
    files = [r32_file(tmp_path, "gpaco", C, seed=s) for s in (1, 4)]
    out = tmp_path / "ens.npy"
    argv = ["eval", "--save-logits", str(out), *overrides]
    for path, _ in files:
        argv += ["--checkpoint", str(path)]
    assert main(argv) == 0
    with torch.no_grad():
        summed = sum(pooled_logits(w.encoder_q, w.linear, x) for _, w in files)
    assert np.array_equal(np.load(out), summed.numpy())


def test_ensemble_members_with_other_class_counts_are_an_error(tmp_path: Path, images,
                                                                capsys) -> None:
    overrides, _, _ = images
    a, _ = r32_file(tmp_path, "gpaco", C, seed=1)
    b, _ = r32_file(tmp_path, "paco", C + 1, seed=2)
    line = _error(capsys, ["eval", "--checkpoint", str(a), "--checkpoint", str(b), *overrides])
    assert "different class counts" in line


def test_export_loads_into_plain_torchvision(tmp_path: Path, capsys) -> None:
    cfg = load_config(overrides=["model.backbone=resnet18", "method=ce"])
    model = build_model(cfg, C).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    ckpt = tmp_path / "run.pt"
    torch.save({"model": model.state_dict(), "config": to_dict(cfg), "num_classes": C,
                "epoch": 1}, ckpt)
    out = tmp_path / "backbone.pth"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    plain = torchvision.models.resnet18(num_classes=C).eval()
    plain.load_state_dict(torch.load(out, weights_only=True), strict=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(plain(x), model(x), atol=1e-6)
    # ... and starts a gpaco model again through model.pretrained=<the exported file>.
    cfg.model.pretrained = str(out)
    restarted = build_model(cfg, C).eval()
    with torch.no_grad():
        assert torch.equal(restarted(x), model(x))


def test_predict_writes_the_topk_csv(tmp_path: Path, images, capsys) -> None:
    _, files, x = images
    src, wrapper = r32_file(tmp_path, "gpaco", 10)  # the recipe's dataset has 10 classes
    out = tmp_path / "preds.csv"
    assert main(["predict", "--checkpoint", str(src), "--recipe", "cifar10-lt-gpaco",
                 str(tmp_path / "data"), "--out", str(out), "--topk", "2"]) == 0
    rows = list(csv.reader(out.open()))
    assert len(rows) == 1 + len(files)
    with torch.no_grad():
        probs = pooled_logits(wrapper.encoder_q, wrapper.linear, x).softmax(1)
    by_file = {Path(r[0]).resolve(): r for r in rows[1:]}
    for f, p in zip(files, probs):
        row = by_file[f.resolve()]
        assert int(row[1]) == int(p.argmax())
        assert float(row[3]) == pytest.approx(float(p.max()), abs=1e-5)


def test_pretrained_file_starts_the_model(tmp_path: Path) -> None:
    src, wrapper = r32_file(tmp_path, "gpaco", 10)  # the recipe's dataset has 10 classes
    cfg = load_config("cifar10-lt-gpaco", overrides=[f"model.pretrained={src}"])
    model = build_model(cfg, 10).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), pooled_logits(wrapper.encoder_q, wrapper.linear, x))
    assert torch.equal(model.classifier.weight, load_model(src, recipe=cfg).model.classifier.weight)


class _Runs:
    """Pickled as a global call: weights_only loading must refuse it, never call it."""

    def __reduce__(self):  # noqa: D105
        return (print, ("pickled code ran",))


def test_bad_files_are_one_line_errors(tmp_path: Path, images, capsys) -> None:
    overrides, _, _ = images
    src, _ = r32_file(tmp_path, "paco", C)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(src.read_bytes()[:1000])
    unrelated = tmp_path / "unrelated.pkl"
    unrelated.write_bytes(pickle.dumps({"hello": [1, 2, 3]}))
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": _Runs()}, evil)
    recipe = ["--recipe", "cifar100-lt-paco"]
    for path in (truncated, unrelated, evil, tmp_path / "missing.pth"):
        _error(capsys, ["eval", "--checkpoint", str(path), *recipe, *overrides])
        _error(capsys, ["convert", str(path), *recipe, "--out", str(tmp_path / "o.pt")])
    assert "pickled code ran" not in capsys.readouterr().out
    line = _error(capsys, ["convert", str(src), "--recipe", "imagenet-lt-paco-r50",
                           "--out", str(tmp_path / "o.pt")])
    assert "resnet" in line
    line = _error(capsys, ["eval", "--checkpoint", str(src), "--recipe", "cifar100-lt-paco",
                           "data.dataset=split_file", "data.num_classes=100", "data.root=x",
                           "data.test_split=y"])
    assert "3-class" in line and "100" in line
    assert "--recipe" in _error(capsys, ["eval", "--checkpoint", str(src), *overrides])
    assert not (tmp_path / "o.pt").exists()


def test_resuming_a_converted_file_points_to_pretrained(tmp_path: Path) -> None:
    from gpaco.train.trainer import Run
    from gpaco.errors import UserError

    src, _ = r32_file(tmp_path, "gpaco", C)
    out = tmp_path / "gpaco.pt"
    assert main(["convert", str(src), "--out", str(out)]) == 0
    with pytest.raises(UserError, match="model.pretrained="):
        Run.load(object.__new__(Run), torch.load(out, weights_only=True))
