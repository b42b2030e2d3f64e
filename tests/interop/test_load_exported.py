"""`gpaco export` files load into the plain network that `gpaco.load_exported` /
`gpaco.models.create_network` build, for every backbone family, with the trained model's logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gpaco
from gpaco.cli import main
from gpaco.errors import UserError
from gpaco.models import create_backbone, create_network

# One optimiser step of a gpaco run on the embedded data, then the usual final evaluation.
ONE_STEP = ["epochs=1", "train.batch_size=16", "train.max_steps_per_epoch=1",
            "train.eval_batch_size=1000", "output.progress=none", "output.tensorboard=false",
            "output.plots=false", "train.device=cpu", "train.threads=1"]


def _images(size: int = 28) -> torch.Tensor:
    return torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(5))


def _trained_and_exported(tmp_path: Path, *overrides: str) -> tuple[Path, Path]:
    run = tmp_path / "run"
    assert main(["train", *ONE_STEP, f"output.dir={run}", *overrides]) == 0
    out = tmp_path / "plain.pth"
    assert main(["export", str(run / "last.pt"), "--out", str(out)]) == 0
    return run / "last.pt", out


@pytest.mark.parametrize("overrides", [
    ["model.backbone=resnet8"],                                    # gpaco's CIFAR ResNet: fc
    ["model.backbone=resnet18", "method=gpaco"],                   # torchvision: fc
    ["model.backbone=timm:resnet10t", "method=ce"],                # timm: fc
    ["model.backbone=vit_micro_patch4_32", "model.backbone_kwargs={img_size: 28}",
     "data.image_size=28", "method=ce"],                           # timm ViT: head
], ids=["cifar-resnet8", "torchvision-resnet18", "timm-resnet10t", "timm-vit"])
def test_export_loads_with_the_trained_logits(tmp_path: Path, overrides: list[str]) -> None:
    if any("timm" in o or "vit" in o for o in overrides):
        pytest.importorskip("timm")
    ckpt, exported = _trained_and_exported(tmp_path, *overrides)
    trained = gpaco.load_model(str(ckpt)).model
    net = gpaco.load_exported(str(exported))
    assert not net.training
    x = _images()
    with torch.no_grad():
        expected = trained(x)
        assert expected.shape == (4, 10)
        torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-6)
    # The documented constructor and a strict load give the same network.
    name = overrides[0].split("=", 1)[1]
    kwargs = {"img_size": 28} if "vit" in name else {}
    plain = create_network(name, 10, **kwargs).eval()
    plain.load_state_dict(torch.load(exported, weights_only=True), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), expected, rtol=0, atol=1e-6)


def test_export_records_the_backbone_and_checks_what_it_is_given(tmp_path: Path) -> None:
    _, exported = _trained_and_exported(tmp_path, "model.backbone=resnet8")
    assert isinstance(gpaco.load_exported(str(exported), "resnet8", num_classes=10),
                      torch.nn.Module)
    with pytest.raises(UserError, match="has 10 classes, not num_classes=7"):
        gpaco.load_exported(str(exported), num_classes=7)
    with pytest.raises(UserError, match="exported from backbone 'resnet8', not 'resnet20'"):
        gpaco.load_exported(str(exported), "resnet20")
    features = tmp_path / "features.pth"
    assert main(["export", str(tmp_path / "run/last.pt"), "--out", str(features),
                 "--no-classifier"]) == 0
    backbone = gpaco.load_exported(str(features))  # no classifier: the pooled features
    with torch.no_grad():
        assert backbone(_images()).shape == (4, 64)
    with pytest.raises(UserError, match="has no classifier"):
        gpaco.load_exported(str(features), num_classes=10)


def test_plain_state_dicts_without_a_record_need_the_backbone(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    path = tmp_path / "tv.pth"
    reference = torchvision.models.resnet18(num_classes=3).eval()
    torch.save(reference.state_dict(), path)
    with pytest.raises(UserError, match="does not record its backbone; name it"):
        gpaco.load_exported(str(path))
    with pytest.raises(UserError, match="does not fit backbone 'resnet34': missing"):
        gpaco.load_exported(str(path), "resnet34")
    net = gpaco.load_exported(str(path), "resnet18", num_classes=3)
    with torch.no_grad():
        assert torch.equal(net(_images()), reference(_images()))
    torch.save({"model": reference.state_dict()}, path)
    with pytest.raises(UserError, match="not a plain state dict"):
        gpaco.load_exported(str(path), "resnet18")


def test_create_backbone_points_to_create_network() -> None:
    with pytest.raises(UserError, match="create_network"):
        create_backbone("resnet8", num_classes=10)
    net = create_network("resnet8", 10)
    assert list(net.state_dict())[-2:] == ["fc.weight", "fc.bias"]
    assert net(_images()).shape == (4, 10)
    with pytest.raises(UserError, match="positive"):
        create_network("resnet8", 0)


def test_timm_classifier_under_a_nested_name() -> None:
    pytest.importorskip("timm")
    net = create_network("timm:convnext_atto", 5)
    assert "head.fc.weight" in net.state_dict() and net(_images(32)).shape == (4, 5)
