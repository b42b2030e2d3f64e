"""Joint image/mask transforms and the embedded segmentation demo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from gpaco.data.segmentation import EmbeddedSegmentationLT, eval_transform, train_transform
from gpaco.data.segmentation.transforms import (
    PadTo,
    PhotoMetricDistortion,
    RandomCropCatMax,
    RandomRescale,
    rescaled_size,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(h: int = 40, w: int = 60) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """Image whose red channel is 10 x the label (labels in blocks, some 255)."""
    labels = (torch.arange(h)[:, None] // 10 * 3 + torch.arange(w)[None] // 20) % 6
    labels[:3] = 255
    red = torch.where(labels == 255, 250, labels * 10).to(torch.uint8)
    image = torch.stack([red, torch.full_like(red, 7), torch.full_like(red, 9)])
    return tv_tensors.Image(image), tv_tensors.Mask(labels)


def test_rescaled_size_is_mmcv_rule() -> None:
    assert rescaled_size(1024, 2048, (2048, 512)) == (512, 1024)
    assert rescaled_size(375, 500, (2048, 512)) == (512, 683)
    assert rescaled_size(100, 1000, (2048, 512)) == (205, 2048)


def test_crop_and_flip_move_the_mask_with_the_image() -> None:
    torch.manual_seed(0)
    geometric = v2.Compose([RandomCropCatMax((24, 30)), v2.RandomHorizontalFlip(1.0)])
    for _ in range(5):
        image, mask = geometric(*_pair())
        assert image.shape[-2:] == mask.shape == (24, 30)
        expected = torch.where(mask == 255, 250, mask * 10)
        assert torch.equal(image[0].long(), expected)


def test_rescale_keeps_mask_values_and_aspect() -> None:
    torch.manual_seed(1)
    image, mask = _pair()
    values = set(mask.unique().tolist())
    for _ in range(5):
        out_image, out_mask = RandomRescale((120, 80), (0.5, 2.0))(image, mask)
        assert out_image.shape[-2:] == out_mask.shape
        assert set(out_mask.unique().tolist()) <= values  # nearest: no new labels
        assert abs(out_mask.shape[1] / out_mask.shape[0] - 1.5) < 0.05


def test_cat_max_ratio_prefers_mixed_crops() -> None:
    mask = torch.zeros(64, 64, dtype=torch.int64)
    mask[:24, :24] = 1  # a second class in one corner
    image = tv_tensors.Image(torch.zeros(3, 64, 64, dtype=torch.uint8))
    mask = tv_tensors.Mask(mask)

    def balanced_fraction(ratio: float) -> float:
        """Share of crops in which no class covers 75 % or more."""
        torch.manual_seed(0)
        crop = RandomCropCatMax((24, 24), cat_max_ratio=ratio)
        hits = [crop(image, mask)[1].float().mean().item() for _ in range(60)]
        return sum(0.25 < h < 0.75 for h in hits) / len(hits)

    assert balanced_fraction(0.75) > balanced_fraction(1.0) + 0.3


def test_photometric_changes_image_only() -> None:
    torch.manual_seed(3)
    image, mask = _pair()
    changed = 0
    for _ in range(6):
        out_image, out_mask = PhotoMetricDistortion()(image, mask)
        assert torch.equal(out_mask, mask) and out_image.dtype == torch.uint8
        changed += int(not torch.equal(out_image, image))
    assert changed >= 4


def test_pad_fills_mask_with_ignore_and_image_with_zero() -> None:
    image, mask = _pair(10, 12)
    out_image, out_mask = PadTo((16, 20))(image, mask)
    assert out_mask.shape == (16, 20) and (out_mask[10:] == 255).all() and (out_mask[:, 12:] == 255).all()
    assert (out_image[:, 10:] == 0).all()


def test_train_and_eval_pipelines() -> None:
    torch.manual_seed(0)
    image, mask = _pair(40, 60)
    out_image, out_mask = train_transform((60, 40), (48, 48))(image, mask)
    assert out_image.shape == (3, 48, 48) and out_image.dtype == torch.float32
    assert out_mask.shape == (48, 48) and out_mask.dtype == torch.int64
    assert set(out_mask.unique().tolist()) <= set(range(6)) | {255}
    ev_image, ev_mask = eval_transform((30, 20))(image, mask)
    assert ev_image.shape == (3, 20, 30) and ev_mask.shape == (40, 60)  # mask at full size


def test_demo_is_deterministic_long_tailed_and_labelled() -> None:
    a = EmbeddedSegmentationLT(num_images=64, seed=0)
    b = EmbeddedSegmentationLT(num_images=64, seed=0)
    c = EmbeddedSegmentationLT(num_images=64, seed=1)
    val = EmbeddedSegmentationLT(train=False, num_images=64, seed=0)
    assert np.array_equal(a.data, b.data) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.data, c.data) and not np.array_equal(a.data, val.data)
    assert a.num_classes == 11 and a.classes[0] == "background"
    counts = EmbeddedSegmentationLT(num_images=256).pixel_counts()
    assert counts[1] > 10 * counts[10]  # T-shirt (1000 items) vs ankle boot (10 items)
    assert set(np.unique(a.masks)) <= set(range(11)) | {255}
    image, mask = a[0]
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64) and mask.dtype == torch.int64
    # Item pixels are brighter than the dark background on average.
    brightness = image.float().mean(0)
    assert brightness[mask > 0].mean() > brightness[mask == 0].mean() + 40
