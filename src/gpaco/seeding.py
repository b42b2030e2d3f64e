"""Seeds: one for construction, then a fresh derived seed at every epoch start.

Re-seeding every random source at the start of each epoch from (seed, epoch, rank) makes an
epoch's randomness independent of what ran before it, so `--resume` from an epoch checkpoint
replays exactly what an uninterrupted run would have done. `epoch_seed` also seeds the samplers
and the device-resident loader, so seed s at epoch e+1 never replays seed s+1 at epoch e.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % 2**31


def seed_epoch(seed: int, epoch: int, rank: int = 0) -> None:
    seed_all(epoch_seed(seed, epoch, rank))
