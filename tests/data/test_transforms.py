"""CPU pipelines of gpaco.data.transforms: shapes, names, Cutout statistics, two views."""
from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from gpaco.data import transforms as T
from gpaco.errors import UserError


# many tiny ops: intra-op threads only add overhead (tests/data/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def _pil(size: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.mark.parametrize("name", T.CIFAR_NAMES)
@pytest.mark.parametrize("size", [32, 28])
def test_cifar_names_shape_dtype(name: str, size: int) -> None:
    out = T.build_transform(name, image_size=size)(_pil(size))
    assert out.shape == (3, size, size) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", T.IMAGENET_NAMES)
def test_imagenet_names_shape(name: str) -> None:
    out = T.build_transform(name, image_size=64, randaug_n=2, randaug_m=10)(_pil(80))
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32


def test_imagenet_default_size_is_224() -> None:
    assert T.build_transform("imagenet_test")(_pil(300)).shape == (3, 224, 224)


def test_cifar_test_is_plain_normalisation() -> None:
    img = _pil()
    out = T.build_transform("cifar_test")(img)
    ref = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    ref = (ref - torch.tensor(T.CIFAR_MEAN).view(3, 1, 1)) / torch.tensor(T.CIFAR_STD).view(3, 1, 1)
    torch.testing.assert_close(out, ref)


def test_custom_mean_std() -> None:
    img = _pil()
    out = T.build_transform("cifar_test", mean=T.FMNIST_MEAN, std=T.FMNIST_STD)(img)
    ref = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(out, (ref - 0.2860) / 0.3530)


def test_imagenet_test_resize_ratio() -> None:
    # int(64 / 0.875) = 73 short side, then a 64 centre crop: a constant image stays constant
    img = Image.new("RGB", (100, 90), (10, 20, 30))
    out = T.build_transform("imagenet_test", image_size=64, mean=(0, 0, 0), std=(1, 1, 1))(img)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([10, 20, 30]) / 255.0)


def test_unknown_name() -> None:
    with pytest.raises(UserError):
        T.build_transform("nope")


def test_seeded_reproducible() -> None:
    t = T.build_transform("cifar_regular")
    img = _pil()
    torch.manual_seed(3)
    a = t(img)
    torch.manual_seed(3)
    b = t(img)
    torch.testing.assert_close(a, b)


def _cutout_expected_area(h: int, size: int) -> float:
    """Exact mean covered fraction of the authors' Cutout (centre uniform, clipped square)."""
    half = size // 2
    ext = [min(c + half, h) - max(c - half, 0) for c in range(h)]
    return (sum(ext) / h) ** 2 / h**2


@pytest.mark.parametrize("h,size", [(32, 16), (28, 14)])
def test_cutout_area_fraction(h: int, size: int) -> None:
    torch.manual_seed(0)
    cut = T.Cutout(size)
    ones = torch.ones(3, h, h)
    frac = torch.stack([(cut(ones) == 0).float().mean() for _ in range(4000)])
    assert abs(frac.mean().item() - _cutout_expected_area(h, size)) < 0.01
    assert frac.max().item() <= size * size / (h * h) + 1e-6
    assert (ones == 1).all()  # input untouched


def test_cutout_hole_is_a_square_on_all_channels() -> None:
    torch.manual_seed(1)
    out = T.Cutout(8)(torch.ones(3, 32, 32))
    zero = out == 0
    assert (zero[0] == zero[1]).all() and (zero[0] == zero[2]).all()
    rows, cols = zero[0].any(1).nonzero(), zero[0].any(0).nonzero()
    assert zero[0].sum() == len(rows) * len(cols)


def test_two_views_and_build_views() -> None:
    img = _pil()
    views = T.build_views(["cifar_regular", "cifar_sim"])
    assert isinstance(views, T.TwoViews)
    a, b = views(img)
    assert a.shape == b.shape == (3, 32, 32)
    assert not torch.equal(a, b)
    single = T.build_views("cifar_test")
    assert torch.is_tensor(single(img))
    with pytest.raises(UserError):
        T.build_views(["cifar_test"] * 3)


def test_randcls_uses_timm_rand_augment() -> None:
    pytest.importorskip("timm")
    from timm.data.auto_augment import RandAugment

    t = T.build_transform("randcls", image_size=64, randaug_n=3, randaug_m=9)
    ra = [op for op in t.transforms if isinstance(op, RandAugment)]
    assert len(ra) == 1 and ra[0].num_layers == 3


def test_randcls_without_timm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm.data.auto_augment", None)  # import now fails
    with pytest.raises(UserError, match="pip install 'gpaco\\[timm\\]'"):
        T.build_transform("randclsstack", image_size=64)


def test_blur_is_the_authors_pil_blur() -> None:
    """Every blurring view blurs as the authors (MoCo's loader): PIL's GaussianBlur(radius=sigma),
    sigma ~ U(0.1, 2), with the paper's probability."""
    from PIL import Image, ImageFilter

    def blurs(t: Any) -> list[T.PILGaussianBlur]:
        return [o for o in t.transforms if isinstance(o, T.PILGaussianBlur)]

    probs = {"cifar_sim": 0.5, "cifar_aug": 0.2, "sim": 0.5, "randclsstack": 0.5}
    for name, p in probs.items():
        (blur,) = blurs(T.build_transform(name))
        assert blur.p == p and blur.sigma == (0.1, 2.0)
    assert not blurs(T.build_transform("randcls")) and not blurs(T.build_transform("cifar_regular"))
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    torch.manual_seed(3)
    r = torch.rand(2)
    torch.manual_seed(3)
    out = T.PILGaussianBlur((0.1, 2.0), p=1.0)(img)
    ref = img.filter(ImageFilter.GaussianBlur(radius=0.1 + 1.9 * float(r[1])))
    assert np.array_equal(np.asarray(out), np.asarray(ref))
    hits = 0
    for seed in range(400):
        torch.manual_seed(seed)
        hits += T.PILGaussianBlur(p=0.5)(img) is not img
    assert 160 < hits < 240


def test_to_normalized_tensor_is_totensor_normalize() -> None:
    from PIL import Image

    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8))
    ref = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                      v2.Normalize(list(T.IMAGENET_MEAN), list(T.IMAGENET_STD))])(img)
    out = T.ToNormalizedTensor(T.IMAGENET_MEAN, T.IMAGENET_STD)(img)
    assert out.shape == (3, 9, 11) and out.is_contiguous()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_cifar_pipelines_accept_images_of_another_size():
    from PIL import Image

    from gpaco.data.transforms import ResizeIfNeeded, build_transform

    small, exact = Image.new("RGB", (20, 24), (9, 9, 9)), Image.new("RGB", (32, 32), (9, 9, 9))
    assert ResizeIfNeeded(32)(exact) is exact  # CIFAR's own images pass untouched
    for name in ("cifar_regular", "cifar_sim", "cifar_test"):
        assert build_transform(name)(small).shape == (3, 32, 32)
