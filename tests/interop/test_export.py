"""Exported backbones load into the plain torchvision / timm networks and give the same logits."""

from __future__ import annotations

import pytest
import torch
import torchvision

from _authors_layouts import randomize
from gpaco.errors import UserError
from gpaco.models import (Classifier, GPaCoModel, PaCoModel, convert_to_ghost_bn, create_backbone,
                          create_network)
from gpaco.weights.export import export_state_dict

C = 7


def _x(size: int = 32) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))


class _FakeDDP(torch.nn.Module):
    """DDP's shape: the model under `.module`."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module


class _FakeCompiled(torch.nn.Module):
    """torch.compile's OptimizedModule shape: the model under `._orig_mod`."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self._orig_mod = module


def test_resnet50_export_loads_into_torchvision() -> None:
    model = randomize(PaCoModel(create_backbone("resnet50"), C, dim=16, queue_size=8), 1).eval()
    state = export_state_dict(model)
    assert "fc.weight" in state and not any(k.startswith(("head.", "key_")) for k in state)
    plain = torchvision.models.resnet50(num_classes=C)
    plain.load_state_dict(state)  # strict
    plain.eval()
    with torch.no_grad():
        assert torch.equal(plain(_x()), model(_x()))
    features = export_state_dict(model, with_classifier=False)
    plain.fc = torch.nn.Identity()
    plain.load_state_dict(features)
    with torch.no_grad():
        assert torch.equal(plain(_x()), model.backbone(_x()))


def test_cifar_resnet32_export_uses_the_authors_fc_name() -> None:
    model = randomize(GPaCoModel(create_backbone("resnet32"), C, dim=8, queue_size=4), 2).eval()
    state = export_state_dict(_FakeDDP(model))
    plain = create_network("resnet32", C)  # resnet_cifar.py with its fc slot filled
    plain.load_state_dict(state)
    plain.eval()
    with torch.no_grad():
        assert torch.equal(plain(_x()), model(_x()))


def test_timm_vit_export_loads_into_timm() -> None:
    timm = pytest.importorskip("timm")
    spec = dict(img_size=32, patch_size=8, depth=2, global_pool="avg")
    model = Classifier(create_backbone("timm:vit_tiny_patch16_224", **spec), C)
    randomize(model, 3).eval()
    state = export_state_dict(_FakeDDP(_FakeCompiled(model)))
    assert "head.weight" in state
    plain = timm.create_model("vit_tiny_patch16_224", num_classes=C, **spec)
    plain.load_state_dict(state)
    plain.eval()
    with torch.no_grad():
        assert torch.equal(plain(_x()), model(_x()))


def test_refusals() -> None:
    normed = Classifier(create_backbone("resnet32"), C, normalize_feature=True)
    with pytest.raises(UserError, match="L2-normalised"):
        export_state_dict(normed)
    assert "fc.weight" not in export_state_dict(normed, with_classifier=False)
    with pytest.raises(UserError, match="not a gpaco wrapper"):
        export_state_dict(torch.nn.Linear(2, 2))


def test_ghost_batch_norm_exports_as_plain_batch_norm() -> None:
    model = GPaCoModel(create_backbone("resnet32"), C, dim=8, queue_size=4)
    model = randomize(convert_to_ghost_bn(model, 2), 4).eval()
    plain = create_network("resnet32", C)
    plain.load_state_dict(export_state_dict(model))
    plain.eval()
    with torch.no_grad():  # at eval both normalise with the running statistics
        assert torch.equal(plain(_x()), model(_x()))
