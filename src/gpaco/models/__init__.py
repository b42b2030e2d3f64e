"""Backbones, projection heads, the labeled queue and the PaCo / GPaCo / baseline wrappers."""

from gpaco.models.backbones import BACKBONES, create_backbone, feature_dim_of, list_backbones
from gpaco.models.classifier import Classifier
from gpaco.models.freeze import freeze
from gpaco.models.ghost_bn import GhostBatchNorm1d, GhostBatchNorm2d, convert_to_ghost_bn
from gpaco.models.gpaco import GPaCoModel
from gpaco.models.heads import HEAD_KINDS, projection_head
from gpaco.models.paco import PaCoModel
from gpaco.models.plain import attach_classifier, create_network
from gpaco.models.queue import LabeledQueue
from gpaco.models.train_output import TrainOutput

__all__ = [
    "BACKBONES",
    "HEAD_KINDS",
    "Classifier",
    "GPaCoModel",
    "GhostBatchNorm1d",
    "GhostBatchNorm2d",
    "LabeledQueue",
    "PaCoModel",
    "TrainOutput",
    "attach_classifier",
    "convert_to_ghost_bn",
    "create_backbone",
    "create_network",
    "feature_dim_of",
    "freeze",
    "list_backbones",
    "projection_head",
]
