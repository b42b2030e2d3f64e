"""Segmentation datasets (real on-disk layouts + the embedded demo) and joint transforms.

Every dataset returns `(image, mask)` pairs: tv_tensors.Image uint8 (3, H, W) and
tv_tensors.Mask int64 (H, W) with train ids in [0, C) and 255 for ignore, passed through
`transform(image, mask)` when one is given (see `train_transform` / `eval_transform`).
"""

from gpaco.data.segmentation.ade20k import ADE20K
from gpaco.data.segmentation.cityscapes import Cityscapes, label_ids_to_train_ids
from gpaco.data.segmentation.coco_stuff import COCOStuff10k, coco_ids_to_train_ids
from gpaco.data.segmentation.demo import EmbeddedSegmentationLT
from gpaco.data.segmentation.paired_files import IGNORE_INDEX, PairedFileDataset
from gpaco.data.segmentation.pascal_context import PascalContext59, prepare_pascal_context
from gpaco.data.segmentation.transforms import eval_transform, train_transform
from gpaco.data.segmentation.voc import PascalVOC

# name -> dataset class, for the integrator's dataset registry.
SEGMENTATION_DATASETS = {
    "ade20k": ADE20K,
    "cityscapes": Cityscapes,
    "coco_stuff10k": COCOStuff10k,
    "pascal_context59": PascalContext59,
    "voc2012": PascalVOC,
    "seg_demo": EmbeddedSegmentationLT,
}
# name -> (conversion of the release files into the layout the dataset reads, its sources), for
# `gpaco prepare NAME SOURCE...`; datasets read as released need none.
PREPARERS = {
    "pascal_context59": (prepare_pascal_context, ("VOC2010_DIR", "TRAINVAL_MAT_DIR")),
}

__all__ = [
    "ADE20K",
    "COCOStuff10k",
    "Cityscapes",
    "EmbeddedSegmentationLT",
    "IGNORE_INDEX",
    "PairedFileDataset",
    "PascalContext59",
    "PREPARERS",
    "PascalVOC",
    "SEGMENTATION_DATASETS",
    "coco_ids_to_train_ids",
    "eval_transform",
    "label_ids_to_train_ids",
    "prepare_pascal_context",
    "train_transform",
]
