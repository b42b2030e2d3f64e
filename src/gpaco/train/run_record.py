"""A run's record stays what ran: what `--resume` changes is refused on a finished run and
written down with its epoch on an unfinished one.

config.yaml describes the whole run. A finished run has nothing left for a change to act on,
so a changed key there would only rewrite the record (`--resume RUN optim.lr=0.5` made
`gpaco report` say lr 0.5 where 0.1 ran): refused, except where the data now lives. On an
unfinished run a change takes effect from the epoch the run resumes at: config.yaml holds the
new value and `changes.jsonl` says from which epoch, so no value is claimed for epochs it did
not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpaco.errors import UserError

from gpaco.config import Config, as_flat, flat_dict

CHANGES = "changes.jsonl"
# Where the data and the outputs live: a moved dataset changes no number.
LOCATION_KEYS = ("data.root", "data.train_split", "data.val_split", "data.test_split",
                 "output.dir", "output.progress")


def changed_keys(saved: dict[str, Any], cfg: Config, source: str) -> dict[str, tuple[Any, Any]]:
    """{key: (saved value, new value)} of the keys `cfg` changes, locations left out."""
    # The saved config was resolved when the run started: its values are what ran.
    before = flat_dict(saved)
    now = as_flat(cfg)
    return {k: (before[k], now[k]) for k in before
            if k in now and before[k] != now[k] and k not in LOCATION_KEYS
            and not (k == "train.threads" and before[k] == "auto")}  # runs before it was kept


# What shapes the network: the checkpoint's weights hold only for the values it was built with.
MODEL_KEYS = ("task", "method", "data.num_classes")
MODEL_PREFIX = "model."
WEIGHTS_ONLY = ("model.pretrained", "model.freeze")  # the start, not the network


def check_same_model(saved: dict[str, Any], cfg: Config, source: str) -> None:
    """Refuse, naming the key, a resume that would build another network than the
    checkpoint's (its weights would not load: a wall of state-dict keys)."""
    changes = {k: v for k, v in changed_keys(saved, cfg, source).items()
               if (k in MODEL_KEYS or k.startswith(MODEL_PREFIX)) and k not in WEIGHTS_ONLY}
    if changes:
        raise UserError(f"--resume cannot change the network: {_listed(changes)}; the "
                        f"checkpoint's weights are for the first. To train another one from "
                        f"them, start a new run with model.pretrained={source}")


def _listed(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())


def check_and_record(saved: dict[str, Any], cfg: Config, folder: Path, source: str,
                     done_epochs: int, write: bool) -> str | None:
    """Refuse changes on a finished run; on an unfinished one append them to changes.jsonl
    (when `write`, i.e. on the main process) and return the line that says so."""
    changes = changed_keys(saved, cfg, source)
    if not changes:
        return None
    if done_epochs >= cfg.schedule.epochs:
        raise UserError(f"{folder} is a finished run ({done_epochs} epochs); --resume would "
                        f"only rewrite its record: refusing the change of {_listed(changes)}. "
                        f"Evaluate it with `gpaco eval --checkpoint {source}`, or start a new "
                        f"run from its weights: model.pretrained={source}")
    if write:
        record = {"epoch": done_epochs + 1,
                  "changes": {k: [old, new] for k, (old, new) in changes.items()}}
        with (folder / CHANGES).open("a") as f:
            f.write(json.dumps(record) + "\n")
    return (f"from epoch {done_epochs + 1} on: {_listed(changes)} (recorded in "
            f"{folder / CHANGES})")


def read_changes(folder: Path) -> list[dict[str, Any]]:
    """The changes resumes made, in order ([] for a run never changed)."""
    path = folder / CHANGES
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
