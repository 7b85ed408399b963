"""The located node tree a topology file is read into, and what the checks say about a node.

:mod:`jelmore_infra.topology.load` builds these nodes from the YAML parser's events;
:mod:`jelmore_infra.topology.validate` walks them. Both import this module and neither imports
the other's internals through it, so the reader and the checks form no import cycle.

Every node knows where it was written: its file, line and column, with ``loc`` (``key_loc`` for
an entry's key) giving them as a :class:`~jelmore_infra.diagnostics.Location` when asked, as only
the places a check reports or keeps are ever needed. The nodes are plain slotted classes, never
changed once built: a large topology has hundreds of thousands of them, and building one of these
costs a fifth of a frozen dataclass. Pure: no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Union

from jelmore_infra.diagnostics import Location


class _Placed:
    """Where a node is written: file, 1-based line and column (a Location only when asked).

    Subclasses set the three in their own ``__init__``: a call to this one per node costs about
    5% of loading a large topology.
    """

    __slots__ = ("col", "file", "line")
    file: str
    line: int
    col: int

    @property
    def loc(self) -> Location:
        return Location(self.file, self.line, self.col)


class Scalar(_Placed):
    """A scalar value, as YAML reads it (``value``) and as written (``raw``)."""

    __slots__ = ("quoted", "raw", "value")

    def __init__(
        self, value: object, raw: str, quoted: bool, file: str, line: int, col: int
    ) -> None:
        self.value = value
        self.raw = raw
        self.quoted = quoted
        self.file, self.line, self.col = file, line, col

    def __repr__(self) -> str:
        return f"Scalar({self.value!r}, {self.raw!r}, quoted={self.quoted}, at {self.loc})"


class Seq(_Placed):
    """A list and where it starts."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[LNode, ...], file: str, line: int, col: int) -> None:
        self.items = items
        self.file, self.line, self.col = file, line, col

    def __repr__(self) -> str:
        return f"Seq({list(self.items)!r}, at {self.loc})"


class Entry(_Placed):
    """One key of a mapping: its text, where the key is written, and its value."""

    __slots__ = ("key", "value")

    def __init__(self, key: str, value: LNode, file: str, line: int, col: int) -> None:
        self.key = key
        self.value = value
        self.file, self.line, self.col = file, line, col

    @property
    def key_loc(self) -> Location:
        return self.loc

    def __repr__(self) -> str:
        return f"Entry({self.key!r}: {self.value!r}, at {self.key_loc})"


class Map(_Placed):
    """A mapping (keys in the order written) and where it starts."""

    __slots__ = ("entries",)

    def __init__(self, entries: dict[str, Entry], file: str, line: int, col: int) -> None:
        self.entries = entries
        self.file, self.line, self.col = file, line, col

    def __repr__(self) -> str:
        return f"Map({list(self.entries.values())!r}, at {self.loc})"


LNode = Union[Scalar, Seq, Map]  # noqa: UP007 - a runtime alias used in isinstance-free unions


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
    kv_buckets: list[RawResource] = field(default_factory=list)
    object_stores: list[RawResource] = field(default_factory=list)
    events: list[RawResource] = field(default_factory=list)
    #: False when a file could not be read to its end: checks across resources are then skipped,
    #: as what is missing would make them report problems that are not there.
    complete: bool = True


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


__all__ = [
    "Entry",
    "LNode",
    "Map",
    "RawResource",
    "RawTopology",
    "Scalar",
    "Seq",
    "describe",
    "did_you_mean",
    "is_null",
]
