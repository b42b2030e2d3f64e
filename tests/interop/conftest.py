"""Checkpoint interop tests: one thread each (the machines are shared), gpaco checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from _authors_layouts import randomize
from gpaco.tasks.classification.build import build_model
from gpaco.run import parse_overrides, resolve, to_dict


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_gpaco_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """Writes a gpaco checkpoint as `Run.state` does, with random weights (no training)."""

    def make(seed: int, *overrides: str, classes: list[str] | None = None) -> Path:
        cfg = resolve([("test", {"method": "gpaco", "model": {"backbone": "resnet8", "dim": 8,
                                                              "queue_size": 8}}),
                       ("overrides", parse_overrides(list(overrides)))])
        num_classes = len(classes) if classes else 3
        model = randomize(build_model(cfg, num_classes), seed)
        path = tmp_path / f"run{seed}.pt"
        torch.save({"model": model.state_dict(), "optimizer": {}, "scaler": {}, "epoch": 2,
                    "config": to_dict(cfg), "best": None, "num_classes": num_classes,
                    "class_counts": [5] * num_classes,
                    "classes": classes or [str(c) for c in range(num_classes)]}, path)
        return path

    return make
