"""PaCo: online encoder + momentum key encoder + queue + linear centers (PaCo, ICCV 2021).

Differences from the authors' `moco/builder.py`, on purpose:
- the classifier reads the backbone's pooled output directly (no forward hook on a child index);
- there is no momentum copy of the classifier (`linear_k` is updated but never used upstream);
- empty queue slots are left out of the contrast set (see `gpaco.models.queue`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.distributed import shuffled_forward
from gpaco.models.contrastive import ContrastiveModel, two_views
from gpaco.models.train_output import TrainOutput


class PaCoModel(ContrastiveModel):
    """PaCo wrapper around a pooled-feature backbone.

    Args:
        backbone: maps images to (B, feature_dim) with `.feature_dim`.
        num_classes: number of centers (classifier outputs).
        dim: projection (embedding) width.
        queue_size: K, rows of the key queue (0 = no queue).
        momentum: m of the key encoder's EMA, key = m * key + (1 - m) * online.
        head: projection head kind ("bn" in PaCo, see `projection_head`).
        normalize_feature: L2-normalise the pooled feature before the classifier (the authors'
            `--normalize`, off in every released script).
        shuffle_bn: encode the keys of a random re-partition of the global batch (MoCo's
            shuffle-BN, `gpaco.distributed.shuffled_forward`), so the key encoder's batch-norm
            statistics are not those of the query's batch.

    Under DDP the in-batch part of the contrast set is the global batch
    (`gpaco.distributed.gather_batch`), as on one process; the upstream code contrasts each
    GPU's anchors with its local q and k only.

    The key encoder (`key_backbone`, `key_head`) is a frozen deep copy of the online one. Only
    its parameters are EMA'd; its buffers (BatchNorm running statistics) evolve from its own
    forward passes, as in MoCo. The update runs at the start of every training-mode
    `forward_train`, before the keys are computed.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        dim: int = 128,
        queue_size: int = 8192,
        momentum: float = 0.999,
        head: str = "bn",
        normalize_feature: bool = False,
        shuffle_bn: bool = False,
    ) -> None:
        super().__init__(backbone, num_classes, dim=dim, queue_size=queue_size, head=head,
                         normalize_feature=normalize_feature)
        self.key_backbone = copy.deepcopy(backbone)
        self.key_head = copy.deepcopy(self.head)
        for p in self._key_params():
            p.requires_grad_(False)
        self.momentum = momentum
        self.shuffle_bn = shuffle_bn

    def _online_params(self) -> list[Tensor]:
        return [*self.backbone.parameters(), *self.head.parameters()]

    def _key_params(self) -> list[Tensor]:
        return [*self.key_backbone.parameters(), *self.key_head.parameters()]

    @torch.no_grad()
    def momentum_update(self) -> None:
        """key_param = m * key_param + (1 - m) * online_param, for every parameter."""
        key, online = self._key_params(), self._online_params()
        torch._foreach_mul_(key, self.momentum)
        torch._foreach_add_(key, [p.detach() for p in online], alpha=1.0 - self.momentum)

    @torch.no_grad()
    def _key_forward(self, x: Tensor) -> Tensor:
        """L2-normalised keys of `x` from the momentum encoder.

        With `shuffle_bn`, the batch is shuffled across ranks, encoded and unshuffled.
        """
        if self.shuffle_bn:
            return shuffled_forward(self._encode_keys, x)
        return self._encode_keys(x)

    def _encode_keys(self, x: Tensor) -> Tensor:
        return F.normalize(self.key_head(self.key_backbone(x)), dim=1)

    def forward_train(self, views: Sequence[Tensor], labels: Tensor) -> TrainOutput:
        """Contrast set [q; k; queue] with labels [y; y; queue_labels] and query-view logits.

        In training mode this also EMA-updates the key encoder (first) and enqueues the keys
        (last, after the contrast set is built); in eval mode it changes no state.
        """
        v1, v2 = two_views(views)
        if self.training:
            self.momentum_update()
        h = self.backbone(v1)
        q = self._embed(h)  # the anchors
        k = self._key_forward(v2)
        features, all_labels = self._contrast_set(torch.cat([q, k]), torch.cat([labels, labels]))
        center_logits = self.classifier(self._center_input(h))
        if self.training:
            self.queue.enqueue(k, labels)
        return TrainOutput(features, all_labels, center_logits)
