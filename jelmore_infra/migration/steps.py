"""Data-preserving stream migration: what it will do, whether it may, and where a run stands.

A stream whose change forces a replace can opt in to ``replace_strategy: migrate``. Its messages
are then copied into a temporary stream (``<NAME>_JELMORE_MIGRATE``) that sources the original,
the original is re-created with the new config sourced from that copy, and the copy is deleted.
docs/migration.md describes it for users; docs/migration-facts.md holds the server facts each
choice below rests on (cited by section, e.g. "facts §4").

This module is pure (no I/O). It gives:

- :func:`migration_steps`: the steps and their effects for the plan, or the refusals;
- :func:`refusals`, :func:`streams_sourcing`, :func:`strategy_note`: the plan's rules;
- the configs the executor sends (:func:`temp_config`, :func:`copy_back_config`,
  :func:`resumed_consumer_config`), and the marker the temporary stream carries in its metadata;
- :func:`resume_point`: from what the server holds (the two streams' infos), the next step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from jelmore_infra.plan import PlanMessage

JSONDict = dict[str, Any]
Version = tuple[int, int, int]

#: Suffix of the temporary stream's name.
TEMP_SUFFIX = "_JELMORE_MIGRATE"
#: Metadata keys of the marker on the temporary stream (all values are strings).
META_OF = "jelmore.migrate.of"
META_STEP = "jelmore.migrate.step"
META_ORIGINAL = "jelmore.migrate.original"
META_MESSAGES = "jelmore.migrate.messages"
META_CONSUMERS = "jelmore.migrate.consumers"
#: Metadata key on a re-created consumer: the stream sequence it was re-created to start at.
META_RESUMED_AT = "jelmore.migrate.resumed-at"
#: Marker step values: the copy is running (the temp stream sources the original), or complete
#: and detached (no source; consumer positions recorded).
STEP_COPYING = "copying"
STEP_COPIED = "copied"

#: 2.12 and 2.13 drop a copied message whose Nats-Msg-Id is still in the copy's duplicate
#: window, and the window cannot be switched off there (facts §2).
REFUSED_SINCE: Version = (2, 12, 0)
SAFE_AGAIN: Version = (2, 14, 0)
#: From 2.14 a stream with sources and no duplicate_window has none (facts §2).
WINDOWLESS_SINCE: Version = (2, 14, 0)
#: The smallest window the server accepts; before 2.12 it turns a duplicate stall into a short
#: delay (facts §2).
MIN_WINDOW_NS = 100_000_000

#: Conservative copy rate for the switch-over estimate: facts §6 measured 10,000 messages in
#: 0.19–0.45 s and 100,000 in 0.6–1.9 s per hop on a loaded 2-core machine.
COPY_MSGS_PER_S = 20_000
COPY_BYTES_PER_S = 20_000_000
#: Creates, deletes, updates and polling around the copy back.
SWITCH_OVERHEAD_S = 0.5

#: Stream flags whose messages a copy through sources was not verified to keep faithfully.
_UNVERIFIED_FLAGS = ("allow_msg_counter", "allow_msg_schedules")


class Step(StrEnum):
    """The executor's steps, in order. Each is one server action or one wait."""

    CREATE_TEMP = "create-temp"
    WAIT_COPY = "wait-copy"
    FREEZE = "freeze"
    VERIFY_COPY = "verify-copy"
    DETACH = "detach"
    DELETE_ORIGINAL = "delete-original"
    CREATE_NEW = "create-new"
    VERIFY_COPY_BACK = "verify-copy-back"
    RECREATE_CONSUMERS = "recreate-consumers"
    OPEN = "open"
    DELETE_TEMP = "delete-temp"
    DONE = "done"


STEP_ORDER: tuple[Step, ...] = tuple(Step)


def temp_name(name: str) -> str:
    return name + TEMP_SUFFIX


def freeze_subject(name: str) -> str:
    """The placeholder subject an original holds while frozen (nobody publishes to it)."""
    return f"_JELMORE_MIGRATE.{name}.frozen"


def step_text(step: Step, name: str) -> str:
    """One line saying what ``step`` does to stream ``name``."""
    t = temp_name(name)
    return {
        Step.CREATE_TEMP: f"create {t} sourcing {name} (copies every message)",
        Step.WAIT_COPY: f"wait until {t} has caught up with {name}",
        Step.FREEZE: f"freeze {name}: its subjects are swapped for a placeholder, "
        "publishes are refused from here",
        Step.VERIFY_COPY: f"verify {t} against {name}: count, subjects and newest message",
        Step.DETACH: f"record each consumer's acknowledgement floor in {t}, remove its source",
        Step.DELETE_ORIGINAL: f"delete {name} (every message is in {t})",
        Step.CREATE_NEW: f"create {name} with the new config, sourcing {t}",
        Step.VERIFY_COPY_BACK: f"verify {name} against {t}: count, subjects and newest message",
        Step.RECREATE_CONSUMERS: f"re-create the consumers of {name} after their ack floors",
        Step.OPEN: f"open {name}: remove its source, restore subjects, limits and duplicate "
        "window; publishes are accepted again",
        Step.DELETE_TEMP: f"delete {t}",
        Step.DONE: "done",
    }[step]


# -- the plan's view ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsumerPosition:
    """Where a consumer resumes: after ``ack_floor`` (an origin stream sequence)."""

    name: str
    ack_floor: int
    config: JSONDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """What a migration of one stream will do (or why it may not)."""

    stream: str
    temp_stream: str
    steps: tuple[tuple[Step, str], ...]
    effects: tuple[str, ...]
    messages: int
    bytes: int
    #: Estimated seconds from freeze to open, while publishes are refused.
    switch_over_s: float
    consumers: tuple[ConsumerPosition, ...]
    #: Errors (the migration is refused) and notes.
    diagnostics: tuple[PlanMessage, ...]

    @property
    def refused(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "temp_stream": self.temp_stream,
            "steps": [{"step": s.value, "text": text} for s, text in self.steps],
            "effects": list(self.effects),
            "messages": self.messages,
            "bytes": self.bytes,
            "switch_over_s": self.switch_over_s,
            "consumers": [{"name": c.name, "ack_floor": c.ack_floor} for c in self.consumers],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


def _v(version: Version) -> str:
    return ".".join(str(p) for p in version)


def streams_sourcing(name: str, stream_configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the streams that mirror or source ``name`` (sorted)."""
    found: set[str] = set()
    for config in stream_configs:
        if config.get("name") == name:
            continue
        origins = [config.get("mirror") or {}, *(config.get("sources") or [])]
        if any(o.get("name") == name and not o.get("external") for o in origins):
            found.add(str(config.get("name")))
    return sorted(found)


def version_refusal(name: str, version: Version) -> PlanMessage | None:
    """The plan error when the connected server cannot copy without losing messages."""
    if not REFUSED_SINCE <= version < SAFE_AGAIN:
        return None
    return PlanMessage(
        "error",
        "invalid",
        f"replace_strategy: migrate is refused on nats-server {_v(version)}: from 2.12 to "
        "2.13 a copied message whose Nats-Msg-Id repeats an earlier one is dropped without "
        "a trace, and the copy's duplicate window cannot be switched off there; use "
        f"nats-server {_v(SAFE_AGAIN)} or later, or replace_strategy: recreate",
        address=f"stream.{name}",
    )


def refusals(
    name: str,
    live_config: Mapping[str, Any] | None,
    desired_config: Mapping[str, Any],
    version: Version,
    sourced_by: Sequence[str] = (),
) -> list[PlanMessage]:
    """Plan errors that forbid migrating ``name`` (empty when it may be migrated)."""
    address = f"stream.{name}"
    out: list[PlanMessage] = []

    def refuse(message: str, fld: str | None = None) -> None:
        out.append(PlanMessage("error", "invalid", message, address=address, field=fld))

    version_error = version_refusal(name, version)
    if version_error is not None:
        out.append(version_error)
    sides = [c for c in (live_config, desired_config) if c is not None]
    if any(c.get("mirror") for c in sides):
        refuse(
            f"replace_strategy: migrate cannot keep {name}'s messages: it is a mirror, which "
            "holds only what it copies from its origin and accepts no other messages; "
            "re-create it (replace_strategy: recreate) and it copies its origin again",
            "mirror",
        )
    if any(c.get("sources") for c in sides):
        refuse(
            f"replace_strategy: migrate cannot be used on {name}: it has sources of its own, "
            "which a re-created stream would copy again from their start",
            "sources",
        )
    if sourced_by:
        refuse(
            f"replace_strategy: migrate cannot be used on {name}: "
            + ", ".join(sourced_by)
            + (" sources or mirrors" if len(sourced_by) == 1 else " source or mirror")
            + f" it, and a re-created {name} renumbers its messages, so they would be copied "
            "there again"
        )
    if desired_config.get("sealed"):
        refuse(
            f"replace_strategy: migrate cannot copy into {name}: the new config is sealed",
            "sealed",
        )
    for flag in _UNVERIFIED_FLAGS:
        if any(c.get(flag) for c in sides):
            refuse(
                f"replace_strategy: migrate does not support {flag} streams ({name}): copying "
                "their messages through sources was not verified",
                flag,
            )
    return out


def needs_replace(forces_replace: Iterable[bool]) -> bool:
    """Whether any field change (its ``forces_replace`` flag) makes the change a replace."""
    return any(forces_replace)


def strategy_note(name: str) -> PlanMessage:
    """The note for ``replace_strategy: migrate`` on a change that needs no replace."""
    return PlanMessage(
        "warning",
        "note",
        f"replace_strategy: migrate on {name} has no effect here: this change is made in place, "
        "so nothing is copied",
        address=f"stream.{name}",
    )


def switch_over_seconds(messages: int, size: int) -> float:
    """Estimated seconds publishes are refused: the copy back plus fixed overhead (facts §6)."""
    copy = max(messages / COPY_MSGS_PER_S, size / COPY_BYTES_PER_S)
    return round(copy + SWITCH_OVERHEAD_S, 1)


def migration_steps(
    live_config: Mapping[str, Any],
    live_state: Mapping[str, Any],
    desired_config: Mapping[str, Any],
    consumers: Sequence[Mapping[str, Any]],
    version: Version,
    *,
    sourced_by: Sequence[str] = (),
) -> MigrationPlan:
    """The migration of one stream as the plan shows it.

    ``live_config``/``live_state`` are the stream's ``STREAM.INFO`` config and state,
    ``consumers`` its ``CONSUMER.INFO`` replies (``name``, ``config``, ``ack_floor``),
    ``version`` the connected server's, ``sourced_by`` the streams that source or mirror it
    (:func:`streams_sourcing`). Refusals are error diagnostics; the steps are still listed.
    """
    name = str(live_config["name"])
    messages = int(live_state.get("messages") or 0)
    size = int(live_state.get("bytes") or 0)
    first = int(live_state.get("first_seq") or 0)
    last = int(live_state.get("last_seq") or 0)
    diagnostics = refusals(name, live_config, desired_config, version, sourced_by)
    positions: list[ConsumerPosition] = []
    ephemeral: list[str] = []
    for info in consumers:
        config = dict(info.get("config") or {})
        cname = str(info.get("name") or config.get("durable_name") or config.get("name") or "")
        if not config.get("durable_name"):
            ephemeral.append(cname)
            continue
        floor = int((info.get("ack_floor") or {}).get("stream_seq") or 0)
        positions.append(ConsumerPosition(cname, floor, config))
    pause = switch_over_seconds(messages, size)
    start = int(desired_config.get("first_seq") or 1)
    subjects = ", ".join(live_config.get("subjects") or []) or "its subjects"
    effects = [
        f"keeps all {messages:,} messages ({size:,} bytes); each keeps its subject, payload and "
        f"headers (Nats-Msg-Id included) and gains one header, Nats-Stream-Source, naming "
        f"{temp_name(name)}",
        "sequence numbers change: the messages are renumbered densely from "
        f"{start}" + (f" (now {first}..{last})" if messages else ""),
        f"publishes to {subjects} are refused for about {pause:g} s during the switch-over "
        "(the jelmore runtime retries them; other publishers must retry on 'no responders')",
        "message times restart at the migration: max_age and per-message TTLs count again "
        "from then, and start-time positions see the migration time",
        f"{temp_name(name)} holds a second copy meanwhile ({size:,} bytes, "
        f"{live_config.get('storage') or 'file'} storage)",
    ]
    for pos in positions:
        effects.append(
            f"consumer {pos.name} is re-created at the first message after its acknowledgement "
            f"floor (stream sequence {pos.ack_floor}): acknowledged messages are not redelivered; "
            "delivered but unacknowledged ones are delivered again and redelivery counts restart"
        )
    if ephemeral:
        effects.append(
            "ephemeral consumers are not kept: " + ", ".join(sorted(ephemeral)) + " (they end)"
        )
    if version < REFUSED_SINCE:
        effects.append(
            f"on nats-server {_v(version)} a message whose Nats-Msg-Id repeats an earlier one "
            "delays the copy by about 2 s (it is still copied)"
        )
    return MigrationPlan(
        stream=name,
        temp_stream=temp_name(name),
        steps=tuple((s, step_text(s, name)) for s in STEP_ORDER if s is not Step.DONE),
        effects=tuple(effects),
        messages=messages,
        bytes=size,
        switch_over_s=pause,
        consumers=tuple(positions),
        diagnostics=tuple(diagnostics),
    )


# -- configs the executor sends -------------------------------------------------------------


def _copy_window(config: JSONDict, version: Version) -> None:
    """Leave the window out from 2.14 (none), else the smallest (facts §2)."""
    if version >= WINDOWLESS_SINCE:
        config.pop("duplicate_window", None)
    else:
        config["duplicate_window"] = MIN_WINDOW_NS


def copy_per_subject_limit(original: Mapping[str, Any]) -> int:
    """The temporary stream's ``max_msgs_per_subject``: the original's when it denies deletes
    (a KV bucket's ``history``), else none (-1).

    A stream that denies deletes only ever loses a subject's oldest messages (its per-subject
    limit, max_age, purges and rollups all remove the oldest first), and the copy receives its
    messages in order, so the copy's newest ``max_msgs_per_subject`` per subject include every
    message the original still holds. With no limit, a value written again while the copy runs
    (its old revision dropped from the original but kept in the copy) would leave the copy with
    more messages than the original for good, and the migration stuck at its verification.
    Where single messages may be deleted, a limit could keep a message the original deleted
    instead of an older one it kept, so there is none.
    """
    limit = original.get("max_msgs_per_subject")
    if original.get("deny_delete") and isinstance(limit, int) and limit > 0:
        return limit
    return -1


def temp_config(original: Mapping[str, Any], version: Version) -> JSONDict:
    """The temporary stream: sources the original, no limits, carries the marker.

    It keeps every message the original holds: no limits but the per-subject one of a stream
    that denies deletes (:func:`copy_per_subject_limit`), no TTLs, no subjects, no republish.
    Rollup headers are allowed when the original allows them, as a copied rollup message is
    refused otherwise; the server then applies a copied rollup to the copy too, which removes
    only copies of messages the rollup already removed from the original (they arrive in the
    original's order; docs/migration.md).
    """
    name = str(original["name"])
    marker = {
        META_OF: name,
        META_STEP: STEP_COPYING,
        META_ORIGINAL: json.dumps(dict(original), separators=(",", ":"), sort_keys=True),
    }
    config: JSONDict = {
        "name": temp_name(name),
        "description": f"jelmore-infra migration copy of {name}; do not delete",
        "sources": [{"name": name}],
        "retention": "limits",
        "storage": original.get("storage") or "file",
        "num_replicas": original.get("num_replicas") or 1,
        "discard": "old",
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msgs_per_subject": copy_per_subject_limit(original),
        "max_msg_size": -1,
        "allow_rollup_hdrs": bool(original.get("allow_rollup_hdrs")),
        "metadata": marker,
    }
    if original.get("placement"):
        config["placement"] = original["placement"]
    _copy_window(config, version)
    return config


def frozen_config(original: Mapping[str, Any]) -> JSONDict:
    """The original with a placeholder subject instead of its own (an in-place update)."""
    config = dict(original)
    config["subjects"] = [freeze_subject(str(original["name"]))]
    # Both may name the old subjects; the stream is about to go, so drop them.
    config.pop("republish", None)
    config.pop("subject_transform", None)
    return config


def detached_config(temp: Mapping[str, Any], messages: int, consumers: list[JSONDict]) -> JSONDict:
    """The temporary stream without its source, marked complete with the consumer positions."""
    config = dict(temp)
    config.pop("sources", None)
    meta = dict(config.get("metadata") or {})
    meta[META_STEP] = STEP_COPIED
    meta[META_MESSAGES] = str(messages)
    meta[META_CONSUMERS] = json.dumps(consumers, separators=(",", ":"), sort_keys=True)
    config["metadata"] = meta
    return config


def copy_back_config(
    desired: Mapping[str, Any], original: Mapping[str, Any], version: Version
) -> JSONDict:
    """The new stream while it copies back from the temporary one.

    No subjects (publishers keep getting "no responders", so new messages cannot mix into the
    backlog; facts §4), no limits that could drop or refuse a copy, no republish or subject
    transform (they would act on every copied message), and a retention that keeps messages
    without consumers. :func:`open_config` (the desired config) restores all of it in place.
    """
    name = str(desired["name"])
    config = dict(desired)
    config.pop("subjects", None)
    config.pop("mirror", None)
    config["sources"] = [{"name": temp_name(name)}]
    for key in ("max_msgs", "max_bytes", "max_msgs_per_subject", "max_msg_size"):
        config[key] = -1
    config["max_age"] = 0
    config["discard"] = "old"
    for key in ("discard_new_per_subject", "republish", "subject_transform"):
        config.pop(key, None)
    config.pop("subject_delete_marker_ttl", None)
    if config.get("retention") == "interest":
        config["retention"] = "limits"  # interest drops messages nobody is subscribed to yet
    # Copied rollup messages are refused unless rollups are allowed and purges are not denied.
    if original.get("allow_rollup_hdrs"):
        config["allow_rollup_hdrs"] = True
        config["deny_purge"] = False
    config["deny_delete"] = False
    _copy_window(config, version)
    return config


def open_config(desired: Mapping[str, Any]) -> JSONDict:
    """The final in-place update: exactly the desired config (no sources)."""
    config = dict(desired)
    config.pop("sources", None)
    return config


def resumed_consumer_config(config: Mapping[str, Any], start_seq: int) -> JSONDict:
    """A consumer's config re-created to start at ``start_seq`` of the new stream (facts §5)."""
    out = dict(config)
    out["deliver_policy"] = "by_start_sequence"
    out["opt_start_seq"] = start_seq
    out.pop("opt_start_time", None)
    meta = dict(out.get("metadata") or {})
    meta[META_RESUMED_AT] = str(start_seq)
    out["metadata"] = meta
    return out


def is_resumed_position(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether a live consumer differs from ``desired`` only by a migration's start position.

    The plan should then not replace it (that would redeliver what it acknowledged): its
    ``deliver_policy``/``opt_start_seq``/``opt_start_time`` were set by the migration.
    """
    meta = live.get("metadata") or {}
    if META_RESUMED_AT not in meta:
        return False
    if live.get("deliver_policy") != "by_start_sequence":
        return False
    return str(live.get("opt_start_seq")) == str(meta[META_RESUMED_AT])


# -- where a run stands ---------------------------------------------------------------------


class MigrationStateError(Exception):
    """The server holds a state a migration cannot continue from (says why)."""


@dataclass(frozen=True, slots=True)
class Marker:
    """The temporary stream's marker, decoded."""

    of: str
    step: str
    original: JSONDict
    messages: int | None
    consumers: list[JSONDict]


def read_marker(temp_info: Mapping[str, Any]) -> Marker | None:
    """The marker of a temporary stream's info, or ``None`` when it carries none."""
    meta = (temp_info.get("config") or {}).get("metadata") or {}
    if META_OF not in meta:
        return None
    try:
        original = json.loads(meta.get(META_ORIGINAL) or "{}")
        consumers = json.loads(meta.get(META_CONSUMERS) or "[]")
        messages = int(meta[META_MESSAGES]) if META_MESSAGES in meta else None
    except ValueError:
        return None
    return Marker(str(meta[META_OF]), str(meta.get(META_STEP) or ""), original, messages, consumers)


def migration_in_progress(stream_infos: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Streams being migrated: original name → temporary stream name, from the live infos."""
    out: dict[str, str] = {}
    for info in stream_infos:
        config = info.get("config") or info
        meta = config.get("metadata") or {}
        if META_OF in meta and str(config.get("name")) == temp_name(str(meta[META_OF])):
            out[str(meta[META_OF])] = str(config["name"])
    return out


def _created(info: Mapping[str, Any]) -> tuple[datetime, int]:
    """A stream's creation time with its nanoseconds kept apart (Python keeps microseconds)."""
    text = str(info.get("created") or "")
    base, _, frac = text.rstrip("Z").partition(".")
    digits = "".join(ch for ch in frac if ch.isdigit())
    when = datetime.fromisoformat(base).replace(tzinfo=UTC) if base else datetime.min
    return when.replace(tzinfo=UTC), int((digits + "000000000")[:9])


def is_frozen(info: Mapping[str, Any]) -> bool:
    config = info.get("config") or {}
    return list(config.get("subjects") or []) == [freeze_subject(str(config.get("name")))]


def _sources(info: Mapping[str, Any]) -> list[str]:
    return [str(s.get("name")) for s in (info.get("config") or {}).get("sources") or []]


def resume_point(
    name: str, original: Mapping[str, Any] | None, temp: Mapping[str, Any] | None
) -> Step:
    """The next step, from ``STREAM.INFO`` of the stream (``original``) and of its temp copy.

    Raises :class:`MigrationStateError` when the server holds something no run of the executor
    leaves behind (the message says what, and that nothing was touched).
    """
    t = temp_name(name)
    if temp is None:
        if original is None:
            raise MigrationStateError(f"cannot migrate {name}: neither {name} nor {t} exists")
        return Step.CREATE_TEMP
    marker = read_marker(temp)
    if marker is None or marker.of != name:
        raise MigrationStateError(
            f"cannot migrate {name}: a stream named {t} exists that is not a migration copy of "
            f"{name} (no {META_OF} metadata naming it); rename or delete it"
        )
    temp_sources = _sources(temp)
    if marker.step == STEP_COPYING and temp_sources == [name]:
        if original is None:
            raise MigrationStateError(
                f"cannot continue migrating {name}: {name} was deleted while {t} was still "
                f"copying it, so {t} may be incomplete; it is left as it is"
            )
        return Step.VERIFY_COPY if is_frozen(original) else Step.WAIT_COPY
    if marker.step != STEP_COPIED or temp_sources:
        raise MigrationStateError(
            f"cannot continue migrating {name}: {t} is in an unknown state "
            f"(step {marker.step!r}, sources {temp_sources})"
        )
    if original is None:
        return Step.CREATE_NEW
    if is_frozen(original):
        return Step.DELETE_ORIGINAL
    if _sources(original) == [t]:
        return Step.VERIFY_COPY_BACK
    if not _sources(original) and _created(original) > _created(temp):
        return Step.DELETE_TEMP
    raise MigrationStateError(
        f"cannot continue migrating {name}: {name} was changed while {t} held its copy "
        f"(it is neither frozen nor the re-created stream); {t} is left as it is"
    )


#: The consumer fields a migration sets to re-create a consumer at its position.
_POSITION_FIELDS = ("deliver_policy", "opt_start_seq", "opt_start_time")


def keep_resumed_position(desired: Mapping[str, Any], live: Mapping[str, Any]) -> JSONDict:
    """``desired`` with the start position a migration gave the live consumer, if it has one.

    A consumer re-created by a migration starts at its resumed position
    (:func:`resumed_consumer_config`); those fields cannot be updated and are no change the user
    asked for, so the plan compares, and apply sends, the desired config with them kept.
    """
    out = dict(desired)
    if not is_resumed_position(live, desired):
        return out
    for key in _POSITION_FIELDS:
        if key in live:
            out[key] = live[key]
        else:
            out.pop(key, None)
    meta = dict(out.get("metadata") or {})
    meta[META_RESUMED_AT] = str((live.get("metadata") or {})[META_RESUMED_AT])
    out["metadata"] = meta
    return out
