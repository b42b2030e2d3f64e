"""The package's shape, checked: imports go one way (no cycles; train/ and config/ import no
task), no module grows past 450 lines, config/ stays small, and no choice is compared by name
outside the table that defines it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "gpaco"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in SRC.rglob("*.py")}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path) -> set[str]:
    """The gpaco modules `path` imports (anywhere but under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if _type_checking(node) for n in ast.walk(node)}
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("gpaco")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if not base.startswith("gpaco"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m in MODULES}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in GRAPH[v]:
                found.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert _cycles() == []


def test_the_trainer_and_the_config_import_no_task():
    for name, imported in GRAPH.items():
        if name.startswith(("gpaco.train", "gpaco.config", "gpaco.weights", "gpaco.losses",
                            "gpaco.models", "gpaco.data")):
            assert not {m for m in imported if m.startswith("gpaco.tasks")}, name
        if name.startswith("gpaco.config"):
            assert all(m.startswith(("gpaco.config", "gpaco.errors", "gpaco.messages"))
                       for m in imported), name


def test_no_module_over_450_lines_and_config_under_766():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {n: s for n, s in sizes.items() if s > 450} == {}
    assert sum(s for n, s in sizes.items() if n.startswith("gpaco.config")) <= 766


# A choice compared by name: `task == "x"`, `method != "ce"`, `dataset == "image_folder"`,
# `.name == "sgd"`, or an isinstance test against a loss class.
_COMPARED = re.compile(r"""\b(task|method|dataset|(optim|schedule|o|s)\.name)\s*(==|!=|in|not in)\s*["'(\[]""")


def test_no_choice_is_compared_by_name_outside_its_table():
    hits = []
    for name, path in MODULES.items():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if _COMPARED.search(code) or "isinstance(criterion" in code or \
                    re.search(r"isinstance\([^,]+,\s*\w+Loss\)", code):
                hits.append(f"{name}:{number}: {line.strip()}")
    assert hits == []
