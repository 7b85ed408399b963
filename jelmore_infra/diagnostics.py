"""Diagnostics: problems found in topology files, each with the exact place it was found.

Checks collect diagnostics instead of raising on the first problem, so users see every problem at
once. When one mistake repeats thousands of times (every stream capturing the same subjects),
:func:`capped_lines` prints the first few diagnostics of each kind and counts the rest. Pure: no
I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A place in a topology file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem, with where it is and, when other places are involved, where those are."""

    severity: Severity
    message: str
    location: Location | None = None
    related: tuple[Location, ...] = field(default=())
    #: Groups diagnostics for :func:`capped_lines` when the message alone would not (its wording
    #: varies with how many places it lists); empty: the kind is read from the message.
    kind: str = field(default="", compare=False)

    def format(self) -> str:
        """``FILE:LINE:COL: error: message`` (the place is left out when unknown)."""
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "severity": self.severity,
            "message": self.message,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "col": loc.col if loc else None,
            "related": [{"file": r.file, "line": r.line, "col": r.col} for r in self.related],
        }


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Deterministic order: by file, line, column, then message."""
    none = Location("", 0, 0)
    return sorted(diags, key=lambda d: (d.location or none, d.message))


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diags)


#: How many diagnostics of one kind the text output shows before counting the rest.
PER_KIND = 20

_QUOTED = re.compile(r"'[^'\n]*'")
_PLACE = re.compile(r"\S+:\d+(?::\d+)?")
_NUMBER = re.compile(r"\d[\d,]*")


def diagnostic_kind(diag: Diagnostic) -> str:
    """The kind of a diagnostic: its severity and its given kind or else its message with names,
    places and numbers blanked.

    ``unknown stream setting 'max_mesages'`` and ``unknown stream setting 'retension'`` are of one
    kind; ``unknown consumer group setting 'x'`` is another.
    """
    if diag.kind:
        return f"{diag.severity}: {diag.kind}"
    text = _QUOTED.sub("'_'", diag.message)
    text = _PLACE.sub("_", text)
    return f"{diag.severity}: {_NUMBER.sub('N', text)}"


def capped_lines(
    diags: Iterable[Diagnostic],
    per_kind: int = PER_KIND,
    fmt: Callable[[Diagnostic], str] = Diagnostic.format,
) -> Iterator[str]:
    """The diagnostics as text lines, at most ``per_kind`` of each kind (0: all of them).

    Right after the last one shown of a kind that has more comes ``... and N more errors of this
    kind``. Keeps the given order; one pass to count, one to print.
    """
    items = list(diags)
    if per_kind <= 0:
        for diag in items:
            yield fmt(diag)
        return
    kinds = [diagnostic_kind(d) for d in items]
    totals = Counter(kinds)
    shown: Counter[str] = Counter()
    for diag, kind in zip(items, kinds, strict=True):
        if shown[kind] >= per_kind:
            continue
        shown[kind] += 1
        yield fmt(diag)
        if shown[kind] == per_kind and totals[kind] > per_kind:
            more = totals[kind] - per_kind
            noun = diag.severity + ("s" if more != 1 else "")
            yield f"... and {more:,} more {noun} of this kind (validate --json lists them all)"


def printable(text: str) -> str:
    """``text`` with characters a terminal would not show escaped (a NUL as ``\\x00``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
