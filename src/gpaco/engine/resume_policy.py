"""What `--resume` may change: not the learning-rate schedule nor what fixes the sample order.

A resumed run continues the schedule it started with. Changing `schedule.epochs` (or the
warm-up, milestones, decay, schedule name, base lr, batch size, seed) in the middle would give
a learning-rate curve and an order of batches that no single run follows, so the numbers would
match neither the old nor the new setting. Such changes are refused, naming each key; to train
longer, start a new run from the weights (`model.pretrained=RUN/last.pt`).
"""

from __future__ import annotations

from typing import Any

from gpaco.errors import UserError

from .config import Config, as_flat, from_dict

# Keys fixed when a run starts: the lr schedule (schedule.*) and its base, and the batch order.
FIXED_PREFIXES = ("schedule.",)
FIXED_KEYS = ("optim.lr", "train.batch_size", "seed")


def _fixed(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if k.startswith(FIXED_PREFIXES) or k in FIXED_KEYS}


def check_resume(saved: dict[str, Any] | None, cfg: Config, source: str) -> None:
    """Refuse to resume the run whose checkpoint config is `saved` with a changed schedule."""
    if not isinstance(saved, dict):
        raise UserError(f"{source} holds no run config (not a checkpoint written by gpaco "
                        "train) and cannot be resumed")
    before = _fixed(as_flat(from_dict(saved, f"the config of {source}")))
    now = _fixed(as_flat(cfg))
    changed = [f"{k} {before[k]!r} -> {now[k]!r}" for k in before if before[k] != now.get(k)]
    if changed:
        raise UserError(f"--resume continues the run's own schedule; refusing the change of "
                        f"{', '.join(changed)}. To train on with a new schedule, start a new run "
                        f"from its weights: model.pretrained={source}")
