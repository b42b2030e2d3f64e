"""Test sets with shifted class priors, and test-time prior adjustment.

From a balanced test set, deterministic subsets whose class sizes fall exponentially along the
training order (forward long-tailed: the training head stays the test head) or the reversed order
(backward: the training head becomes the test tail), at imbalance ratios n_max / n_min of 2, 5,
10, 25, 50: the protocol of SADE (Zhang et al. 2022) and BalPoE (Sarto et al. 2023) on
ImageNet-LT. Class i of the order keeps round(n * ratio^(-i / (C - 1))) of its n test samples
(n = the smallest class's test count), chosen by a fixed seed.

Test-time prior adjustment turns posteriors p_s(y | x), valid for the source prior p_s, into
posteriors for a target prior q: p(y | x) ∝ p_s(y | x) q(y) / p_s(y). q is either known or
estimated from the unlabeled test predictions by EM (Saerens, Latinne and Decaestecker 2002).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpaco.errors import UserError

from .priors import as_prior, log_prior

RATIOS = (2, 5, 10, 25, 50)
SUBSET_SEED = 0


@dataclass(frozen=True)
class Shift:
    direction: str  # "forward", "uniform" or "backward"
    ratio: float

    @property
    def name(self) -> str:
        return "uniform" if self.direction == "uniform" else f"{self.direction}-{self.ratio:g}"


def shifts(ratios: tuple[float, ...] = RATIOS) -> list[Shift]:
    """forward at decreasing ratio, the balanced set, backward at increasing ratio."""
    return ([Shift("forward", r) for r in sorted(ratios, reverse=True)] + [Shift("uniform", 1)]
            + [Shift("backward", r) for r in sorted(ratios)])


def training_order(train_counts: list[int]) -> list[int]:
    """Classes from the most to the least frequent in training (ties by index)."""
    return sorted(range(len(train_counts)), key=lambda c: (-train_counts[c], c))


def subset_sizes(per_class: int, order: list[int], shift: Shift) -> dict[int, int]:
    """How many test samples of each class the shifted subset keeps."""
    if shift.ratio < 1:
        raise UserError(f"an imbalance ratio is at least 1, not {shift.ratio:g}")
    if shift.ratio > per_class:
        raise UserError(f"imbalance ratio {shift.ratio:g} needs at least {shift.ratio:g} test "
                        f"samples per class; the test set has {per_class}")
    ranked = order if shift.direction != "backward" else order[::-1]
    steps = max(len(order) - 1, 1)
    return {c: max(1, int(round(per_class * shift.ratio ** (-i / steps))))
            for i, c in enumerate(ranked)}


def shifted_indices(labels: np.ndarray | torch.Tensor, train_counts: list[int],
                    shift: Shift, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted positions of the shifted subset of a test set with labels `labels`."""
    labels = np.asarray(labels)
    num_classes = len(train_counts)
    per = np.bincount(labels, minlength=num_classes)
    if len(per) > num_classes:
        raise UserError(f"the test labels go up to {len(per) - 1} but the training counts have "
                        f"{num_classes} classes")
    if per.min() == 0:
        raise UserError(f"class {int(per.argmin())} has no test sample: a shifted subset needs "
                        "every class in the test set")
    sizes = subset_sizes(int(per.min()), training_order(train_counts), shift)
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(num_classes):  # one draw per class in class order: deterministic
        members = np.flatnonzero(labels == c)
        keep.append(rng.permutation(members)[: sizes[c]])
    return np.sort(np.concatenate(keep))


def em_prior(probs: torch.Tensor, source_prior: torch.Tensor, tol: float = 1e-8,
             max_iter: int = 1000) -> torch.Tensor:
    """The test prior that EM estimates from posteriors `probs` (N, C) under `source_prior`
    (Saerens et al. 2002): alternate re-weighting the posteriors and averaging them."""
    p = probs.double()
    ratio_base = p / source_prior
    q = source_prior.clone()
    for _ in range(max_iter):
        w = ratio_base * q
        new = (w / w.sum(1, keepdim=True)).mean(0)
        if (new - q).abs().max() < tol:
            return new
        q = new
    return q


def adjust_to_prior(logits: torch.Tensor, source_prior: torch.Tensor,
                    target_prior: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax is the posterior under `target_prior` instead of `source_prior`."""
    c = logits.shape[1]
    source = as_prior(source_prior, c, "the source prior")
    target = as_prior(target_prior, c, "the target prior")
    return logits.double() + log_prior(target) - log_prior(source)


@dataclass
class ShiftRow:
    """One model on one shifted subset: top-1 in percent; EM's estimate's total variation
    distance to the subset's true prior (0-1), None when not computed."""

    model: str
    shift: str
    samples: int
    top1: float
    top1_known_prior: float | None = None
    top1_em_prior: float | None = None
    em_prior_tv: float | None = None


def _top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * float((logits.argmax(1) == labels).double().mean())


def evaluate_shift_suite(models: dict[str, torch.Tensor], labels: torch.Tensor,
                         train_counts: list[int],
                         adjustable: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                         ratios: tuple[float, ...] = RATIOS) -> list[ShiftRow]:
    """Top-1 of each model's test logits on every shifted subset.

    Args:
        models: name -> (N, C) logits on the same balanced test set (labels `labels`).
        adjustable: name -> (logits, source prior): the logits (N, C) whose softmax is a
            posterior for the source prior (best calibrated on validation: EM needs calibrated
            posteriors, Alexandari et al. 2020). A model named here also gets the top-1 after
            adjusting them to the known subset prior and to EM's estimate of it.
    """
    labels = torch.as_tensor(labels).long()
    num_classes = len(train_counts)
    rows = []
    for shift in shifts(ratios):
        idx = torch.from_numpy(shifted_indices(labels.numpy(), train_counts, shift))
        y = labels[idx]
        true_prior = torch.bincount(y, minlength=num_classes).double() / len(y)
        for name, logits in models.items():
            if logits.shape != (len(labels), num_classes):
                raise UserError(f"the logits of {name} are {tuple(logits.shape)}, not "
                                f"({len(labels)}, {num_classes})")
            z = logits[idx].double()
            row = ShiftRow(name, shift.name, len(y), _top1(z, y))
            if adjustable is not None and name in adjustable:
                calibrated, prior = adjustable[name]
                source = as_prior(prior, num_classes, f"{name}'s source prior")
                zc = calibrated[idx].double()
                row.top1_known_prior = _top1(adjust_to_prior(zc, source, true_prior), y)
                estimate = em_prior(torch.softmax(zc, 1), source)
                row.top1_em_prior = _top1(adjust_to_prior(zc, source, estimate), y)
                row.em_prior_tv = 0.5 * float((estimate - true_prior).abs().sum())
            rows.append(row)
    return rows
