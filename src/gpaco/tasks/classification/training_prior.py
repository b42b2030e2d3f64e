"""What a classification run's training did with the class prior, as evaluation needs it: whether
the loss added log prior to the logits (then the test logits target a balanced prior), and
PaCo / GPaCo's extra per-class discount, the center share at the loss optimum
(docs/rebalancing.md)."""

from __future__ import annotations

import torch

from gpaco.config import Config
from gpaco.losses import PaCoLoss, center_weights
from gpaco.tasks.classification.build import build_criterion
from gpaco.tasks.classification.methods import contrast_size, get_method


def prior_in_loss(cfg: Config) -> bool:
    """Whether training added log prior to the (center) logits."""
    method = get_method(cfg.method)
    return method.prior == "required" or (method.prior == "optional" and bool(cfg.loss.prior))


def center_shares(cfg: Config, class_counts: list[int]) -> torch.Tensor | None:
    """w_y = beta / (beta + alpha M pi_y) of a PaCo / GPaCo run, None for other methods."""
    if not isinstance(build_criterion(cfg, len(class_counts), class_counts), PaCoLoss):
        return None
    return center_weights(class_counts, alpha=cfg.loss.alpha, beta=cfg.loss.beta,
                          contrast_size=contrast_size(cfg))
