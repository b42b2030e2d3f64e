"""GPaCo: PaCo without the momentum encoder (GPaCo, TPAMI 2023).

Both views go through the same online encoder with gradient; both are anchors and both get the
center (classification) term. The queue of second-view keys is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gpaco.models.contrastive import ContrastiveModel, two_views
from gpaco.models.train_output import TrainOutput


class GPaCoModel(ContrastiveModel):
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
            authors run two separate B-sized passes, i.e. per-view statistics, which is the
            default (False). Irrelevant for backbones without BatchNorm. With ghost
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
        joint_forward: bool = False,
    ) -> None:
        super().__init__(backbone, num_classes, dim=dim, queue_size=queue_size, head=head,
                         normalize_feature=normalize_feature)
        self.joint_forward = joint_forward

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
        z = self._embed(h)  # rows [0, B) = q, rows [B, 2B) = k: all anchors
        features, all_labels = self._contrast_set(z, torch.cat([labels, labels]))
        center_logits = self.classifier(self._center_input(h))
        if self.training:
            self.queue.enqueue(z[batch:].detach(), labels)
        return TrainOutput(features, all_labels, center_logits)
