"""Validating the ``events:`` section: event types, their settings and payload schemas.

Each entry is an event type (``session.created``) with ``subject`` (default
``jelmore.<event type>``), ``description``, ``compatibility`` (``none``, ``backward``, ``forward``
or ``full``; default ``backward``), ``sensitive`` (the runtime encrypts the payload) and
``payload``, the JSON Schema (draft 2020-12) of the envelope's ``payload``.

Checked offline, each problem at its file:line:col:

- the schema is valid against the draft 2020-12 meta-schema (with the ``jsonschema`` package,
  imported only when a topology declares events); a ``$ref`` may only point inside the schema
  (``#…``): nothing is ever fetched from the network;
- exactly one stream captures each event's subject, and no two events share a subject;
- a warning for a consumer group whose filter matches no declared event (groups on streams
  that carry no declared event, such as dead-letter queues, are left out).

Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jelmore_infra.diagnostics import Diagnostic, Location, printable
from jelmore_infra.model import (
    COMPATIBILITY_MODES,
    DEFAULT_COMPATIBILITY,
    EventSpec,
    JSONDict,
)
from jelmore_infra.subjects import subject_is_subset, subject_problem, subjects_overlap
from jelmore_infra.topology.build import GroupDraft, StreamDraft
from jelmore_infra.topology.nodes import Map, RawResource, Scalar, Seq, describe, did_you_mean

#: Event types: dot-separated tokens of letters, digits, ``-`` and ``_`` (also a KV key).
EVENT_TYPE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\Z")
EVENT_TYPE_MAX = 255
#: The subject prefix of an event whose ``subject`` is not written.
DEFAULT_SUBJECT_PREFIX = "jelmore"
SETTINGS = ("subject", "description", "compatibility", "sensitive", "payload")
DESCRIPTION_MAX = 4096
#: The only ``$schema`` a payload schema may name (or none): draft 2020-12.
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_REF_KEYS = ("$ref", "$dynamicRef")


@dataclass(slots=True)
class EventDraft:
    """An event type as written, its settings converted, with where each part was written.

    ``places`` maps a JSON pointer inside the payload schema (``#/properties/timeout``) to where
    it is written, so meta-schema errors point at the line.
    """

    type: str
    location: Location
    config: JSONDict = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)
    places: dict[str, Location] = field(default_factory=dict)
    stream: str | None = None


def default_subject(event_type: str) -> str:
    return f"{DEFAULT_SUBJECT_PREFIX}.{event_type}"


class _Reader:
    def __init__(self, diags: list[Diagnostic]) -> None:
        self.diags = diags

    def error(self, message: str, loc: Location, related: Iterable[Location] = ()) -> None:
        self.diags.append(Diagnostic("error", message, loc, tuple(related)))

    def plain(self, node: Any, pointer: str, places: dict[str, Location]) -> Any:
        """A schema node as plain JSON (``None`` plus an error for what JSON cannot hold)."""
        places[pointer] = node.loc
        if isinstance(node, Map):
            out: dict[str, Any] = {}
            for key, entry in node.entries.items():
                child = f"{pointer}/{_escape(key)}"
                places[child] = entry.key_loc
                out[key] = self.plain(entry.value, child, places)
                places[child] = entry.key_loc
            return out
        if isinstance(node, Seq):
            return [self.plain(item, f"{pointer}/{i}", places) for i, item in enumerate(node.items)]
        assert isinstance(node, Scalar)
        value = node.value
        if isinstance(value, float) and not math.isfinite(value):
            self.error(f"{node.raw} is not a JSON value (JSON has no infinity or NaN)", node.loc)
            return None
        return value


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def convert_events(raw: Iterable[RawResource], diags: list[Diagnostic]) -> list[EventDraft]:
    """The structural pass over ``events:``: names, settings, values (invalid ones left out)."""
    reader = _Reader(diags)
    return [_convert(reader, res) for res in raw]


def _convert(reader: _Reader, res: RawResource) -> EventDraft:
    draft = EventDraft(res.name, res.name_loc)
    if len(res.name) > EVENT_TYPE_MAX or not EVENT_TYPE.match(res.name):
        shown = printable(res.name if len(res.name) <= 40 else res.name[:37] + "...")
        reader.error(
            f"invalid event type '{shown}': use dot-separated words of letters, digits, '-' and "
            f"'_' (like session.created), at most {EVENT_TYPE_MAX} characters",
            res.name_loc,
        )
    node = res.settings
    config: JSONDict = {
        "subject": default_subject(res.name),
        "description": "",
        "compatibility": DEFAULT_COMPATIBILITY,
        "sensitive": False,
    }
    draft.config = config
    if isinstance(node, Scalar) and node.value is None and not node.quoted:
        reader.error(f"event '{res.name}' needs a 'payload:' schema", res.name_loc)
        return draft
    if not isinstance(node, Map):
        reader.error(
            f"the settings of event '{res.name}' must be a map, not {describe(node)}", node.loc
        )
        return draft
    for key, entry in node.entries.items():
        value = entry.value
        draft.locations[key] = entry.key_loc
        if key not in SETTINGS:
            reader.error(
                f"unknown event setting '{key}'{did_you_mean(key, SETTINGS)}; an event has "
                "'subject', 'description', 'compatibility', 'sensitive' and 'payload'",
                entry.key_loc,
            )
        elif key == "payload":
            if not isinstance(value, Map):
                reader.error(
                    f"payload must be a JSON Schema (a map), not {describe(value)}", value.loc
                )
                continue
            config["payload"] = reader.plain(value, "#", draft.places)
            draft.places["#"] = entry.key_loc
        elif key == "sensitive":
            if not (isinstance(value, Scalar) and isinstance(value.value, bool)):
                reader.error(f"sensitive must be true or false, not {describe(value)}", value.loc)
            else:
                config["sensitive"] = value.value
        elif not (isinstance(value, Scalar) and isinstance(value.value, str)):
            reader.error(f"{key} must be text, not {describe(value)}", value.loc)
        elif key == "compatibility":
            if value.value not in COMPATIBILITY_MODES:
                reader.error(
                    f"unknown compatibility '{printable(value.value)}'"
                    f"{did_you_mean(value.value, COMPATIBILITY_MODES)}; use "
                    + ", ".join(COMPATIBILITY_MODES),
                    value.loc,
                )
            else:
                config["compatibility"] = value.value
        elif key == "subject":
            problem = subject_problem(value.value, wildcards=False)
            if problem is not None:
                reader.error(
                    f"subject '{printable(value.value)}' {problem}; an event's subject is one "
                    "literal subject (no wildcards)",
                    value.loc,
                )
            else:
                config["subject"] = value.value
        else:  # description
            if len(value.value) > DESCRIPTION_MAX:
                reader.error(f"description is longer than {DESCRIPTION_MAX} characters", value.loc)
            else:
                config["description"] = value.value
    if "payload" not in node.entries:
        reader.error(f"event '{res.name}' needs a 'payload:' schema", res.name_loc)
    elif "payload" in config:
        _check_schema(reader, draft)
    return draft


def _check_schema(reader: _Reader, draft: EventDraft) -> None:
    schema = draft.config["payload"]
    before = len(reader.diags)
    for pointer, ref in _refs(schema, "#"):
        if not ref.startswith("#"):
            reader.error(
                f"$ref '{printable(ref)}' points outside the schema; payload schemas may only "
                "refer to their own parts ('#/$defs/…'): nothing is fetched from the network",
                draft.places.get(pointer, draft.location),
            )
    declared = schema.get("$schema")
    if declared is not None and declared != DRAFT_2020_12:
        reader.error(
            f"$schema '{printable(str(declared))}' is not draft 2020-12; leave it out or use "
            f"{DRAFT_2020_12}",
            draft.places.get("#/$schema", draft.location),
        )
    if len(reader.diags) > before:
        return
    for pointer, message in meta_schema_errors(schema):
        reader.error(
            f"invalid payload schema of event '{draft.type}': {message}",
            draft.places.get(pointer, draft.locations.get("payload", draft.location)),
        )


def _refs(node: Any, pointer: str) -> Iterable[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            child = f"{pointer}/{_escape(str(key))}"
            if key in _REF_KEYS and isinstance(value, str):
                yield child, value
            else:
                yield from _refs(value, child)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _refs(item, f"{pointer}/{i}")


def meta_schema_errors(schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(JSON pointer, message)`` for each way ``schema`` breaks the draft 2020-12 meta-schema
    (regular expressions in ``pattern`` are compiled too)."""
    from jsonschema import Draft202012Validator

    checker = Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    out = []
    for err in sorted(checker.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path))):
        pointer = "#" + "".join(f"/{_escape(str(p))}" for p in err.absolute_path)
        where = pointer[1:] or "/"
        out.append((pointer, f"at {where}: {err.message}"))
    return out


def check_events(
    events: list[EventDraft], streams: list[StreamDraft], groups: list[GroupDraft]
) -> list[Diagnostic]:
    """The checks across resources: each subject captured by one stream, no shared subjects,
    and a warning for a consumer group whose filter matches no declared event."""
    out: list[Diagnostic] = []
    if not events:
        return out
    spaces = [
        (subject, stream)
        for stream in streams
        for subject in (stream.config.get("subjects") or [stream.name])
        if "mirror" not in stream.config
    ]
    by_subject: dict[str, EventDraft] = {}
    for event in events:
        subject = str(event.config["subject"])
        where = event.locations.get("subject", event.location)
        first = by_subject.get(subject)
        if first is not None:
            out.append(
                Diagnostic(
                    "error",
                    f"events '{first.type}' and '{event.type}' share the subject "
                    f"'{printable(subject)}'; each event type needs its own subject",
                    where,
                    (first.locations.get("subject", first.location),),
                )
            )
            continue
        by_subject[subject] = event
        owners = sorted({s.name for pattern, s in spaces if subject_is_subset(subject, pattern)})
        if not owners:
            out.append(
                Diagnostic(
                    "error",
                    f"no stream captures the subject '{printable(subject)}' of event "
                    f"'{event.type}'; add it to a stream's subjects or set the event's subject",
                    where,
                )
            )
        elif len(owners) > 1:
            out.append(
                Diagnostic(
                    "error",
                    f"the subject '{printable(subject)}' of event '{event.type}' is captured by "
                    f"{len(owners)} streams ({', '.join(owners)}); it must be exactly one",
                    where,
                )
            )
        else:
            event.stream = owners[0]
    stream_subjects = {s.name: list(s.config.get("subjects") or [s.name]) for s in streams}
    carrying = {e.stream for e in by_subject.values() if e.stream is not None}
    for group in groups:
        if group.stream not in carrying:
            continue  # a group on a stream without events (dead letters, advisories)
        filters = _filters(group) or stream_subjects.get(group.stream or "", [])
        for subject in filters:
            if not any(subjects_overlap(e, subject) for e in by_subject):
                where = (
                    group.locations.get("filter_subject")
                    or group.locations.get("filter_subjects")
                    or group.location
                )
                out.append(
                    Diagnostic(
                        "warning",
                        f"consumer group '{group.name}' filters on '{printable(subject)}', "
                        "which matches no declared event",
                        where,
                    )
                )
    return out


def _filters(group: GroupDraft) -> list[str]:
    one = group.config.get("filter_subject")
    many = group.config.get("filter_subjects") or []
    return [str(one)] if one else [str(s) for s in many]


def build_events(drafts: Iterable[EventDraft]) -> dict[str, EventSpec]:
    return {
        d.type: EventSpec(d.type, dict(d.config), d.location, dict(d.locations), d.stream)
        for d in drafts
    }


__all__ = [
    "DEFAULT_SUBJECT_PREFIX",
    "EventDraft",
    "build_events",
    "check_events",
    "convert_events",
    "default_subject",
    "meta_schema_errors",
]
