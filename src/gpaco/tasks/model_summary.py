"""The parameter line of a config's model without its data (`gpaco config`): the model is built
on PyTorch's meta device (no memory, no weights read), with the dataset's class count."""

from __future__ import annotations

import torch

from gpaco import tasks
from gpaco.config import Config
from gpaco.models.summary import describe_parts

# Class counts of the shipped datasets (the data is not read here).
NUM_CLASSES = {"cifar10_lt": 10, "cifar100_lt": 100, "fashion_mnist_lt": 10, "embedded": 10,
               "imagenet_lt": 1000, "places_lt": 365, "inat2018": 8142, "ade20k": 150,
               "cityscapes": 19, "coco_stuff10k": 171, "pascal_context59": 59, "voc2012": 21,
               "seg_demo": 11}


def parameter_line(cfg: Config) -> str:
    """`# parameters: ...` for the config's model; heads at the dataset's class count (an image
    folder's count is only known from its files: data.num_classes, else 1,000 is assumed)."""
    known = cfg.data.num_classes or NUM_CLASSES.get(cfg.data.dataset)
    classes = known or 1000
    meta = cfg.replace(model=cfg.model.replace(pretrained=False))
    with torch.device("meta"):
        model = tasks.task_of(cfg).model_for(meta, classes)
    counted = f"{classes:,} classes" if known else "1,000 classes assumed (data.num_classes)"
    return f"# {describe_parts(model)} ({counted})"
