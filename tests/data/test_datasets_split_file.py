import numpy as np
import pytest
from PIL import Image

from _dataset_fakes import SHARED, write_png
from gpaco.data.split_file import INat2018, ImageNetLT, PlacesLT, SplitFileDataset
from gpaco.errors import UserError

SPLITS = SHARED / "data" / "splits"


@pytest.fixture
def image_root(tmp_path):
    root = tmp_path / "images"
    for c in range(3):
        for i in range(c + 1):
            write_png(root / f"n0{c}" / f"{i}.png", value=10 * c + i)
    return root


def write_list(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def good_lines():
    return [f"n0{c}/{i}.png {c}" for c in range(3) for i in range(c + 1)]


def test_reads_list(tmp_path, image_root):
    split = write_list(tmp_path / "train.txt", good_lines()[:3] + ["", "  "] + good_lines()[3:])
    ds = SplitFileDataset(image_root, train=False, test_split=split, num_classes=4)
    assert len(ds) == 6 and ds.class_counts == [1, 2, 3, 0] and ds.num_classes == 4
    assert ds.classes == ["n00", "n01", "n02", "3"]
    assert ds.data[0] == str(image_root / "n00" / "0.png")
    img, target = ds[5]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and target == 2
    assert np.asarray(img)[0, 0, 0] == 22
    ds = SplitFileDataset(image_root, train=False, test_split=split, transform=lambda im: im.size)
    assert ds.num_classes == 3 and ds[0][0] == (8, 6)


def test_bad_lines_are_listed_with_line_numbers(tmp_path, image_root):
    lines = good_lines() + ["n00/0.png", "n00/0.png x", "n00/0.png 7", "n00/gone.png 0",
                            "n00/0.png -1", "n00/0.png 1 2 3"]
    split = write_list(tmp_path / "bad.txt", lines)
    with pytest.raises(UserError) as err:
        SplitFileDataset(image_root, train=False, test_split=split, num_classes=3)
    msg = str(err.value)
    assert "\n" not in msg and "bad.txt: 6 bad line(s)" in msg
    for text in ["line 7:", "expected 'relative/path label'", "line 8:", "not an integer",
                 "line 9:", "label 7 out of range 0..2", "line 10:", "missing file", "gone.png",
                 "line 11:"]:
        assert text in msg
    assert "line 12:" not in msg  # only the first 5 are shown


def test_missing_split_file_and_root(tmp_path, image_root):
    with pytest.raises(UserError, match="nope.txt"):
        SplitFileDataset(image_root, train=False, test_split=tmp_path / "nope.txt")
    split = write_list(tmp_path / "s.txt", good_lines())
    with pytest.raises(UserError, match="not a directory"):
        SplitFileDataset(tmp_path / "no_root", train=False, test_split=split)
    with pytest.raises(UserError, match="lists no images"):
        SplitFileDataset(image_root, train=False, test_split=write_list(tmp_path / "empty.txt", [""]))


def test_unreadable_image_error_and_skip(tmp_path, image_root):
    (image_root / "n01" / "0.png").write_bytes(b"not a png")
    split = write_list(tmp_path / "s.txt", good_lines())
    ds = SplitFileDataset(image_root, train=False, test_split=split)
    with pytest.raises(UserError, match="n01/0.png"):
        ds[1]
    ds = SplitFileDataset(image_root, train=False, test_split=split, on_bad_image="skip")
    with pytest.warns(UserWarning, match="n01/0.png"):
        img, target = ds[1]
    assert target == 1 and np.asarray(img)[0, 0, 0] == 11  # the next sample, n01/1.png
    assert ds.skipped == 1 and ds.bad_files == [str(image_root / "n01" / "0.png")]
    ds[1]  # known bad: skipped again without a second warning or count
    assert ds.skipped == 1
    with pytest.raises(UserError, match="on_bad_image"):
        SplitFileDataset(image_root, train=False, test_split=split, on_bad_image="ignore")


def test_all_images_unreadable(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    ds = SplitFileDataset(tmp_path, train=False, test_split=write_list(tmp_path / "s.txt", ["a.jpg 0"]), on_bad_image="skip")
    with pytest.warns(UserWarning), pytest.raises(UserError, match="none of the 1 images"):
        ds[0]


def test_helpers_fix_num_classes(tmp_path, image_root):
    split = write_list(tmp_path / "s.txt", good_lines())
    assert ImageNetLT(image_root, train=False, test_split=split).num_classes == 1000
    assert PlacesLT(image_root, train=False, test_split=split).num_classes == 365
    assert INat2018(image_root, train=False, test_split=split).num_classes == 8142
    with pytest.raises(UserError, match="out of range"):
        SplitFileDataset(image_root, train=False, test_split=write_list(tmp_path / "big.txt", ["n00/0.png 365"]),
                         num_classes=365)


needs_splits = pytest.mark.skipif(not SPLITS.is_dir(), reason=f"{SPLITS} absent (shared data)")


@needs_splits
def test_places_lt_train_list_groups():
    ds = PlacesLT("/nonexistent", train_split=SPLITS / "Places_LT_train.txt", check_files=False)
    counts = np.array(ds.class_counts)
    assert len(ds) == 62_500 and counts.max() == 4980 and counts.min() == 5
    groups = ((counts > 100).sum(), ((counts >= 20) & (counts <= 100)).sum(), (counts < 20).sum())
    assert groups == (131, 163, 71)
    assert ds.classes[0] == "airfield"


@needs_splits
@pytest.mark.parametrize("name, helper, n, per_class", [
    ("ImageNet_LT_val.txt", ImageNetLT, 20_000, 20), ("ImageNet_LT_test.txt", ImageNetLT, 50_000, 50),
    ("Places_LT_val.txt", PlacesLT, 7_300, 20), ("iNaturalist18_val.txt", INat2018, 24_426, 3),
])
def test_shared_eval_lists(name, helper, n, per_class):
    ds = helper("/nonexistent", train=False, test_split=SPLITS / name, check_files=False)
    assert len(ds) == n and set(ds.class_counts) == {per_class}
