"""What a training method is: one table, read by the config, the builders and the trainer.

A method is a model wrapper, a criterion, the number of augmented views per image and the
`model.*` / `loss.*` config keys it uses, each with its default. A key outside those is an
error for that method (see gpaco.config.core). Adding a method is its loss file plus one
entry here (and a recipe and tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from torch import Tensor, nn

from gpaco.errors import UserError
from gpaco.losses import (BalancedSoftmaxLoss, CrossEntropyLoss, LogitAdjustedLoss,
                          MultiTaskLoss, PaCoLoss)
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
        model_options / loss_options: the `model.*` / `loss.*` keys the method uses and their
            defaults (`loss.prior` is not passed to the criterion: it decides the counts).
        summary: one line for `gpaco recipes` and error messages.
    """

    model: type[nn.Module]
    criterion: CriterionFactory
    views: Literal[1, 2]
    prior: Literal["optional", "required", "none"]
    model_options: Mapping[str, Any]
    loss_options: Mapping[str, Any]
    summary: str


def _frozen(**options: Any) -> Mapping[str, Any]:
    return MappingProxyType(options)


_CONTRASTIVE = {"dim": 128, "queue_size": 8192}
_PACO_LOSS = _frozen(alpha=0.05, beta=1.0, gamma=1.0, temperature=0.2, label_smoothing=0.0,
                     prior=True)


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


METHODS: Mapping[str, Method] = MappingProxyType({
    "paco": Method(
        PaCoModel, _paco, views=2, prior="optional",
        model_options=_frozen(**_CONTRASTIVE, head="bn", momentum=0.999, shuffle_bn=False),
        loss_options=_PACO_LOSS,
        summary="PaCo: momentum key encoder, queue, class centers with a log prior"),
    "gpaco": Method(
        GPaCoModel, _paco, views=2, prior="optional",
        model_options=_frozen(**_CONTRASTIVE, head="nobn", joint_forward=False),
        loss_options=_PACO_LOSS,
        summary="GPaCo: PaCo's loss on one shared encoder, both views as anchors"),
    "multitask": Method(
        GPaCoModel, _multitask, views=2, prior="optional",
        model_options=_frozen(**_CONTRASTIVE, head="nobn", joint_forward=False),
        loss_options=_frozen(alpha=0.5, temperature=0.07, label_smoothing=0.0, prior=True,
                             effective_number_beta=None),
        summary="Balanced Softmax (CE without prior) + alpha * SupCon on GPaCo's model"),
    "ce": Method(
        Classifier, _ce, views=1, prior="none", model_options=_frozen(),
        loss_options=_frozen(label_smoothing=0.0),
        summary="cross-entropy baseline"),
    "balanced_softmax": Method(
        Classifier, _balanced_softmax, views=1, prior="required", model_options=_frozen(),
        loss_options=_frozen(label_smoothing=0.0),
        summary="Balanced Softmax baseline (logits + log prior)"),
    "logit_adjusted": Method(
        Classifier, _logit_adjusted, views=1, prior="required", model_options=_frozen(),
        loss_options=_frozen(tau=1.0, label_smoothing=0.0),
        summary="logit-adjusted CE baseline (logits + tau * log prior)"),
})


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def methods_using(section: str, key: str) -> list[str]:
    """The methods whose `section` ("model" or "loss") options include `key`."""
    return [name for name, m in METHODS.items()
            if key in (m.model_options if section == "model" else m.loss_options)]


def _options(given: Mapping[str, Any], allowed: Mapping[str, Any], what: str) -> dict[str, Any]:
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
