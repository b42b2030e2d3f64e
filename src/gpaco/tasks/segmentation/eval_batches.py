"""Evaluation batches of images that differ in size (real datasets: VOC, ADE20K, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def collate_by_size(batch: Sequence[tuple[Tensor, Tensor]]) -> list[tuple[Tensor, Tensor]]:
    """The batch as groups of consecutive samples of one size, each stacked: evaluation keeps
    every image at its own size (torch's default collate cannot stack different sizes)."""
    groups: list[list[tuple[Tensor, Tensor]]] = []
    for image, mask in batch:
        if groups and groups[-1][0][0].shape == image.shape and \
                groups[-1][0][1].shape == mask.shape:
            groups[-1].append((image, mask))
        else:
            groups.append([(image, mask)])
    return [(torch.stack([i for i, _ in g]), torch.stack([m for _, m in g])) for g in groups]
