"""Diagnostics: problems found in topology files, each with the exact place it was found.

Checks collect diagnostics instead of raising on the first problem, so users see every problem at
once. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
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
