import pytest

from _dataset_fakes import write_png
from gpaco.data.image_folder import LongTailImageFolder
from gpaco.data.longtail import longtail_counts, longtail_indices
from gpaco.errors import UserError


@pytest.fixture
def folder(tmp_path):
    for name in ["cat", "ant", "bee"]:
        for i in range(10):
            write_png(tmp_path / "train" / name / ("sub" if i % 2 else "") / f"{i:02d}.png",
                      value=i)
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not an image")
    return tmp_path


def test_sorted_classes_all_images(folder):
    ds = LongTailImageFolder(folder)
    assert ds.classes == ["ant", "bee", "cat"] and ds.class_counts == [10, 10, 10]
    assert ds.data[0].endswith("ant/00.png") and ds.data[5].endswith("ant/sub/01.png")
    img, target = ds[12]
    assert img.mode == "RGB" and target == 1


def test_test_split_is_never_subsampled(folder):
    for name in ["ant", "bee", "cat"]:
        for i in range(4):
            write_png(folder / "val" / name / f"{i}.png")
    test = LongTailImageFolder(folder, train=False, imb_factor=0.1)
    assert test.class_counts == [4, 4, 4] and test.folder == folder / "val"


def test_longtail_subsampling(folder):
    ds = LongTailImageFolder(folder, imb_factor=0.1, subset_seed=4,
                             transform=lambda im: im.size)
    counts = longtail_counts(10, 3, 0.1)
    assert ds.class_counts == counts == [10, 3, 1]
    full = LongTailImageFolder(folder)
    assert ds.data == [full.data[i] for i in longtail_indices(full.targets, counts, 4)]
    assert ds[0][0] == (8, 6)


def test_user_errors(tmp_path, folder):
    (folder / "train" / "dog").mkdir()
    with pytest.raises(UserError, match="dog holds no images"):
        LongTailImageFolder(folder)
    with pytest.raises(UserError, match="no class sub-folders"):
        LongTailImageFolder(folder, train_split="train/dog")
    with pytest.raises(UserError, match="not a directory"):
        LongTailImageFolder(tmp_path / "missing")


def test_bad_image_skip(folder):
    (folder / "train" / "ant" / "00.png").write_bytes(b"broken")
    ds = LongTailImageFolder(folder, on_bad_image="skip")
    with pytest.warns(UserWarning, match="00.png"):
        assert ds[0][1] == 0
    assert ds.skipped == 1
