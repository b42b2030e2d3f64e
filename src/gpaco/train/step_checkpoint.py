"""Checkpoints inside an epoch (`train.checkpoint_every_steps`) and resuming exactly from them.

A mid-epoch checkpoint is `last.pt` with a `position` entry: the steps and images done in the
unfinished epoch, the running loss sum, and for every process its random states (Python,
numpy, torch, CUDA) and its loader's (the batched loader's augmentation generator). The sample
order is recomputed from the epoch seed, and the DataLoader path seeds every sample by its
position (gpaco.data.seeded_samples), so resuming there replays the rest of the epoch exactly:
the same batches, augmentations, lr and random draws as an uninterrupted run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
import torch.distributed as dist

from gpaco import distributed as gdist
from gpaco.data.seeded_samples import PositionSeededSampler
from gpaco.data.tensor_loader import TensorLoader
from gpaco.errors import UserError


@dataclass
class EpochPosition:
    """Where an unfinished epoch stands: `steps` steps of `images` images with loss sum
    `loss_sum`; `process` holds this process's random and loader states (None: not restored)."""

    steps: int
    images: int
    loss_sum: torch.Tensor
    process: dict[str, Any] | None = None


def _rng_state() -> dict[str, Any]:
    """Every random source's state, as tensors and plain values (weights_only-loadable)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Set every random source to a state `_rng_state` took (tensors may come back on a GPU)."""
    random.setstate(_as_python_state(state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def _as_python_state(state: Any) -> tuple:
    # random.getstate() is (version, tuple of ints, gauss); a saved file gives lists back
    version, internal, gauss = state
    return version, tuple(internal), gauss


def _loader_state(loader: Iterable) -> dict[str, Any]:
    return {"generator": loader.generator_state()} if isinstance(loader, TensorLoader) else {}


def _process_states(loader: Iterable) -> list[dict[str, Any]]:
    """Every process's random and loader state (one entry per rank)."""
    mine = {"rng": _rng_state(), "loader": _loader_state(loader)}
    if not gdist.is_dist():
        return [mine]
    states: list[Any] = [None] * gdist.world_size()
    dist.all_gather_object(states, mine)
    return states


def position_entry(loader: Iterable, steps: int, images: int,
                   loss_sum: torch.Tensor) -> dict[str, Any]:
    """The checkpoint's `position` entry after `steps` steps of the current epoch (collective
    under DDP: every rank calls it)."""
    return {"steps": steps, "images": images, "loss_sum": loss_sum.detach().cpu().clone(),
            "processes": _process_states(loader)}


def position_from(ckpt: dict[str, Any], device: torch.device) -> EpochPosition | None:
    """The unfinished epoch a checkpoint stopped in, or None for an end-of-epoch file."""
    entry = ckpt.get("position")
    if not entry:
        return None
    processes = entry["processes"]
    if len(processes) != gdist.world_size():
        raise UserError(f"this checkpoint stopped inside an epoch with {len(processes)} "
                        f"process(es); resume it with the same number, not "
                        f"{gdist.world_size()}")
    return EpochPosition(entry["steps"], entry["images"], entry["loss_sum"].to(device),
                         processes[gdist.rank()])


def start_loader_at(loader: Iterable, position: EpochPosition) -> None:
    """Make the loader's next pass continue after `position.steps` batches."""
    if isinstance(loader, TensorLoader):
        state = position.process["loader"]["generator"] if position.process else None
        if state is None:
            raise UserError("this mid-epoch checkpoint lacks the batched loader's state")
        loader.start_at(position.steps, state.cpu())
        return
    sampler = getattr(loader, "sampler", None)
    if not isinstance(sampler, PositionSeededSampler):
        raise UserError(f"cannot resume {type(loader).__name__} inside an epoch")
    sampler.start_at(position.steps * loader.batch_size)


class StepCheckpoints:
    """Called after every training step; every `every` steps saves the run's state with the
    epoch's position through `save(position_entry)` (on every rank: gathering is collective)."""

    def __init__(self, every: int, loader: Iterable,
                 save: Callable[[dict[str, Any]], None]) -> None:
        self.every, self.loader, self.save = every, loader, save

    def __call__(self, steps: int, images: int, loss_sum: torch.Tensor) -> None:
        if steps % self.every == 0:
            self.save(position_entry(self.loader, steps, images, loss_sum))
