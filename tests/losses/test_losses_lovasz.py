"""Lovasz-softmax against a brute-force float64 loop over the Jaccard loss of prefix sets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gpaco import run as C
from gpaco.losses.lovasz import lovasz_softmax
from gpaco.losses.segmentation import SegmentationLoss


def brute_force(logits: torch.Tensor, labels: torch.Tensor, ignore: int = 255) -> float:
    """For each class present: sort the pixels by error |fg - p_c| (descending); the loss sums
    e_(i) * (Jac(first i wrong) - Jac(first i-1 wrong)), the Jaccard loss of a set M of wrong
    pixels being |M| / |fg united with M|; the mean over the classes present."""
    up = F.interpolate(logits.double(), size=labels.shape[-2:], mode="bilinear",
                       align_corners=False)
    probs = torch.softmax(up, 1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1]).tolist()
    flat = labels.reshape(-1).tolist()
    pixels = [(p, y) for p, y in zip(probs, flat) if y != ignore]
    losses = []
    for c in sorted({y for _, y in pixels}):
        errors = [(abs((1.0 if y == c else 0.0) - p[c]), y == c) for p, y in pixels]
        errors.sort(key=lambda e: -e[0])
        foreground = {i for i, (_, is_fg) in enumerate(errors) if is_fg}

        def jaccard_loss(k: int) -> float:
            wrong = set(range(k))
            return len(wrong) / len(foreground | wrong) if wrong else 0.0

        losses.append(sum(e * (jaccard_loss(i + 1) - jaccard_loss(i))
                          for i, (e, _) in enumerate(errors)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lovasz_softmax_equals_the_brute_force_loop(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 5, 4, 6, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, 4, (2, 8, 12), generator=g)  # class 4 absent
    labels[0, :2] = 255
    got = lovasz_softmax(logits, labels).item()
    assert math.isclose(got, brute_force(logits, labels), rel_tol=1e-12, abs_tol=1e-14)


def test_lovasz_gradient_flows_and_void_only_is_zero() -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    labels = torch.full((1, 4, 4), 255)
    loss = lovasz_softmax(logits, labels)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
    labels[0, 0] = 1
    logits.grad = None
    lovasz_softmax(logits, labels).backward()
    assert logits.grad.abs().sum() > 0


def test_segmentation_loss_adds_the_weighted_lovasz_term() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 4, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 16, 16), generator=g)
    crit = SegmentationLoss(aux_weight=0.0, lovasz_weight=1.0)
    parts = crit.parts(logits, labels)
    assert set(parts) == {"ce", "lovasz"}
    assert math.isclose(parts["lovasz"].item(), brute_force(logits, labels), rel_tol=1e-12)
    cfg = C.load_config("seg-ade20k-upernet-swin-t-gpaco-lovasz")
    assert cfg.loss.lovasz_weight == 1.0 and "does not say" in " ".join(cfg.origin.differences)
    assert C.load_config("seg-ade20k-upernet-swin-t-gpaco").loss.lovasz_weight == 0.0
