import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from _dataset_fakes import SHARED, write_cifar10, write_cifar100
from gpaco.data.cifar import CIFAR10LT, CIFAR100LT, md5sum
from gpaco.data.longtail import longtail_counts, longtail_indices
from gpaco.errors import UserError

# the fakes never match the official md5 sums; the warning has its own tests
pytestmark = pytest.mark.filterwarnings("ignore:.*md5:UserWarning")


@pytest.fixture
def cifar10_root(tmp_path):
    x, y = write_cifar10(tmp_path)
    return tmp_path, x, y


def test_cifar10_train_is_the_longtail_subset(cifar10_root):
    root, x, y = cifar10_root
    ds = CIFAR10LT(root, imb_factor=0.1, subset_seed=3)
    counts = longtail_counts(100, 10, 0.1)
    idx = longtail_indices(y, counts, 3)
    assert ds.class_counts == counts and len(ds) == sum(counts)
    assert ds.targets == y[idx].tolist()
    np.testing.assert_array_equal(ds.data, x[idx])  # channel-planar rows decoded to HWC
    assert ds.data.dtype == np.uint8 and ds.data.shape[1:] == (32, 32, 3)
    assert ds.classes[0] == "airplane" and ds.num_classes == 10
    img, target = ds[0]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (32, 32)
    assert target == ds.targets[0] and isinstance(target, int)


def test_cifar10_test_split_is_full_and_balanced(cifar10_root):
    ds = CIFAR10LT(cifar10_root[0], train=False, transform=lambda im: np.asarray(im).sum())
    assert len(ds) == 100 and ds.class_counts == [10] * 10
    assert isinstance(ds[3][0], np.integer)


def test_root_may_be_the_batches_folder(cifar10_root):
    assert len(CIFAR10LT(cifar10_root[0] / "cifar-10-batches-py", train=False)) == 100


def test_python2_style_bytes_keys(tmp_path):
    write_cifar10(tmp_path, bytes_keys=True)
    assert CIFAR10LT(tmp_path, imb_factor=1.0).class_counts == [100] * 10


def test_cifar100_reads_fine_labels(tmp_path):
    y = write_cifar100(tmp_path, per_class=5)
    ds = CIFAR100LT(tmp_path, imb_factor=0.2, imb_type="step")
    assert ds.class_counts == [5] * 50 + [1] * 50
    assert ds.num_classes == 100 and ds.classes[-1] == "worm"
    assert len(CIFAR100LT(tmp_path, train=False)) == 200
    assert np.bincount(y).tolist() == [5] * 100


def test_md5_mismatch_warns(cifar10_root):
    with pytest.warns(UserWarning, match="md5 of test_batch"):
        CIFAR10LT(cifar10_root[0], train=False)


def test_matching_md5_does_not_warn(cifar10_root, monkeypatch):
    folder = cifar10_root[0] / "cifar-10-batches-py"
    monkeypatch.setattr(CIFAR10LT, "test_list", [("test_batch", md5sum(folder / "test_batch"))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CIFAR10LT(cifar10_root[0], train=False)


def test_truncated_file_is_a_user_error(cifar10_root):
    path = cifar10_root[0] / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UserError, match="data_batch_3.*truncated"):
        CIFAR10LT(cifar10_root[0])


def test_missing_file_is_a_user_error(cifar10_root):
    (cifar10_root[0] / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(UserError, match="data_batch_5"):
        CIFAR10LT(cifar10_root[0])
    with pytest.raises(UserError, match="cifar-100-python/train"):
        CIFAR100LT(cifar10_root[0])


def test_wrong_keys_are_a_user_error(tmp_path):
    write_cifar100(tmp_path / "x")
    (tmp_path / "cifar-10-batches-py").mkdir()
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]:
        (tmp_path / "cifar-10-batches-py" / name).write_bytes(
            (tmp_path / "x" / "cifar-100-python" / "train").read_bytes())
    with pytest.raises(UserError, match="'labels'"):
        CIFAR10LT(tmp_path)


def test_bad_imbalance_arguments(cifar10_root):
    with pytest.raises(UserError, match="imb_factor"):
        CIFAR10LT(cifar10_root[0], imb_factor=100)
    with pytest.raises(UserError, match="imb_type"):
        CIFAR10LT(cifar10_root[0], imb_type="Exp")


def test_download_failure_is_a_user_error(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tvd, "CIFAR100", offline)
    with pytest.raises(UserError, match="downloading CIFAR100.*no network"):
        CIFAR100LT(tmp_path, download=True)


def test_full_size_cifar100_lt_has_10847_images(tmp_path):
    write_cifar100(tmp_path, per_class=500, test_per_class=1, zeros=True)
    ds = CIFAR100LT(tmp_path)  # IF 0.01, exp, seed 0
    assert len(ds) == 10_847 and ds.data.shape == (10_847, 32, 32, 3)
    assert ds.class_counts == longtail_counts(500, 100, 0.01)
    assert ds.class_counts[0] == 500 and ds.class_counts[-1] == 5


CIFAR10_LT_COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


@pytest.mark.slow
def test_real_cifar10_lt(tmp_path_factory):
    """CIFAR-10 rebuilt from ../shared (JPEG q75 decodes in the original order): ~15 s."""
    tool = SHARED / "tools" / "cifar10_from_jpeg.py"
    if not (tool.is_file() and (SHARED / "data" / "cifar10-jpeg-q75.tar.xz").is_file()):
        pytest.skip(f"real CIFAR-10 not available ({SHARED}/data/cifar10-jpeg-q75.tar.xz absent)")
    root = tmp_path_factory.mktemp("cifar10")
    subprocess.run([sys.executable, str(tool), str(root)], check=True, capture_output=True)
    with pytest.warns(UserWarning, match="md5"):  # JPEG decodes are not the official pixels
        ds = CIFAR10LT(root)
    assert len(ds) == 12_406 and ds.class_counts == CIFAR10_LT_COUNTS
    labels = np.loadtxt(SHARED / "data" / "cifar10-train-labels.txt", dtype=np.int64)
    assert ds.targets == labels[longtail_indices(labels, CIFAR10_LT_COUNTS, 0)].tolist()
    with pytest.warns(UserWarning, match="md5"):
        test = CIFAR10LT(root, train=False)
    assert len(test) == 10_000 and test.class_counts == [1000] * 10
