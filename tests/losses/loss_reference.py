"""Brute-force float64 references: explicit loops over anchors, positives and negatives.

Written from paper-spec section 1.3 independently of the vectorised code (no masks, no
log-sum-exp tricks): every term is a Python-level scalar so autograd gives reference gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

Inputs = tuple[Tensor, Tensor, Tensor]  # features, labels, center_logits


def _mean(values: list[Tensor], count: int) -> Tensor:
    if not values:
        return torch.zeros((), dtype=torch.float64)
    return torch.stack(values).sum() / max(count, 1)


def ref_paco(
    features: Tensor,
    labels: Tensor,
    center_logits: Tensor,
    *,
    alpha: float,
    beta: float = 1.0,
    gamma: float = 1.0,
    temperature: float = 0.07,
    label_smoothing: float = 0.0,
    log_prior: Tensor | None = None,
    ignore_index: int | None = None,
) -> Tensor:
    num_anchors, num_classes = center_logits.shape
    num_columns = features.shape[0]
    losses: list[Tensor] = []
    num_valid = 0
    for i in range(num_anchors):
        y = int(labels[i])
        if ignore_index is not None and y == ignore_index:
            continue
        num_valid += 1
        centers = []
        for c in range(num_classes):
            shift = float(log_prior[c]) if log_prior is not None else 0.0
            centers.append(center_logits[i, c] + shift)
        samples = {}
        for j in range(num_columns):
            if j != i:
                samples[j] = torch.dot(features[i], features[j]) / temperature
        denominator = sum(torch.exp(v) for v in centers)
        denominator = denominator + gamma * sum(torch.exp(v) for v in samples.values())
        log_denominator = torch.log(denominator)

        positives: list[tuple[float, Tensor]] = []
        if 0 <= y < num_classes:
            for c in range(num_classes):
                if c == y:
                    weight = beta * (1.0 - label_smoothing)
                else:
                    weight = beta * label_smoothing / (num_classes - 1)
                if weight != 0.0:
                    positives.append((weight, centers[c]))
        for j, value in samples.items():
            if int(labels[j]) == y:
                positives.append((alpha, value))
        total = sum(w for w, _ in positives)
        if total == 0:
            losses.append(torch.zeros((), dtype=torch.float64))
            continue
        weighted = sum(w * (value - log_denominator) for w, value in positives)
        losses.append(-weighted / total)
    return _mean(losses, num_valid if ignore_index is not None else num_anchors)


def ref_supcon(
    features: Tensor,
    labels: Tensor,
    num_anchors: int,
    *,
    temperature: float = 0.07,
    ignore_index: int | None = None,
    class_weight: dict[int, float] | None = None,
) -> Tensor:
    losses: list[Tensor] = []
    for i in range(num_anchors):
        y = int(labels[i])
        if ignore_index is not None and y == ignore_index:
            continue
        others = [j for j in range(features.shape[0]) if j != i]
        positives = [j for j in others if int(labels[j]) == y]
        if not positives:
            continue
        sim = {j: torch.dot(features[i], features[j]) / temperature for j in others}
        log_denominator = torch.log(sum(torch.exp(sim[j]) for j in others))
        weight = 1.0 if class_weight is None else class_weight[y]
        losses.append(-weight * sum(sim[p] - log_denominator for p in positives) / len(positives))
    return _mean(losses, len(losses))


def ref_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    *,
    shift: Tensor | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
) -> Tensor:
    """CE with PyTorch's smoothing convention: eps/C on every class, 1-eps on the target."""
    num_anchors, num_classes = logits.shape
    losses: list[Tensor] = []
    for i in range(num_anchors):
        y = int(labels[i])
        if ignore_index is not None and y == ignore_index:
            continue
        offsets = [float(shift[c]) if shift is not None else 0.0 for c in range(num_classes)]
        z = [logits[i, c] + offsets[c] for c in range(num_classes)]
        log_denominator = torch.log(sum(torch.exp(v) for v in z))
        loss = 0.0
        for c in range(num_classes):
            target = (1.0 - label_smoothing) * (c == y) + label_smoothing / num_classes
            loss = loss - target * (z[c] - log_denominator)
        losses.append(loss)
    return _mean(losses, len(losses))


def contrast_set(
    num_anchors: int,
    num_columns: int,
    num_classes: int,
    dim: int = 8,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    logit_scale: float = 3.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Random leaf (features, labels, center_logits) with unit-norm features."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(num_columns, dim, generator=gen, dtype=torch.float64)
    feats = torch.nn.functional.normalize(feats, dim=1)
    labels = torch.randint(0, num_classes, (num_columns,), generator=gen)
    logits = logit_scale * torch.randn(num_anchors, num_classes, generator=gen, dtype=torch.float64)
    return (
        feats.to(dtype).requires_grad_(),
        labels,
        logits.to(dtype).requires_grad_(),
    )


def paco_shaped(batch: int, queue: int, num_classes: int, *, seed: int = 0) -> Inputs:
    """[q; k; queue] with labels [y; y; queue labels]; anchors = the B queries."""
    feats, labels, logits = contrast_set(batch, 2 * batch + queue, num_classes, seed=seed)
    labels = labels.clone()
    labels[batch : 2 * batch] = labels[:batch]
    return feats, labels, logits


def gpaco_shaped(batch: int, queue: int, num_classes: int, *, seed: int = 0) -> Inputs:
    """[q; k; queue] as above; anchors = both views (2B)."""
    feats, labels, logits = contrast_set(2 * batch, 2 * batch + queue, num_classes, seed=seed)
    labels = labels.clone()
    labels[batch : 2 * batch] = labels[:batch]
    return feats, labels, logits


def grads(loss: Tensor, *inputs: Tensor) -> tuple[Tensor, ...]:
    return torch.autograd.grad(loss, inputs, allow_unused=False)
