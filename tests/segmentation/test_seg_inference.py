"""Whole / sliding-window / multi-scale + flip inference and the evaluate loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gpaco.tasks.segmentation.inference import _starts, evaluate, predict, slide_inference, whole_inference


class PointwiseNet(nn.Module):
    """A 1x1 conv: position-independent, so padding, windows and flips must not change it."""

    size_divisor = 8

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0, "input not padded"
        return self.conv(x)


def test_window_starts_follow_mmseg_grid() -> None:
    assert _starts(10, 4, 3) == [0, 3, 6]
    assert _starts(11, 4, 3) == [0, 3, 6, 7]
    assert _starts(3, 4, 3) == [0]


def test_whole_pads_to_divisor_and_slide_equals_whole() -> None:
    model = PointwiseNet().eval()
    x = torch.randn(2, 3, 21, 30)
    with torch.no_grad():
        whole = whole_inference(model, x)
        expected = model.conv(x)
        slide = slide_inference(model, x, crop=(16, 16), stride=(11, 11))
    assert whole.shape == (2, 4, 21, 30)
    torch.testing.assert_close(whole, expected)
    torch.testing.assert_close(slide, expected, rtol=1e-5, atol=1e-6)


def test_flip_and_scales_average_probabilities() -> None:
    model = PointwiseNet().eval()
    x = torch.randn(1, 3, 16, 24)
    probs = model.conv(x).softmax(1).detach()
    flipped = predict(model, x, flip=True)
    torch.testing.assert_close(flipped, probs)
    # A constant image is unchanged by any resize: every scale gives the same probabilities.
    const = torch.ones(1, 3, 16, 24) * torch.randn(1, 3, 1, 1)
    multi = predict(model, const, (32, 48), ratios=(0.5, 1.0, 1.75), flip=True)
    torch.testing.assert_close(multi, model.conv(const).softmax(1).detach().expand(-1, -1, 16, 24)
                               .repeat_interleave(2, -1).repeat_interleave(2, -2))
    # With a test `scale` each ratio resizes to scale x ratio (mmcv rule), then back to out_size.
    scaled = predict(model, const, ratios=(0.75, 1.5), scale=(48, 32), flip=True)
    torch.testing.assert_close(scaled, model.conv(const).softmax(1).detach())
    slid = predict(model, x, mode="slide", crop=(8, 8), stride=(6, 6), ratios=(1.0,))
    torch.testing.assert_close(slid, model.conv(x).detach(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        predict(model, x, mode="slide")


class Oracle(nn.Module):
    """Reads the label from the image's first channel (label / 10): a perfect predictor."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        labels = (x[:, 0] * 10).round().long().clamp(0, self.classes - 1)
        return nn.functional.one_hot(labels, self.classes).permute(0, 3, 1, 2).float() * 10


def test_evaluate_scores_at_mask_size() -> None:
    masks = torch.randint(0, 3, (2, 8, 8))
    images = (masks / 10.0)[:, None].repeat(1, 3, 1, 1)
    noisy = masks.clone()
    noisy[0, 0, 0] = 255
    result, matrix = evaluate(Oracle(3), [(images, noisy)], 3)
    assert result.miou == 1.0 and result.aacc == 1.0
    assert int(matrix.matrix.sum()) == 2 * 64 - 1
    wrong = masks.clone()
    wrong[masks == 2] = 1  # class 2 never labelled, but predicted
    result, _ = evaluate(Oracle(3), [(images, wrong)], 3)
    assert result.iou[2] == 0.0 and result.miou < 1.0
