"""The authors' CIFAR AutoAugment on PIL images (gpaco.data.cifar_autoaugment) and its one table."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from gpaco.data import cifar_autoaugment as C
from gpaco.data import transforms as T


def _white(size: int = 32) -> Image.Image:
    return Image.new("RGB", (size, size), (255, 255, 255))


def _noise(size: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_policy_table_is_torchvision_cifar10() -> None:
    tv = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    assert [tuple(p) for p in tv._policies] == list(C.CIFAR10_POLICY)
    assert C.CifarAutoAugment()._policies == list(C.CIFAR10_POLICY)
    used = {name for sp in C.CIFAR10_POLICY for name, _, _ in sp}
    assert used <= set(C.MAGNITUDES)


def test_magnitudes_are_the_authors() -> None:
    bins = np.arange(10)
    np.testing.assert_allclose(C.magnitude_bins("TranslateX"), 150 / 331 * bins / 9)
    np.testing.assert_allclose(C.magnitude_bins("ShearY"), 0.3 * bins / 9)
    np.testing.assert_allclose(C.magnitude_bins("Rotate"), 30 * bins / 9)
    np.testing.assert_allclose(C.magnitude_bins("Solarize"), 256 * (1 - bins / 9))
    assert C.magnitude_bins("Posterize").tolist() == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    assert C.magnitude("Invert", None) == 0.0 and C.magnitude_bins("Equalize") is None
    assert set(C.SIGNED_OPS) == {"ShearX", "ShearY", "TranslateX", "TranslateY", "Color", "Contrast",
                                 "Sharpness", "Brightness"}


@pytest.mark.parametrize("name", ["TranslateX", "TranslateY"])
@pytest.mark.parametrize("size", [32, 28])
def test_translate_on_white_shows_grey_never_black(name: str, size: int) -> None:
    aa = C.CifarAutoAugment()
    for bin_ in range(1, 10):
        for sign in (1, -1):
            m = sign * C.magnitude(name, bin_)
            out = np.asarray(aa.apply_op(_white(size), name, m))
            assert (out == 128).any() and not (out == 0).any(), (bin_, sign)
            # PIL's nearest rounds the float offset (bin 9 at 32 px: 14.5 -> 15 lines; torchvision 14)
            lines = (out[..., 0] == 128).all(0 if name == "TranslateX" else 1).sum()
            assert lines == math.floor(abs(m) * size + 0.5), (bin_, sign)


def test_translate_sign_moves_content_left_for_positive_m() -> None:
    out = np.asarray(C.CifarAutoAugment().apply_op(_white(), "TranslateX", C.magnitude("TranslateX", 9)))
    assert (out[:, -15:] == 128).all() and (out[:, :-15] == 255).all()


@pytest.mark.parametrize("name,matrix", [("ShearX", lambda m: (1, m, 0, 0, 1, 0)),
                                         ("ShearY", lambda m: (1, 0, 0, m, 1, 0))])
def test_shear_is_bicubic_with_grey_fill(name: str, matrix) -> None:
    aa = C.CifarAutoAugment()
    img = _noise()
    for m in (C.magnitude(name, 8), -C.magnitude(name, 7)):
        out = np.asarray(aa.apply_op(img, name, m))
        ref = img.transform(img.size, Image.AFFINE, matrix(m), Image.BICUBIC, fillcolor=(128,) * 3)
        nearest = img.transform(img.size, Image.AFFINE, matrix(m), Image.NEAREST, fillcolor=(128,) * 3)
        np.testing.assert_array_equal(out, np.asarray(ref))
        assert not np.array_equal(out, np.asarray(nearest))
    sheared = np.asarray(aa.apply_op(_white(), name, 0.3))
    assert (sheared == 128).any() and not (sheared == 0).any()


def test_rotate_is_the_authors_rgba_composite() -> None:
    aa = C.CifarAutoAugment()
    img = _noise(seed=1)
    for m in C.magnitude_bins("Rotate"):
        rot = img.convert("RGBA").rotate(m)  # the authors' rotate_with_fill
        ref = Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert(img.mode)
        np.testing.assert_array_equal(np.asarray(aa.apply_op(img, "Rotate", m)), np.asarray(ref))


def test_rotate_has_no_sign_and_other_ops_do(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, set[float]] = {}

    def record(img: Image.Image, name: str, m: float, fill=None) -> Image.Image:
        seen.setdefault(name, set()).add(math.copysign(1.0, m))
        return img

    monkeypatch.setattr(C, "geometric_op", record)
    aa = C.CifarAutoAugment()
    torch.manual_seed(0)
    for _ in range(400):
        aa(_white())
    assert seen["Rotate"] == {1.0}
    assert seen["TranslateY"] == seen["ShearY"] == {1.0, -1.0}


def test_solarize_threshold_runs_from_256() -> None:
    ramp = Image.fromarray(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, 2))
    aa = C.CifarAutoAugment()
    out = np.asarray(aa.apply_op(ramp, "Solarize", C.magnitude("Solarize", 2)))[0, :, 0]
    assert out[199] == 199 and out[200] == 55  # threshold 199.1; torchvision's 198.3 inverts 199
    out = np.asarray(aa.apply_op(ramp, "Solarize", C.magnitude("Solarize", 0)))[0, :, 0]
    assert (out == np.arange(256)).all()  # threshold 256: even 255 stays


def test_pil_only_and_in_the_cifar_regular_view() -> None:
    with pytest.raises(TypeError):
        C.CifarAutoAugment()(torch.zeros(3, 32, 32, dtype=torch.uint8))
    pipeline = T.build_transform("cifar_regular")
    assert any(isinstance(op, C.CifarAutoAugment) for op in pipeline.transforms)
