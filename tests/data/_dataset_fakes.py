"""Writers of tiny files in the exact on-disk formats of the real datasets (for tests)."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def to_rows(x: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, 3072) channel-planar, as in the official CIFAR pickles."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), -1))


def write_pickle(path: Path, obj: dict, bytes_keys: bool = False) -> None:
    if bytes_keys:  # what a Python-2 pickle read with encoding="bytes" looks like
        obj = {k.encode(): v for k, v in obj.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def fake_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random (N, 32, 32, 3) uint8 images whose pixel (0, 0, 0) is the sample's position mod 256."""
    x = np.random.default_rng(seed).integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    x[:, 0, 0, 0] = np.arange(len(labels)) % 256
    return x


def write_cifar10(root: Path, per_class_per_batch: int = 20, test_per_class: int = 10,
                  bytes_keys: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """root/cifar-10-batches-py with 5 train batches; returns all train (images, labels)."""
    d = root / "cifar-10-batches-py"
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for b in range(5):
        y = rng.permutation(np.repeat(np.arange(10), per_class_per_batch))
        x = fake_images(y, seed=b)
        write_pickle(d / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5",
                     "labels": y.tolist(), "data": to_rows(x), "filenames": []}, bytes_keys)
        xs.append(x)
        ys.append(y)
    y = np.repeat(np.arange(10), test_per_class)
    write_pickle(d / "test_batch", {"labels": y.tolist(), "data": to_rows(fake_images(y, 9))},
                 bytes_keys)
    write_pickle(d / "batches.meta", {"label_names": []}, bytes_keys)
    return np.concatenate(xs), np.concatenate(ys)


def write_cifar100(root: Path, per_class: int = 5, test_per_class: int = 2,
                   zeros: bool = False) -> np.ndarray:
    """root/cifar-100-python/{train,test,meta}; zeros=True writes cheap blank images."""
    d = root / "cifar-100-python"
    y = np.random.default_rng(2).permutation(np.repeat(np.arange(100), per_class))
    for name, labels in (("train", y), ("test", np.repeat(np.arange(100), test_per_class))):
        x = np.zeros((len(labels), 3072), np.uint8) if zeros else to_rows(fake_images(labels))
        write_pickle(d / name, {"filenames": [], "batch_label": name, "fine_labels": labels.tolist(),
                                "coarse_labels": (labels // 5).tolist(), "data": x})
    write_pickle(d / "meta", {"fine_label_names": [], "coarse_label_names": []})
    return y


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    """A uint8 idx file: magic 0x0000 08 ndim, big-endian int32 dims, then the bytes."""
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    raw = header + np.ascontiguousarray(arr, np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def write_fashion_mnist(folder: Path, per_class: int = 30, test_per_class: int = 3,
                        gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The four idx files in `folder`; returns the train (images, labels)."""
    rng = np.random.default_rng(3)
    out = None
    for prefix, n in (("train", per_class), ("t10k", test_per_class)):
        y = rng.permutation(np.repeat(np.arange(10), n)).astype(np.uint8)
        x = rng.integers(0, 256, (len(y), 28, 28), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", x, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", y, gz)
        out = out or (x, y)
    return out


def write_png(path: Path, value: int = 0, size: tuple[int, int] = (8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
