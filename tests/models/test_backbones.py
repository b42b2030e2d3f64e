import pytest
import torch

from gpaco.errors import UserError
from gpaco.models import create_backbone, list_backbones, projection_head
from gpaco.models.resnet_cifar import ResNetCifar

FEATURE_DIMS = {
    "resnet8": 64, "resnet14": 64, "resnet20": 64, "resnet32": 64, "resnet44": 64, "resnet56": 64, "resnet110": 64,
    "resnet18_cifar": 512, "resnet50_cifar": 2048,
    "resnet50": 2048, "resnet101": 2048, "resnet152": 2048,
    "resnext50_32x4d": 2048, "resnext101_32x4d": 2048,
    "vit_micro_patch4_32": 32,  # timm's ViT code at a 32 px input (8x8 grid of 4 px patches)
}


def test_every_registered_name_is_covered() -> None:
    assert set(list_backbones()) == set(FEATURE_DIMS)


@pytest.mark.parametrize("name", sorted(FEATURE_DIMS))
@torch.no_grad()
def test_backbone_gives_pooled_feature(name: str) -> None:
    net = create_backbone(name).eval()
    assert net.feature_dim == FEATURE_DIMS[name]
    side = 32 if name.startswith("vit_") else 16
    out = net(torch.randn(2, 3, side, side))
    assert out.shape == (2, FEATURE_DIMS[name])


def test_resnet32_layout() -> None:
    net = create_backbone("resnet32")
    assert isinstance(net, ResNetCifar)
    assert [len(s) for s in (net.layer1, net.layer2, net.layer3)] == [5, 5, 5]
    # Option-A shortcuts have no parameters: ~0.46M params in total, no 1x1 convs.
    assert not any(m.kernel_size == (1, 1) for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert 0.45e6 < sum(p.numel() for p in net.parameters()) < 0.47e6


def test_resnext101_32x4d_is_grouped_width_4() -> None:
    net = create_backbone("resnext101_32x4d")
    conv2 = net.layer1[0].conv2
    assert conv2.groups == 32 and conv2.out_channels == 128  # 64 * 4 / 64 * 32
    assert len(net.layer3) == 23


def test_pretrained_unavailable_raises_user_error() -> None:
    with pytest.raises(UserError):
        create_backbone("resnet32", pretrained=True)
    with pytest.raises(UserError):
        create_backbone("resnext101_32x4d", pretrained=True)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(UserError, match="resnet32"):
        create_backbone("no_such_net_xyz")
    with pytest.raises(UserError):
        create_backbone("timm:no_such_net_xyz")


@torch.no_grad()
def test_timm_backbone() -> None:
    pytest.importorskip("timm")
    for name in ("timm:resnet18", "resnet18"):
        net = create_backbone(name).eval()
        assert net.feature_dim == 512
        assert net(torch.randn(2, 3, 16, 16)).shape == (2, 512)


@pytest.mark.parametrize(
    ("kind", "types"),
    [
        ("bn", ["Linear", "BatchNorm1d", "ReLU", "Linear"]),
        ("nobn", ["Linear", "ReLU", "Linear", "ReLU", "Linear"]),
        ("gelu", ["Linear", "GELU", "Linear", "GELU", "Linear"]),
    ],
)
def test_projection_heads(kind: str, types: list[str]) -> None:
    head = projection_head(kind, 16, 4)
    assert [type(m).__name__ for m in head] == types
    assert head[0].in_features == 16 and head[0].out_features == 16
    assert head(torch.randn(3, 16)).shape == (3, 4)


def test_unknown_head_kind() -> None:
    with pytest.raises(UserError, match="nobn"):
        projection_head("mlp", 4, 4)


def test_pretrained_weights_that_cannot_be_fetched_are_a_user_error(monkeypatch) -> None:
    import urllib.error

    import torchvision

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(UserError, match="cannot load pretrained weights for 'resnet50'"):
        create_backbone("resnet50", pretrained=True)
