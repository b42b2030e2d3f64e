"""SupConLoss / supcon_loss against the brute-force loop."""

from __future__ import annotations

import pytest
import torch

from gpaco.errors import UserError
from gpaco.losses import SupConLoss, supcon_loss
from loss_reference import contrast_set, gpaco_shaped, grads, paco_shaped, ref_supcon

IGNORE = -1


@pytest.mark.parametrize("shape", [paco_shaped, gpaco_shaped])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
@pytest.mark.parametrize("ignore", [False, True])
def test_matches_brute_force(shape, temperature: float, ignore: bool) -> None:
    feats, labels, logits = shape(batch=4, queue=8, num_classes=6, seed=7)
    ignore_index = None
    if ignore:
        labels = labels.clone()
        labels[[0, 9, 10]] = IGNORE
        ignore_index = IGNORE
    num_anchors = logits.shape[0]
    loss = SupConLoss(temperature, ignore_index)(feats, labels, logits)
    expected = ref_supcon(
        feats, labels, num_anchors, temperature=temperature, ignore_index=ignore_index
    )
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(
        grads(loss, feats)[0], grads(expected, feats)[0], rtol=1e-6, atol=1e-12
    )


def test_anchors_without_positive_are_left_out_of_the_mean() -> None:
    feats, _, _ = contrast_set(4, 8, 3, seed=2)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 5, 6])  # anchors 2 and 3 have no positive
    loss = supcon_loss(feats, labels, num_anchors=4)
    torch.testing.assert_close(loss, supcon_loss(feats, labels, num_anchors=2))
    torch.testing.assert_close(loss, ref_supcon(feats, labels, 4), rtol=1e-6, atol=1e-12)


def test_no_positive_anywhere_gives_zero() -> None:
    feats, _, _ = contrast_set(4, 6, 3)
    loss = supcon_loss(feats, torch.arange(6), num_anchors=4)
    assert loss.item() == 0.0
    assert torch.isfinite(grads(loss, feats)[0]).all()


def test_all_rows_are_anchors_without_center_logits() -> None:
    feats, labels, _ = contrast_set(4, 10, 3, seed=4)
    loss = SupConLoss()(feats, labels, None)
    torch.testing.assert_close(loss, ref_supcon(feats, labels, 10), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_close_to_fp32(dtype: torch.dtype) -> None:
    feats, labels, _ = gpaco_shaped(batch=16, queue=64, num_classes=10, seed=5)
    reference = supcon_loss(feats.float(), labels, num_anchors=32)
    loss = supcon_loss(feats.detach().to(dtype), labels, num_anchors=32)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference, rtol=2e-2, atol=0)


def test_compiles_without_graph_breaks() -> None:
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=3)
    criterion = SupConLoss(ignore_index=IGNORE)
    compiled = torch.compile(criterion, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(feats, labels, logits), criterion(feats, labels, logits))


def test_rejects_bad_temperature() -> None:
    with pytest.raises(UserError):
        SupConLoss(temperature=0.0)
