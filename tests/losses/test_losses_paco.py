"""PaCoLoss / paco_loss against the brute-force loop and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gpaco.errors import UserError
from gpaco.losses import PaCoLoss, log_prior, paco_loss
from loss_reference import contrast_set, gpaco_shaped, grads, paco_shaped, ref_paco

NUM_CLASSES = 5
COUNTS = [40, 20, 8, 3, 1]
IGNORE = 255

CONFIGS = {
    "plain": dict(alpha=0.05),
    "prior": dict(alpha=0.05, prior=True),
    "smoothing": dict(alpha=0.2, label_smoothing=0.1),
    "beta_gamma": dict(alpha=0.5, beta=0.7, gamma=2.5, temperature=0.2),
    "gamma_zero": dict(alpha=0.3, gamma=0.0, prior=True),
    "all_knobs": dict(alpha=0.1, beta=1.5, gamma=0.5, label_smoothing=0.2, prior=True),
    "ignore": dict(alpha=0.05, ignore=True),
    "ignore_prior_smoothing": dict(alpha=0.3, ignore=True, prior=True, label_smoothing=0.1),
}
SHAPES = {"paco": paco_shaped, "gpaco": gpaco_shaped}


def _kwargs(config: dict) -> dict:
    kwargs = {k: v for k, v in config.items() if k not in ("prior", "ignore")}
    if config.get("prior"):
        kwargs["log_prior"] = log_prior(COUNTS).double()
    if config.get("ignore"):
        kwargs["ignore_index"] = IGNORE
    return kwargs


def _with_ignored(labels: torch.Tensor) -> torch.Tensor:
    """Mark one anchor and a few columns as ignored, and give one column the label C."""
    labels = labels.clone()
    labels[1] = IGNORE
    labels[-1] = IGNORE
    labels[-3] = IGNORE
    labels[-2] = NUM_CLASSES
    return labels


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CONFIGS)
def test_matches_brute_force(shape: str, name: str) -> None:
    config = CONFIGS[name]
    feats, labels, logits = SHAPES[shape](batch=4, queue=8, num_classes=NUM_CLASSES, seed=len(name))
    if config.get("ignore"):
        labels = _with_ignored(labels)
    kwargs = _kwargs(config)

    loss = paco_loss(feats, labels, logits, **kwargs)
    expected = ref_paco(feats, labels, logits, **kwargs)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-12)
    for got, want in zip(grads(loss, feats, logits), grads(expected, feats, logits)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-12)


def test_label_above_num_classes_has_no_center_but_has_positives() -> None:
    feats, labels, logits = contrast_set(6, 10, NUM_CLASSES, seed=3)
    labels = labels.clone()
    labels[[0, 4, 7]] = NUM_CLASSES  # anchor 0 and two columns share the dummy label
    loss = paco_loss(feats, labels, logits, alpha=0.5)
    torch.testing.assert_close(loss, ref_paco(feats, labels, logits, alpha=0.5), rtol=1e-6, atol=0)


@pytest.mark.parametrize("keep_bytes", [0, 2**30])  # similarities recomputed / kept
def test_any_label_values_match_brute_force(
    monkeypatch: pytest.MonkeyPatch, keep_bytes: int
) -> None:
    """Positives are grouped by label value: negative, huge and out-of-range labels, an
    ignored value, in any order, with the (A, M) softmax recomputed or kept."""
    from gpaco.losses import _contrast

    monkeypatch.setattr(_contrast, "KEEP_BYTES", keep_bytes)
    feats, labels, logits = contrast_set(7, 19, NUM_CLASSES, seed=5)
    values = torch.tensor([-7, 3, 2**40, NUM_CLASSES, -1, 0])  # -1 is ignored
    gen = torch.Generator().manual_seed(1)
    labels = values[torch.randint(0, len(values), (19,), generator=gen)]
    labels[1] = -1  # an ignored anchor
    kwargs = dict(alpha=0.3, label_smoothing=0.1, ignore_index=-1)
    loss = paco_loss(feats, labels, logits, **kwargs)
    expected = ref_paco(feats, labels, logits, **kwargs)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-12)
    for got, want in zip(grads(loss, feats, logits), grads(expected, feats, logits)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-12)


def test_module_matches_functional() -> None:
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=NUM_CLASSES)
    criterion = PaCoLoss(NUM_CLASSES, alpha=0.2, beta=0.9, gamma=1.1, temperature=0.1,
                         label_smoothing=0.1, class_counts=COUNTS, ignore_index=IGNORE)
    expected = paco_loss(feats, labels, logits, alpha=0.2, beta=0.9, gamma=1.1, temperature=0.1,
                         label_smoothing=0.1, log_prior=log_prior(COUNTS), ignore_index=IGNORE)
    torch.testing.assert_close(criterion(feats, labels, logits), expected)
    assert "log_prior" not in criterion.state_dict()


def test_self_column_has_zero_weight_closed_form() -> None:
    """One anchor, one other same-label sample: softmax over [c0, c1, s01/T] only."""
    feats = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64), dim=1)
    labels = torch.tensor([1, 1])
    logits = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    alpha, beta, t = 0.4, 1.0, 0.5
    s01 = 0.6 / t
    log_z = math.log(math.exp(0.3) + math.exp(-0.2) + math.exp(s01))
    expected = -(beta * (-0.2 - log_z) + alpha * (s01 - log_z)) / (beta + alpha)
    loss = paco_loss(feats, labels, logits, alpha=alpha, beta=beta, temperature=t)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_no_nan_without_sample_positive() -> None:
    feats, labels, logits = contrast_set(4, 10, 20, seed=1)
    labels = torch.arange(10)  # every label unique: no anchor has a sample positive
    for beta in (1.0, 0.0):  # beta = 0: no positive at all, zero total weight
        loss = paco_loss(feats, labels, logits, alpha=0.5, beta=beta)
        assert torch.isfinite(loss)
        expected = ref_paco(feats, labels, logits, alpha=0.5, beta=beta)
        torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-12)
        for g in grads(loss, feats, logits):
            assert torch.isfinite(g).all()


def test_all_anchors_ignored_gives_zero_not_nan() -> None:
    feats, labels, logits = contrast_set(4, 10, NUM_CLASSES)
    labels = torch.full((10,), IGNORE)
    loss = paco_loss(feats, labels, logits, alpha=0.5, ignore_index=IGNORE)
    assert loss.item() == 0.0
    for g in grads(loss, feats, logits):
        assert torch.isfinite(g).all() and (g == 0).all()


def test_degenerate_single_column_is_finite() -> None:
    feats, labels, logits = contrast_set(1, 1, NUM_CLASSES)
    loss = paco_loss(feats, labels, logits, alpha=0.5)
    assert torch.isfinite(loss)
    assert all(torch.isfinite(g).all() for g in grads(loss, feats, logits))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_close_to_fp32(dtype: torch.dtype) -> None:
    feats, labels, logits = gpaco_shaped(batch=16, queue=64, num_classes=10, seed=2)
    kwargs = dict(alpha=0.05, log_prior=log_prior(list(range(100, 0, -10))), label_smoothing=0.1)
    reference = paco_loss(feats.float(), labels, logits.float(), **kwargs)
    low_feats = feats.detach().to(dtype).requires_grad_()
    low_logits = logits.detach().to(dtype).requires_grad_()
    loss = paco_loss(low_feats, labels, low_logits, **kwargs)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss, reference, rtol=2e-2, atol=0)
    for g in grads(loss, low_feats, low_logits):
        assert g.dtype == dtype and torch.isfinite(g).all()


def test_alpha_zero_gamma_zero_is_smoothed_ce_on_shifted_logits() -> None:
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=NUM_CLASSES)
    prior = log_prior(COUNTS).double()
    eps = 0.1
    loss = paco_loss(feats, labels, logits, alpha=0.0, beta=2.0, gamma=0.0,
                     label_smoothing=eps, log_prior=prior)
    anchors = labels[: logits.shape[0]]
    target = torch.full_like(logits, eps / (NUM_CLASSES - 1))
    target.scatter_(1, anchors[:, None], 1.0 - eps)
    expected = F.cross_entropy(logits + prior, target)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)


def test_alpha_zero_with_samples_keeps_them_in_the_normaliser() -> None:
    feats, labels, logits = paco_shaped(batch=4, queue=8, num_classes=NUM_CLASSES)
    ce = F.cross_entropy(logits, labels[:4])
    assert paco_loss(feats, labels, logits, alpha=0.0) > ce


def test_center_shift_invariance_and_stability() -> None:
    """A constant added to every center logit cancels in the CE limit (alpha = gamma = 0), and
    huge logits never overflow (no exp of unshifted logits)."""
    feats, labels, logits = paco_shaped(batch=4, queue=8, num_classes=NUM_CLASSES)
    base = paco_loss(feats, labels, logits, alpha=0.0, gamma=0.0)
    for shift in (-1e4, 37.0, 1e4):
        shifted = paco_loss(feats, labels, logits + shift, alpha=0.0, gamma=0.0)
        torch.testing.assert_close(shifted, base, rtol=1e-9, atol=0)
    huge = paco_loss(feats.float(), labels, (logits + 1e4).float(), alpha=0.1)
    assert torch.isfinite(huge)


def test_compiles_without_graph_breaks() -> None:
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=NUM_CLASSES)
    labels = _with_ignored(labels)
    criterion = PaCoLoss(NUM_CLASSES, alpha=0.1, class_counts=COUNTS, ignore_index=IGNORE,
                         label_smoothing=0.1)
    compiled = torch.compile(criterion, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(feats, labels, logits), criterion(feats, labels, logits))


@pytest.mark.parametrize(
    "kwargs",
    [dict(num_classes=0, alpha=1.0), dict(num_classes=3, alpha=-1.0),
     dict(num_classes=3, alpha=1.0, temperature=0.0),
     dict(num_classes=3, alpha=1.0, label_smoothing=1.0),
     dict(num_classes=3, alpha=1.0, class_counts=[1, 2])],
)
def test_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(UserError):
        PaCoLoss(**kwargs)


def test_rejects_wrong_number_of_classes() -> None:
    feats, labels, logits = contrast_set(2, 4, 3)
    with pytest.raises(ValueError):
        PaCoLoss(4, alpha=0.1)(feats, labels, logits)


def test_autocast_bf16_is_finite_and_close() -> None:
    feats, labels, logits = gpaco_shaped(batch=16, queue=64, num_classes=10, seed=3)
    feats, logits = feats.float(), logits.float()
    reference = paco_loss(feats, labels, logits, alpha=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = paco_loss(feats, labels, logits, alpha=0.05)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference, rtol=1e-2, atol=0)


def test_only_features_or_only_logits_need_grad() -> None:
    feats, labels, logits = gpaco_shaped(batch=4, queue=8, num_classes=NUM_CLASSES)
    (g_logits,) = grads(paco_loss(feats.detach(), labels, logits, alpha=0.1), logits)
    (g_feats,) = grads(paco_loss(feats, labels, logits.detach(), alpha=0.1), feats)
    full = grads(paco_loss(feats, labels, logits, alpha=0.1), feats, logits)
    torch.testing.assert_close(g_feats, full[0])
    torch.testing.assert_close(g_logits, full[1])


def _saved_sizes(monkeypatch: pytest.MonkeyPatch, keep_bytes: int) -> tuple[list[int], tuple]:
    """numel of every tensor saved for backward with `KEEP_BYTES` = keep_bytes, and the grads."""
    from gpaco.losses import _contrast

    monkeypatch.setattr(_contrast, "KEEP_BYTES", keep_bytes)
    feats, labels, logits = contrast_set(32, 96, 3, dim=4)
    saved: list[int] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = paco_loss(feats, labels, logits, alpha=0.1)
    return saved, grads(loss, feats, logits)


def test_no_anchor_by_column_tensor_is_saved_for_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory contract: above KEEP_BYTES the (A, M) similarities are recomputed in backward."""
    saved, _ = _saved_sizes(monkeypatch, 0)
    assert saved and max(saved) < 32 * 96


def test_a_small_contrast_set_keeps_one_softmax(monkeypatch: pytest.MonkeyPatch) -> None:
    """At CIFAR sizes the softmax is kept (one (A, M) buffer): the same gradients, no matmul."""
    saved, kept = _saved_sizes(monkeypatch, 2**30)
    assert sorted(saved)[-1] == 32 * 96 and sorted(saved)[-2] < 32 * 96
    _, recomputed = _saved_sizes(monkeypatch, 0)
    for a, b in zip(kept, recomputed):
        torch.testing.assert_close(a, b)
