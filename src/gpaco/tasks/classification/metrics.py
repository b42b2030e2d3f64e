"""Classification metrics for long-tailed evaluation.

Groups follow `shot_acc` of the authors' code: from the *training* counts, many-shot classes
have more than 100 images, few-shot fewer than 20, medium-shot the rest (20-100). Group accuracy
is the unweighted mean of the per-class accuracies of the classes in the group that appear in
the evaluation labels; top-1 and top-5 are plain sample accuracies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from gpaco.evaluation.report import calibration_line

MANY_SHOT = 100
FEW_SHOT = 20


def shot_groups(class_counts: list[int]) -> dict[str, list[int]]:
    """Class indices in each of the many / medium / few groups."""
    groups: dict[str, list[int]] = {"many": [], "medium": [], "few": []}
    for c, n in enumerate(class_counts):
        key = "many" if n > MANY_SHOT else "few" if n < FEW_SHOT else "medium"
        groups[key].append(c)
    return groups


class ConfusionCounter:
    """Accumulates per-class correct / total counts and top-k hits on the device (no host sync)."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu", topk: int = 5):
        self.num_classes = num_classes
        self.topk = min(topk, num_classes)
        self.correct = torch.zeros(num_classes, dtype=torch.long, device=device)
        self.total = torch.zeros(num_classes, dtype=torch.long, device=device)
        self.topk_hits = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        top = logits.topk(self.topk, dim=1).indices
        hit1 = top[:, 0] == labels
        self.correct += torch.bincount(labels[hit1], minlength=self.num_classes)
        self.total += torch.bincount(labels, minlength=self.num_classes)
        self.topk_hits += (top == labels[:, None]).any(dim=1).sum()


@dataclass
class EvalResult:
    top1: float
    top5: float
    many: float | None
    medium: float | None
    few: float | None
    per_class: list[float | None] = field(repr=False)
    num_samples: int = 0
    # gpaco.evaluation.calibration.CalibrationResult, where the evaluation computed it
    calibration: Any = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"top1": self.top1, "top5": self.top5, "many": self.many,
                               "medium": self.medium, "few": self.few}
        if self.calibration is not None:
            out["calibration"] = self.calibration.summary()
        return out


def format_pct(value: float | None) -> str:
    """A percentage for printing; '-' for a group with no classes."""
    return "-" if value is None else f"{value:.2f}"


def result_lines(split: str, result: EvalResult) -> str:
    """What `gpaco eval` prints of a classification result on `split`: the accuracies, then
    the calibration line."""
    f = format_pct
    return (f"{split}: top1 {f(result.top1)} top5 {f(result.top5)} | many {f(result.many)} "
            f"| medium {f(result.medium)} | few {f(result.few)} ({result.num_samples} images)\n"
            f"{calibration_line(result.calibration.summary())}")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(counter: ConfusionCounter, train_class_counts: list[int] | None) -> EvalResult:
    """Percentages from accumulated counts; classes absent from the labels are None.

    Without the training class counts the many / medium / few groups are unknown: None (never
    guessed from the evaluated split's own counts)."""
    correct = counter.correct.cpu().tolist()
    total = counter.total.cpu().tolist()
    n = sum(total)
    per_class = [100.0 * c / t if t else None for c, t in zip(correct, total)]
    groups = shot_groups(train_class_counts) if train_class_counts is not None else {}
    group_acc = {
        g: _mean([per_class[c] for c in idx if per_class[c] is not None])
        for g, idx in groups.items()
    }
    group_acc = {g: group_acc.get(g) for g in ("many", "medium", "few")}
    return EvalResult(
        top1=100.0 * sum(correct) / max(n, 1),
        top5=100.0 * int(counter.topk_hits) / max(n, 1),
        many=group_acc["many"], medium=group_acc["medium"], few=group_acc["few"],
        per_class=per_class, num_samples=n,
    )


def evaluate_logits(logits: torch.Tensor, labels: torch.Tensor,
                    train_class_counts: list[int] | None) -> EvalResult:
    """Metrics of a whole set of logits at once (convenience for users and tests)."""
    counter = ConfusionCounter(logits.shape[1], logits.device)
    counter.update(logits, labels)
    return summarize(counter, train_class_counts)
