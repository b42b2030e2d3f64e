"""Class priors as checked probability vectors (the one place a prior is validated)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gpaco.errors import UserError


def as_prior(values: Sequence[float] | torch.Tensor, num_classes: int, what: str) -> torch.Tensor:
    """`values` (counts or probabilities) normalised to a float64 prior of `num_classes` entries.

    Refused in one line: a wrong length, a negative or non-finite entry, an all-zero vector."""
    p = torch.as_tensor(values, dtype=torch.float64).flatten()
    if p.numel() != num_classes:
        raise UserError(f"{what} has {p.numel()} entries but the logits have {num_classes} classes")
    if not torch.isfinite(p).all() or (p < 0).any():
        raise UserError(f"{what} must be finite and non-negative; entry {_first_bad(p)} is "
                        f"{float(p[_first_bad(p)])}")
    if p.sum() <= 0:
        raise UserError(f"{what} sums to 0")
    return p / p.sum()


def _first_bad(p: torch.Tensor) -> int:
    bad = ~torch.isfinite(p) | (p < 0)
    return int(bad.nonzero()[0, 0])


def log_prior(prior: torch.Tensor) -> torch.Tensor:
    """log of a prior; a class of prior 0 gets a large negative number, not -inf (no NaN)."""
    return prior.clamp(min=1e-12).log()
