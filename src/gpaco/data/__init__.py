"""Datasets (torchvision style, long-tailed), transforms, batched augmentation, the registry."""
from gpaco.data.batched_views import BatchedCompose, build_batched_transform
from gpaco.data.cifar import CIFAR10LT, CIFAR100LT
from gpaco.data.embedded import EmbeddedFashionMNISTLT
from gpaco.data.fashion_mnist import FashionMNISTLT
from gpaco.data.image_folder import LongTailImageFolder
from gpaco.data.longtail import longtail_counts, longtail_indices

from gpaco.data.split_file import INat2018, ImageNetLT, PlacesLT, SplitFileDataset
from gpaco.data.tensor_loader import TensorLoader
from gpaco.data.transforms import TwoViews, build_transform, build_views

__all__ = [
    "CIFAR10LT", "CIFAR100LT", "BatchedCompose", "EmbeddedFashionMNISTLT",
    "FashionMNISTLT", "INat2018", "ImageNetLT", "LongTailImageFolder", "PlacesLT",
    "SplitFileDataset", "TensorLoader", "TwoViews", "build_batched_transform",
    "build_transform", "build_views", "longtail_counts", "longtail_indices",
]
