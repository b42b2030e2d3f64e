"""Fashion-MNIST-LT from the standard idx files (gzipped or not).

Looked up in `root`, then `root/FashionMNIST/raw` (torchvision's layout); with root=None in
/usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist package).
Images are 28x28 grey, exposed as RGB (N, 28, 28, 3) uint8 so that every dataset feeds the
same 3-channel models and transforms.
"""
from __future__ import annotations

from typing import Literal

import gzip
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpaco.data.in_memory import ArrayDataset, grey_to_rgb, subsample_longtail
from gpaco.data.longtail import check_imbalance
from gpaco.errors import UserError

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_MAGIC = {1: 2049, 3: 2051}  # idx magic numbers: 0x0000 0x08 (uint8) ndim


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a uint8 idx file (labels ndim=1, images ndim=3), gzipped if the name ends in .gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # EOFError: truncated gzip stream
        raise UserError(f"cannot read idx file {path}: {type(e).__name__}: {e}") from None
    header = 4 * (1 + ndim)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != _MAGIC[ndim]:
        raise UserError(f"{path} is not a uint8 idx file with {ndim} dimension(s) (bad magic number)")
    shape = tuple(int.from_bytes(raw[4 * i: 4 * i + 4], "big") for i in range(1, ndim + 1))
    if len(raw) - header != int(np.prod(shape)):
        raise UserError(f"idx file {path} is truncated or corrupt: header says {shape}, "
                        f"found {len(raw) - header} bytes of data")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def find_idx(dirs: list[Path], name: str) -> Path | None:
    for d in dirs:
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def load_fashion_mnist(root: str | Path | None, train: bool, download: bool = False
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 grey images and (N,) int64 labels of one split."""
    if root is None:
        dirs = [SYSTEM_DIR]
    else:
        root = Path(root).expanduser()
        dirs = [root, root / "FashionMNIST" / "raw"]
    img_name, lbl_name = _FILES[train]
    img_path, lbl_path = find_idx(dirs, img_name), find_idx(dirs, lbl_name)
    if (img_path is None or lbl_path is None) and download and root is not None:
        _download(root, train)
        img_path, lbl_path = find_idx(dirs, img_name), find_idx(dirs, lbl_name)
    if img_path is None or lbl_path is None:
        name = img_name if img_path is None else lbl_name
        hint = ("install it (apt-get install dataset-fashion-mnist) or set data.root="
                if root is None else "set data.download=true")
        raise UserError(f"missing Fashion-MNIST file {name}[.gz] in {' or '.join(map(str, dirs))}"
                        f" ({hint})")
    x, y = read_idx(img_path, 3), read_idx(lbl_path, 1).astype(np.int64)
    if len(x) != len(y) or x.shape[1:] != (28, 28):
        raise UserError(f"Fashion-MNIST files {img_path} and {lbl_path} disagree: "
                        f"images {x.shape}, labels {y.shape}")
    if y.max() >= len(FASHION_MNIST_CLASSES):
        raise UserError(f"{lbl_path}: labels must be in 0..9, found {y.max()}")
    return x, y


def _download(root: Path, train: bool) -> None:
    import torchvision.datasets as tvd

    try:
        tvd.FashionMNIST(str(root), train=train, download=True)
    except Exception as e:  # no network, disk full...: the user's to fix
        raise UserError(f"downloading Fashion-MNIST into {root} failed: "
                        f"{type(e).__name__}: {e}".replace("\n", " ")) from None


class FashionMNISTLT(ArrayDataset):
    """Fashion-MNIST with a long-tailed training split (6,000 → 6,000·imb_factor per class).

    The test split is the full balanced test set (1,000 per class).
    """

    class_names = FASHION_MNIST_CLASSES  # the class count known before reading the data

    def __init__(
        self,
        root: str | Path | None = None,
        train: bool = True,
        transform: Callable | None = None,
        *,
        imb_factor: float = 0.01,
        imb_type: Literal["exp", "step"] = "exp",
        subset_seed: int = 0,
        download: bool = False,
    ) -> None:
        check_imbalance(imb_factor, imb_type)
        self.root, self.train = root, train
        self.imb_factor, self.imb_type, self.subset_seed = imb_factor, imb_type, subset_seed
        x, y = load_fashion_mnist(root, train, download)
        if train:
            x, y = subsample_longtail(x, y, len(FASHION_MNIST_CLASSES), imb_factor, imb_type,
                                      subset_seed)
        super().__init__(grey_to_rgb(x), y.tolist(), FASHION_MNIST_CLASSES, transform)
