"""GPaCo: PaCo without the momentum encoder (GPaCo, TPAMI 2023).

Both views go through the same online encoder with gradient; both are anchors and both get the
center (classification) term. The queue of second-view keys is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.distributed import gather_batch
from gpaco.models._common import feature_dim_of, two_views
from gpaco.models.heads import projection_head
from gpaco.models.output import TrainOutput
from gpaco.models.queue import LabeledQueue


class GPaCoModel(nn.Module):
    """GPaCo wrapper around a pooled-feature backbone (also the multi-task SupCon+BS baseline).

    Args:
        backbone: maps images to (B, feature_dim) with `.feature_dim`.
        num_classes: number of centers (classifier outputs).
        dim: projection (embedding) width.
        queue_size: K, rows of the key queue (0 = no queue).
        head: projection head kind ("nobn" for ResNets, "gelu" for ViTs).
        normalize_feature: L2-normalise the pooled feature before the classifier.
        joint_forward: run both views through the backbone as one concatenated 2B batch (one
            launch per layer, faster). BatchNorm then sees statistics over both views; the
            authors run two separate B-sized passes, i.e. per-view statistics. Set False to
            reproduce that exactly. Irrelevant for backbones without BatchNorm. With ghost
            batch norm whose group size divides B, the groups never mix the views.

    Under DDP the in-batch part of the contrast set is the global batch
    (`gpaco.distributed.gather_batch`), as on one process.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        dim: int = 128,
        queue_size: int = 8192,
        head: str = "nobn",
        normalize_feature: bool = False,
        joint_forward: bool = True,
    ) -> None:
        super().__init__()
        feature_dim = feature_dim_of(backbone)
        self.backbone = backbone
        self.head = projection_head(head, feature_dim, dim)
        self.classifier = nn.Linear(feature_dim, num_classes)
        self.queue = LabeledQueue(queue_size, dim)
        self.normalize_feature = normalize_feature
        self.joint_forward = joint_forward

    def _center_input(self, h: Tensor) -> Tensor:
        return F.normalize(h, dim=1) if self.normalize_feature else h

    def forward(self, x: Tensor) -> Tensor:
        """Inference: raw classifier logits (B, C) on the pooled feature (no prior)."""
        return self.classifier(self._center_input(self.backbone(x)))

    def _pooled_both(self, v1: Tensor, v2: Tensor) -> Tensor:
        if self.joint_forward:
            return self.backbone(torch.cat([v1, v2]))
        return torch.cat([self.backbone(v1), self.backbone(v2)])

    def forward_train(self, views: Sequence[Tensor], labels: Tensor) -> TrainOutput:
        """Anchors [q; k] (2B), contrast set [q; k; queue], center logits of both views (2B, C).

        In training mode the detached keys k and labels are enqueued after the contrast set is
        built; in eval mode no state changes.
        """
        v1, v2 = two_views(views)
        batch = v1.shape[0]
        h = self._pooled_both(v1, v2)
        z = F.normalize(self.head(h), dim=1)  # rows [0, B) = q, rows [B, 2B) = k
        # The global [q; k] under DDP (anchors = this rank's [q; k], first); z on one process.
        batch_z, batch_labels = gather_batch(z, torch.cat([labels, labels]))
        queue_keys, queue_labels = self.queue.contents()
        # torch.cat copies, so the enqueue below cannot change this step's contrast set.
        features = torch.cat([batch_z, queue_keys])
        all_labels = torch.cat([batch_labels, queue_labels])
        center_logits = self.classifier(self._center_input(h))
        if self.training:
            self.queue.enqueue(z[batch:].detach(), labels)
        return TrainOutput(features, all_labels, center_logits)
