"""Calibration of classifier probabilities, overall and per many / medium / few-shot group.

Metrics (softmax of the logits; a sample belongs to the group of its *true* class):
- ECE: top-label expected calibration error over `bins` equal-width confidence bins
  [b/B, (b+1)/B) (a confidence of exactly 1 counts in the last bin), sum_b n_b/N |acc_b - conf_b|
  (Guo et al. 2017; torchmetrics' `MulticlassCalibrationError(norm="l1")`, which rounds
  confidences to float32 and bins those equal to 1 apart).
- adaptive ECE: the same over `bins` equal-mass bins of the sorted confidences (Nixon et al. 2019).
- MCE: the largest |acc_b - conf_b| of a non-empty equal-width bin (torchmetrics' norm="max").
- NLL: mean -log p(y | x) in nats; Brier: mean sum_k (p_k - [k == y])^2, in [0, 2].
- class-wise ECE: for each class c, the ECE of p_c against [y == c] over all samples (equal-width
  bins), averaged over the classes (Kull et al. 2019); per group over the group's classes.
ECE, adaptive ECE, MCE and class-wise ECE are in percent, like accuracies.

`CalibrationCounter` accumulates what these need batch by batch on the evaluation device: five
numbers per sample and a (C, B) table for class-wise ECE, never the (N, C) probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from gpaco import distributed as gdist

BINS = 15
GROUPS = ("many", "medium", "few")
METRICS = ("ece", "adaptive_ece", "mce", "nll", "brier", "classwise_ece")


@dataclass
class ReliabilityBins:
    """Equal-width bins of top-label confidence: samples, mean confidence, accuracy (0-1)."""

    count: list[int]
    confidence: list[float | None]
    accuracy: list[float | None]


@dataclass
class CalibrationResult:
    """Scalars per scope ("overall", "many", "medium", "few"; a group without classes is None)
    and the reliability bins of each scope."""

    metrics: dict[str, dict[str, float] | None]
    reliability: dict[str, ReliabilityBins] = field(repr=False)
    bins: int = BINS

    def summary(self) -> dict[str, dict[str, float] | None]:
        return self.metrics


def _bin_index(values: torch.Tensor, bins: int) -> torch.Tensor:
    edges = torch.linspace(0, 1, bins + 1, dtype=values.dtype, device=values.device)
    return (torch.bucketize(values.contiguous(), edges, right=True) - 1).clamp(0, bins - 1)


class CalibrationCounter:
    """Per-sample confidence, hit, label, NLL and Brier, and class-wise bin sums."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu", bins: int = BINS):
        self.num_classes, self.bins = num_classes, bins
        self.samples: list[torch.Tensor] = []  # (n, 5) float64: conf, hit, label, nll, brier
        # class-wise: per (class, bin) the sample count, the sum of p_c and the count of y == c
        self.classwise = torch.zeros(3, num_classes, bins, dtype=torch.float64, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        logp = torch.log_softmax(logits.double(), dim=1)
        p = logp.exp()
        conf, pred = p.max(dim=1)
        onehot = torch.nn.functional.one_hot(labels, self.num_classes).double()
        nll = -logp.gather(1, labels[:, None])[:, 0]
        brier = ((p - onehot) ** 2).sum(dim=1)
        self.samples.append(torch.stack(
            [conf, (pred == labels).double(), labels.double(), nll, brier], dim=1))
        idx = _bin_index(p, self.bins)  # (n, C)
        for k, src in enumerate((torch.ones_like(p), p, onehot)):
            self.classwise[k].scatter_add_(1, idx.T, src.T)

    def reduce(self) -> None:
        """Gather every rank's samples and sum the class-wise tables (no-op on one process)."""
        if gdist.world_size() == 1:
            return
        dist.all_reduce(self.classwise, op=dist.ReduceOp.SUM)
        shards: list[torch.Tensor | None] = [None] * gdist.world_size()
        dist.all_gather_object(shards, self._stacked().cpu())
        self.samples = [s.to(self.classwise.device) for s in shards if s is not None]

    def _stacked(self) -> torch.Tensor:
        device = self.classwise.device
        return torch.cat(self.samples) if self.samples else torch.zeros(0, 5, device=device,
                                                                          dtype=torch.float64)

    def result(self, groups: dict[str, list[int]] | None) -> CalibrationResult:
        """The metrics overall and per group (`groups`: class indices of many / medium / few,
        from the training counts; None: groups unknown, reported as None)."""
        s = self._stacked().cpu()
        cw = self.classwise.cpu()
        scopes: dict[str, list[int] | None] = {"overall": None}
        for g in GROUPS:
            scopes[g] = groups.get(g) if groups is not None else []
        metrics: dict[str, dict[str, float] | None] = {}
        reliability: dict[str, ReliabilityBins] = {}
        for scope, classes in scopes.items():
            if classes is None:
                rows, cls = s, list(range(self.num_classes))
            else:
                mask = torch.isin(s[:, 2].long(), torch.tensor(classes, dtype=torch.long))
                rows, cls = s[mask], classes
            if not len(rows) or not cls:
                metrics[scope] = None
                continue
            metrics[scope] = _scalars(rows, cw[:, cls], self.bins)
            reliability[scope] = _reliability(rows[:, 0], rows[:, 1], self.bins)
        return CalibrationResult(metrics, reliability, self.bins)


def _equal_width(conf: torch.Tensor, hit: torch.Tensor, bins: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per bin: count, summed confidence, summed hits."""
    idx = _bin_index(conf, bins)
    count = torch.bincount(idx, minlength=bins).double()
    return (count, torch.bincount(idx, conf, minlength=bins),
            torch.bincount(idx, hit, minlength=bins))


def _gap_terms(count: torch.Tensor, conf_sum: torch.Tensor, hit_sum: torch.Tensor
               ) -> tuple[float, float]:
    """(ECE, MCE) of binned sums, as fractions."""
    full = count > 0
    gap = (hit_sum[full] - conf_sum[full]).abs() / count[full]
    ece = float((gap * count[full]).sum() / count.sum())
    return ece, float(gap.max()) if len(gap) else 0.0


def adaptive_ece(conf: torch.Tensor, hit: torch.Tensor, bins: int = BINS) -> float:
    """ECE over equal-mass bins (the sorted confidences cut into `bins` near-equal chunks)."""
    order = conf.argsort()
    total = 0.0
    for chunk in torch.tensor_split(order, min(bins, len(order))):
        total += float((hit[chunk].sum() - conf[chunk].sum()).abs())
    return total / len(conf)


def _scalars(rows: torch.Tensor, classwise: torch.Tensor, bins: int) -> dict[str, float]:
    conf, hit = rows[:, 0], rows[:, 1]
    ece, mce = _gap_terms(*_equal_width(conf, hit, bins))
    count, psum, ysum = classwise  # (classes, bins) each
    per_class = (psum - ysum).abs().sum(dim=1) / count.sum(dim=1).clamp(min=1)
    return {"ece": 100 * ece, "adaptive_ece": 100 * adaptive_ece(conf, hit, bins),
            "mce": 100 * mce, "nll": float(rows[:, 3].mean()), "brier": float(rows[:, 4].mean()),
            "classwise_ece": 100 * float(per_class.mean())}


def _reliability(conf: torch.Tensor, hit: torch.Tensor, bins: int) -> ReliabilityBins:
    count, conf_sum, hit_sum = _equal_width(conf, hit, bins)
    n = count.tolist()
    return ReliabilityBins([int(c) for c in n],
                           [float(a / c) if c else None for a, c in zip(conf_sum.tolist(), n)],
                           [float(a / c) if c else None for a, c in zip(hit_sum.tolist(), n)])


def calibration(logits: torch.Tensor, labels: torch.Tensor,
                groups: dict[str, list[int]] | None = None, bins: int = BINS
                ) -> CalibrationResult:
    """All calibration metrics of a whole set of logits (N, C) at once."""
    counter = CalibrationCounter(logits.shape[1], logits.device, bins)
    counter.update(logits, labels)
    return counter.result(groups)
