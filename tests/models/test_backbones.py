import pytest
import torch
import torchvision

from gpaco.errors import UserError
from gpaco.models import create_backbone, list_backbones, projection_head
from gpaco.models.resnet_cifar import ResNetCifar

FEATURE_DIMS = {
    "resnet8": 64, "resnet14": 64, "resnet20": 64, "resnet32": 64, "resnet44": 64, "resnet56": 64, "resnet110": 64,
    "resnet18_cifar": 512, "resnet50_cifar": 2048,
    "resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "resnet152": 2048,
    "resnet200": 2048, "resnext50_32x4d": 2048, "resnext101_32x4d": 2048,
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


def test_resnet200_is_the_authors_bottleneck_3_24_36_3() -> None:
    net = create_backbone("resnet200")
    assert [len(s) for s in (net.layer1, net.layer2, net.layer3, net.layer4)] == [3, 24, 36, 3]
    assert type(net.layer1[0]).__name__ == "Bottleneck" and net.layer1[0].conv2.groups == 1
    # 64.7M parameters with its 1000-class fc, which the backbone drops (2048 x 1000 + 1000).
    assert sum(p.numel() for p in net.parameters()) == 64_673_832 - 2_049_000


def test_weights_unavailable_raise_user_error() -> None:
    with pytest.raises(UserError, match="no released weights"):
        create_backbone("resnet32", weights="IMAGENET1K_V1")
    for name in ("resnext101_32x4d", "resnet200"):
        with pytest.raises(UserError, match="model.pretrained=<local file>"):
            create_backbone(name, weights="IMAGENET1K_V1")


def test_weights_are_named_never_a_moving_alias() -> None:
    with pytest.raises(UserError, match="moving alias.*IMAGENET1K_V1, IMAGENET1K_V2"):
        create_backbone("resnet152", weights="DEFAULT")
    with pytest.raises(UserError, match="no torchvision weights 'IMAGENET22K'.*IMAGENET1K_V1"):
        create_backbone("resnet152", weights="IMAGENET22K")


def test_places_weights_name_resolves_to_the_authors_file() -> None:
    from gpaco.models.backbones import torchvision_weights

    # The authors' Places-LT start: pretrained_models/resnet152-394f9c45.pth (78.3 % top-1).
    for name in ("IMAGENET1K_V1", "ResNet152_Weights.IMAGENET1K_V1"):
        weights = torchvision_weights("resnet152", name)
        assert weights.url.endswith("/resnet152-394f9c45.pth")
        assert weights.meta["_metrics"]["ImageNet-1K"]["acc@1"] == pytest.approx(78.312)


@torch.no_grad()
def test_named_weights_load_from_torch_hubs_cache(tmp_path, monkeypatch) -> None:
    """Offline, a named weights file placed in torch.hub's cache is what the backbone gets."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = torchvision.models.resnet18()
    for p in reference.parameters():
        p.normal_()
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / "resnet18-f37072fd.pth")
    net = create_backbone("resnet18", weights="IMAGENET1K_V1")
    torch.testing.assert_close(net.conv1.weight, reference.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(net.layer4[1].bn2.bias, reference.layer4[1].bn2.bias, rtol=0, atol=0)


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

    monkeypatch.setenv("TORCH_HOME", "/nonexistent-gpaco-test")
    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(UserError, match="cannot load pretrained weights for 'resnet50'.*place the "
                                        "file at /nonexistent-gpaco-test/hub/checkpoints/"
                                        "resnet50-0676ba61.pth") as err:
        create_backbone("resnet50", weights="IMAGENET1K_V1")
    assert "\n" not in str(err.value)
