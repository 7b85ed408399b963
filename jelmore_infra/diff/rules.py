"""Server rules as plan diagnostics: version gates on fields and values, and how each field
change is carried out.

:func:`check_fields` returns the errors for fields and enum values the connected server does not
know (too old, or removed). :func:`classify` gives a field change's
:class:`~jelmore_infra.fields.Update` (``IN_PLACE``, ``REPLACE`` or ``ONE_WAY`` meaning
impossible) with a reason: first the kind's own rules (``special_rule``), then the field
table (``update``, ``in_place_since``). :func:`one_way_error` words the refusal of a one-way change.
The server behaviour behind each rule is listed in ``docs/server-semantics.md``.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jelmore_infra import fields as F
from jelmore_infra.kinds.base import (
    FieldDelta,
    PlanContext,
    ResourceKind,
    Rule,
    Version,
    error,
    value_text,
    version_text,
)
from jelmore_infra.plan import PlanMessage


def check_fields(
    kind: ResourceKind, ctx: PlanContext, address: str, config: Mapping[str, Any]
) -> list[PlanMessage]:
    """Errors for settings of ``config`` that are unknown or that the server's version lacks."""
    out: list[PlanMessage] = []
    settled = _settled_fields(kind, ctx.version)
    for key, value in config.items():
        if key in settled:
            continue
        fdef = kind.fields.get(key)
        if fdef is None:
            out.append(
                error(
                    "invalid",
                    f"{key} is not a {kind.name} setting jelmore-infra knows ({address})",
                    address,
                    key,
                )
            )
            continue
        _check_one(kind, ctx, address, key, fdef, value, out)
    return out


#: (kind name, field table id, version) → (the table, the fields with nothing to check).
_SETTLED: dict[tuple[str, int, Version], tuple[Mapping[str, F.Field], frozenset[str]]] = {}


def _settled_fields(kind: ResourceKind, version: Version) -> frozenset[str]:
    """The fields of ``kind`` for which :func:`_check_one` can report nothing at ``version``:
    known to it, without sub-fields, and with no enum value that needs a newer server."""
    table = kind.fields
    key = (kind.name, id(table), version)
    cached = _SETTLED.get(key)
    if cached is not None and cached[0] is table:
        return cached[1]
    gated = {
        field
        for (owner, field, _), since in F.ENUM_VALUE_SINCE.items()
        if owner == kind.name and version < since
    }
    settled = frozenset(
        name
        for name, fdef in table.items()
        if fdef.known_by(version) and not fdef.sub_fields and name not in gated
    )
    _SETTLED[key] = (table, settled)
    return settled


def _check_one(
    kind: ResourceKind,
    ctx: PlanContext,
    address: str,
    path: str,
    fdef: F.Field,
    value: Any,
    out: list[PlanMessage],
) -> None:
    if value is None or value is False or value in ("", [], {}):
        return
    connected = ctx.live.server.version
    if not fdef.known_by(ctx.version):
        if ctx.version < fdef.since:
            out.append(
                error(
                    "needs-newer-server",
                    f"{path} needs nats-server {version_text(fdef.since)} or newer; the "
                    f"connected server runs {connected} ({address})",
                    address,
                    path,
                    {"needed": version_text(fdef.since), "connected": connected},
                )
            )
        else:
            assert fdef.until is not None
            out.append(
                error(
                    "needs-newer-server",
                    f"{path} is no longer supported from nats-server {version_text(fdef.until)}; "
                    f"the connected server runs {connected} ({address}): remove it from the "
                    "topology",
                    address,
                    path,
                    {"removed_in": version_text(fdef.until), "connected": connected},
                )
            )
        return
    if fdef.kind is F.ValueKind.ENUM and isinstance(value, str):
        since = F.ENUM_VALUE_SINCE.get((kind.name, fdef.name, value))
        if since is not None and ctx.version < since:
            out.append(
                error(
                    "needs-newer-server",
                    f"{path}: {value} needs nats-server {version_text(since)} or newer; the "
                    f"connected server runs {connected} ({address})",
                    address,
                    path,
                    {"needed": version_text(since), "connected": connected, "value": value},
                )
            )
    if fdef.sub_fields:
        subs = {f.name: f for f in fdef.sub_fields}
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, Mapping):
                continue
            for key, sub_value in item.items():
                sub = subs.get(key)
                if sub is not None:
                    _check_one(kind, ctx, address, f"{path}.{key}", sub, sub_value, out)


def classify(kind: ResourceKind, ctx: PlanContext, delta: FieldDelta) -> Rule:
    """How the server carries out this field change (see the module docstring)."""
    special = kind.special_rule(ctx, delta)
    if special is not None:
        return special
    fdef = kind.fields[delta.field]
    b, a = delta.before, delta.after
    if fdef.update is F.Update.ONE_WAY:
        # Turning it off is impossible in place; a replace of the resource makes it moot.
        return (F.Update.ONE_WAY, None) if b and not a else (F.Update.IN_PLACE, None)
    if fdef.update is F.Update.REPLACE:
        if fdef.in_place_since is not None and ctx.version >= fdef.in_place_since:
            return F.Update.IN_PLACE, None
        suffix = ""
        if fdef.in_place_since is not None:
            suffix = (
                f" before nats-server {version_text(fdef.in_place_since)} "
                f"(connected: {ctx.live.server.version})"
            )
        return (
            F.Update.REPLACE,
            f"{delta.field} cannot be changed on a live {kind.name}{suffix} "
            f"({value_text(b)} → {value_text(a)})",
        )
    return F.Update.IN_PLACE, None


def one_way_error(kind: ResourceKind, address: str, name: str, delta: FieldDelta) -> PlanMessage:
    """The plan error for turning off a one-way flag, quoting the server's refusal."""
    refusal = kind.one_way_refusals.get(delta.field, f"{delta.field} can only be turned on")
    return error(
        "one-way",
        f"{delta.field} cannot be turned off on {kind.name} {name}: the server refuses "
        f'("{refusal}"); remove the change from the topology (set {delta.field}: true '
        f"again), or delete and recreate the {kind.name} by hand",
        address,
        delta.field,
        {"live": delta.before, "desired": delta.after},
    )
