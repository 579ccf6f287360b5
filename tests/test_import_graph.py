"""The package boundaries: no import cycle in kit/, runtimes/ or bench/; runtimes/ imports
nothing from kit/ (kit serve fills in runtimes' own options type instead); kit/ imports nothing
from bench/ (the comparison study uses kit, never the other way round)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kit", "runtimes", "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``path`` imports at run time (function bodies included,
    ``if TYPE_CHECKING:`` blocks left out: they never run)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node)
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from kit import codec`` is an arrow to kit.codec, not to kit's __init__
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name in known)
    found.discard(module_name(path))
    return found


def import_graph() -> dict[str, set[str]]:
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    known = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, known) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "kit.app" in graph["kit"]
    assert {"kit.ops.health", "kit.ops.operations", "kit.parts"} <= graph["kit.app"]
    assert "runtimes.base" in graph["runtimes.registry"]


def test_there_is_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_a_cycle_would_be_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def arrows(source_package: str, target_package: str) -> set[tuple[str, str]]:
    return {
        (source, target)
        for source, targets in import_graph().items()
        if source.split(".")[0] == source_package
        for target in targets
        if target.split(".")[0] == target_package
    }


def test_runtimes_import_nothing_from_kit() -> None:
    assert arrows("runtimes", "kit") == set()


def test_kit_imports_nothing_from_bench() -> None:
    assert arrows("kit", "bench") == set()
    assert arrows("runtimes", "bench") == set()


def test_bench_is_read_too() -> None:
    graph = import_graph()
    assert "kit.benchmark.study" in graph["bench.matrix"]
