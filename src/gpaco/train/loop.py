"""One training epoch, shared by every task and method; progress display."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

from gpaco.errors import UserError

from gpaco.train.amp import autocast
from gpaco.train.step import Step
from gpaco.train.step_checkpoint import EpochPosition, restore_rng

class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class EpochStats:
    loss: float
    steps: int
    images: int
    seconds: float


def as_views(batch_views: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return [batch_views] if isinstance(batch_views, torch.Tensor) else list(batch_views)


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


class Progress:
    """tqdm bar on a terminal; elsewhere (a log file) a line every `interval` seconds with the
    step, the mean loss and the epoch's remaining time; or nothing."""

    def __init__(self, mode: str, total: int, desc: str, enabled: bool = True,
                 interval: float = 30.0, clock: Callable[[], float] = time.monotonic):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode if enabled else "none"
        self.desc, self.total, self.bar = desc, total, None
        self.interval, self.clock = interval, clock
        self.start = self.last = clock()
        if self.mode == "bar":
            self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def update(self, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}")
        elif self.mode == "lines" and self.clock() - self.last >= self.interval:
            self.last = now = self.clock()
            eta = (now - self.start) / step * (self.total - step)
            print(f"  {self.desc} step {step}/{self.total} loss {loss:.4f} "
                  f"eta {_duration(eta)}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


def _check_finite(total: torch.Tensor, where: str) -> float:
    value = float(total)  # the one host sync of a logging interval
    if not torch.isfinite(torch.tensor(value)):
        raise TrainingDiverged(f"the loss became {value} {where}")
    return value


def train_epoch(step: Step, model: nn.Module, loader: Iterable, device: torch.device, *,
                channels_last: bool, max_steps: int | None, log_every: int,
                progress: Progress, epoch: int, resume_at: EpochPosition | None = None,
                after_step: Callable[[int, int, torch.Tensor], None] | None = None) -> EpochStats:
    """One pass over `loader`; `resume_at`: continue an epoch a mid-epoch checkpoint stopped in
    (the loader already positioned); `after_step(steps, images, loss_sum)` runs after each step."""
    model.train()
    start = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    steps = images = 0
    batches = iter(loader)  # creating the iterator draws from the RNG: restore after it
    if resume_at is not None:
        steps, images, loss_sum = resume_at.steps, resume_at.images, resume_at.loss_sum.clone()
        if resume_at.process is not None:
            restore_rng(resume_at.process["rng"])
    for views, labels in batches:
        if max_steps is not None and steps >= max_steps:
            break
        views = [to_device(v, device, channels_last) for v in as_views(views)]
        labels = labels.to(device, non_blocking=True)
        loss_sum += step(views, labels).float()
        steps += 1
        images += labels.shape[0]
        if steps % log_every == 0:
            mean = _check_finite(loss_sum, f"in epoch {epoch} by step {steps}") / steps
            progress.update(steps, mean)
        if after_step is not None:
            after_step(steps, images, loss_sum)
    progress.close()
    mean = _check_finite(loss_sum, f"in epoch {epoch}") / max(steps, 1)
    return EpochStats(mean, steps, images, time.perf_counter() - start)
