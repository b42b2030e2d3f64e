"""Datasets (torchvision style, long-tailed) and the name registry."""
from gpaco.data.cifar import CIFAR10LT, CIFAR100LT
from gpaco.data.embedded import EmbeddedFashionMNISTLT
from gpaco.data.fashion_mnist import FashionMNISTLT
from gpaco.data.image_folder import LongTailImageFolder
from gpaco.data.longtail import longtail_counts, longtail_indices
from gpaco.data.registry import DATASETS, build_dataset
from gpaco.data.split_file import SplitFileDataset, imagenet_lt, inat2018, places_lt

__all__ = [
    "CIFAR10LT", "CIFAR100LT", "DATASETS", "EmbeddedFashionMNISTLT", "FashionMNISTLT",
    "LongTailImageFolder", "SplitFileDataset", "build_dataset", "imagenet_lt", "inat2018",
    "longtail_counts", "longtail_indices", "places_lt",
]
