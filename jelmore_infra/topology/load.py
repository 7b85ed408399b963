"""Reading topology files: YAML text → a located node tree → merged stream and group entries.

Every ``*.yaml``/``*.yml`` file directly under the topology directory is read in sorted filename
order (names starting with ``.`` are hidden, as for the shell's ``*.yaml``). An entry with such a
name that cannot be read (a dangling symlink, a symlink loop, a directory) is an error, never
skipped. A file over :data:`MAX_FILE_BYTES` is refused before it is parsed.

Files are built into located nodes (:mod:`jelmore_infra.topology.nodes`) straight from the YAML
parser's events (nothing is constructed blindly), so every key and value keeps its file, line and
column, duplicate keys are caught instead of silently overwritten, and aliases cannot blow up or
loop. Plain values are read by :func:`plain_value`: only ``true``/``false`` are booleans, numbers
are ASCII decimal, and YAML tags (``!foo``, ``!!python/...``) are refused. The sections of all
files are merged; a name defined twice is an error naming both places.

Speed: a file of plain block YAML (block maps and lists of unquoted one-line values, as most
topology files are) is read without the YAML parser by
:mod:`jelmore_infra.topology.blockyaml`, into the same nodes in about two thirds of the time;
anything else goes to the parser. There libyaml (through PyYAML) produces the events and this
module builds nodes from them with as little Python per event as it can. Places are kept as
numbers and become a :class:`~jelmore_infra.diagnostics.Location` only when a check asks.
rapidyaml was measured as a faster first pass and rejected: it parses the 5,000-resource
benchmark topology in about 11 ms, but walking its tree from Python costs about 150 ms, more
than libyaml's whole event stream, and it accepts text libyaml refuses (a plain value starting
with ``@`` or a backtick), so its answers would not match this reader's.

:func:`parse_sources` is the pure entry point (texts in, desired model and diagnostics out);
:func:`check_topology` and :func:`load_topology` add the only file I/O of this subpackage.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jelmore_infra.diagnostics import Diagnostic, Location, sort_diagnostics
from jelmore_infra.errors import JelmoreError, TopologyError
from jelmore_infra.topology.blockyaml import compose_plain
from jelmore_infra.topology.build import build_topology
from jelmore_infra.topology.events import build_events, check_events, convert_events
from jelmore_infra.topology.nodes import (
    Entry,
    LNode,
    Map,
    RawResource,
    RawTopology,
    Scalar,
    Seq,
    describe,
    did_you_mean,
    is_null,
)
from jelmore_infra.topology.scalars import plain_value
from jelmore_infra.topology.validate import (
    check_bucket_streams,
    check_semantics,
    convert_buckets,
    convert_topology,
)

if TYPE_CHECKING:
    from jelmore_infra.model import Topology

#: Top-level sections of a topology file.
SECTIONS = ("streams", "consumer_groups", "kv_buckets", "object_stores", "events")
#: What each section is a map of, and what one entry is called (for messages).
_SECTION_WORDS = {
    "streams": ("stream names", "stream"),
    "consumer_groups": ("consumer group names", "consumer group"),
    "kv_buckets": ("KV bucket names", "KV bucket"),
    "object_stores": ("object store names", "object store"),
    "events": ("event types", "event"),
}
#: The largest topology file read, in bytes (16 MiB). A topology of 20,000 resources written by
#: bench/topogen.py takes under 4 MB, in one file or two; a larger file is refused before it is
#: parsed.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: How many values one file may hold as written (keys not counted). That 20,000-resource topology
#: has about 180,000.
MAX_VALUES = 1_000_000
#: How many values YAML aliases may add to one file by repeating what an anchor names.
MAX_ALIAS_VALUES = 1_000_000
#: How deep values may nest.
MAX_DEPTH = 64

_CORE_TAG_PREFIX = "tag:yaml.org,2002:"
_QUOTED = frozenset({"'", '"', "|", ">"})


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE_TAG_PREFIX) :] if tag.startswith(_CORE_TAG_PREFIX) else tag


# --- composing one file -----------------------------------------------------------------------


class _Fatal(Exception):
    """A problem after which the rest of the file cannot be read meaningfully."""

    def __init__(self, message: str, loc: Location) -> None:
        super().__init__(message)
        self.diagnostic = Diagnostic("error", message, loc)


#: A map waiting for its next key, or whose key was refused (its value is dropped), or whose key
#: is the merge key ``<<``; a list (whose nodes are all items).
_AWAIT, _DROP, _MERGE, _ITEM = object(), object(), object(), object()


class _Frame:
    """A list or map being composed."""

    __slots__ = (
        "anchor",
        "col",
        "entries",
        "items",
        "key",
        "key_col",
        "key_line",
        "line",
        "merges",
        "size",
    )

    def __init__(self, line: int, col: int, anchor: str | None, is_map: bool) -> None:
        self.line = line
        self.col = col
        self.anchor = anchor
        self.items: list[LNode] | None = None if is_map else []
        self.entries: dict[str, Entry] = {}
        self.merges: list[LNode] = []
        self.key: object = _AWAIT if is_map else _ITEM
        self.key_line = line
        self.key_col = col
        #: Values in this list or map, itself included, with every alias expanded.
        self.size: int = 1


class _Composer:
    """Builds one file's located nodes straight from the parser's events.

    Counts values as it goes: those written in the file (at most :data:`MAX_VALUES`) apart from
    those an alias repeats (at most :data:`MAX_ALIAS_VALUES`), so an alias is never expanded to
    be counted and each limit has its own message. Places are kept as line and column numbers;
    a :class:`Location` is made only for a diagnostic (or later, when a check asks a node).
    """

    def __init__(self, filename: str, diags: list[Diagnostic]) -> None:
        self.filename = filename
        self.diags = diags
        #: Anchor name → the node and its size; ``None`` while the anchored list or map is open.
        self.anchors: dict[str, tuple[LNode, int] | None] = {}
        self.values = 0
        self.alias_values = 0

    def loc(self, event: Any) -> Location:
        mark = event.start_mark
        return Location(self.filename, mark.line + 1, mark.column + 1)

    def error(self, message: str, loc: Location, related: tuple[Location, ...] = ()) -> None:
        self.diags.append(Diagnostic("error", message, loc, related))

    def refuse_tag(self, tag: str, what: str, event: Any) -> None:
        self.error(
            f"cannot read {what} tagged '{_show_tag(tag)}': topology files take no YAML tags "
            "(remove the tag; put text in quotes)",
            self.loc(event),
        )

    def count(self, event: Any) -> None:
        self.values += 1
        if self.values > MAX_VALUES:
            raise _Fatal(
                f"the file has more than {MAX_VALUES:,} values; split it into several files",
                self.loc(event),
            )

    def compose(self, parser: Any) -> LNode | None:
        """The file's root node (``None`` for an empty file); raises :class:`_Fatal`.

        The loop runs once per YAML event (about 18 per resource), so it keeps its state in
        locals and handles the commonest event, a map key, without a call.
        """
        from yaml.events import (  # (here: a file of plain block YAML needs no YAML parser)
            AliasEvent,
            DocumentStartEvent,
            MappingEndEvent,
            MappingStartEvent,
            ScalarEvent,
            SequenceEndEvent,
            SequenceStartEvent,
            StreamEndEvent,
        )

        filename = self.filename
        get_event = parser.get_event
        stack: list[_Frame] = []
        top: _Frame | None = None
        root: LNode | None = None
        documents = 0
        while True:
            event = get_event()
            kind = type(event)
            if kind is ScalarEvent:
                text: str = event.value
                quoted = event.style in _QUOTED
                if event.tag is not None:
                    self.refuse_tag(event.tag, f"value {text!r}", event)
                mark = event.start_mark
                line = mark.line + 1
                col = mark.column + 1
                anchor = event.anchor
                if top is not None and top.key is _AWAIT and anchor is None:
                    # The common case, a map key, inlined from key(): no node is needed.
                    if (quoted or text != "<<") and text not in top.entries:
                        top.key = text
                        top.key_line = line
                        top.key_col = col
                    else:
                        self.key(top, text, quoted, line, col)
                    continue
                scalar = Scalar(
                    text if quoted else plain_value(text), text, quoted, filename, line, col
                )
                if anchor is not None:
                    self.anchors[anchor] = (scalar, 1)
                if top is not None and top.key is _AWAIT:
                    self.key(top, text, quoted, line, col)
                    continue
                if self.values < MAX_VALUES:
                    self.values += 1  # count(), inlined
                else:
                    self.count(event)
                if top is None:
                    root = scalar
                elif top.items is not None:  # a list item: attach(), inlined
                    top.items.append(scalar)
                    top.size += 1
                elif type(top.key) is str:  # the value of a map key: attach(), inlined
                    key = top.key
                    top.key = _AWAIT
                    top.size += 1
                    top.entries[key] = Entry(key, scalar, filename, top.key_line, top.key_col)
                else:
                    self.attach(top, scalar, 1)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if len(stack) >= MAX_DEPTH:
                    raise _Fatal(
                        f"values are nested more than {MAX_DEPTH} levels deep", self.loc(event)
                    )
                is_map = kind is MappingStartEvent
                if event.tag is not None:
                    self.refuse_tag(event.tag, "a map" if is_map else "a list", event)
                if top is None or top.key is not _AWAIT:  # a map key is not a value
                    self.count(event)
                if event.anchor is not None:
                    self.anchors[event.anchor] = None
                mark = event.start_mark
                top = _Frame(mark.line + 1, mark.column + 1, event.anchor, is_map)
                stack.append(top)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = stack.pop()
                node = self.close(frame)
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (node, frame.size)
                if stack:
                    top = stack[-1]
                    self.attach(top, node, frame.size)
                else:
                    top = None
                    root = node
            elif kind is AliasEvent:
                target, size = self.alias(event)
                if top is not None:
                    self.attach(top, target, size)
                else:  # pragma: no cover - an alias cannot be a document's root before its anchor
                    root = target
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Fatal(
                        "only one YAML document per file (remove the '---' separator)",
                        self.loc(event),
                    )
            elif kind is StreamEndEvent:
                return root

    def alias(self, event: Any) -> tuple[LNode, int]:
        """What an alias repeats and how many values that is; raises :class:`_Fatal`."""
        name = event.anchor
        if name not in self.anchors:
            raise _Fatal(f"the alias '*{name}' has no anchor '&{name}' before it", self.loc(event))
        target = self.anchors[name]
        if target is None:
            raise _Fatal("a YAML alias refers to a value that contains itself", self.loc(event))
        self.alias_values += target[1]
        if self.alias_values > MAX_ALIAS_VALUES:
            raise _Fatal(
                f"the file expands to more than {MAX_ALIAS_VALUES:,} values through YAML aliases",
                self.loc(event),
            )
        return target

    def key(self, frame: _Frame, text: str, quoted: bool, line: int, col: int) -> None:
        if text == "<<" and not quoted:
            frame.key = _MERGE
            return
        first = frame.entries.get(text)
        if first is not None:
            self.error(
                f"duplicate key '{text}' (first written at {first.key_loc}); "
                "YAML would silently keep only the last one",
                Location(self.filename, line, col),
                (first.key_loc,),
            )
            frame.key = _DROP
            return
        frame.key = text
        frame.key_line = line
        frame.key_col = col

    def attach(self, frame: _Frame, node: LNode, size: int) -> None:
        """Add a finished node to the list or map being composed."""
        if frame.items is not None:
            frame.items.append(node)
            frame.size += size
            return
        key = frame.key
        if key is _AWAIT:  # the node is a key
            if isinstance(node, Scalar):
                self.key(frame, node.raw, node.quoted, node.line, node.col)
            else:
                self.error("keys must be plain names, not lists or maps", node.loc)
                frame.key = _DROP
            return
        frame.key = _AWAIT
        if key is _DROP:
            return
        frame.size += size
        if key is _MERGE:
            frame.merges.append(node)
        else:
            assert isinstance(key, str)
            frame.entries[key] = Entry(key, node, self.filename, frame.key_line, frame.key_col)

    def close(self, frame: _Frame) -> LNode:
        if frame.items is not None:
            return Seq(tuple(frame.items), self.filename, frame.line, frame.col)
        entries = frame.entries
        for merge in frame.merges:
            sources = merge.items if isinstance(merge, Seq) else (merge,)
            for source in sources:
                if not isinstance(source, Map):
                    self.error("a YAML merge key (<<) needs a map", source.loc)
                    continue
                for key, entry in source.entries.items():
                    entries.setdefault(key, entry)
        return Map(entries, self.filename, frame.line, frame.col)


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
    return Diagnostic("error", f"YAML syntax error: {detail}", loc)


def _parser(text: str) -> Any:
    try:
        from yaml._yaml import CParser
    except ImportError:  # pragma: no cover - depends on how PyYAML was built
        return _py_parser(text)
    return CParser(text)


def _py_parser(text: str) -> Any:  # pragma: no cover - used only without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class PyParser(Reader, Scanner, Parser):
        def __init__(self, text: str) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)

        def dispose(self) -> None:
            pass

    return PyParser(text)


def read_yaml(filename: str, text: str, diags: list[Diagnostic]) -> tuple[LNode | None, bool]:
    """Compose one file into located nodes: ``(root, ok)``.

    ``ok`` is false when the file could not be read to its end (a syntax error, a limit, a bad
    alias): a diagnostic says why and ``root`` is ``None``, so no check runs on a part of the
    file. Lesser problems (a duplicate key, a tag) are diagnostics with ``ok`` true.

    Plain block YAML is read by :func:`~jelmore_infra.topology.blockyaml.compose_plain` (the
    same nodes, faster); everything else, and every problem, by the YAML parser.
    """
    root = compose_plain(filename, text, MAX_VALUES)
    if root is not None:
        return root, True
    return parse_yaml(filename, text, diags)


def parse_yaml(filename: str, text: str, diags: list[Diagnostic]) -> tuple[LNode | None, bool]:
    """:func:`read_yaml` by the YAML parser's events, whatever the file holds."""
    import yaml

    parser = _parser(text)
    try:
        return _Composer(filename, diags).compose(parser), True
    except _Fatal as exc:
        diags.append(exc.diagnostic)
    except yaml.YAMLError as exc:
        diags.append(_yaml_error(filename, text, exc))
    finally:
        parser.dispose()
    return None, False


# --- merging files ----------------------------------------------------------------------------


def merge_files(sources: Sequence[tuple[str, str]], diags: list[Diagnostic]) -> RawTopology:
    """Parse every (filename, text) in sorted filename order and merge their sections."""
    raw = RawTopology()
    seen: dict[str, dict[str, Location]] = {s: {} for s in SECTIONS}
    for filename, text in sorted(sources, key=lambda s: s[0]):
        root, ok = read_yaml(filename, text, diags)
        raw.complete = raw.complete and ok
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
                        "a topology file has only 'streams:', 'consumer_groups:', "
                        "'kv_buckets:', 'object_stores:' and 'events:'",
                        entry.key_loc,
                    )
                )
                continue
            section = entry.value
            if is_null(section):
                continue
            if not isinstance(section, Map):
                what = _SECTION_WORDS[key][0]
                diags.append(
                    Diagnostic(
                        "error",
                        f"'{key}' must be a map of {what} to their settings, "
                        f"not {describe(section)}",
                        section.loc,
                    )
                )
                continue
            kind = _SECTION_WORDS[key][1]
            target = {
                "streams": raw.streams,
                "consumer_groups": raw.groups,
                "kv_buckets": raw.kv_buckets,
                "object_stores": raw.object_stores,
                "events": raw.events,
            }[key]
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
                seen[key][name] = key_loc = item.key_loc
                target.append(RawResource(name, key_loc, item.value))
    return raw


# --- entry points -----------------------------------------------------------------------------


def parse_sources(
    sources: Sequence[tuple[str, str]],
    *,
    unread: Sequence[Diagnostic] = (),
    environment: tuple[str, str, str] | None = None,
) -> tuple[Topology | None, list[Diagnostic]]:
    """Validate topology texts and build the desired model. Pure: no file I/O.

    ``unread`` are the errors of topology files that could not be read; with any, or with a file
    that cannot be parsed to its end, the checks across resources (which stream a group reads,
    overlapping subjects, ...) are skipped, since the missing part would make them wrong.
    Returns the model (``None`` when any error was found) and every diagnostic, sorted.
    ``environment``: ``(name, filename, text)`` of an environment file, merged into the base
    before validation (:mod:`jelmore_infra.topology.environments`).
    """
    diags: list[Diagnostic] = list(unread)
    raw = merge_files(sources, diags)
    overlay = None
    if environment is not None:
        from jelmore_infra.topology.environments import apply_overlay

        env_name, env_file, env_text = environment
        root, ok = read_yaml(env_file, env_text, diags)
        raw.complete = raw.complete and ok
        overlay = apply_overlay(raw, env_name, root, diags)
    streams, groups = convert_topology(raw, diags)
    kv_buckets, object_stores = convert_buckets(raw, diags)
    events = convert_events(raw.events, diags) if raw.events else []
    if raw.complete and not unread:
        diags.extend(check_semantics(streams, groups))
        diags.extend(check_bucket_streams(streams, kv_buckets, object_stores))
        diags.extend(check_events(events, streams, groups))
    diags = sort_diagnostics(diags)
    if any(d.severity == "error" for d in diags):
        return None, diags
    topology = build_topology(streams, groups, kv_buckets, object_stores)
    if events:
        topology = replace(topology, events=build_events(events))
    if overlay is not None:
        from jelmore_infra.kinds import KINDS
        from jelmore_infra.topology.environments import check_policy_addresses

        known = {str(a) for kind in KINDS for a in kind.desired_specs(topology)}
        known |= overlay.removed
        problems = check_policy_addresses(overlay.policy, known)
        if problems:
            return None, sort_diagnostics([*diags, *problems])
        topology = replace(topology, environment=overlay.name, policy=overlay.policy)
    return topology, diags


def topology_files(directory: str | Path) -> list[Path]:
    """The ``*.yaml``/``*.yml`` entries directly under ``directory``, sorted by name.

    Every entry so named is listed, whatever it is (a symlink, a directory): reading tells
    whether it is a file. Hidden names (``.x.yaml``, an editor's lock file) are left out.
    """
    base = Path(directory)
    return sorted(
        (p for p in base.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _unreadable(path: Path, name: str) -> str | None:
    """Why ``path`` is not a topology file that can be read, or ``None`` when it is one."""
    try:
        info = path.stat()
    except OSError as exc:
        if path.is_symlink():
            try:
                target = os.readlink(path)
            except OSError:  # pragma: no cover - it was a symlink a moment ago
                target = "?"
            if isinstance(exc, FileNotFoundError):
                return f"cannot read {name}: it is a dangling symlink to '{target}'"
            if exc.errno == errno.ELOOP:
                return f"cannot read {name}: it is a symlink loop (through '{target}')"
        return f"cannot read {name}: {exc.strerror or exc}"
    if stat.S_ISDIR(info.st_mode):
        return f"cannot read {name}: it is a directory"
    if not stat.S_ISREG(info.st_mode):
        return f"cannot read {name}: it is not a regular file"
    if info.st_size > MAX_FILE_BYTES:
        return _too_big(name, info.st_size)
    return None


def _too_big(name: str, size: int) -> str:
    return f"{name} is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes per topology file"


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
        problem = _unreadable(path, name)
        if problem is None:
            try:
                with path.open("rb") as stream:
                    data = stream.read(MAX_FILE_BYTES + 1)  # the file may have grown since
            except OSError as exc:
                problem = f"cannot read {name}: {exc.strerror or exc}"
            else:
                if len(data) > MAX_FILE_BYTES:
                    problem = _too_big(name, len(data))
        if problem is not None:
            diags.append(Diagnostic("error", problem))
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


def environment_names(directory: str | Path) -> list[str]:
    """The environments of a topology directory: ``environments/<name>.yaml`` files, sorted."""
    from jelmore_infra.topology.environments import ENV_DIR, ENV_NAME

    folder = Path(directory) / ENV_DIR
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    return sorted(
        p.stem for p in entries if p.suffix in (".yaml", ".yml") and ENV_NAME.match(p.stem)
    )


def environment_file(
    directory: str | Path, env: str
) -> tuple[tuple[str, str, str] | None, list[Diagnostic]]:
    """``(name, filename, text)`` of environment ``env``, or the error saying why it cannot be
    had (an unknown name lists the known ones)."""
    from jelmore_infra.topology.environments import ENV_DIR

    known = environment_names(directory)
    if env not in known:
        listing = ", ".join(known) if known else f"none (no {ENV_DIR}/*.yaml in {directory})"
        return None, [Diagnostic("error", f"unknown environment '{env}'; known: {listing}")]
    shown = os.fspath(directory)
    for suffix in (".yaml", ".yml"):
        path = Path(shown) / ENV_DIR / f"{env}{suffix}"
        if path.exists() or path.is_symlink():
            name = os.path.join(shown, ENV_DIR, path.name)
            problem = _unreadable(path, name)
            if problem is not None:
                return None, [Diagnostic("error", problem)]
            try:
                text = path.read_bytes().decode("utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                return None, [Diagnostic("error", f"cannot read {name}: {exc}")]
            return (env, name, text), []
    return None, [Diagnostic("error", f"unknown environment '{env}'")]  # pragma: no cover


def environment_connection(
    directory: str | Path, env: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The ``connection:`` block of environment ``env``, ``${VAR}`` read from ``environ``
    (``os.environ`` by default), by ``nats`` CLI name; :class:`TopologyError` when the file
    cannot be read or a variable is not set (the error names the variable, never a value)."""
    from jelmore_infra.topology.environments import apply_overlay, connection_values

    environment, diags = environment_file(directory, env)
    if environment is None:
        raise JelmoreError(diags[0].message)
    name, filename, text = environment
    root, _ = read_yaml(filename, text, diags)
    overlay = apply_overlay(RawTopology(), name, root, [])
    values, problems = connection_values(
        overlay.connection, os.environ if environ is None else environ
    )
    errors = [d for d in (*diags, *problems) if d.severity == "error"]
    if errors:
        raise TopologyError(errors)
    return values


def check_topology(
    directory: str | Path, env: str | None = None
) -> tuple[Topology | None, list[Diagnostic]]:
    """Read and validate the topology directory (with environment ``env`` merged in): the model
    (or ``None``) and every diagnostic."""
    environment = None
    if env is not None:
        environment, env_diags = environment_file(directory, env)
        if environment is None:
            return None, env_diags
    sources, read_diags = read_sources(directory)
    if read_diags and not sources:
        return None, read_diags
    return parse_sources(sources, unread=read_diags, environment=environment)


def load_topology(directory: str | Path, env: str | None = None) -> Topology:
    """Read and validate the topology directory (with environment ``env`` merged in); raise
    :class:`TopologyError` with every problem."""
    topology, diags = check_topology(directory, env)
    if topology is None and env is not None and len(diags) == 1 and diags[0].location is None:
        raise JelmoreError(diags[0].message)  # the environment itself: one line
    if topology is None:
        raise TopologyError([d for d in diags if d.severity == "error"])
    return topology


__all__ = [
    "check_topology",
    "environment_connection",
    "environment_file",
    "environment_names",
    "load_topology",
    "merge_files",
    "parse_sources",
    "plain_value",
    "read_sources",
    "read_yaml",
]
