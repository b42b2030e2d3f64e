"""MAE's fine-tuning lr: the batch-size rule and a per-iteration warm-up + half-cosine.

MAE sets the lr before every optimiser step from the fractional epoch
`epoch + data_iter_step / len(data_loader)`: linear warm-up from 0 over `warmup_epochs`, then
`min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * (e - W) / (E - W)))`. With gradient
accumulation it is set on the first micro-batch of each accumulation window, so pass that
micro-batch's index as `iteration`.
"""

from __future__ import annotations

import math

from gpaco.errors import UserError

REFERENCE_BATCH = 256


def effective_batch_size(batch_per_device: int, accum_iter: int = 1, world_size: int = 1) -> int:
    """Images per optimiser step: per-device batch x accumulation steps x devices."""
    return batch_per_device * accum_iter * world_size


def scaled_lr(blr: float, effective_batch: int) -> float:
    """MAE's absolute lr from the base lr: `blr * effective_batch / 256`."""
    if effective_batch <= 0:
        raise UserError(f"effective batch size must be positive, got {effective_batch}")
    return blr * effective_batch / REFERENCE_BATCH


def lr_at_epoch(epoch: float, *, lr: float, min_lr: float, warmup_epochs: float,
                epochs: float) -> float:
    """The lr at a fractional epoch (MAE's `adjust_learning_rate`)."""
    if not 0 <= warmup_epochs < epochs:
        raise UserError(f"need 0 <= warmup_epochs < epochs, got {warmup_epochs} and {epochs}")
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    progress = (epoch - warmup_epochs) / (epochs - warmup_epochs)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_at_iteration(iteration: int, iters_per_epoch: int, *, lr: float, epochs: float,
                    min_lr: float = 1e-6, warmup_epochs: float = 5) -> float:
    """The lr at micro-batch `iteration` (counted from 0 over the whole run).

    Args:
        iteration: epoch * iters_per_epoch + index of the micro-batch in the epoch.
        iters_per_epoch: micro-batches per epoch (`len(data_loader)`).
        lr: peak lr (after warm-up); see `scaled_lr`.
        epochs, min_lr, warmup_epochs: as MAE's flags (defaults min_lr 1e-6, 5 warm-up epochs).
    """
    if iters_per_epoch <= 0:
        raise UserError(f"iters_per_epoch must be positive, got {iters_per_epoch}")
    return lr_at_epoch(iteration / iters_per_epoch, lr=lr, min_lr=min_lr,
                       warmup_epochs=warmup_epochs, epochs=epochs)
