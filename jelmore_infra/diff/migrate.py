"""The plan's side of ``replace_strategy: migrate``: a replace that keeps the stream's messages.

A stream whose change forces a replace and that opts in (``jelmore.replace_strategy: migrate``)
is planned as a ``migrate`` (:class:`~jelmore_infra.plan.Action`) carrying the migration's
steps and effects (:func:`jelmore_infra.migration.steps.migration_steps`); the refusals of the
migration (a mirror, a stream sourced by another, a refused server version, …) are plan errors.
A stream left half migrated (its temporary copy carries the marker) is planned as a migrate
that resumes, whatever the topology's strategy, and never as a destructive change.
docs/migration.md describes it for users.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jelmore_infra.migration.steps import (
    Marker,
    migration_steps,
    read_marker,
    streams_sourcing,
    temp_name,
    version_refusal,
)
from jelmore_infra.model import LiveState, LiveStream, Topology
from jelmore_infra.plan import PlanMessage

Version = tuple[int, int, int]


def _origin_configs(desired: Topology, live: LiveState) -> Iterable[Mapping[str, Any]]:
    yield from (s.config for s in live.streams.values())
    yield from (s.config for s in desired.streams.values())


def _consumer_infos(live: LiveState, stream: str) -> list[dict[str, Any]]:
    return [
        {"name": c.name, "config": c.config, "ack_floor": c.state.get("ack_floor") or {}}
        for (s, _), c in sorted(live.consumers.items())
        if s == stream
    ]


def plan_migration(
    desired: Topology,
    live: LiveState,
    stream: LiveStream,
    wire_after: Mapping[str, Any],
    version: Version,
) -> tuple[dict[str, Any], list[PlanMessage]]:
    """The ``migration`` object of a fresh migrate of ``stream``, and its refusals."""
    sourced_by = streams_sourcing(stream.name, _origin_configs(desired, live))
    planned = migration_steps(
        stream.config,
        stream.state,
        wire_after,
        _consumer_infos(live, stream.name),
        version,
        sourced_by=sourced_by,
    )
    out = planned.to_dict()
    out["resume"] = False
    diagnostics = list(planned.diagnostics)
    temp = temp_name(stream.name)
    if temp in live.streams:  # not a migration's copy (that one makes the plan a resume)
        diagnostics.append(
            PlanMessage(
                "error",
                "invalid",
                f"replace_strategy: migrate cannot use {temp} for {stream.name}'s copy: a "
                "stream of that name exists and is not a migration copy; rename or delete it",
                address=f"stream.{stream.name}",
            )
        )
    return out, diagnostics


def resume_marker(live: LiveState, temp: str) -> Marker | None:
    """The marker of the temporary stream ``temp`` of an interrupted migration."""
    found = live.streams.get(temp)
    return read_marker({"config": found.config}) if found is not None else None


def plan_resume(
    live: LiveState, name: str, temp: str, wire_after: Mapping[str, Any], version: Version
) -> tuple[dict[str, Any], list[PlanMessage]]:
    """The ``migration`` object of a migrate that continues an interrupted one."""
    marker = resume_marker(live, temp)
    held = live.streams[temp]
    original = dict(marker.original) if marker is not None and marker.original else {"name": name}
    original.setdefault("name", name)
    # The marker records each durable's floor as a number (the executor's ``detach`` step).
    consumers = [
        {**c, "ack_floor": {"stream_seq": int(c.get("ack_floor") or 0)}}
        for c in (marker.consumers if marker is not None else [])
    ]
    planned = migration_steps(original, held.state, wire_after, consumers, version)
    out = planned.to_dict()
    out["resume"] = True
    # Only the server version can forbid going on: the stream's own config was checked when
    # the migration began (as the executor does).
    refused = version_refusal(name, version)
    return out, [refused] if refused is not None else []


def resume_note(name: str, temp: str) -> PlanMessage:
    return PlanMessage(
        "warning",
        "note",
        f"{temp} is the copy of an interrupted migration of {name}; apply resumes the "
        f"migration and deletes {temp} only once {name} holds every message",
        address=f"stream.{name}",
    )


def resumed_consumers(live: LiveState, temp: str) -> set[str]:
    """The consumers an interrupted migration re-creates itself (recorded in its marker)."""
    marker = resume_marker(live, temp)
    return {str(c.get("name")) for c in marker.consumers} if marker is not None else set()


def orphan_error(name: str, temp: str) -> PlanMessage:
    return PlanMessage(
        "error",
        "invalid",
        f"stream {name} is being migrated ({temp} holds an interrupted migration's copy) but is "
        "not in the topology: put it back in the topology and apply to finish the migration "
        "before removing it",
        address=f"stream.{name}",
    )
