"""Datasets (torchvision style, long-tailed), transforms, batched GPU augmentation, the registry."""
from gpaco.data.cifar import CIFAR10LT, CIFAR100LT
from gpaco.data.embedded import EmbeddedFashionMNISTLT
from gpaco.data.fashion_mnist import FashionMNISTLT
from gpaco.data.gpu_aug import GPUCompose, build_gpu_transform
from gpaco.data.gpu_loader import GPUTensorLoader
from gpaco.data.image_folder import LongTailImageFolder
from gpaco.data.longtail import longtail_counts, longtail_indices
from gpaco.data.registry import DATASETS, build_dataset
from gpaco.data.split_file import SplitFileDataset, imagenet_lt, inat2018, places_lt
from gpaco.data.transforms import TwoViews, build_transform, build_views

__all__ = [
    "CIFAR10LT", "CIFAR100LT", "DATASETS", "EmbeddedFashionMNISTLT", "FashionMNISTLT",
    "GPUCompose", "GPUTensorLoader", "LongTailImageFolder", "SplitFileDataset", "TwoViews",
    "build_dataset", "build_gpu_transform", "build_transform", "build_views", "imagenet_lt",
    "inat2018", "longtail_counts", "longtail_indices", "places_lt",
]
