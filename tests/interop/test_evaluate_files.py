"""Evaluating authors' files and ensembles of files on a run's split; saved test logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _authors_layouts import pooled_logits, r32_file, val_folder
from gpaco.tasks.classification.evaluate_files import evaluate_files, labels_path
from gpaco.errors import UserError
from gpaco.tasks.classification.metrics import evaluate_logits


@pytest.fixture
def image_folder(tmp_path: Path) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """root/val/<class>/<image>: 3 classes x 2 images; returns overrides, images, labels."""
    files, x = val_folder(tmp_path / "data")
    overrides = ["data.dataset=image_folder", f"data.root={tmp_path / 'data'}"]
    return overrides, x, torch.tensor([0, 0, 1, 1, 2, 2])


def test_an_authors_file_on_a_split(tmp_path: Path, image_folder) -> None:
    overrides, x, labels = image_folder
    src, wrapper = r32_file(tmp_path, "paco", 3)
    out = tmp_path / "test_logits.npy"
    result = evaluate_files([src], overrides=overrides, device="cpu", logits_npy=out)
    with torch.no_grad():
        expected = pooled_logits(wrapper.encoder_q, wrapper.linear, x)
    assert np.array_equal(np.load(out), expected.numpy())
    assert np.load(labels_path(out)).tolist() == labels.tolist()
    assert result.top1 == evaluate_logits(expected, labels, [2, 2, 2]).top1
    assert result.num_samples == 6


def test_an_ensemble_of_files_on_a_split(tmp_path: Path, image_folder) -> None:
    overrides, x, _ = image_folder
    files = [r32_file(tmp_path, "gpaco", 3, seed=s) for s in (1, 4)]
    out = tmp_path / "ens.npy"
    evaluate_files([f for f, _ in files], overrides=overrides, device="cpu", logits_npy=out)
    with torch.no_grad():
        first, second = (pooled_logits(w.encoder_q, w.linear, x) for _, w in files)
    assert np.array_equal(np.load(out), (first + second).numpy())


def test_bad_requests(tmp_path: Path, image_folder) -> None:
    overrides, _, _ = image_folder
    src, _ = r32_file(tmp_path, "gpaco", 3)
    with pytest.raises(UserError, match="split must be test or val"):
        evaluate_files([src], split="train", overrides=overrides, device="cpu")
    with pytest.raises(UserError, match="no validation split"):
        evaluate_files([src], split="val", overrides=overrides, device="cpu")
    with pytest.raises(UserError, match="at least one checkpoint"):
        evaluate_files([])
