"""The method table: what each method builds, its options and defaults, and its errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gpaco.tasks.classification import methods
from gpaco.errors import UserError
from gpaco.losses import (BalancedSoftmaxLoss, CrossEntropyLoss, LogitAdjustedLoss,
                          MultiTaskLoss, PaCoLoss)
from gpaco.models import Classifier, GPaCoModel, PaCoModel

C = 4
COUNTS = [9, 5, 3, 1]
EXPECTED = {
    "paco": (PaCoModel, PaCoLoss, 2), "gpaco": (GPaCoModel, PaCoLoss, 2),
    "multitask": (GPaCoModel, MultiTaskLoss, 2), "ce": (Classifier, CrossEntropyLoss, 1),
    "balanced_softmax": (Classifier, BalancedSoftmaxLoss, 1),
    "logit_adjusted": (Classifier, LogitAdjustedLoss, 1),
}


class Tiny(nn.Module):
    feature_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _contrast_inputs(anchors: int = 4, columns: int = 12):
    g = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(columns, 16, generator=g), dim=1)
    labels = torch.randint(0, C, (columns,), generator=g)
    return feats, labels, torch.randn(anchors, C, generator=g)


def test_the_table_names_every_method_once() -> None:
    assert set(methods.METHODS) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_method_builds_its_model_and_a_working_criterion(name: str) -> None:
    model_cls, loss_cls, views = EXPECTED[name]
    method = methods.METHODS[name]
    assert (method.model, method.views) == (model_cls, views)
    torch.manual_seed(0)
    model = methods.build_model(name, Tiny(), C, **({"dim": 16, "queue_size": 8}
                                                    if views == 2 else {}))
    assert type(model) is model_cls
    criterion = methods.build_criterion(name, C, COUNTS)
    assert type(criterion) is loss_cls
    assert torch.isfinite(criterion(*_contrast_inputs()))


def test_defaults_come_from_the_table_and_options_override_them() -> None:
    paco = methods.build_criterion("paco", C, COUNTS)
    assert (paco.alpha, paco.temperature) == (0.05, 0.2) and paco.log_prior is not None
    assert methods.build_criterion("gpaco", C, COUNTS, prior=False).log_prior is None
    assert methods.build_criterion("gpaco", C, None, alpha=0.2).alpha == 0.2
    # multitask keeps its own class defaults, never PaCo's values
    multi = methods.build_criterion("multitask", C, COUNTS)
    assert multi.alpha == MultiTaskLoss(COUNTS).alpha
    assert methods.build_criterion("logit_adjusted", C, COUNTS, tau=0.5).tau == 0.5
    model = methods.build_model("paco", Tiny(), C, dim=16, queue_size=16, momentum=0.99)
    assert model.momentum == 0.99 and model.queue.size == 16


def test_prior_is_required_optional_or_absent() -> None:
    assert methods.build_criterion("ce", C, COUNTS).__class__ is CrossEntropyLoss
    for name in ("balanced_softmax", "logit_adjusted"):
        with pytest.raises(UserError, match="needs the training class counts"):
            methods.build_criterion(name, C, None)


@pytest.mark.parametrize("call, message", [
    (lambda: methods.build_criterion("nope", C, COUNTS), "unknown method 'nope'"),
    (lambda: methods.build_criterion("ce", C, COUNTS, alpha=1.0), "does not take alpha"),
    (lambda: methods.build_criterion("paco", C, COUNTS, tau=1.0), "does not take tau"),
    (lambda: methods.build_model("moco", Tiny(), C), "unknown method 'moco'"),
    (lambda: methods.build_model("gpaco", Tiny(), C, momentum=0.9), "does not take momentum"),
    (lambda: methods.build_model("ce", Tiny(), C, dim=8), "does not take dim"),
])
def test_options_a_method_does_not_use_are_errors(call, message: str) -> None:
    with pytest.raises(UserError, match=message):
        call()


def test_methods_using_reads_the_table() -> None:
    def using(section, key):
        return [n for n, m in methods.METHODS.items()
                if key in methods.defaults(getattr(m, f"{section}_options"))]
    assert using("loss", "tau") == ["logit_adjusted"]
    assert using("model", "momentum") == ["paco"]
    assert set(using("model", "joint_forward")) == {"gpaco", "multitask"}
