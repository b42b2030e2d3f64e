import numpy as np
import pytest
from PIL import Image

from _dataset_fakes import write_fashion_mnist
from gpaco.data.fashion_mnist import SYSTEM_DIR, FashionMNISTLT, read_idx
from gpaco.data.longtail import longtail_counts, longtail_indices
from gpaco.errors import UserError


@pytest.mark.parametrize("gz", [True, False])
def test_reads_idx_files_in_root(tmp_path, gz):
    x, y = write_fashion_mnist(tmp_path, per_class=30, gz=gz)
    ds = FashionMNISTLT(tmp_path, imb_factor=0.1, subset_seed=2)
    counts = longtail_counts(30, 10, 0.1)
    idx = longtail_indices(y, counts, 2)
    assert ds.class_counts == counts and ds.targets == y[idx].tolist()
    assert ds.data.shape == (sum(counts), 28, 28, 3) and ds.data.dtype == np.uint8
    np.testing.assert_array_equal(ds.data[..., 1], x[idx])
    img, target = ds[0]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (28, 28)
    assert ds.classes[0] == "T-shirt/top" and ds.num_classes == 10


def test_torchvision_layout_and_test_split(tmp_path):
    write_fashion_mnist(tmp_path / "FashionMNIST" / "raw", test_per_class=3)
    ds = FashionMNISTLT(tmp_path, train=False, transform=lambda im: im.size)
    assert len(ds) == 30 and ds.class_counts == [3] * 10 and ds[0][0] == (28, 28)


def test_missing_files(tmp_path):
    with pytest.raises(UserError, match="train-images-idx3-ubyte"):
        FashionMNISTLT(tmp_path)


def test_truncated_and_foreign_files(tmp_path):
    write_fashion_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match="truncated"):
        FashionMNISTLT(tmp_path)
    path.write_bytes(b"\x89PNG not an idx file")
    with pytest.raises(UserError, match="magic"):
        read_idx(path, 3)


def test_truncated_gzip(tmp_path):
    write_fashion_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(UserError, match="t10k-labels"):
        FashionMNISTLT(tmp_path, train=False)


@pytest.mark.skipif(not SYSTEM_DIR.is_dir(), reason=f"{SYSTEM_DIR} absent "
                    "(apt-get install dataset-fashion-mnist)")
def test_system_copy_with_root_none():
    ds = FashionMNISTLT()
    assert ds.class_counts == longtail_counts(6000, 10, 0.01) and len(ds) == 14_886
    assert len(FashionMNISTLT(train=False)) == 10_000
