"""Exact values with human units, and the per-field lines every plan view shows.

``format_value("stream", "max_age", 604800000000000)`` gives ``7d``; sizes keep their exact byte
count (``10 GB (10000000000 bytes)``), counts get thousands separators (``100,000``), ``-1`` limits
read ``unlimited``, strings are quoted, lists and objects are written inline. The value kind of
each field comes from the field table (``jelmore_infra.fields``); dotted paths such as
``consumer_limits.max_ack_pending``, ``republish.dest`` or ``metadata.jelmore.retry-delays`` are
resolved through its ``sub_fields`` (everything after ``metadata.`` is one metadata key).

:func:`change_lines` turns one :class:`~jelmore_infra.plan.ResourceChange` into the lines the
human and Markdown renderers both draw, so the two views cannot disagree. Apply progress output
may use :func:`format_change` for one field.

Pure: no I/O.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jelmore_infra.fields import Field, ValueKind
from jelmore_infra.plan import Action, FieldChange, ResourceChange
from jelmore_infra.units import format_count, format_duration, format_size

ResourceKind = Literal["stream", "consumer"]

#: How a missing value reads: a scalar left to the server's default, or a key/object not there.
DEFAULT_TEXT = "(default)"
ABSENT_TEXT = "(absent)"
ARROW = "→"

_INDEX = re.compile(r"\[\d+\]")


def _table(kind: str) -> Mapping[str, Field]:
    """The field table of a kind (empty for a kind jelmore-infra does not know)."""
    from jelmore_infra.kinds import kind_named

    try:
        return kind_named(kind).fields
    except KeyError:
        return {}


@functools.lru_cache(maxsize=4096)
def resolve_field(kind: str, path: str) -> tuple[Field | None, bool]:
    """The field a dotted ``path`` names, and whether the path is a metadata key.

    ``sources[0].name`` and ``sources.0.name`` both resolve to the source's ``name`` field.
    Unknown names give ``(None, False)``.
    """
    table: Mapping[str, Field] = _table(kind)
    parts = [p for p in _INDEX.sub("", path).split(".") if p]
    field: Field | None = None
    for i, part in enumerate(parts):
        if part.isdigit() and field is not None and field.kind is ValueKind.OBJECT_LIST:
            continue
        found = table.get(part)
        if found is None:
            return None, False
        field = found
        if field.kind is ValueKind.METADATA:
            return field, i < len(parts) - 1
        table = {f.name: f for f in field.sub_fields}
    return field, False


def format_value(kind: ResourceKind | str, path: str, value: Any) -> str:
    """One field's value, exact and with human units (see the module docstring)."""
    field, is_meta_key = resolve_field(kind, path)
    if value is None:
        if is_meta_key or field is None:
            return ABSENT_TEXT
        if "." in path or "[" in path:
            return ABSENT_TEXT  # inside an object: the object or the key is not there
        if field.kind in (ValueKind.OBJECT, ValueKind.OBJECT_LIST, ValueKind.METADATA):
            return ABSENT_TEXT
        return DEFAULT_TEXT
    if is_meta_key:
        return _generic(value)
    return _format(field, value)


def _format(field: Field | None, value: Any) -> str:
    if field is None:
        return _generic(value)
    k = field.kind
    if value is None:
        return "null"
    if isinstance(value, bool):
        return _generic(value)
    if isinstance(value, int):
        if k is ValueKind.DURATION:
            if value == 0 and field.unlimited:
                return "unlimited"
            return format_duration(value)
        if k is ValueKind.SIZE:
            return _size(value)
        if k is ValueKind.COUNT:
            return format_count(value)
        if k is ValueKind.INT:
            return f"{value:,}"
        return _generic(value)
    if isinstance(value, list):
        if k is ValueKind.DURATION_LIST:
            return "[" + ", ".join(_duration_item(v) for v in value) + "]"
        if k is ValueKind.OBJECT_LIST:
            return "[" + ", ".join(_object(field, v) for v in value) + "]"
        return _generic(value)
    if isinstance(value, dict) and k is ValueKind.OBJECT:
        return _object(field, value)
    if isinstance(value, dict) and k is ValueKind.METADATA:
        return _mapping({key: value[key] for key in sorted(value)})
    return _generic(value)


def _size(n: int) -> str:
    text = format_size(n)
    if n < 0 or text.endswith(" B"):
        return text
    return f"{text} ({n} bytes)"


def _duration_item(v: Any) -> str:
    return format_duration(v) if isinstance(v, int) and not isinstance(v, bool) else _generic(v)


def _object(field: Field, value: Any) -> str:
    if not isinstance(value, dict):
        return _generic(value)
    subs = {f.name: f for f in field.sub_fields}
    inner = ", ".join(f"{key} = {_format(subs.get(key), v)}" for key, v in value.items())
    return "{" + inner + "}"


def _mapping(value: Mapping[str, Any]) -> str:
    inner = ", ".join(f"{json.dumps(str(k))} = {_generic(v)}" for k, v in value.items())
    return "{" + inner + "}"


def _generic(value: Any) -> str:
    """A value whose field is unknown: JSON-like, without guessing units."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_generic(v) for v in value) + "]"
    if isinstance(value, dict):
        return _mapping(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def format_change(kind: ResourceKind | str, change: FieldChange) -> str:
    """``old → new`` for one changed field: ``7d → 14d``."""
    before = format_value(kind, change.path, change.before)
    after = format_value(kind, change.path, change.after)
    return f"{before} {ARROW} {after}"


@dataclass(frozen=True, slots=True)
class Line:
    """One line inside a resource block: ``{symbol} {path} = {text}  # {note}``.

    ``symbol`` is ``+`` (added), ``-`` (removed) or ``~`` (changed); ``path`` is empty for a
    comment-only line (``note`` then holds the comment), used for a field change whose value does
    not change (a replacement forced by something else, such as the consumer's stream being
    replaced) and for the count of fields a delete does not show.
    """

    symbol: str
    path: str
    text: str
    note: str | None = None
    forces_replace: bool = False


def flatten(kind: str, config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A config as ``(dotted path, value)`` pairs in field-table order, objects and metadata
    opened up one key per line (``consumer_limits.max_ack_pending``, ``metadata.jelmore.x``).
    Fields the table does not know come last, in the config's order."""
    table = _table(kind)
    order = {name: i for i, name in enumerate(table)}
    keys = sorted(config, key=lambda k: order.get(k, len(order)))
    out: list[tuple[str, Any]] = []
    for key in keys:
        _flatten_into(out, table.get(key), key, config[key])
    return out


def _flatten_into(out: list[tuple[str, Any]], field: Field | None, path: str, value: Any) -> None:
    if field is not None and isinstance(value, dict) and value:
        if field.kind is ValueKind.METADATA:
            for key in sorted(value):
                out.append((f"{path}.{key}", value[key]))
            return
        if field.kind is ValueKind.OBJECT:
            subs = {f.name: f for f in field.sub_fields}
            order = {name: i for i, name in enumerate(subs)}
            for key in sorted(value, key=lambda k: order.get(k, len(order))):
                _flatten_into(out, subs.get(key), f"{path}.{key}", value[key])
            return
    out.append((path, value))


def change_lines(change: ResourceChange) -> list[Line]:
    """The lines shown inside one resource's block, in the order they are shown.

    Create: every field of ``after`` (``+``). Delete: a short summary of ``before`` (``-``) and
    a count of the other fields. Update and replace: only the changed fields, ``old → new``, with
    the reason on fields that force the replacement; a field "change" whose old and new values are
    equal only carries a reason and becomes a comment line.
    """
    kind = change.kind.value
    if change.action is Action.CREATE:
        return [
            Line("+", path, format_value(kind, path, value))
            for path, value in flatten(kind, change.after or {})
        ]
    if change.action is Action.DELETE:
        from jelmore_infra.kinds import kind_of

        pairs = flatten(kind, change.before or {})
        wanted = kind_of(change).delete_summary
        shown = [(p, v) for p, v in pairs if p in wanted]
        lines = [Line("-", p, format_value(kind, p, v)) for p, v in shown]
        hidden = len(pairs) - len(shown)
        if hidden:
            lines.append(
                Line("", "", "", f"({hidden} other field{'s' if hidden != 1 else ''} not shown)")
            )
        return lines
    lines = []
    for fc in change.fields:
        reason = fc.reason or f"{fc.path} cannot be changed in place"
        note: str | None = f"forces replacement: {reason}" if fc.forces_replace else fc.reason
        if fc.before == fc.after:
            # not a value change: a reason recorded on a field (e.g. the stream is replaced)
            lines.append(Line("", "", "", note or f"{fc.path} is unchanged", fc.forces_replace))
            continue
        if fc.before is None:
            symbol = "+"
        elif fc.after is None:
            symbol = "-"
        else:
            symbol = "~"
        lines.append(Line(symbol, fc.path, format_change(kind, fc), note, fc.forces_replace))
    return lines


def resource_label(change: ResourceChange) -> str:
    """``stream "JELMORE"`` or ``consumer "JELMORE/git_monitors"``."""
    from jelmore_infra.kinds import kind_of

    return kind_of(change).label(change)


def action_phrase(change: ResourceChange, *, adopted: bool = False) -> str:
    """What happens, as a sentence ending: ``will be updated in place``, ``must be replaced``."""
    phrase = {
        Action.CREATE: "will be created",
        Action.UPDATE: "will be updated in place",
        Action.REPLACE: "must be replaced",
        Action.MIGRATE: "will be migrated, keeping its messages",
        Action.DELETE: "will be destroyed",
        Action.NOOP: "is unchanged",
    }[change.action]
    if change.action is Action.MIGRATE and (change.migration or {}).get("resume"):
        phrase = "will be migrated (resume: an interrupted migration is continued)"
    if adopted:
        adopted_phrase = {
            Action.UPDATE: "will be adopted and updated in place",
            Action.REPLACE: "will be adopted and replaced",
            Action.MIGRATE: "will be adopted and migrated, keeping its messages",
            Action.NOOP: "will be adopted",
        }
        return adopted_phrase.get(change.action, phrase)
    return phrase


def migration_lines(change: ResourceChange) -> list[str]:
    """A migrate's effects and steps as comment lines (empty for other actions)."""
    migration = change.migration
    if change.action is not Action.MIGRATE or not migration:
        return []
    out: list[str] = []
    if migration.get("resume"):
        out.append(
            f"resumes the interrupted migration of {change.name} from what the server holds "
            f"({migration.get('temp_stream')} holds the copy)"
        )
    out.append("effects:")
    out.extend(f"  - {e}" for e in migration.get("effects") or ())
    out.append("steps:")
    for n, step in enumerate(migration.get("steps") or (), 1):
        out.append(f"  {n:>2}. {step.get('step')}: {step.get('text')}")
    return out


__all__ = [
    "ABSENT_TEXT",
    "ARROW",
    "DEFAULT_TEXT",
    "Line",
    "action_phrase",
    "change_lines",
    "flatten",
    "format_change",
    "format_value",
    "migration_lines",
    "resolve_field",
    "resource_label",
]
