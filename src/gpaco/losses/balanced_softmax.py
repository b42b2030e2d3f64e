"""Logit-adjusted cross-entropy (Menon et al., 2021) and Balanced Softmax (Ren et al., 2020).

Both add tau * log(n_c / N) to the logits during training only; Balanced Softmax is tau = 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses._numerics import upcast
from gpaco.losses.cross_entropy import cross_entropy
from gpaco.losses.prior import log_prior


class LogitAdjustedLoss(nn.Module):
    """CE on `center_logits + tau * log_prior`; `features` are ignored."""

    log_prior: Tensor

    def __init__(
        self,
        class_counts: Sequence[int] | Tensor,
        tau: float = 1.0,
        label_smoothing: float = 0.0,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise UserError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.tau = float(tau)
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = ignore_index
        # Not persistent: derived from the dataset, so checkpoints do not depend on it.
        self.register_buffer("log_prior", log_prior(class_counts), persistent=False)

    def forward(self, features: Tensor | None, labels: Tensor, center_logits: Tensor) -> Tensor:
        if center_logits.shape[1] != self.log_prior.numel():
            raise ValueError(
                f"center_logits has {center_logits.shape[1]} classes, "
                f"class_counts has {self.log_prior.numel()}"
            )
        logits = upcast(center_logits)
        adjusted = logits + self.tau * self.log_prior.to(logits)
        return cross_entropy(
            adjusted,
            labels[: center_logits.shape[0]],
            label_smoothing=self.label_smoothing,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.log_prior.numel()}, tau={self.tau}, "
            f"label_smoothing={self.label_smoothing}, ignore_index={self.ignore_index}"
        )


class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """CE on `center_logits + log_prior` (logit adjustment with tau = 1)."""

    def __init__(
        self,
        class_counts: Sequence[int] | Tensor,
        label_smoothing: float = 0.0,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__(class_counts, 1.0, label_smoothing, ignore_index)
