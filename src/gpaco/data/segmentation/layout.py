"""Locating a benchmark's folder under the `root` a user passes."""

from __future__ import annotations

from pathlib import Path

from gpaco.errors import UserError


def find_root(root: str | Path, marker: str, candidates: tuple[str, ...], what: str) -> Path:
    """The first of `root`, `root/<candidate>`... that contains `marker` (a sub-path).

    Users point `root` at the dataset folder itself or at a folder above it (e.g. the data
    directory holding `ADEChallengeData2016`); anything else is a UserError naming the layout.
    """
    base = Path(root).expanduser()
    for folder in (base, *(base / c for c in candidates)):
        if (folder / marker).exists():
            return folder
    tried = ", ".join(str(base / c / marker) for c in ("", *candidates))
    raise UserError(f"{what} not found under {base}: expected one of {tried}")
