"""Backbones, projection heads, the labeled queue and the PaCo / GPaCo / baseline wrappers."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from gpaco.errors import UserError
from gpaco.models.backbones import BACKBONES, create_backbone, list_backbones
from gpaco.models.classifier import Classifier
from gpaco.models.gpaco import GPaCoModel
from gpaco.models.ghost_bn import GhostBatchNorm1d, GhostBatchNorm2d, convert_to_ghost_bn
from gpaco.models.heads import HEAD_KINDS, projection_head
from gpaco.models.output import TrainOutput
from gpaco.models.paco import PaCoModel
from gpaco.models.queue import LabeledQueue

# "multitask" = Balanced Softmax + alpha * SupCon on GPaCo's shared encoder with a queue.
MODELS: dict[str, type[nn.Module]] = {
    "paco": PaCoModel,
    "gpaco": GPaCoModel,
    "multitask": GPaCoModel,
    "ce": Classifier,
    "balanced_softmax": Classifier,
    "logit_adjusted": Classifier,
}


def build_model(method: str, backbone: nn.Module, num_classes: int, **params: Any) -> nn.Module:
    """Wrap `backbone` for `method` (a key of `MODELS`); `params` are the wrapper's options.

    Raises:
        UserError: unknown method or an option the wrapper does not take.
    """
    if method not in MODELS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(MODELS)}")
    cls = MODELS[method]
    accepted = [
        n for n in inspect.signature(cls).parameters if n not in ("backbone", "num_classes")
    ]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UserError(
            f"method {method!r} ({cls.__name__}) does not take {', '.join(unknown)}; "
            f"it takes {', '.join(accepted)}"
        )
    return cls(backbone, num_classes, **params)


__all__ = [
    "BACKBONES",
    "HEAD_KINDS",
    "MODELS",
    "Classifier",
    "GPaCoModel",
    "GhostBatchNorm1d",
    "GhostBatchNorm2d",
    "LabeledQueue",
    "PaCoModel",
    "TrainOutput",
    "build_model",
    "convert_to_ghost_bn",
    "create_backbone",
    "list_backbones",
    "projection_head",
]
