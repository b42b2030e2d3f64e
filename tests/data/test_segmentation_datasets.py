"""Segmentation loaders on generated files of each benchmark's exact on-disk layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpaco.data.segmentation import (
    ADE20K,
    COCOStuff10k,
    Cityscapes,
    PascalContext59,
    prepare_pascal_context,
)
from gpaco.data.segmentation.pascal_context import CONTEXT_IDS
from gpaco.errors import UserError

scipy_io = pytest.importorskip("scipy.io")

H, W = 12, 16


def _jpg(path: Path, h: int = H, w: int = W) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)


def _mask(values: list[int]) -> np.ndarray:
    """An (H, W) mask whose rows cycle through `values`."""
    return np.array(values)[np.arange(H) % len(values)][:, None].repeat(W, 1)


def _pair(mask_item) -> tuple[np.ndarray, np.ndarray]:
    image, mask = mask_item
    return image.numpy(), mask.numpy()


# ---------------------------------------------------------------- ADE20K
def _ade(tmp: Path, masks: dict[str, np.ndarray], split: str = "training") -> Path:
    root = tmp / "ADEChallengeData2016"
    for name, mask in masks.items():
        _jpg(root / "images" / split / f"{name}.jpg")
        _png(root / "annotations" / split / f"{name}.png", mask)
    return root


def test_ade20k_reduces_zero_label(tmp_path: Path) -> None:
    _ade(tmp_path, {"ADE_train_00000001": _mask([0, 1, 150]), "ADE_train_00000002": _mask([7])})
    ds = ADE20K(tmp_path)  # the parent of ADEChallengeData2016 works too
    assert len(ds) == 2 and ds.num_classes == 150 and ds.classes[0] == "wall"
    image, mask = _pair(ds[0])
    assert image.shape == (3, H, W) and image.dtype == np.uint8
    assert mask.dtype == np.int64 and set(np.unique(mask)) == {255, 0, 149}
    assert set(np.unique(_pair(ds[1])[1])) == {6}
    assert ds.pixel_counts()[149] == (H // 3) * W


def test_ade20k_bad_inputs_name_the_file(tmp_path: Path) -> None:
    root = _ade(tmp_path, {"a": _mask([151])})
    with pytest.raises(UserError, match=r"a\.png has values \[151\]"):
        ADE20K(root)[0]
    _png(root / "annotations/training/a.png", np.zeros((H + 1, W)))
    with pytest.raises(UserError, match=r"a\.png is 16x13 but its image .*a\.jpg is 16x12"):
        ADE20K(root)[0]
    (root / "annotations/training/a.png").unlink()
    with pytest.raises(UserError, match=r"missing file .*annotations/training/a\.png"):
        ADE20K(root)
    with pytest.raises(UserError, match="validation"):
        ADE20K(root, train=False)
    with pytest.raises(UserError, match="ADE20K not found"):
        ADE20K(tmp_path / "nowhere")
    Image.new("RGB", (W, H)).save(root / "annotations/training/a.png")
    with pytest.raises(UserError, match="mode RGB"):
        ADE20K(root)[0]


# ---------------------------------------------------------------- Cityscapes
def test_cityscapes_maps_label_ids_to_train_ids(tmp_path: Path) -> None:
    stem = "aachen_000000_000019"
    _jpg(tmp_path / "leftImg8bit/val/aachen" / f"{stem}_leftImg8bit.png")
    _png(tmp_path / "gtFine/val/aachen" / f"{stem}_gtFine_labelIds.png", _mask([7, 26, 0, 33, 14]))
    _png(tmp_path / "gtFine/val/aachen" / f"{stem}_gtFine_color.png", _mask([1]))  # ignored file
    ds = Cityscapes(tmp_path, train=False)
    assert len(ds) == 1 and ds.num_classes == 19
    assert set(np.unique(_pair(ds[0])[1])) == {0, 13, 255, 18}  # 14 (guard rail) -> ignore
    _png(tmp_path / "gtFine/val/aachen" / f"{stem}_gtFine_labelIds.png", _mask([34]))
    with pytest.raises(UserError, match=r"labelIds\.png has Cityscapes label ids \[34\]"):
        ds[0]
    with pytest.raises(UserError, match="leftImg8bit/train"):
        Cityscapes(tmp_path, train=True)


# ---------------------------------------------------------------- COCO-Stuff-10k
def test_coco_stuff_10k_reads_mat_and_maps_182_to_171(tmp_path: Path) -> None:
    root = tmp_path / "cocostuff-10k-v1.1"
    (root / "imageLists").mkdir(parents=True)
    (root / "imageLists/train.txt").write_text("COCO_train2014_000000000077\n")
    (root / "imageLists/test.txt").write_text("COCO_train2014_000000000078\n")
    for name in ("COCO_train2014_000000000077", "COCO_train2014_000000000078"):
        _jpg(root / "images" / f"{name}.jpg")
        (root / "annotations").mkdir(exist_ok=True)
        scipy_io.savemat(root / "annotations" / f"{name}.mat",
                         {"S": _mask([0, 1, 11, 13, 92, 182]).astype(np.uint16),
                          "names": np.array(["x"], dtype=object)})
    ds = COCOStuff10k(tmp_path)
    assert len(ds) == 1 and ds.num_classes == 171
    assert ds.classes[11] == "stop sign" and ds.classes[80] == "banner"
    # 1 -> 0 (person), 11 -> 10, 13 (stop sign; 12 unused) -> 11, 92 -> 80 (banner), 182 -> 170.
    assert set(np.unique(_pair(ds[0])[1])) == {255, 0, 10, 11, 80, 170}
    assert len(COCOStuff10k(root, train=False)) == 1
    scipy_io.savemat(root / "annotations/COCO_train2014_000000000077.mat",
                     {"S": _mask([12]).astype(np.uint16)})
    with pytest.raises(UserError, match=r"000077\.mat has COCO-Stuff ids \[12\]"):
        ds[0]
    scipy_io.savemat(root / "annotations/COCO_train2014_000000000077.mat", {"L": _mask([1])})
    with pytest.raises(UserError, match="has no 'S'"):
        ds[0]


# ---------------------------------------------------------------- Pascal-Context-59
def test_prepare_pascal_context_then_load(tmp_path: Path) -> None:
    voc = tmp_path / "VOCdevkit/VOC2010"
    mats = tmp_path / "trainval"
    mats.mkdir()
    (voc / "ImageSets/Main").mkdir(parents=True)
    (voc / "ImageSets/Main/train.txt").write_text("2008_000002\n2008_000003\n")
    (voc / "ImageSets/Main/val.txt").write_text("2008_000007\n")
    label = _mask([2, 458, 1, 284, 0])  # aeroplane, wood, accordion (not kept), person, none
    for name in ("2008_000002", "2008_000007"):  # 2008_000003 has no .mat: left out
        _jpg(voc / "JPEGImages" / f"{name}.jpg")
        scipy_io.savemat(mats / f"{name}.mat", {"LabelMap": label.astype(np.uint16)})
    _jpg(voc / "JPEGImages/2008_000003.jpg")
    assert prepare_pascal_context(tmp_path / "VOCdevkit", mats) == {"train": 1, "val": 1}
    png = np.array(Image.open(voc / "SegmentationClassContext/2008_000002.png"))
    assert set(np.unique(png)) == {0, 1, 59, CONTEXT_IDS.index(284) + 1}
    ds = PascalContext59(tmp_path)
    assert len(ds) == 1 and ds.num_classes == 59 and ds.classes[36] == "person"
    assert set(np.unique(_pair(ds[0])[1])) == {255, 0, 58, 36}
    assert len(PascalContext59(voc, train=False)) == 1

    scipy_io.savemat(mats / "2008_000002.mat", {"LabelMap": np.zeros((H, W + 2), np.uint16)})
    with pytest.raises(UserError, match=r"2008_000002\.mat is 18x12 but .*2008_000002\.jpg is 16x12"):
        prepare_pascal_context(voc, mats)


def test_pascal_context_needs_preparation(tmp_path: Path) -> None:
    _jpg(tmp_path / "VOC2010/JPEGImages/a.jpg")
    with pytest.raises(UserError, match="prepare_pascal_context"):
        PascalContext59(tmp_path)
