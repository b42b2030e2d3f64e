"""Log class prior used by Balanced Softmax, logit adjustment and PaCo's center rebalance."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gpaco.errors import UserError

# Added inside the log so that a class with no training sample gets a large negative prior
# (log 1e-9 = -20.7) instead of -inf, as in the authors' code.
PRIOR_EPS = 1e-9


def log_prior(class_counts: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Return log(n_c / N + 1e-9) as a float32 tensor of shape (C,)."""
    counts = torch.as_tensor(class_counts, dtype=torch.float64).flatten()
    if counts.numel() == 0 or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise UserError("class_counts must be non-negative with a positive total")
    return torch.log(counts / counts.sum() + PRIOR_EPS).float()
