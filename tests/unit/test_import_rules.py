"""The import graph of gateway/ (and bench/), read with ``ast``: who may import whom.

Every import counts, at module level or inside a function: a function-local import is still a
dependency, it only hides a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

# Only the commands build the app; the parts it builds never reach back to it.
APP_IMPORTERS = {"gateway.cli", "gateway.run", "gateway.demo"}
# (importer prefix, imported prefix): a floor never imports these.
FORBIDDEN = [
    ("gateway.ami", "gateway.calls"),
    ("gateway.records", "gateway.dialplan.render"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` counts ``a.b`` when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def _graph(*folders: str) -> dict[str, set[str]]:
    files = {_module_name(p): p for folder in folders for p in (ROOT / folder).rglob("*.py")}
    known = set(files)
    return {name: _imports(path, known) - {name} for name, path in files.items()}


GRAPH = _graph("gateway", "bench")


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read() -> None:
    assert "gateway.app" in GRAPH["gateway.run"]
    assert "gateway.node.runtime" in GRAPH["gateway.app"]


def test_only_the_commands_import_the_composition_root() -> None:
    importers = {name for name, imports in GRAPH.items() if "gateway.app" in imports}
    assert importers <= APP_IMPORTERS, f"{sorted(importers - APP_IMPORTERS)} import gateway.app"


def test_no_floor_imports_what_it_must_not() -> None:
    broken = [
        (name, imported)
        for name, imports in GRAPH.items()
        for imported in imports
        for importer_prefix, imported_prefix in FORBIDDEN
        if name.startswith(importer_prefix) and imported.startswith(imported_prefix)
    ]
    assert broken == []


def test_a_circle_is_found() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_outside_the_simulator() -> None:
    outside_sim = {
        name: {i for i in imports if not i.startswith("gateway.sim")}
        for name, imports in GRAPH.items()
        if not name.startswith("gateway.sim")
    }
    assert _circles(outside_sim) == []


def test_domain_services_take_ports_not_the_node() -> None:
    for name, imports in GRAPH.items():
        if name.startswith(("gateway.transfers", "gateway.callbacks", "gateway.queues")):
            assert not any(i.startswith(("gateway.node", "gateway.web.api")) for i in imports), name


def test_bench_does_not_import_the_tests() -> None:
    bench = ROOT / "bench"
    for path in bench.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [m for m in modules if m == "tests" or m.startswith("tests.")], path


def test_the_reference_order_system_is_not_imported_by_the_product() -> None:
    side = ("gateway.ordersink", "gateway.sim")
    allowed = {"gateway.demo", "gateway.cli"}  # the demo runs both; the CLI names the sink's command
    for name, imports in GRAPH.items():
        if name.startswith(("gateway.",)) and not name.startswith(side) and name not in allowed:
            assert not any(i.startswith("gateway.ordersink") for i in imports), name
