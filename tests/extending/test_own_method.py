"""A user's own method from their own code, with its own option, through the public API only:
`register_method` with an options dataclass; nothing in gpaco is edited."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gpaco import run
from gpaco.config.options import NON_NEGATIVE, NoOptions
from gpaco.errors import UserError
from gpaco.models import Classifier
from gpaco.tasks.classification.methods import METHODS, Method, register_method


class FocalLoss(nn.Module):
    """Lin et al.'s focal loss on the classifier logits (the criterion contract's third input)."""

    def __init__(self, gamma: float):
        super().__init__()
        self.gamma = gamma

    def forward(self, features, labels, center_logits):
        logp = F.log_softmax(center_logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
        return (-(1 - logp.exp()) ** self.gamma * logp).mean()


@dataclass
class FocalOptions:
    gamma: float = field(default=2.0, metadata=NON_NEGATIVE)


@pytest.fixture
def focal():
    register_method("focal", Method(
        Classifier, lambda num_classes, counts, **options: FocalLoss(**options), views=1,
        prior="none", model_options=NoOptions, loss_options=FocalOptions, summary="focal loss"))
    yield
    del METHODS["focal"]


def test_the_option_is_accepted_with_the_method_and_refused_without(focal):
    cfg = run.load_config(overrides=["method=focal", "loss.gamma=3"])
    assert cfg.loss.gamma == 3.0 and cfg.loss.alpha is None
    assert run.load_config(overrides=["method=focal"]).loss.gamma == 2.0  # its own default
    with pytest.raises(UserError, match=r"loss.gamma .* does not apply to method=ce; it is used "
                                        r"by method=paco\|gpaco\|focal"):
        run.load_config(overrides=["method=ce", "loss.gamma=2"])
    with pytest.raises(UserError, match="loss.gamma must not be negative"):
        run.load_config(overrides=["method=focal", "loss.gamma=-1"])


def test_it_trains_two_steps(focal, tmp_path):
    cfg = run.load_config(overrides=[
        "method=focal", "loss.gamma=2", "epochs=1", "train.max_steps_per_epoch=2",
        "train.threads=1", "output.tensorboard=false", "output.plots=false",
        f"output.dir={tmp_path / 'run'}"])
    summary = run.train(cfg, tmp_path / "run")
    assert summary["method"] == "focal" and 0 <= summary["last"]["top1"] <= 100
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert record["steps"] == 2 and torch.isfinite(torch.tensor(record["train_loss"]))
