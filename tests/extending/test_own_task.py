"""A third task defined only here (a toy regression: its own dataset with an option, its own
methods with an option, its own metric) trains two epochs through the real trainer and writes
its summary; nothing in gpaco is edited."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gpaco import run, tasks
from gpaco.config.options import POSITIVE, Entry, NoOptions, TaskEntry, options_of
from gpaco.errors import UserError
from gpaco.train.data import Data


class Lines(TensorDataset):
    """y = x . w + noise, fixed by a seed."""

    def __init__(self, root: Any = None, train: bool = True, transform: Any = None, *,
                 noise: float = 0.0, features: int = 4):
        g = torch.Generator().manual_seed(0 if train else 1)
        x = torch.randn(64 if train else 32, features, generator=g)
        w = torch.arange(1.0, features + 1)
        super().__init__(x, x @ w + noise * torch.randn(len(x), generator=g))


@dataclass
class HuberOptions:
    delta: float = field(default=1.0, metadata=POSITIVE)


@dataclass
class RegressionData:
    features: int = field(default=4, metadata=POSITIVE)


class Regressor(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, x):
        return self.linear(x).squeeze(1)


@dataclass
class Pair:  # the criterion's arguments, in order (train/forward.py)
    prediction: torch.Tensor
    target: torch.Tensor


class Forward(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, views, labels):
        return Pair(self.model(views[0]), labels)


LOSSES = {"mse": (NoOptions, lambda: nn.MSELoss()),
          "huber": (HuberOptions, lambda delta: nn.HuberLoss(delta=delta))}


class RegressionTask:
    methods = LOSSES
    datasets = {"lines": Lines}

    def entry(self) -> TaskEntry:
        return TaskEntry(options_of(RegressionData, "data"),
                         choices={"method": {n: Entry(options_of(o, "loss"))
                                             for n, (o, _) in LOSSES.items()},
                                  "data.dataset": {"lines": Entry(options_of(_LinesOptions,
                                                                             "data"))}})

    def build_data(self, cfg, device, *, with_train=True, augment_in_step=False) -> Data:
        make = lambda train: Lines(train=train, noise=cfg.data.noise,  # noqa: E731
                                   features=cfg.data.features)
        train, test = make(True), make(False)
        loader = DataLoader(train, batch_size=cfg.train.batch_size, shuffle=False)
        return Data(train, test, None, loader, DataLoader(test, batch_size=32), None, 1, [])

    def build_model(self, cfg, data) -> nn.Module:
        return Regressor(cfg.data.features)

    def build_criterion(self, cfg, data) -> nn.Module:
        options, make = LOSSES[cfg.method]
        return make(**{k: getattr(cfg.loss, k) for k in options.__dataclass_fields__})

    def train_forward(self, model):
        return Forward(model)

    def batch_mix(self, cfg, data):
        return None

    def start_lines(self, run_):
        return ["regression: mean squared error"]

    @torch.no_grad()
    def evaluate(self, run_, loader) -> float:
        errors = [(run_.model(x) - y) ** 2 for x, y in loader]
        return float(torch.cat(errors).mean())

    def summary(self, result: float) -> dict[str, Any]:
        return {"mse": result}

    def score(self, summary) -> float:
        return -summary["mse"]

    def describe(self, split, summary) -> str:
        return f"{split} mse {summary['mse']:.4f}"

    def final_line(self, summary) -> str:
        return "final " + self.describe("test", summary)

    def checkpoint_extras(self, data) -> dict[str, Any]:
        return {}

    def write_outputs(self, run_, result) -> None:
        (run_.folder / "mse.txt").write_text(f"{result}\n")


@dataclass
class _LinesOptions:
    noise: float = 0.0


@pytest.fixture
def regression():
    tasks.register_task("regression", RegressionTask())
    yield
    del tasks.TASKS["regression"]


BASE = ["task=regression", "data.dataset=lines", "method=huber", "model.backbone=none",
        "schedule.name=cosine", "warmup_epochs=0", "epochs=2", "train.batch_size=16",
        "optim.lr=0.05", "train.threads=1", "output.tensorboard=false", "output.plots=false"]


def test_its_keys_belong_to_its_choices(regression):
    cfg = run.load_config(overrides=[*BASE, "loss.delta=0.5", "data.noise=0.1"])
    assert (cfg.loss.delta, cfg.data.noise, cfg.data.features) == (0.5, 0.1, 4)
    with pytest.raises(UserError, match="loss.delta .* does not apply to method=mse; it is used "
                                        "by method=huber"):
        run.load_config(overrides=[*BASE, "method=mse", "loss.delta=0.5"])
    with pytest.raises(UserError, match="does not apply to task=regression; it is used by "
                                        "task=classification"):
        run.load_config(overrides=[*BASE, "loss.alpha=0.1"])


def test_it_trains_two_epochs_and_writes_its_summary(regression, tmp_path):
    folder = tmp_path / "run"
    cfg = run.load_config(overrides=[*BASE, f"output.dir={folder}"])
    summary = run.train(cfg, folder)
    assert summary["task"] == "regression" and summary["epochs"] == 2
    assert json.loads((folder / "summary.json").read_text())["last"] == summary["last"]
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert math.isfinite(summary["last"]["mse"]) and (folder / "mse.txt").is_file()
    assert records[1]["train_loss"] < records[0]["train_loss"]  # it learns
