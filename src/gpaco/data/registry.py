"""Datasets by name: `build_dataset(name, root, train, transform, **kwargs)`.

Names and the keyword arguments they accept (a kwarg set to None means "the default"):
  cifar10_lt, cifar100_lt  imb_factor=0.01, imb_type="exp", seed=0, download=False
                           (root holds cifar-10-batches-py/ or cifar-100-python/; the test
                           split is the full balanced test set)
  fashion_mnist_lt         same kwargs; root=None reads /usr/share/datasets/fashion-mnist
  embedded                 none; root is ignored (the data ships inside gpaco)
  split_file               train_split, test_split (paths of the `relative/path label` lists,
                           the one of the requested split is required), num_classes=None,
                           check_files=True, on_bad_image="error" | "skip"
  imagenet_lt, places_lt,  train_split, test_split, check_files=True, on_bad_image="error";
  inat2018                 num_classes is fixed (1000 / 365 / 8142)
  image_folder             train_dir="train", test_dir="val" (sub-folders of root, each
                           root/<dir>/<class>/<image>), imb_factor=None (train split only),
                           imb_type="exp", seed=0, on_bad_image="error"
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from gpaco.data.cifar import CIFAR10LT, CIFAR100LT
from gpaco.data.embedded import EmbeddedFashionMNISTLT
from gpaco.data.fashion_mnist import FashionMNISTLT
from gpaco.data.image_folder import LongTailImageFolder
from gpaco.data.split_file import NUM_CLASSES, SplitFileDataset
from gpaco.errors import UserError

Root = str | Path | None


def _need_root(name: str, root: Root) -> Path:
    if root is None:
        raise UserError(f"dataset {name!r} needs a data root (root=...)")
    return Path(root)


def _cifar10_lt(root: Root, train: bool, transform: Callable | None, *, imb_factor: float = 0.01,
                imb_type: str = "exp", seed: int = 0, download: bool = False) -> Dataset:
    return CIFAR10LT(_need_root("cifar10_lt", root), train, imb_factor, imb_type, seed, download,
                     transform)


def _cifar100_lt(root: Root, train: bool, transform: Callable | None, *, imb_factor: float = 0.01,
                 imb_type: str = "exp", seed: int = 0, download: bool = False) -> Dataset:
    return CIFAR100LT(_need_root("cifar100_lt", root), train, imb_factor, imb_type, seed, download,
                      transform)


def _fashion_mnist_lt(root: Root, train: bool, transform: Callable | None, *,
                      imb_factor: float = 0.01, imb_type: str = "exp", seed: int = 0,
                      download: bool = False) -> Dataset:
    return FashionMNISTLT(root, train, imb_factor, imb_type, seed, download, transform)


def _embedded(root: Root, train: bool, transform: Callable | None) -> Dataset:
    return EmbeddedFashionMNISTLT(train, transform)


def _pick_split(name: str, train: bool, train_split: Root, test_split: Root) -> Path:
    split, key = (train_split, "train_split") if train else (test_split, "test_split")
    if split is None:
        raise UserError(f"dataset {name!r} needs {key}= (path of the 'relative/path label' list "
                        f"of the {'training' if train else 'test'} split)")
    return Path(split)


def _split_file(root: Root, train: bool, transform: Callable | None, *, train_split: Root = None,
                test_split: Root = None, num_classes: int | None = None, check_files: bool = True,
                on_bad_image: str = "error", _name: str = "split_file") -> Dataset:
    return SplitFileDataset(_need_root(_name, root), _pick_split(_name, train, train_split, test_split),
                            transform, num_classes, check_files, on_bad_image)


def _fixed_classes(name: str) -> Callable[..., Dataset]:
    num_classes = NUM_CLASSES[name]

    def build(root: Root, train: bool, transform: Callable | None, *, train_split: Root = None,
              test_split: Root = None, check_files: bool = True,
              on_bad_image: str = "error") -> Dataset:
        return _split_file(root, train, transform, train_split=train_split, test_split=test_split,
                           num_classes=num_classes, check_files=check_files,
                           on_bad_image=on_bad_image, _name=name)
    return build


def _image_folder(root: Root, train: bool, transform: Callable | None, *, train_dir: str = "train",
                  test_dir: str = "val", imb_factor: float | None = None, imb_type: str = "exp",
                  seed: int = 0, on_bad_image: str = "error") -> Dataset:
    folder = _need_root("image_folder", root) / (train_dir if train else test_dir)
    return LongTailImageFolder(folder, transform, imb_factor if train else None, imb_type, seed,
                               on_bad_image)


DATASETS: dict[str, Callable[..., Dataset]] = {
    "cifar10_lt": _cifar10_lt,
    "cifar100_lt": _cifar100_lt,
    "fashion_mnist_lt": _fashion_mnist_lt,
    "embedded": _embedded,
    "split_file": _split_file,
    "imagenet_lt": _fixed_classes("imagenet_lt"),
    "places_lt": _fixed_classes("places_lt"),
    "inat2018": _fixed_classes("inat2018"),
    "image_folder": _image_folder,
}


def dataset_kwargs(name: str) -> list[str]:
    """The keyword arguments dataset `name` accepts besides root, train and transform."""
    params = inspect.signature(DATASETS[name]).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY and not p.name.startswith("_")]


def build_dataset(name: str, root: Root = None, train: bool = True,
                  transform: Callable | None = None, **kwargs: Any) -> Dataset:
    """Build dataset `name` (see the module docstring for each name's kwargs)."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    allowed = dataset_kwargs(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise UserError(f"dataset {name!r} does not take {', '.join(unknown)}; it takes "
                        f"{', '.join(allowed) or 'no extra arguments'}")
    return DATASETS[name](root, train, transform, **kwargs)
