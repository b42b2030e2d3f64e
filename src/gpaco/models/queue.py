"""A FIFO memory of past keys and their labels (the MoCo queue of PaCo / GPaCo).

The queue holds `size` rows. `enqueue` all-gathers keys and labels over the DDP ranks
(`gpaco.distributed.all_gather_cat`) and writes them at `ptr`, wrapping around; old rows are
overwritten first-in first-out. `contents()` returns only the valid rows.

Difference from the authors' code: PaCo/GPaCo initialise the queue with random Gaussian vectors
(normalised along the wrong dimension) and random labels, which act as fake positives and
negatives until the queue has turned over once. gpaco leaves empty slots out of the contrast set
instead: while the queue is filling, `contents()` returns rows [0, count) (the queue fills from
slot 0, so the valid rows are always a prefix).

The authors assert `size % global_batch == 0` so that a batch never straddles the end of the
buffer. gpaco handles wrap-around, so the check is off by default; pass
`require_divisible=True` to enforce it (for example to reproduce their exact slot layout).

Compile / CUDA-graph tolerance: writes use a tensor pointer and `index_copy_`, so no host sync
happens per step. The Python-side state is `_count` (a mirror of the `count` buffer, deciding how
much to return while filling) and `_full`. Only `_full` is read by traced code: the bookkeeping
and the prefix slice of the filling phase run outside `torch.compile` (`torch.compiler.disable`),
so a compiled step graph-breaks while the queue fills, recompiles once when it becomes full, and
from then on sees the whole buffer with no data-dependent slicing and no guard on a changing int.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gpaco.distributed import all_gather_cat
from gpaco.errors import UserError


class LabeledQueue(nn.Module):
    """FIFO queue of (key, label) pairs with buffers `keys` (K, d), `labels` (K,), `ptr`, `count`.

    Args:
        size: K, the number of rows (0 disables the queue: `contents()` is empty).
        dim: d, the key width.
        require_divisible: raise if K is not a multiple of the (global) batch being enqueued,
            as the authors' code does.
    """

    def __init__(self, size: int, dim: int, *, require_divisible: bool = False) -> None:
        super().__init__()
        if size < 0 or dim <= 0:
            raise UserError(f"queue size must be >= 0 and dim > 0, got size={size}, dim={dim}")
        self.size = size
        self.dim = dim
        self.require_divisible = require_divisible
        self.register_buffer("keys", torch.zeros(size, dim))
        # -1 marks a slot never written; such slots are never returned by contents().
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self._count = 0
        self._full = size == 0
        # A loaded checkpoint brings its own `count`; refresh the Python mirror from it.
        self.register_load_state_dict_post_hook(_sync_count_mirror)

    @property
    def is_full(self) -> bool:
        return self._full

    def __len__(self) -> int:
        return self._count

    @torch.no_grad()
    def enqueue(self, keys: Tensor, labels: Tensor) -> None:
        """Gather `keys` (n, d) and `labels` (n,) over ranks and write them FIFO at `ptr`."""
        keys = all_gather_cat(keys.detach().to(self.keys.dtype))
        labels = all_gather_cat(labels.detach().to(torch.long))
        n = keys.shape[0]
        if self.size == 0 or n == 0:
            return
        if self.require_divisible and self.size % n != 0:
            raise UserError(
                f"queue size {self.size} is not a multiple of the global batch {n} "
                "(require_divisible=True)"
            )
        start = self.ptr
        if n > self.size:
            # Writing n > K rows in order would overwrite the first ones; keep only the last K.
            keys, labels = keys[n - self.size:], labels[n - self.size:]
            start = self.ptr + (n - self.size)
            n = self.size
        idx = (start + torch.arange(n, device=self.keys.device)) % self.size
        self.keys.index_copy_(0, idx, keys)
        self.labels.index_copy_(0, idx, labels)
        self.ptr.copy_((start + n) % self.size)
        self.count.add_(n).clamp_(max=self.size)
        if not self._full:
            self._note_added(n)

    @torch.compiler.disable
    def _note_added(self, n: int) -> None:
        self._count = min(self._count + n, self.size)
        self._full = self._count >= self.size

    def contents(self) -> tuple[Tensor, Tensor]:
        """The valid (keys, labels): the whole buffer once full, else rows [0, count).

        These are views of the buffers: copy them (`torch.cat` does) before the next `enqueue`
        if they must survive it.
        """
        if self._full:
            return self.keys, self.labels
        return self._filled_prefix()

    @torch.compiler.disable
    def _filled_prefix(self) -> tuple[Tensor, Tensor]:
        return self.keys[: self._count], self.labels[: self._count]

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, filled={self._count}"


def _sync_count_mirror(module: nn.Module, incompatible_keys: object) -> None:
    module._count = int(module.count)
    module._full = module._count >= module.size
