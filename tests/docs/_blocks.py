"""The fenced code blocks of README.md and docs/*.md, and their command lines."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def key(self) -> str:
        """The block's first line: what the tables below know it by (stable under edits around it)."""
        return f"{self.path.name}: {self.text.strip().splitlines()[0].strip()}"


def blocks(path: Path) -> list[Block]:
    found, lang, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if lang is None and match:
            lang, start, lines = match.group(1), number, []
        elif lang is not None and line.rstrip() == "```":
            found.append(Block(path, start, lang, "\n".join(lines) + "\n"))
            lang = None
        elif lang is not None:
            lines.append(line)
    assert lang is None, f"{path}: unclosed code block at line {start}"
    return found


def all_blocks() -> list[Block]:
    return [b for path in DOCUMENTS for b in blocks(path)]


def command_lines(text: str) -> list[str]:
    """The commands of a shell block: continuations joined, comments dropped, `&&` split;
    each as its tokens joined by one space (the tables' keys)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        tokens = shlex.split(line, comments=True)
        command: list[str] = []
        for token in [*tokens, "&&"]:
            if token == "&&":
                if command:
                    commands.append(" ".join(command))
                command = []
            else:
                command.append(token)
    return commands
