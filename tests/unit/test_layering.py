"""The package's layering, read from the source with ``ast`` (nothing is imported).

Rules:

* **No import cycles** among the package's modules. Imports inside functions (lazy imports, used
  to keep ``--help`` fast) count like module-level ones: a cycle through a lazy import still means
  two modules each need the other, so none is allowed. Imports under ``if TYPE_CHECKING:`` never
  run and are left out.
* **Pure modules do no I/O**: a pure module, and every package module it imports (directly or
  through others, lazily or not), imports none of :data:`IO_MODULES` nor the package's
  :data:`IO_PACKAGE_MODULES`. The pure set is given by name patterns (:data:`PURE`) so that
  modules added later under ``kinds/``, ``diff/`` or ``render/`` are covered as they appear; a
  pattern that matches nothing (a module not written yet) is fine.
* **nats stays behind the transport**: only the modules in :data:`NATS_ALLOWED` import ``nats``.

``importlib.import_module`` calls are not seen; the package uses one only in
``render/__init__.py``, to load its own (pure) submodules by name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

PACKAGE = "jelmore_infra"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

#: Modules that must do no I/O, as ``fnmatch`` patterns of dotted names relative to the package
#: (``diff`` is a module today and a package after the restructure; both forms are listed).
PURE = (
    "address",
    "audit",
    "diagnostics",
    "diff",
    "diff.*",
    "errors",
    "fields",
    "impact",
    "jsontext",
    "kinds",
    "kinds.*",
    "migration.steps",
    "model",
    "normalize",
    "plan",
    "render",
    "render.*",
    "subjects",
    "topology.blockyaml",
    "topology.build",
    "topology.emit",
    "topology.nodes",
    "topology.scalars",
    "topology.schema",
    "topology.validate",
    "units",
)
#: Pure modules that exist now and must keep matching (so a rename cannot empty the check).
PURE_REQUIRED = (
    "diagnostics",
    "subjects",
    "topology.build",
    "topology.emit",
    "topology.nodes",
    "topology.schema",
    "topology.validate",
    "units",
)
#: Outside modules that talk to the network or other processes.
IO_MODULES = ("nats", "socket", "subprocess", "asyncio", "urllib.request", "http", "ssl")
#: The package's own modules that connect, read the server, run processes or drive the CLI.
IO_PACKAGE_MODULES = (
    "apply",
    "cli",
    "connection",
    "live",
    "localserver",
    "runtime",
    "transport",
    "workflow",
)
#: The only modules that may import ``nats`` (patterns, as for :data:`PURE`): the shared
#: transport, the plan side's JetStream API client and the runtime's bus.
NATS_ALLOWED = (
    "transport",
    "transport.*",
    "live.jsapi",
    "runtime.bus",
)


@dataclass(frozen=True)
class Import:
    """One import statement's target: a dotted module name, and whether it is lazy."""

    target: str
    lazy: bool
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, source: str, modules: Iterable[str]) -> list[Import]:
    """Every import of a module's source that can run (not under ``if TYPE_CHECKING:``).

    ``from a import b`` is an import of ``a.b`` when that is a module of the package, else of
    ``a``; relative imports are resolved against ``name``.
    """
    known = set(modules)
    is_package = name in known and any(m.startswith(name + ".") for m in known)
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), lazy)
            elif isinstance(child, ast.Import):
                found.extend(Import(a.name, lazy, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = name.split(".") if is_package else name.split(".")[:-1]
                    parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    found.append(Import(full if full in known else base, lazy, child.lineno))
            else:
                visit(child, lazy)

    visit(ast.parse(source), False)
    return found


def import_graph() -> dict[str, list[Import]]:
    modules = package_modules()
    return {name: imports_of(name, path.read_text(), modules) for name, path in modules.items()}


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether a package module (full dotted name) matches a relative pattern."""
    relative = name.removeprefix(PACKAGE + ".")
    return any(fnmatchcase(relative, p) for p in patterns)


def is_under(name: str, prefixes: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``prefixes`` or inside one of them."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle as a path ``[a, b, ..., a]``; one per strongly connected group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in edges.get(v, ()):
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return [_cycle_path(group, edges) for group in groups]


def _cycle_path(group: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A path through a strongly connected group back to its start, for the message."""
    members = set(group)
    start = group[0]
    path = [start]
    seen = {start}
    while True:
        here = path[-1]
        nxt = sorted(w for w in edges[here] if w in members)
        if start in nxt:
            return [*path, start]
        unvisited = [w for w in nxt if w not in seen]
        here_next = unvisited[0] if unvisited else nxt[0]
        if here_next in seen:  # pragma: no cover - a group always leads back to its start
            return [*path, here_next]
        path.append(here_next)
        seen.add(here_next)


def package_edges(graph: dict[str, list[Import]]) -> dict[str, set[str]]:
    """Module → the package modules it imports (itself left out)."""
    return {
        name: {i.target for i in imports if i.target in graph and i.target != name}
        for name, imports in graph.items()
    }


def reachable(start: str, graph: dict[str, list[Import]]) -> Iterator[tuple[list[str], Import]]:
    """Every import made when ``start`` is imported, with the chain of modules that makes it.

    Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so those count.
    """
    chains: dict[str, list[str]] = {start: [start]}
    todo = [start]
    while todo:
        here = todo.pop()
        for imp in graph.get(here, ()):
            yield chains[here], imp
            parts = imp.target.split(".")
            for n in range(1, len(parts) + 1):
                target = ".".join(parts[:n])
                if target in graph and target not in chains:
                    chains[target] = [*chains[here], target]
                    todo.append(target)


# --- the rules --------------------------------------------------------------------------------


def test_the_package_has_no_import_cycles_not_even_through_lazy_imports() -> None:
    cycles = find_cycles(package_edges(import_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_pure_modules_import_neither_nats_nor_io_modules() -> None:
    graph = import_graph()
    pure = sorted(name for name in graph if matches(name, PURE))
    missing = [p for p in PURE_REQUIRED if f"{PACKAGE}.{p}" not in pure]
    assert not missing, f"pure modules not found (renamed?): {missing}"
    io_package = [f"{PACKAGE}.{m}" for m in IO_PACKAGE_MODULES]
    problems = set()
    for name in pure:
        for chain, imp in reachable(name, graph):
            if is_under(imp.target, IO_MODULES) or is_under(imp.target, io_package):
                how = "lazily " if imp.lazy else ""
                problems.add(
                    f"{name} is pure but {' -> '.join(chain)} {how}imports {imp.target} "
                    f"(line {imp.line})"
                )
    assert not problems, "\n".join(sorted(problems))


def test_only_the_transport_modules_import_nats() -> None:
    graph = import_graph()
    offenders = sorted(
        f"{name} imports {imp.target} (line {imp.line})"
        for name, imports in graph.items()
        for imp in imports
        if is_under(imp.target, ["nats"]) and not matches(name, NATS_ALLOWED)
    )
    assert not offenders, "\n".join(offenders)


# --- the checker itself -----------------------------------------------------------------------


def test_the_import_reader_sees_module_level_lazy_relative_and_from_imports() -> None:
    modules = ["pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"]
    source = (
        "from typing import TYPE_CHECKING\n"
        "import nats.errors\n"
        "from pkg import b\n"
        "from . import a\n"
        "from .c import thing\n"
        "if TYPE_CHECKING:\n"
        "    import socket\n"
        "else:\n"
        "    import ssl\n"
        "def f():\n"
        "    from pkg.a import x\n"
    )
    found = {(i.target, i.lazy) for i in imports_of("pkg.sub.d", source, modules)}
    assert found == {
        ("typing", False),
        ("nats.errors", False),
        ("pkg.b", False),
        ("pkg.sub", False),
        ("pkg.sub.c", False),
        ("ssl", False),
        ("pkg.a", True),
    }


def test_the_cycle_finder_reports_a_cycle_with_its_path() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(edges) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("name", "pure"),
    [
        ("jelmore_infra.diff", True),
        ("jelmore_infra.diff.rules", True),
        ("jelmore_infra.kinds.stream", True),
        ("jelmore_infra.render.human", True),
        ("jelmore_infra.topology.validate", True),
        ("jelmore_infra.topology.load", False),
        ("jelmore_infra.live.jsapi", False),
    ],
)
def test_the_pure_set_is_matched_by_name(name: str, pure: bool) -> None:
    assert matches(name, PURE) is pure


def test_the_graph_holds_known_edges() -> None:
    graph = import_graph()
    targets = {i.target for i in graph[f"{PACKAGE}.topology.load"]}
    assert f"{PACKAGE}.topology.validate" in targets
    assert f"{PACKAGE}.topology.nodes" in targets
