"""The training forward as the steps call it: the wrapper's `forward_train`, then the criterion."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn


class TrainForward(nn.Module):
    """Makes `forward_train` the module's forward, so DDP and torch.compile see the training pass."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor):
        return self.model.forward_train(views, labels)


def forward_loss(module: nn.Module, criterion: nn.Module, views: list[torch.Tensor],
                 labels: torch.Tensor) -> torch.Tensor:
    """The training forward and the criterion on its output (the loss, not yet reduced).

    The output is a dataclass whose fields are the criterion's arguments, in order: a
    classification `TrainOutput` (features, labels, center_logits) or a segmentation
    `SegmentationLossInputs` (logits, labels, aux_logits, embeddings).
    """
    out = module(views, labels)
    return criterion(*(getattr(out, f.name) for f in dataclasses.fields(out)))
