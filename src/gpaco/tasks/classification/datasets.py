"""The classification datasets: one table, name -> class (torchvision's signature; a class's
keyword-only parameters are its `data.*` options, see gpaco.data.registry)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from gpaco.data import registry
from gpaco.data.cifar import CIFAR10LT, CIFAR100LT
from gpaco.data.embedded import EmbeddedFashionMNISTLT
from gpaco.data.fashion_mnist import FashionMNISTLT
from gpaco.data.image_folder import LongTailImageFolder
from gpaco.data.split_file import INat2018, ImageNetLT, PlacesLT, SplitFileDataset

DATASETS: dict[str, Callable[..., Dataset]] = {
    "cifar10_lt": CIFAR10LT,
    "cifar100_lt": CIFAR100LT,
    "fashion_mnist_lt": FashionMNISTLT,
    "embedded": EmbeddedFashionMNISTLT,
    "split_file": SplitFileDataset,
    "imagenet_lt": ImageNetLT,
    "places_lt": PlacesLT,
    "inat2018": INat2018,
    "image_folder": LongTailImageFolder,
}

dataset_options = functools.partial(registry.dataset_options, table=DATASETS)
datasets_using = functools.partial(registry.datasets_using, table=DATASETS)


def build_dataset(name: str, root: Any = None, train: bool = True, transform: Any = None,
                  **options: Any) -> Dataset:
    """Classification dataset `name` (gpaco.data.registry.build_dataset over DATASETS)."""
    return registry.build_dataset(name, root, train, transform, table=DATASETS, **options)


def known_num_classes(dataset: str, num_classes: int | None = None) -> int | None:
    """`data.num_classes` if set, else the count fixed by the dataset (CIFAR-100-LT: 100,
    ImageNet-LT: 1000, ...); None where only the data say (image folders, split files)."""
    if num_classes is not None:
        return num_classes
    factory = DATASETS.get(dataset)
    if isinstance(factory, functools.partial):
        return factory.keywords.get("num_classes")
    names = getattr(factory, "class_names", None)
    return len(names) if names else None
