import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpaco.data.embedded import EmbeddedFashionMNISTLT, load_embedded
from gpaco.errors import UserError
from gpaco.data.fashion_mnist import SYSTEM_DIR
from gpaco.data.longtail import longtail_counts

ASSETS = resources.files("gpaco") / "assets"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_embedded.py"


def test_asset_is_small_and_licensed():
    assert (ASSETS / "fmnist_lt.npz").stat().st_size < 5_000_000  # type: ignore[attr-defined]
    licence = (ASSETS / "LICENSE-fashion-mnist.md").read_text()
    assert "MIT" in licence and "Zalando SE" in licence


def test_train_split():
    ds = EmbeddedFashionMNISTLT()
    assert ds.class_counts == longtail_counts(1000, 10, 0.01) and len(ds) == 2478
    assert ds.data.shape == (2478, 28, 28, 3) and ds.data.dtype == np.uint8
    assert ds.classes[9] == "Ankle boot" and ds.num_classes == 10
    assert ds.meta["seed"] == 0 and ds.meta["imb_factor"] == 0.01
    img, target = ds[len(ds) - 1]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and target == 9


def test_test_split():
    ds = EmbeddedFashionMNISTLT(train=False, transform=np.asarray)
    assert len(ds) == 2000 and ds.class_counts == [200] * 10
    assert ds[0][0].shape == (28, 28, 3)


def test_val_split_is_balanced_and_disjoint():
    ds = EmbeddedFashionMNISTLT(train=False, test_split="val")
    assert len(ds) == 1000 and ds.class_counts == [100] * 10
    arrays = load_embedded()
    # positions in Fashion-MNIST's training file: none is a training image of the subset
    # (the test images come from the other file)
    assert not set(arrays["val_index"].tolist()) & set(arrays["train_index"].tolist())
    assert len(set(arrays["val_index"].tolist())) == 1000
    with pytest.raises(UserError, match="held-out splits are test and val"):
        EmbeddedFashionMNISTLT(train=False, test_split="train")


@pytest.mark.skipif(not SYSTEM_DIR.is_dir(), reason=f"{SYSTEM_DIR} absent "
                    "(apt-get install dataset-fashion-mnist)")
def test_rebuild_is_byte_identical(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--idx-dir", str(SYSTEM_DIR), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    shipped = (ASSETS / "fmnist_lt.npz").read_bytes()
    assert (tmp_path / "fmnist_lt.npz").read_bytes() == shipped
    assert (tmp_path / "LICENSE-fashion-mnist.md").read_text() == \
        (ASSETS / "LICENSE-fashion-mnist.md").read_text()
