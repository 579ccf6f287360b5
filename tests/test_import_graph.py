"""The package boundaries: no import cycle in kit/, runtimes/ or bench/; runtimes/ imports
nothing from kit/ (kit serve fills in runtimes' own options type instead); kit/ imports nothing
from bench/ (the comparison study uses kit, never the other way round); and inside kit/, each
layer imports only what it may (see ``layer_violations``)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

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


# The layers of kit/ (docs/architecture.md draws them). A module's layer comes from where it
# lives, so a module added later falls into one without editing this file.
OPS = ("kit.ops", "kit.middleware")  # operations and observability, and the middleware they install
INTEGRATIONS = (
    "kit.db",
    "kit.security",
    "kit.http",
    "kit.tasks",
    "kit.jobs",
    "kit.stores",
    "kit.service_settings",
    "kit.openapi",
    "kit.testing",
)
COMMANDS = (
    "kit.cli",
    "kit.serve",
    "kit.scaffold",
    "kit.benchmark",
    "kit.openapi.cli",
    "kit.db.reset",
)
# What the request core offers the layers above it: the modules kit/__init__ re-exports from
# (read from the graph below) and the extension points an integration plugs into. Everything
# else in the core (kit.codec, kit.dispatch, ...) is its own business.
EXTENSION_POINTS = {"kit.parts", "kit.deadlines", "kit.imports", "kit.settings"}
# The one place that assembles an App from the layers: it may import all of them.
COMPOSITION_ROOT = "kit.app"
# Known arrows against the rules, each with its reason.
EXCEPTIONS = {
    # KIT_FORWARDED_ALLOW_IPS is validated with the parser the middleware itself uses
    ("kit.settings", "kit.middleware.forwarded"),
}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer(module: str) -> str:
    """api, core, ops, integrations or commands (kit only)."""
    if module == "kit":
        return "api"
    if _under(module, COMMANDS):
        return "commands"
    if _under(module, OPS):
        return "ops"
    if _under(module, INTEGRATIONS):
        return "integrations"
    return "core"


def core_public(graph: dict[str, set[str]]) -> set[str]:
    reexported = {m for m in graph["kit"] if layer(m) == "core"}
    return reexported - {COMPOSITION_ROOT} | EXTENSION_POINTS


def layer_violations() -> list[str]:
    graph = import_graph()
    public = core_public(graph)
    problems = []
    for source, targets in sorted(graph.items()):
        if not source.startswith("kit"):
            continue
        here = layer(source)
        for target in sorted(targets):
            if (source, target) in EXCEPTIONS or not target.startswith("kit"):
                continue
            there = layer(target)
            why = None
            if there == "commands" and here != "commands":
                why = "only commands import commands"
            elif target == COMPOSITION_ROOT and here not in ("api", "commands"):
                why = "only the public API and the commands import the App"
            elif here == "core" and source != COMPOSITION_ROOT and there != "core":
                why = "the request core imports nothing above it (kit.app assembles the layers)"
            elif here in ("ops", "integrations") and there == "core" and target not in public:
                why = (
                    f"{here} use the core through its public modules ({', '.join(sorted(public))})"
                )
            elif here == "ops" and there == "integrations" and target.count(".") > 1:
                why = "ops use an integration through its package (kit.security), not its modules"
            if why:
                problems.append(f"{source} -> {target}: {why}")
    return problems


def test_every_module_of_kit_is_in_a_layer() -> None:
    layers = {module: layer(module) for module in import_graph() if module.startswith("kit")}
    assert layers["kit.app"] == layers["kit.routing"] == layers["kit.codec"] == "core"
    assert layers["kit.ops.metrics"] == layers["kit.middleware.observe"] == "ops"
    assert layers["kit.db.database"] == layers["kit.testing.server"] == "integrations"
    assert layers["kit.benchmark.runner"] == layers["kit.serve"] == "commands"
    assert core_public(import_graph()) >= {"kit.errors", "kit.routing", "kit.di", "kit.params"}
    assert "kit.codec" not in core_public(import_graph())


def test_the_layers_import_only_what_they_may() -> None:
    assert layer_violations() == []


def test_a_layer_violation_would_be_found(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = import_graph()
    graph["kit.ops.health"] = graph["kit.ops.health"] | {"kit.codec", "kit.app"}
    graph["kit.routing"] = graph["kit.routing"] | {"kit.ops.metrics"}
    monkeypatch.setattr(sys.modules[__name__], "import_graph", lambda: graph)
    found = layer_violations()
    assert any(line.startswith("kit.ops.health -> kit.codec: ops use the core") for line in found)
    assert any(line.startswith("kit.ops.health -> kit.app: only the public API") for line in found)
    assert any(
        line.startswith("kit.routing -> kit.ops.metrics: the request core") for line in found
    )
