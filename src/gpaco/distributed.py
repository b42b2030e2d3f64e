"""Thin helpers over torch.distributed that degrade to single-process no-ops.

Besides rank queries, this module holds the two collectives the wrappers use so that N
processes train exactly like one process with the same global batch:

- `gather_batch(z, labels)`: the global in-batch contrast set, with gradient to every rank;
- `shuffled_forward(fn, x)`: shuffle-BN for a key encoder (MoCo's batch shuffle).

Both are the identity (up to a permutation that is undone) on one process, so the losses and
the wrappers never need to know whether DDP is running.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import Tensor

from gpaco.errors import UserError

# Seconds a collective may wait for the other processes before the job fails (env override).
TIMEOUT_ENV = "GPACO_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def is_main() -> bool:
    return rank() == 0


@torch.no_grad()
def all_gather_cat(tensor: Tensor) -> Tensor:
    """Concatenate `tensor` from every rank along dim 0 (rank order); identity without DDP.

    No gradient flows through the result: it is meant for queue keys and labels.
    """
    if not is_dist() or world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather (rank order) whose backward hands each rank the sum over ranks of the
    gradients of its own rows: every rank's loss reaches every rank's inputs.

    The backward is an all-reduce rather than a reduce-scatter so it runs on every backend
    (gloo has no reduce-scatter); the tensors are (batch, dim) embeddings, so the extra
    traffic is negligible. Every rank must pass the same shape.
    """

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rows = tensor.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.rows
        return grad[start:start + ctx.rows]


def all_gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate `tensor` from every rank along dim 0 (rank order), differentiably."""
    if not is_dist() or world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


def gather_batch(z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The global in-batch contrast set: this rank's rows first, then the other ranks' rows.

    `z` (n, d) holds this rank's in-batch contrast rows with its anchors first (PaCo: [q; k],
    GPaCo: [q; k]); `labels` (n,) their labels. Returns (world * n, d) rows and labels in the
    order [this rank's; rank 0's; rank 1's; ... (skipping this rank)], so the anchors stay the
    first rows as the criterion contract wants. The criterion is invariant to the order of
    non-anchor columns, so each rank's anchors see exactly the contrast set of a one-process run
    over the global batch. Gradients flow back to the rank that owns each row, and DDP's
    gradient average over ranks then equals the one-process mean over all anchors.
    Identity on one process.
    """
    if not is_dist() or world_size() == 1:
        return z, labels
    everything = all_gather_with_grad(z)
    all_labels = all_gather_cat(labels)
    n, r = z.shape[0], rank()
    # Keep the local (autograd-local) tensor for our own rows; the others come from the gather.
    others = torch.cat([everything[: r * n], everything[(r + 1) * n:]])
    other_labels = torch.cat([all_labels[: r * n], all_labels[(r + 1) * n:]])
    return torch.cat([z, others]), torch.cat([labels, other_labels])


@torch.no_grad()
def shuffled_forward(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Shuffle-BN: run `fn` (a no-grad key encoder) on a random re-partition of the global batch.

    The global batch is gathered, permuted with a permutation drawn on rank 0 (and broadcast),
    each rank encodes its slice of the permuted batch, and the outputs are gathered and
    un-permuted, so every rank gets `fn`'s output for its own samples while batch-norm
    statistics come from a random subset of the global batch (MoCo's `_batch_shuffle_ddp`).
    On one process the batch is permuted and un-permuted in place, which matters only with
    ghost batch norm (the ghost groups then hold random samples, as the shards would).
    Every rank must pass the same batch size.
    """
    world, r = world_size(), rank()
    everything = all_gather_cat(x)
    perm = torch.randperm(everything.shape[0], device=x.device)
    if world > 1:
        dist.broadcast(perm, src=0)
    n = x.shape[0]
    out = all_gather_cat(fn(everything[perm[r * n:(r + 1) * n]]))
    unshuffled = torch.empty_like(out)
    unshuffled[perm] = out
    return unshuffled[r * n:(r + 1) * n]


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def local_world_size() -> int:
    """Processes of this job on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""
    value = os.environ.get("LOCAL_WORLD_SIZE", "")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def timeout() -> timedelta:
    """The process-group timeout: GPACO_DIST_TIMEOUT seconds (default 600)."""
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        raise UserError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if seconds <= 0:
        raise UserError(f"{TIMEOUT_ENV} must be positive, got {raw}")
    return timedelta(seconds=seconds)


def backend_for(device: str) -> str:
    """NCCL when the run trains on CUDA (`train.device` auto with a GPU, or cuda...), else gloo."""
    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if on_cuda else "gloo"


def init_from_env(device: str = "auto") -> None:
    """Join the process group that torchrun describes in the environment (no-op otherwise).

    `device` is the run's `train.device`: it picks the backend, so a CPU run on a machine that
    has GPUs still uses gloo (NCCL cannot reduce CPU tensors).

    Collectives wait at most `timeout()` for a silent peer, and SIGTERM (what torchrun's agent
    sends the surviving processes when one dies) becomes a one-line UserError instead of a
    silent death, so every process of a failed job says why it stopped.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_dist():
        return
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend, timeout=timeout())
    _stop_on_sigterm()


class PeerFailure(UserError):
    """Another process of the distributed job failed, or the job was stopped."""


def _stop_on_sigterm() -> None:
    main_pid = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != main_pid:  # a forked DataLoader worker: just die
            os._exit(128 + signum)
        raise PeerFailure(
            f"process {rank()} of {world_size()} was stopped (SIGTERM): another process of the "
            "job failed or the job was cancelled; the last completed epoch's checkpoint is kept")

    signal.signal(signal.SIGTERM, handler)


def is_peer_failure(err: BaseException) -> bool:
    """Whether `err` is a collective that failed because a peer died or went silent."""
    if not is_dist():
        return False
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "gloo",
                            "NCCL", "Timed out", "timed out", "Socket Timeout"))


def barrier() -> None:
    if is_dist():
        dist.barrier()


def shutdown() -> None:
    if is_dist():
        try:
            dist.destroy_process_group()
        except Exception:  # a peer already died: nothing left to tear down cleanly
            pass


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (identity without DDP)."""
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
