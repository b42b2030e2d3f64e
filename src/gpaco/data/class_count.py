"""A dataset's class count known without reading it (for checks before any data is read)."""

from __future__ import annotations

import functools

from gpaco.tasks.classification.datasets import DATASETS


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
