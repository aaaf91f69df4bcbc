"""The import graph of the packages: layers point down (worker -> jobs -> db), and no circles.

Read from the source with ``ast``: every ``import`` counts, the ones inside
functions too, since an import hidden in a function is how a circle gets
past the interpreter (and hides until that function runs first).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"db": 0, "jobs": 1, "worker": 2, "darkroom_api": 3}  # a module imports only its layer and below


def project_modules() -> dict[str, Path]:
    files = [*ROOT.glob("db/**/*.py"), *ROOT.glob("jobs/**/*.py"), *ROOT.glob("worker/**/*.py"),
             ROOT / "darkroom_api.py"]
    out = {}
    for path in files:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in its source)."""

    def project_module(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
                targets += [base, *(f"{base}.{a.name}" for a in node.names)]
        graph[name] = {m for t in targets if (m := project_module(t)) is not None and m != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_that_imports_it_back() -> None:
    modules = project_modules()
    graph = import_graph(modules)
    assert len(graph) > 100 and graph["worker.cli"]  # the walk sees the tree and its imports
    assert circles(graph) == []


def test_the_check_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_point_down_worker_jobs_db() -> None:
    graph = import_graph(project_modules())
    upward = [f"{m} -> {t}" for m, targets in graph.items() for t in targets
              if LAYERS[t.split(".")[0]] > LAYERS[m.split(".")[0]]]
    assert upward == []


@pytest.mark.parametrize("module", ["worker.commands.status", "worker.status.health", "worker.status.metrics",
                                    "worker.status.web.server", "worker.settings", "jobs.embeddings.store"])
def test_a_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    """Once a circle: importing one of these before worker.cli failed with "partially initialized module"."""
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr


def test_docs_architecture_lists_every_module() -> None:
    """docs/architecture.md says what each module holds: a new module is listed there too."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = []
    for path in project_modules().values():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("db/migrations/") or (path.name == "__init__.py" and not path.read_text().strip()):
            continue  # the revisions are listed by their folder; empty packages hold nothing
        if rel.startswith("worker/commands/"):
            listed = f"`{path.stem}`" in text  # the commands' row names each module
        else:
            listed = f"`{rel}`" in text
        if not listed:
            missing.append(rel)
    assert missing == []
