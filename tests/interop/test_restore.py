"""Models from files (gpaco's or the authors'), ensembles of files, plain exports of files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import gpaco

from _authors_layouts import pooled_logits, r32_file
from gpaco.weights.load import load_into
from gpaco.tasks.classification.restore import ensemble_from_files, export_file, load_model
from gpaco.errors import UserError
from gpaco.models import Classifier, GPaCoModel, PaCoModel, create_backbone


def _x() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(9))


def test_load_model_reads_both_kinds_of_file(
        tmp_path: Path, make_gpaco_checkpoint: Callable[..., Path]) -> None:
    authors, wrapper = r32_file(tmp_path, "paco", 3)
    loaded = load_model(authors)
    assert loaded.classes is None and loaded.num_classes == 3 and "dropped queue" in loaded.note
    assert not loaded.model.training
    with torch.no_grad():
        assert torch.equal(loaded.model(_x()), pooled_logits(wrapper.encoder_q, wrapper.linear,
                                                             _x()))
    ours = load_model(make_gpaco_checkpoint(1, classes=["cat", "dog", "eel"]))
    assert ours.classes == ["cat", "dog", "eel"] and ours.note is None
    assert load_model(make_gpaco_checkpoint(2)).classes is None  # "0", "1", "2" say nothing


def test_ensemble_of_files_sums_their_logits(
        tmp_path: Path, make_gpaco_checkpoint: Callable[..., Path]) -> None:
    paths = [r32_file(tmp_path, "gpaco", 3, seed=s)[0] for s in (1, 5)]
    paths.append(make_gpaco_checkpoint(3))  # a gpaco run beside two authors files
    ensemble = ensemble_from_files(paths)
    members = [load_model(p).model for p in paths]
    with torch.no_grad():
        assert torch.equal(ensemble.model(_x()),
                           members[0](_x()) + members[1](_x()) + members[2](_x()))


def test_ensemble_of_files_refuses_mismatches(
        tmp_path: Path, make_gpaco_checkpoint: Callable[..., Path]) -> None:
    three, _ = r32_file(tmp_path, "gpaco", 3)
    four, _ = r32_file(tmp_path, "gpaco", 4, seed=7)
    with pytest.raises(UserError, match="different class counts"):
        ensemble_from_files([three, four])
    with pytest.raises(UserError, match="member 1 .* expects cifar_test at 64 px.*member 0 "
                                        "cifar_test at 32 px"):
        ensemble_from_files([three, make_gpaco_checkpoint(1, "data.image_size=64")])
    with pytest.raises(UserError, match="labels its classes differently"):
        ensemble_from_files([make_gpaco_checkpoint(1, classes=["a", "b"]),
                             make_gpaco_checkpoint(2, classes=["b", "a"])])


def test_export_file_of_an_authors_file_loads_into_the_plain_net(tmp_path: Path) -> None:
    src, wrapper = r32_file(tmp_path, "gpaco", 3)
    out = tmp_path / "resnet32_plain.pth"
    line = export_file(src, out)
    assert "classifier as fc.*" in line
    plain = gpaco.load_exported(str(out))  # resnet32 + fc, as the file records
    with torch.no_grad():
        assert torch.equal(plain(_x()),
                           pooled_logits(wrapper.encoder_q, wrapper.linear, _x()))


def test_load_pretrained_for_fine_tuning_on_other_classes(
        tmp_path: Path, make_gpaco_checkpoint: Callable[..., Path]) -> None:
    src, wrapper = r32_file(tmp_path, "gpaco", 3)
    model = PaCoModel(create_backbone("resnet32"), 5, dim=32, queue_size=8, head="nobn")
    fresh = model.classifier.weight.clone()
    report = str(load_into(model, src))
    assert "classifier (shaped unlike the model's)" in report and "queue: 3 tensors" in report
    assert torch.equal(model.classifier.weight, fresh)  # 5 new classes: the fresh classifier
    model.eval()
    with torch.no_grad():
        reference = pooled_logits(wrapper.encoder_q, nn.Identity(), _x())  # the pooled feature
        assert torch.equal(model.backbone(_x()), reference)
        assert torch.equal(model.key_backbone(_x()), model.backbone(_x()))
    ours = make_gpaco_checkpoint(2)  # a gpaco run: resnet8, dim 8, 3 classes, a full queue
    same = GPaCoModel(create_backbone("resnet8"), 3, dim=8, queue_size=8)
    line = str(load_into(same, ours))
    assert "dropped queue: 4 tensors" in line and len(same.queue) == 0
    assert torch.equal(same.classifier.weight,
                       torch.load(ours, weights_only=True)["model"]["classifier.weight"])
    with pytest.raises(UserError, match=r"the file's backbone \(arch resnet8\) does not fit"):
        load_into(Classifier(create_backbone("resnet20"), 3), ours)
