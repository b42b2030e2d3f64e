"""What a training method is: one table, read by the config, the builders and the trainer.

A method is a model wrapper, a criterion, the number of augmented views per image and the
`model.*` / `loss.*` config keys it uses, each with its default. A key outside those is an
error for that method (gpaco.config.resolve). Adding a method is its loss file plus one
entry here (and a recipe and tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from torch import Tensor, nn

from gpaco.config.options import NON_NEGATIVE, POSITIVE, NoOptions
from gpaco.errors import UserError
from gpaco.losses import (BalancedSoftmaxLoss, CrossEntropyLoss, LogitAdjustedLoss,
                          MultiTaskLoss, PaCoLoss, center_weights)
from gpaco.models import Classifier, GPaCoModel, PaCoModel

Counts = Sequence[int] | Tensor | None
CriterionFactory = Callable[..., nn.Module]  # (num_classes, class_counts, **loss options)


@dataclass(frozen=True)
class Method:
    """One training method.

    Attributes:
        model: the wrapper class, called as `model(backbone, num_classes, **model_options)`.
        criterion: `criterion(num_classes, class_counts, **loss_options)` -> the loss module.
        views: augmented views per image the wrapper takes (the loader makes this many).
        prior: "optional": `loss.prior` switches the log class prior (class counts) on or off;
            "required": the criterion always takes the class counts; "none": it never does.
        model_options / loss_options: dataclasses of the `model.*` / `loss.*` keys the method
            uses, with types and defaults (`loss.prior` is not passed to the criterion: it
            decides the counts).
        summary: one line for `gpaco recipes` and error messages.
        soft_targets: the criterion takes mixed (soft) targets, so Mixup / CutMix may feed it.
        start_line: `start_line(cfg, class_counts)`, a line the run prints before training.
    """

    model: type[nn.Module]
    criterion: CriterionFactory
    views: Literal[1, 2]
    prior: Literal["optional", "required", "none"]
    model_options: type
    loss_options: type
    summary: str
    soft_targets: bool = False
    start_line: Callable[[Any, list[int]], str] | None = None


@dataclass
class _ContrastiveModel:
    dim: int = field(default=128, metadata=POSITIVE)
    queue_size: int = field(default=8192, metadata=NON_NEGATIVE)  # 0: the batch only


@dataclass
class PaCoModelOptions(_ContrastiveModel):
    head: Literal["bn", "nobn", "gelu"] = "bn"  # gelu: the authors' MAE-ViT head
    momentum: float = field(default=0.999, metadata=NON_NEGATIVE)
    shuffle_bn: bool = False


@dataclass
class GPaCoModelOptions(_ContrastiveModel):
    head: Literal["bn", "nobn", "gelu"] = "nobn"
    joint_forward: bool = False


@dataclass
class PaCoLossOptions:
    alpha: float = field(default=0.05, metadata=NON_NEGATIVE)
    beta: float = field(default=1.0, metadata=NON_NEGATIVE)
    gamma: float = field(default=1.0, metadata=NON_NEGATIVE)
    temperature: float = field(default=0.2, metadata=POSITIVE)
    label_smoothing: float = field(default=0.0, metadata=NON_NEGATIVE)
    prior: bool = True  # log class prior on the center logits


@dataclass
class MultiTaskLossOptions:
    alpha: float = field(default=0.5, metadata=NON_NEGATIVE)
    temperature: float = field(default=0.07, metadata=POSITIVE)
    label_smoothing: float = field(default=0.0, metadata=NON_NEGATIVE)
    prior: bool = True
    # Weight each SupCon anchor by its class's effective-number weight (beta 0.999 in the
    # authors' ImageNet-LT loss); None: unweighted, as their CIFAR loss.
    effective_number_beta: float | None = None


@dataclass
class SmoothingOptions:
    label_smoothing: float = field(default=0.0, metadata=NON_NEGATIVE)


@dataclass
class LogitAdjustedOptions:
    tau: float = 1.0
    label_smoothing: float = field(default=0.0, metadata=NON_NEGATIVE)


def contrast_size(cfg: Any) -> int:
    """Samples a PaCo / GPaCo anchor is contrasted with: both views of the batch and the queue."""
    return 2 * cfg.train.batch_size + cfg.model.queue_size


def _center_weight_line(cfg: Any, class_counts: list[int]) -> str:
    """The extra head-class discount of this run's alpha (gpaco.losses.center_weight)."""
    contrast = contrast_size(cfg)
    w = center_weights(class_counts, alpha=cfg.loss.alpha, beta=cfg.loss.beta,
                       contrast_size=contrast)
    return (f"center share at the loss optimum: {float(w.min()):.2f} for the most frequent class, "
            f"{float(w.max()):.2f} for the rarest (alpha={cfg.loss.alpha}, "
            f"{contrast} contrast samples; docs/rebalancing.md)")


def _paco(num_classes: int, class_counts: Counts, **options: Any) -> nn.Module:
    return PaCoLoss(num_classes, class_counts=class_counts, **options)


def _multitask(num_classes: int, class_counts: Counts, **options: Any) -> nn.Module:
    return MultiTaskLoss(class_counts, **options)


def _ce(num_classes: int, class_counts: Counts, **options: Any) -> nn.Module:
    return CrossEntropyLoss(**options)


def _balanced_softmax(num_classes: int, class_counts: Counts, **options: Any) -> nn.Module:
    return BalancedSoftmaxLoss(class_counts, **options)


def _logit_adjusted(num_classes: int, class_counts: Counts, **options: Any) -> nn.Module:
    return LogitAdjustedLoss(class_counts, **options)


METHODS: dict[str, Method] = {
    "paco": Method(
        PaCoModel, _paco, views=2, prior="optional", model_options=PaCoModelOptions,
        loss_options=PaCoLossOptions, start_line=_center_weight_line,
        summary="PaCo: momentum key encoder, queue, class centers with a log prior"),
    "gpaco": Method(
        GPaCoModel, _paco, views=2, prior="optional", model_options=GPaCoModelOptions,
        loss_options=PaCoLossOptions, start_line=_center_weight_line,
        summary="GPaCo: PaCo's loss on one shared encoder, both views as anchors"),
    "multitask": Method(
        GPaCoModel, _multitask, views=2, prior="optional", model_options=GPaCoModelOptions,
        loss_options=MultiTaskLossOptions,
        summary="Balanced Softmax (CE without prior) + alpha * SupCon on GPaCo's model"),
    "ce": Method(
        Classifier, _ce, views=1, prior="none", model_options=NoOptions,
        loss_options=SmoothingOptions, summary="cross-entropy baseline", soft_targets=True),
    "balanced_softmax": Method(
        Classifier, _balanced_softmax, views=1, prior="required", model_options=NoOptions,
        loss_options=SmoothingOptions,
        summary="Balanced Softmax baseline (logits + log prior)"),
    "logit_adjusted": Method(
        Classifier, _logit_adjusted, views=1, prior="required", model_options=NoOptions,
        loss_options=LogitAdjustedOptions,
        summary="logit-adjusted CE baseline (logits + tau * log prior)"),
}


def register_method(name: str, method: Method) -> None:
    """Add a classification method (a user's own loss) under `name`: `method=NAME` then
    trains it, and its option dataclasses' fields are its `model.*` / `loss.*` keys."""
    if name in METHODS:
        raise UserError(f"a classification method {name!r} exists already")
    METHODS[name] = method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def defaults(options: type) -> dict[str, Any]:
    """{key: default} of an options dataclass."""
    return {f.name: getattr(options(), f.name) for f in fields(options)}


def _options(given: Mapping[str, Any], options: type, what: str) -> dict[str, Any]:
    allowed = defaults(options)
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise UserError(f"{what} does not take {', '.join(unknown)}; it takes "
                        f"{', '.join(allowed) or 'no options'}")
    return {**allowed, **given}


def build_model(name: str, backbone: nn.Module, num_classes: int, **options: Any) -> nn.Module:
    """Wrap `backbone` for method `name`; `options` (the method's model options) override its
    defaults, anything else is a UserError."""
    method = get_method(name)
    return method.model(backbone, num_classes,
                        **_options(options, method.model_options, f"method {name!r}'s model"))


def build_criterion(name: str, num_classes: int, class_counts: Counts = None,
                    **options: Any) -> nn.Module:
    """Method `name`'s criterion; `options` (its loss options) override the defaults.

    The class counts feed the log prior: always for "required" methods (an error without
    them), when `prior` is true for "optional" ones, never for "none".
    """
    method = get_method(name)
    options = _options(options, method.loss_options, f"method {name!r}'s loss")
    use_prior = options.pop("prior", method.prior == "required")
    if method.prior == "required" and class_counts is None:
        raise UserError(f"method {name!r} needs the training class counts")
    counts = class_counts if use_prior and method.prior != "none" else None
    return method.criterion(num_classes, counts, **options)
