"""Single-process behaviour of the DDP helpers and the recipe's batch-norm choices."""

import pytest
import torch
from torch import nn

from gpaco import distributed as gdist
from gpaco import run as C
from gpaco.tasks.classification.build import build_model
from gpaco.train.parallel import end_epoch, wrap_for_training
from gpaco.tasks.classification.task import _sum_over_ranks as reduce_counter
from gpaco.train.loop import EpochStats
from gpaco.errors import UserError
from gpaco.tasks.classification.metrics import ConfusionCounter
from gpaco.models import GhostBatchNorm1d, GhostBatchNorm2d


def _cfg(*overrides: str):
    return C.load_config("default", overrides=["model.backbone=resnet8", "train.batch_size=32",
                                                "train.device=cpu", *overrides])


def test_one_process_helpers_are_identities():
    z, y = torch.randn(6, 4), torch.arange(6)
    assert gdist.gather_batch(z, y) == (z, y)
    module = nn.Linear(2, 2)
    assert wrap_for_training(module, torch.device("cpu")) is module
    stats = EpochStats(1.0, 2, 3, 4.0)
    assert end_epoch(module, stats) is stats
    counter = ConfusionCounter(3)
    reduce_counter(counter)
    assert int(counter.total.sum()) == 0


@pytest.mark.parametrize("device, cuda, backend", [
    ("cpu", True, "gloo"), ("auto", True, "nccl"), ("auto", False, "gloo"), ("cuda", True, "nccl"),
    ("cuda:1", True, "nccl")])
def test_backend_follows_the_training_device(device, cuda, backend, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert gdist.backend_for(device) == backend


def test_shuffled_forward_returns_each_samples_own_output():
    x = torch.randn(8, 3)
    torch.testing.assert_close(gdist.shuffled_forward(lambda t: t * 2 + 1, x), x * 2 + 1)


@pytest.mark.parametrize("method", ["paco", "gpaco", "ce"])
def test_ghost_bn_recipe_key_converts_every_batchnorm(method):
    model = build_model(_cfg(f"method={method}", "model.ghost_bn=8"), 10)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, (GhostBatchNorm1d, GhostBatchNorm2d)) for m in norms)
    assert all(m.group_size == 8 for m in norms)
    model.train()
    out = model.forward_train([torch.randn(16, 3, 28, 28)] * 2, torch.arange(16) % 10)
    assert out.center_logits.shape[1] == 10


def test_sync_bn_recipe_key_and_shuffle_bn():
    model = build_model(_cfg("model.sync_bn=true", "model.shuffle_bn=true"), 10)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    assert model.shuffle_bn
    model.train()
    out = model.forward_train([torch.randn(4, 3, 28, 28)] * 2, torch.arange(4))
    assert out.features.shape[0] == 8  # [q; k]; the queue was empty before this step


@pytest.mark.parametrize("overrides,match", [
    (["model.ghost_bn=8", "model.sync_bn=true"], "exclude each other"),
    (["model.ghost_bn=12"], "must divide the per-process batch"),
    (["model.ghost_bn=1"], "integer >= 2"),
    (["method=gpaco", "model.shuffle_bn=true"], "method=paco"),
])
def test_bad_batch_norm_choices_are_user_errors(overrides, match):
    with pytest.raises(UserError, match=match):
        build_model(_cfg(*overrides), 10)
