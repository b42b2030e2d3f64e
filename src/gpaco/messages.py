"""Wording shared by several commands, so that each mistake is named the same way."""

from __future__ import annotations

import difflib
from pathlib import Path

from gpaco.errors import UserError


def missing_checkpoint(path: Path) -> UserError:
    """`checkpoint not found`, or what to give instead when `path` is a run folder."""
    if path.is_dir():
        inside = [p.name for p in (path / "last.pt", path / "best.pt") if p.is_file()]
        hint = f" ({' or '.join(str(path / n) for n in inside)})" if inside else ""
        return UserError(f"{path} is a folder; give a checkpoint file{hint}")
    return UserError(f"checkpoint not found: {path}")


def unknown_key(key: str, leaves: list[str]) -> UserError:
    """`unknown config key`, with the key meant where one is close: a section given a value
    (`optim=adamw`: its `name`), or a near spelling."""
    if f"{key}.name" in leaves:
        return UserError(f"unknown config key {key!r}: {key} is a section; to choose one, say "
                         f"{key}.name=...")
    close = difflib.get_close_matches(key, leaves + [p.split(".")[-1] for p in leaves], n=1)
    return UserError(f"unknown config key {key!r}" + (f"; did you mean {close[0]}?" if close
                                                      else ""))


def unknown_command(word: str, commands: list[str]) -> UserError:
    close = difflib.get_close_matches(word, commands, n=1)
    hint = f"; did you mean `gpaco {close[0]}`?" if close else ""
    return UserError(f"unknown command {word!r} (commands: {', '.join(commands)}){hint}")


def invalid_yaml(origin: str, err: Exception) -> UserError:
    """A YAML file that does not parse, with the line and column where the parser stopped."""
    mark = getattr(err, "problem_mark", None)  # 0-based
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return UserError(f"{origin}: not valid YAML{where} ({problem})")
