"""One training step, `step(views, labels) -> detached loss`, eager or captured as a CUDA graph.

Both ways run the same `forward_loss`; which one a run uses is decided and checked here, once
(`train.cuda_graph`), before anything is built around it.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import nn

from gpaco import distributed as gdist
from gpaco.errors import UserError

from gpaco.train.accumulation import micro_batches, sync_on_last
from gpaco.train.amp import autocast
from gpaco.config import TrainConfig
from gpaco.train.forward import forward_loss
from gpaco.train.graph_step import GraphedStep


class Step(Protocol):
    # True when the step lays out (and augments) its inputs itself: the loop hands them raw.
    lays_out_inputs: bool

    def __call__(self, views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor: ...


# (views, labels) -> (views, soft targets): batch mixing (gpaco.data.mae_augment.BatchMix)
BatchMix = Callable[[list[torch.Tensor], torch.Tensor], tuple[list[torch.Tensor], torch.Tensor]]


class EagerStep:
    """forward -> criterion -> backward (per micro-batch, train/accumulation.py) -> optimiser
    step (with the fp16 loss scaler). Returns the batch's mean loss."""

    lays_out_inputs = False

    def __init__(self, module: nn.Module, criterion: nn.Module,
                 optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 device: torch.device, amp: str, accum_iter: int = 1,
                 mix: BatchMix | None = None):
        self.module, self.criterion, self.optimizer = module, criterion, optimizer
        self.scaler, self.device, self.amp = scaler, device, amp
        self.accum_iter, self.mix = accum_iter, mix

    def __call__(self, views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        parts, losses = self.accum_iter, []
        for i, (v, y) in enumerate(micro_batches(views, labels, parts)):
            if self.mix is not None:  # per micro-batch, as MAE mixes each GPU's 32 images
                v, y = self.mix(v, y)
            with sync_on_last(self.module, i, parts):
                with autocast(self.device, self.amp):
                    loss = forward_loss(self.module, self.criterion, v, y) / parts
                self.scaler.scale(loss).backward()
            losses.append(loss.detach())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return losses[0] if parts == 1 else torch.stack(losses).sum()


def augments_in_step(train: TrainConfig) -> bool:
    """Whether the step applies the batched views itself (the loader then hands raw batches)."""
    return train.cuda_graph


def check_graphable(device: torch.device, amp: str, optimizer: torch.optim.Optimizer) -> None:
    """Refuse, in one line, what the CUDA-graph step cannot do."""
    if device.type != "cuda":
        raise UserError("train.cuda_graph=true needs a CUDA device (train.device)")
    if amp == "fp16":
        raise UserError("train.cuda_graph=true supports amp=bf16 or none (fp16 needs loss scaling)")
    if gdist.world_size() > 1:
        raise UserError("train.cuda_graph=true runs on one GPU; drop it for several processes")
    if type(optimizer) is not torch.optim.SGD:
        raise UserError(f"train.cuda_graph=true runs SGD only, not {type(optimizer).__name__}")
    for group in optimizer.param_groups:
        if group.get("dampening", 0) or group.get("maximize", False):
            raise UserError("train.cuda_graph=true runs SGD without dampening or maximize")


def build_step(train: TrainConfig, module: nn.Module, criterion: nn.Module,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               device: torch.device, augment: list[Callable] | None,
               mix: BatchMix | None = None) -> Step:
    if train.amp == "fp16" and device.type != "cuda":
        raise UserError(f"train.amp=fp16 needs a CUDA device (train.device is {device}); use "
                        "amp=bf16 or none on the CPU")
    if not train.cuda_graph:
        return EagerStep(module, criterion, optimizer, scaler, device, train.amp,
                         train.accum_iter, mix)
    if train.accum_iter > 1 or mix is not None:
        raise UserError("train.cuda_graph=true takes one unmixed batch per step; set "
                        "accum_iter=1 and no mixup / cutmix")
    check_graphable(device, train.amp, optimizer)
    return GraphedStep(module, criterion, optimizer, train.amp, augment=augment,
                       channels_last=train.channels_last)
