"""MATLAB .mat label files (COCO-Stuff-10k annotations, Pascal-Context's trainval release)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gpaco.errors import UserError


def read_mat_array(path: str | Path, key: str, what: str) -> np.ndarray:
    """The array `key` of the .mat file `path` (a `what`, named in the errors); a file scipy
    cannot read (truncated by a broken download, damaged, MATLAB v7.3) is one UserError."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise UserError(f"reading {what} .mat files needs scipy (pip install scipy)") from None
    try:
        data = loadmat(str(path))
    except Exception as e:  # scipy raises many types for a short or damaged file
        raise UserError(f"cannot read {path} ({type(e).__name__}: {e}): the file is truncated "
                        f"or damaged; download the {what} files again") from None
    if key not in data:
        raise UserError(f"{path} has no {key!r} (keys: {sorted(data)[:5]}); is it a {what} file?")
    return np.asarray(data[key])
