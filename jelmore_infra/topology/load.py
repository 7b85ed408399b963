"""Reading topology files: YAML text → a located node tree → merged stream and group entries.

Every ``*.yaml``/``*.yml`` file directly under the topology directory is read in sorted filename
order. YAML is composed into its node tree (never constructed blindly), so every key and value
keeps its file, line and column, duplicate keys are caught instead of silently overwritten, and
aliases cannot blow up or loop. The sections of all files are merged; a name defined twice is an
error naming both places.

:func:`parse_sources` is the pure entry point (texts in, desired model and diagnostics out);
:func:`check_topology` and :func:`load_topology` add the only file I/O of this subpackage.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from jelmore_infra.diagnostics import Diagnostic, Location, sort_diagnostics
from jelmore_infra.errors import TopologyError

if TYPE_CHECKING:
    from jelmore_infra.model import Topology

try:  # the C parser is several times faster; fall back to pure Python where it is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

#: Top-level sections of a topology file.
SECTIONS = ("streams", "consumer_groups")
#: How many nodes one file may expand to (aliases can multiply a small text).
MAX_NODES = 200_000
#: How deep values may nest.
MAX_DEPTH = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"


# --- the located node tree --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar value, as YAML reads it (``value``) and as written (``raw``)."""

    value: object
    raw: str
    loc: Location
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[LNode, ...]
    loc: Location


@dataclass(frozen=True, slots=True)
class Entry:
    """One key of a mapping: its text, where the key is written, and its value."""

    key: str
    key_loc: Location
    value: LNode


@dataclass(frozen=True, slots=True)
class Map:
    entries: dict[str, Entry]
    loc: Location


LNode = Union[Scalar, Seq, Map]  # noqa: UP007 - a runtime alias used in isinstance-free unions


def is_null(node: LNode | None) -> bool:
    """Whether a node is absent or an empty/null scalar (``key:`` with nothing after it)."""
    return node is None or (isinstance(node, Scalar) and node.value is None and not node.quoted)


def describe(node: LNode) -> str:
    """What a value is, for messages: ``a list``, ``a map``, ``the number 5``, ``'abc'``."""
    if isinstance(node, Map):
        return "a map"
    if isinstance(node, Seq):
        return "a list"
    v = node.value
    if v is None:
        return "nothing" if not node.raw or node.raw == "~" else f"null ({node.raw})"
    if isinstance(v, bool):
        return f"the boolean {node.raw}"
    if isinstance(v, int | float):
        return f"the number {node.raw}"
    if isinstance(v, str):
        text = v if len(v) <= 40 else v[:37] + "..."
        return repr(text)
    return repr(node.raw)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``word``, else ``""``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_NODES
        self.exhausted = False


class _Converter:
    """Turns one file's yaml node tree into located nodes, collecting diagnostics."""

    def __init__(self, filename: str, diags: list[Diagnostic]) -> None:
        self.filename = filename
        self.diags = diags
        self.budget = _Budget()
        self.constructor = SafeConstructor()
        self.active: set[int] = set()

    def loc(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.filename, mark.line + 1, mark.column + 1)

    def error(self, message: str, loc: Location, related: tuple[Location, ...] = ()) -> None:
        self.diags.append(Diagnostic("error", message, loc, related))

    def convert(self, node: Node, depth: int = 0) -> LNode | None:
        loc = self.loc(node)
        if self.budget.exhausted:
            return None
        self.budget.left -= 1
        if self.budget.left < 0:
            self.budget.exhausted = True
            self.error(
                f"the file expands to more than {MAX_NODES} values (through YAML aliases)", loc
            )
            return None
        if depth > MAX_DEPTH:
            self.error(f"values are nested more than {MAX_DEPTH} levels deep", loc)
            return None
        if id(node) in self.active:
            self.error("a YAML alias refers to a value that contains itself", loc)
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items = [self.convert(item, depth + 1) for item in node.value]
                return Seq(tuple(i for i in items if i is not None), loc)
            if isinstance(node, MappingNode):
                return self.mapping(node, loc, depth)
        finally:
            self.active.discard(id(node))
        self.error("unsupported YAML value", loc)  # pragma: no cover - yaml has 3 node kinds
        return None

    def scalar(self, node: ScalarNode, loc: Location) -> Scalar:
        quoted = node.style in ("'", '"', "|", ">")
        try:
            value = self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # any tag/constructor failure is a user error
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.error(f"cannot read value {node.value!r}: {problem}", loc)
            value = node.value
        return Scalar(value, str(node.value), loc, quoted)

    def key_text(self, node: Node) -> str | None:
        if isinstance(node, ScalarNode):
            return str(node.value)
        self.error("keys must be plain names, not lists or maps", self.loc(node))
        return None

    def mapping(self, node: MappingNode, loc: Location, depth: int) -> Map:
        entries: dict[str, Entry] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self.key_text(key_node)
            if key is None:
                continue
            key_loc = self.loc(key_node)
            first = entries.get(key)
            if first is not None:
                self.error(
                    f"duplicate key '{key}' (first written at {first.key_loc}); "
                    "YAML would silently keep only the last one",
                    key_loc,
                    (first.key_loc,),
                )
                continue
            value = self.convert(value_node, depth + 1)
            if value is None:
                value = Scalar(None, "", self.loc(value_node))
            entries[key] = Entry(key, key_loc, value)
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                converted = self.convert(source, depth + 1)
                if not isinstance(converted, Map):
                    if converted is not None:
                        self.error("a YAML merge key (<<) needs a map", converted.loc)
                    continue
                for key, entry in converted.entries.items():
                    entries.setdefault(key, entry)
        return Map(entries, loc)


def _yaml_error(filename: str, text: str, exc: Exception) -> Diagnostic:
    """One diagnostic for a YAML syntax error, at the place the parser stopped."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        loc = Location(filename, mark.line + 1, mark.column + 1)
    else:
        position = getattr(exc, "position", None)
        if isinstance(position, int):
            before = text[:position]
            line = before.count("\n") + 1
            col = position - (before.rfind("\n") + 1) + 1
            loc = Location(filename, line, col)
        else:
            loc = Location(filename, 1, 1)
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        context = f"{context} (started at line {context_mark.line + 1})"
    if problem:
        detail = f"{context}: {problem}" if context else str(problem)
    elif getattr(exc, "reason", None):
        detail = f"{exc.reason}"  # type: ignore[attr-defined]
    else:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "expected a single document" in detail:
        detail = "only one YAML document per file (remove the '---' separator)"
    return Diagnostic("error", f"YAML syntax error: {detail}", loc)


def parse_yaml(filename: str, text: str, diags: list[Diagnostic]) -> LNode | None:
    """Compose one file into located nodes; syntax errors become diagnostics."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        diags.append(_yaml_error(filename, text, exc))
        return None
    except RecursionError:
        diags.append(
            Diagnostic("error", "YAML values are nested too deeply", Location(filename, 1, 1))
        )
        return None
    if root is None:
        return None
    try:
        return _Converter(filename, diags).convert(root)
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps the walk shallow
        diags.append(
            Diagnostic("error", "YAML values are nested too deeply", Location(filename, 1, 1))
        )
        return None


# --- merging files ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawResource:
    """One stream or consumer group as written: its name, where, and its settings node."""

    name: str
    name_loc: Location
    settings: LNode


@dataclass(slots=True)
class RawTopology:
    streams: list[RawResource] = field(default_factory=list)
    groups: list[RawResource] = field(default_factory=list)


def merge_files(sources: Sequence[tuple[str, str]], diags: list[Diagnostic]) -> RawTopology:
    """Parse every (filename, text) in sorted filename order and merge their sections."""
    raw = RawTopology()
    seen: dict[str, dict[str, Location]] = {s: {} for s in SECTIONS}
    for filename, text in sorted(sources, key=lambda s: s[0]):
        root = parse_yaml(filename, text, diags)
        if is_null(root):
            continue
        assert root is not None
        if not isinstance(root, Map):
            diags.append(
                Diagnostic(
                    "error",
                    f"a topology file must be a map with 'streams:' and/or 'consumer_groups:', "
                    f"not {describe(root)}",
                    root.loc,
                )
            )
            continue
        for key, entry in root.entries.items():
            if key not in SECTIONS:
                diags.append(
                    Diagnostic(
                        "error",
                        f"unknown top-level key '{key}'{did_you_mean(key, SECTIONS)}; "
                        "a topology file has only 'streams:' and 'consumer_groups:'",
                        entry.key_loc,
                    )
                )
                continue
            section = entry.value
            if is_null(section):
                continue
            if not isinstance(section, Map):
                what = "stream names" if key == "streams" else "consumer group names"
                diags.append(
                    Diagnostic(
                        "error",
                        f"'{key}' must be a map of {what} to their settings, "
                        f"not {describe(section)}",
                        section.loc,
                    )
                )
                continue
            kind = "stream" if key == "streams" else "consumer group"
            target = raw.streams if key == "streams" else raw.groups
            for name, item in section.entries.items():
                first = seen[key].get(name)
                if first is not None:
                    diags.append(
                        Diagnostic(
                            "error",
                            f"{kind} '{name}' is defined twice: here and at {first}",
                            item.key_loc,
                            (first,),
                        )
                    )
                    continue
                seen[key][name] = item.key_loc
                target.append(RawResource(name, item.key_loc, item.value))
    return raw


# --- entry points -----------------------------------------------------------------------------


def parse_sources(
    sources: Sequence[tuple[str, str]],
) -> tuple[Topology | None, list[Diagnostic]]:
    """Validate topology texts and build the desired model. Pure: no file I/O.

    Returns the model (``None`` when any error was found) and every diagnostic, sorted.
    """
    from jelmore_infra.topology.build import build_topology
    from jelmore_infra.topology.validate import check_semantics, convert_topology

    diags: list[Diagnostic] = []
    raw = merge_files(sources, diags)
    streams, groups = convert_topology(raw, diags)
    diags.extend(check_semantics(streams, groups))
    diags = sort_diagnostics(diags)
    if any(d.severity == "error" for d in diags):
        return None, diags
    return build_topology(streams, groups), diags


def topology_files(directory: str | Path) -> list[Path]:
    """The ``*.yaml``/``*.yml`` files directly under ``directory``, sorted by name."""
    base = Path(directory)
    return sorted(
        (p for p in base.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()),
        key=lambda p: p.name,
    )


def read_sources(directory: str | Path) -> tuple[list[tuple[str, str]], list[Diagnostic]]:
    """Read every topology file of ``directory``; paths are shown as the directory was given."""
    shown = os.fspath(directory)
    if not os.path.isdir(shown):
        what = "is not a directory" if os.path.exists(shown) else "does not exist"
        return [], [Diagnostic("error", f"topology directory '{shown}' {what}")]
    try:
        files = topology_files(shown)
    except OSError as exc:
        return [], [Diagnostic("error", f"cannot list topology directory '{shown}': {exc}")]
    if not files:
        return [], [Diagnostic("error", f"no topology files (*.yaml) in '{shown}'")]
    sources: list[tuple[str, str]] = []
    diags: list[Diagnostic] = []
    for path in files:
        name = os.path.join(shown, path.name) if shown not in ("", ".") else path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            diags.append(Diagnostic("error", f"cannot read {name}: {exc.strerror or exc}"))
            continue
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            before = data[: exc.start]
            line = before.count(b"\n") + 1
            col = exc.start - (before.rfind(b"\n") + 1) + 1
            diags.append(
                Diagnostic("error", "the file is not valid UTF-8 text", Location(name, line, col))
            )
            continue
        sources.append((name, text))
    return sources, diags


def check_topology(directory: str | Path) -> tuple[Topology | None, list[Diagnostic]]:
    """Read and validate the topology directory: the model (or ``None``) and every diagnostic."""
    sources, read_diags = read_sources(directory)
    if read_diags and not sources:
        return None, read_diags
    topology, diags = parse_sources(sources)
    if read_diags:
        return None, sort_diagnostics([*read_diags, *diags])
    return topology, diags


def load_topology(directory: str | Path) -> Topology:
    """Read and validate the topology directory; raise :class:`TopologyError` with every problem."""
    topology, diags = check_topology(directory)
    if topology is None:
        raise TopologyError([d for d in diags if d.severity == "error"])
    return topology


__all__ = [
    "Entry",
    "LNode",
    "Map",
    "RawResource",
    "RawTopology",
    "Scalar",
    "Seq",
    "check_topology",
    "describe",
    "did_you_mean",
    "is_null",
    "load_topology",
    "merge_files",
    "parse_sources",
    "parse_yaml",
    "read_sources",
]
