"""What PaCo and GPaCo share: classifier centers, a projection head and the key queue."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.distributed import gather_batch
from gpaco.errors import UserError
from gpaco.models.classifier import Classifier
from gpaco.models.heads import projection_head
from gpaco.models.queue import LabeledQueue


class ContrastiveModel(Classifier):
    """Backbone + linear centers (inference as `Classifier`) + projection head + labeled queue."""

    def __init__(self, backbone: nn.Module, num_classes: int, *, dim: int, queue_size: int,
                 head: str, normalize_feature: bool) -> None:
        super().__init__(backbone, num_classes, normalize_feature=normalize_feature)
        self.head = projection_head(head, self.classifier.in_features, dim)
        init_fc = getattr(backbone, "init_fc_", None)  # the head's last layer is the authors'
        if init_fc is not None:  # backbone `fc`, so it keeps that fc's init (CIFAR ResNets)
            init_fc(self.head[-1])
        self.queue = LabeledQueue(queue_size, dim)

    def _embed(self, h: Tensor) -> Tensor:
        return F.normalize(self.head(h), dim=1)

    def _contrast_set(self, batch_z: Tensor, batch_labels: Tensor) -> tuple[Tensor, Tensor]:
        """[in-batch rows (anchors first); queue] and their labels.

        Under DDP the in-batch rows are the global batch (`gather_batch`), this rank's first.
        `torch.cat` copies the queue, so a later enqueue cannot change this step's set.
        """
        batch_z, batch_labels = gather_batch(batch_z, batch_labels)
        queue_keys, queue_labels = self.queue.contents()
        return torch.cat([batch_z, queue_keys]), torch.cat([batch_labels, queue_labels])


def two_views(views: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    if len(views) != 2:
        raise UserError(f"this model needs two views per image, got {len(views)}")
    return views[0], views[1]
