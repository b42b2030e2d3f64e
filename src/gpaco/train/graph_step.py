"""The whole training step captured as one CUDA graph (the fast path of `train.cuda_graph`).

ResNet-32 at batch 128 does not fill a modern GPU: an eager step is bound by kernel launches and
host work, not by arithmetic. Replaying the step (forward of both views, loss, backward, SGD,
momentum-encoder update, queue update) as a CUDA graph removes that overhead.

What makes the step capturable:
- inputs live in static buffers that each step overwrites (`copy_`); with `augment`, the static
  input is the raw uint8 batch and the batched augmentations run inside the graph too (eagerly
  they cost more launches than the model); their random draws come from the default CUDA
  generator, which the graph advances at every replay and `torch.manual_seed` re-seeds;
- SGD runs as foreach kernels, one set per parameter group with that group's momentum, weight
  decay and nesterov, reading the group's learning rate (lr x its `lr_scale`, set by the
  schedule) from a device tensor, so the schedule changes it without re-capture; the momentum
  buffers are the torch.optim.SGD state tensors, so checkpoints are interchangeable with the
  eager path;
- the queue writes through a device pointer; capture waits until it is full, so its contents no
  longer change shape (eager steps run until then).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from gpaco.data.batched_ops import make_capturable

from gpaco.train.amp import AMP_DTYPES
from gpaco.train.forward import forward_loss


class GraphedStep:
    """A callable `step(views, labels) -> loss` with the same semantics as `step.EagerStep`.

    Build it through `step.build_step`, which refuses what it cannot run (see check_graphable).
    """

    lays_out_inputs = True

    def __init__(self, train_module: nn.Module, criterion: nn.Module,
                 optimizer: torch.optim.SGD, amp: str, *,
                 augment: list[Callable[..., torch.Tensor]] | None = None,
                 channels_last: bool = False, warmup_steps: int = 3):
        self.module, self.criterion, self.optimizer = train_module, criterion, optimizer
        self.amp = amp
        self.augment, self.channels_last = augment, channels_last
        make_capturable(augment or [])
        self.warmup_left = warmup_steps
        self.side_stream: torch.cuda.Stream | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_views: list[torch.Tensor] = []
        self.static_labels: torch.Tensor | None = None
        self.static_loss: torch.Tensor | None = None
        device = next(p for g in optimizer.param_groups for p in g["params"]).device
        self.lrs = [torch.zeros((), device=device) for _ in optimizer.param_groups]
        self.params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]

    # -- optimiser --------------------------------------------------------------------------
    def _buffers(self) -> list[torch.Tensor]:
        bufs = []
        for p in self.params:
            state = self.optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            bufs.append(state["momentum_buffer"])
        return bufs

    @torch.no_grad()
    def _sgd(self) -> None:
        """torch.optim.SGD's update (dampening 0) with tensor learning rates, group by group."""
        for group, lr in zip(self.optimizer.param_groups, self.lrs):
            params = [p for p in group["params"] if p.requires_grad and p.grad is not None]
            if params:
                self._sgd_group(group, params, lr)

    def _sgd_group(self, group: dict, params: list[torch.Tensor], lr: torch.Tensor) -> None:
        grads = [p.grad for p in params]
        bufs = [self.optimizer.state[p]["momentum_buffer"] for p in params]
        if group["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        torch._foreach_mul_(bufs, group["momentum"])
        torch._foreach_add_(bufs, grads)
        update = torch._foreach_add(grads, bufs, alpha=group["momentum"]) if group["nesterov"] \
            else bufs
        torch._foreach_add_(params, torch._foreach_mul(update, -lr))

    # -- step -----------------------------------------------------------------------------
    def _prepare(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.augment is not None:  # views[0] is the raw uint8 batch
            views = [aug(views[0]) for aug in self.augment]
        if self.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        return views

    def _forward_backward(self, views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        views = self._prepare(views)
        dtype = AMP_DTYPES.get(self.amp)
        # The autocast cast cache must be off while capturing: cached casts would outlive the graph.
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None,
                            cache_enabled=False):
            loss = forward_loss(self.module, self.criterion, views, labels)
        loss.backward()
        self._sgd()
        return loss.detach()

    def _eager(self, views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        return self._forward_backward(views, labels)

    def _ready_to_capture(self) -> bool:
        queues = [m for m in self.module.modules() if hasattr(m, "is_full")]
        return self.warmup_left <= 0 and all(q.is_full for q in queues)

    def _capture(self, views: list[torch.Tensor], labels: torch.Tensor) -> None:
        self.static_views = [v.clone() for v in views]
        self.static_labels = labels.clone()
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_loss = self._forward_backward(self.static_views, self.static_labels)

    def _load_lrs(self) -> None:
        """Each group's current lr (the schedule's, times the group's scale) into its tensor."""
        for group, lr in zip(self.optimizer.param_groups, self.lrs):
            lr.fill_(group["lr"])

    def __call__(self, views: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        self._buffers()
        self._load_lrs()
        if self.graph is None:
            if not self._ready_to_capture():
                self.warmup_left -= 1
                # Warm-up runs on a side stream, as capture requires (cuDNN/cuBLAS workspaces).
                side = self.side_stream = self.side_stream or torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    loss = self._eager(views, labels)
                torch.cuda.current_stream().wait_stream(side)
                return loss
            self._capture(views, labels)
        for static, view in zip(self.static_views, views):
            static.copy_(view)
        self.static_labels.copy_(labels)
        self.graph.replay()
        return self.static_loss.clone()
