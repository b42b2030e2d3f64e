"""Training criteria over plain tensors: `criterion(features, labels, center_logits) -> loss`."""

from gpaco.losses.balanced_softmax import BalancedSoftmaxLoss, LogitAdjustedLoss
from gpaco.losses.center_weight import center_weights
from gpaco.losses.cross_entropy import CrossEntropyLoss, cross_entropy
from gpaco.losses.multitask import MultiTaskLoss
from gpaco.losses.paco import PaCoLoss, paco_loss
from gpaco.losses.prior import log_prior
from gpaco.losses.supcon import SupConLoss, supcon_loss

__all__ = [
    "BalancedSoftmaxLoss",
    "CrossEntropyLoss",
    "LogitAdjustedLoss",
    "MultiTaskLoss",
    "PaCoLoss",
    "SupConLoss",
    "center_weights",
    "cross_entropy",
    "log_prior",
    "paco_loss",
    "supcon_loss",
]
