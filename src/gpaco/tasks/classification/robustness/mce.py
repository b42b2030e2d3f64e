"""Summary numbers of ImageNet-C from top-1 errors per (corruption, severity).

Two different numbers share the name "mCE"; each function says which it is:
- `mce_unnormalized`: 100 x mean_c mean_s E[c, s] over the 15 corruptions. The GPaCo paper's
  "mCE" (and what Hendrycks' test script prints as "mCE (unnormalized)").
- `mce_alexnet`: 100 x mean_c (mean_s E[c, s] / AlexNet[c]). Hendrycks & Dietterich's standard
  mCE, the paper's "rel. mCE". (Their "Relative mCE", which subtracts clean errors, is a third
  number and is not computed here.)
Errors are fractions in [0, 1]. On a partial table each corruption is averaged over the
severities present and the mean runs over the corruptions present; results on such tables are
flagged by the caller as partial.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gpaco.errors import UserError
from gpaco.tasks.classification.robustness.corruptions import ALEXNET_ERRORS, CORRUPTIONS

ErrorTable = Mapping[tuple[str, int], float]


def corruption_errors(errors: ErrorTable) -> dict[str, float]:
    """Mean error over the severities present, per corruption (in first-seen order)."""
    per: dict[str, list[float]] = {}
    for (corruption, _severity), err in errors.items():
        per.setdefault(corruption, []).append(err)
    return {c: sum(v) / len(v) for c, v in per.items()}


def _mce_corruptions(errors: ErrorTable, corruptions: Iterable[str]) -> list[str]:
    present = corruption_errors(errors)
    chosen = [c for c in corruptions if c in present]
    if not chosen:
        raise UserError("no ImageNet-C corruption of the mCE was evaluated")
    return chosen


def mce_unnormalized(errors: ErrorTable, corruptions: Iterable[str] = CORRUPTIONS) -> float:
    """The paper's "mCE": 100 x the mean over corruptions of the mean error over severities."""
    per = corruption_errors(errors)
    chosen = _mce_corruptions(errors, corruptions)
    return 100.0 * sum(per[c] for c in chosen) / len(chosen)


def mce_alexnet(errors: ErrorTable, corruptions: Iterable[str] = CORRUPTIONS) -> float:
    """Hendrycks' standard mCE (the paper's "rel. mCE"): each corruption's error / AlexNet's."""
    per = corruption_errors(errors)
    chosen = _mce_corruptions(errors, corruptions)
    return 100.0 * sum(per[c] / ALEXNET_ERRORS[c] for c in chosen) / len(chosen)
