"""Atomic checkpoints: a kill at any moment leaves the previous good file loadable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch
from torch.utils.data import Dataset

from gpaco.errors import UserError
from gpaco.messages import missing_checkpoint

# The layout of the files gpaco writes (Run.state, `gpaco convert`): bump it when a reader of
# the old layout would misread the new one. Files without the entry are format 1 (before it).
# 2: the entry itself; metrics and `best` count epochs from 1; `step` marks a mid-epoch file.
FORMAT_VERSION = 2
FORMAT_KEY = "format_version"


def check_format(ckpt: dict[str, Any], source: str | Path) -> None:
    """Refuse, in one line, a checkpoint written by a newer gpaco than this one."""
    version = ckpt.get(FORMAT_KEY, 1)
    if not isinstance(version, int) or version < 1:
        raise UserError(f"{source} has a malformed {FORMAT_KEY} ({version!r})")
    if version > FORMAT_VERSION:
        raise UserError(f"{source} is checkpoint format {version}, written by a newer gpaco; this "
                        f"one reads formats up to {FORMAT_VERSION}: upgrade gpaco")


def current_umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc), else by
    setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """`write(file)` to a temporary file in the same folder, fsync, then rename over `path`.

    A failed write (disk full, quota, I/O error) is a one-line UserError; `path` keeps its
    previous content and no temporary file is left.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~current_umask())  # mkstemp's 0600 is not the user's
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) or _is_torch_write_error(err):
            kept = "its previous content is kept" if path.exists() else "nothing was written"
            raise UserError(f"cannot write {path}: {_reason(err)} ({kept})") from None
        raise


def _is_torch_write_error(err: BaseException) -> bool:
    # torch.save reports a failed write of its zip container as a RuntimeError
    # ("[enforce fail at inline_container.cc] unexpected pos ..." on a full disk)
    return isinstance(err, RuntimeError) and "inline_container" in str(err)


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return "the write failed (disk full?)"


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save `obj` to `path` atomically (see `atomic_write`)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise missing_checkpoint(path)
    try:
        # weights_only: a checkpoint is tensors and plain containers; never run its pickle code
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise UserError(f"{path} is not a gpaco checkpoint (no 'model' entry); for one of the "
                        "authors' files give --recipe NAME")
    check_format(ckpt, path)
    return ckpt


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DDP's `module.` and torch.compile's `_orig_mod.` prefixes so any run can load it."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_weights(model: torch.nn.Module, ckpt: dict[str, Any]) -> None:
    """Load the checkpoint's model weights, or say in one line why they do not fit."""
    try:
        model.load_state_dict(strip_prefixes(ckpt["model"]))
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or [str(err)]
        raise UserError("the checkpoint does not fit the configured model (different backbone, "
                        f"dim or classes?): {first[0].strip()}") from None


def known_class_names(classes: Any) -> list[str] | None:
    """A checkpoint's class names, or None where they are only the indices "0", "1", ... that
    Run.state writes for a dataset without names: those say nothing."""
    names = [str(c) for c in classes] if isinstance(classes, (list, tuple)) and classes else None
    return None if names is None or names == [str(i) for i in range(len(names))] else names


def check_classes(trained: int | None, classes: Any, dataset: Dataset, path: str) -> None:
    """Refuse data whose classes are not the model's (`trained` classes named `classes`, as far
    as the file knows them): the numbers would be meaningless."""
    have = getattr(dataset, "num_classes", None)
    if trained is not None and have is not None and trained != have:
        raise UserError(f"{path} was trained on {trained} classes but the evaluation data has "
                        f"{have}; point data.* at the data it was trained on")
    ours = known_class_names(classes)
    theirs = known_class_names(getattr(dataset, "classes", None))
    if ours is not None and theirs is not None and ours != theirs:
        first = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
        raise UserError(f"{path}'s class {first} is {ours[first]!r} but the evaluation data's is "
                        f"{theirs[first]!r}: not the classes it was trained on")

