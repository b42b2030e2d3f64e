"""Per-channel normalisation statistics of the datasets' transform families."""

from __future__ import annotations

Stats = tuple[float, ...]

CIFAR_MEAN: Stats = (0.4914, 0.4822, 0.4465)
CIFAR_STD: Stats = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN: Stats = (0.485, 0.456, 0.406)
IMAGENET_STD: Stats = (0.229, 0.224, 0.225)
# Fashion-MNIST is grey; the datasets replicate it to 3 channels, hence 3 equal entries.
FMNIST_MEAN: Stats = (0.2860,) * 3
FMNIST_STD: Stats = (0.3530,) * 3
