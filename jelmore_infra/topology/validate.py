"""Validating topology entries: the structural pass and the semantic checks.

The structural pass walks each stream's and consumer group's settings along the field table
(:mod:`jelmore_infra.fields`), the same table the JSON Schema is generated from: unknown keys (with
a "did you mean"), values of the wrong kind, bad units, enums, subjects, names. Each value is turned
into its JetStream wire form on the way (durations → nanoseconds, sizes → bytes), giving drafts.

The semantic pass checks what a schema cannot express: subject overlaps between and within streams,
subjects the server keeps for itself, consumer filters against their stream, cross-field rules the
server enforces (see docs/server-semantics.md),
work-queue rules and the dead-letter settings.

Every problem is collected, each with its own message and exact place. Overlaps are found through a
subject trie and reported once per subject, listing a few of the overlapping subjects and counting
the rest, so even thousands of streams sharing one subject space cost close to linear time and
output. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, MutableMapping
from datetime import datetime
from typing import Any, cast

from jelmore_infra import fields as F
from jelmore_infra import model
from jelmore_infra.diagnostics import Diagnostic, Location, printable
from jelmore_infra.subjects import (
    SubjectIndex,
    is_subset_of_any,
    is_valid_subject,
    reserved_space,
    subject_is_subset,
    subject_problem,
    subjects_overlap,
)
from jelmore_infra.topology.build import GroupDraft, StreamDraft, place
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
from jelmore_infra.units import UnitError, format_duration, parse_count, parse_duration, parse_size

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
NAME_MAX = 255
DESCRIPTION_MAX = 4096
METADATA_MAX_BYTES = 128 * 1024
MAX_REPLICAS = 5
#: How many overlapping subjects one overlap diagnostic names before counting the rest.
OVERLAPS_SHOWN = 5
#: Keys of a consumer group besides the JetStream consumer fields.
GROUP_KEYS = ("stream", "jelmore")
JELMORE_KEYS = ("retry_delays", "dead_letter")
#: Keys of a stream besides the JetStream stream fields, and of its ``jelmore:`` block.
STREAM_KEYS = ("jelmore",)
STREAM_JELMORE_KEYS = ("replace_strategy", "durability")
DEAD_LETTER_KEYS = ("stream", "subject")
RESERVED_META_PREFIXES = (model.JELMORE_META_PREFIX, model.SERVER_META_PREFIX)
#: Stream settings a mirror may not have (the server refuses them).
MIRROR_FORBIDDEN = (
    "subjects",
    "sources",
    "first_seq",
    "allow_msg_counter",
    "allow_atomic",
    "allow_batched",
    "allow_msg_schedules",
    "subject_delete_marker_ttl",
)
_NAME_BAD = {
    ".": "'.'",
    "*": "'*'",
    ">": "'>'",
    "/": "'/'",
    "\\": "'\\'",
}
#: Any character :func:`name_problem` looks for (``\s`` is what ``str.isspace`` is true for).
_NAME_ODD = re.compile(r"[.*>/\\\s\0]")
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_SAMPLE_FREQ = re.compile(r"^[0-9]+%?$")
_PRIORITY_GROUP = re.compile(r"^[a-zA-Z0-9/_=-]{1,16}$")

_INVALID = object()

Diags = list[Diagnostic]
#: Setting path → where it is written (a draft's ``Locations``, or any such mapping).
Places = MutableMapping[str, Location]


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a stream or consumer (a phrase), or ``None``."""
    if name and len(name) <= NAME_MAX and _NAME_ODD.search(name) is None:
        return None  # the common case, in one pass over the name
    if not name:
        return "is empty"
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long (at most {NAME_MAX} are allowed)"
    bad = [label for ch, label in _NAME_BAD.items() if ch in name]
    if any(c.isspace() for c in name):
        bad.append("whitespace")
    if "\0" in name:
        bad.append("a NUL character")
    if bad:
        return "must not contain " + ", ".join(bad)
    return None


class _Checker:
    def __init__(self, diags: Diags) -> None:
        self.diags = diags

    def error(
        self, message: str, loc: Location, related: Iterable[Location] = (), kind: str = ""
    ) -> None:
        self.diags.append(Diagnostic("error", message, loc, tuple(related), kind))

    def warning(self, message: str, loc: Location) -> None:
        self.diags.append(Diagnostic("warning", message, loc))


# --- the structural pass ----------------------------------------------------------------------


#: List kinds: what a list of each must be (for messages), and the kind of its items.
_LIST_WHAT = {
    F.ValueKind.SUBJECT_LIST: "a list of subjects",
    F.ValueKind.STRING_LIST: "a list of names",
    F.ValueKind.DURATION_LIST: "a list of durations like [1s, 5s, 30s]",
}
_LIST_ITEM = {
    F.ValueKind.SUBJECT_LIST: F.ValueKind.SUBJECT,
    F.ValueKind.STRING_LIST: F.ValueKind.STRING,
    F.ValueKind.DURATION_LIST: F.ValueKind.DURATION,
}


@functools.cache
def _item_field(name: str, kind: F.ValueKind) -> F.Field:
    """The field each item of a list field ``name`` of ``kind`` is checked as."""
    return F.Field(name, _LIST_ITEM[kind])


class _Converter(_Checker):
    """Converts settings maps to wire-form configs along the field table."""

    def settings(
        self,
        table: dict[str, F.Field],
        node: Map,
        prefix: str,
        config: dict[str, Any],
        locations: Places,
        label: str,
        *,
        skip: Iterable[str] = (),
        reject: Callable[[Entry], bool] | None = None,
        extra_choices: Iterable[str] = (),
    ) -> None:
        skipped = set(skip)
        for key, entry in node.entries.items():
            if key in skipped:
                continue
            if reject is not None and reject(entry):
                continue
            fld = table.get(key)
            path = f"{prefix}{key}"
            if fld is None:
                self.unknown(key, entry, label, [*table, *extra_choices])
                continue
            value = self.value(fld, entry.value, path, locations)
            if value is not _INVALID:
                config[key] = value
                place(locations, path, entry.value)

    def unknown(self, key: str, entry: Entry, label: str, choices: list[str]) -> None:
        hint = did_you_mean(key, [c for c in choices if c not in ("name", "durable_name")])
        message = f"unknown {label} setting '{key}'{hint}"
        if not hint and label == "stream" and key in F.CONSUMER_FIELD_MAP:
            message += "; it is a consumer group setting (put it under consumer_groups)"
        elif not hint and label == "consumer group" and key in F.STREAM_FIELD_MAP:
            message += "; it is a stream setting (put it under streams)"
        self.error(message, entry.key_loc)

    def value(self, fld: F.Field, node: LNode, path: str, locations: Places) -> Any:
        kind = fld.kind
        if is_null(node) and kind is not F.ValueKind.METADATA:
            self.error(f"{path} has no value (give one, or remove the line)", node.loc)
            return _INVALID
        if kind is F.ValueKind.OBJECT:
            return self.obj(fld, node, path, locations)
        if kind is F.ValueKind.OBJECT_LIST:
            items = self.seq(node, path, "a list of maps")
            if items is None:
                return _INVALID
            out: list[Any] = []
            for i, item in enumerate(items):
                converted = self.obj(fld, item, f"{path}.{i}", locations)
                if converted is not _INVALID:
                    out.append(converted)
                    locations[f"{path}.{i}"] = item.loc
            return out if len(out) == len(items) else _INVALID
        if kind is F.ValueKind.METADATA:
            return self.metadata(node, path, locations)
        if kind in _LIST_WHAT:
            items = self.seq(node, path, _LIST_WHAT[kind])
            if items is None:
                return _INVALID
            item_field = _item_field(fld.name, kind)
            values = []
            for i, item in enumerate(items):
                v = self.scalar(item_field, item, f"{path}[{i}]")
                if v is not _INVALID:
                    values.append(v)
                    place(locations, f"{path}.{i}", item)
            return values if len(values) == len(items) else _INVALID
        return self.scalar(fld, node, path)

    def seq(self, node: LNode, path: str, what: str) -> tuple[LNode, ...] | None:
        if isinstance(node, Seq):
            return node.items
        hint = ""
        if isinstance(node, Scalar) and isinstance(node.value, str):
            hint = f" (write it as a list: [{node.raw}])"
        self.error(f"{path} must be {what}, not {describe(node)}{hint}", node.loc)
        return None

    def obj(self, fld: F.Field, node: LNode, path: str, locations: Places) -> Any:
        if not isinstance(node, Map):
            self.error(f"{path} must be a map of settings, not {describe(node)}", node.loc)
            return _INVALID
        table = {f.name: f for f in fld.sub_fields}
        out: dict[str, Any] = {}
        before = len(self.diags)
        label = {"sources": "source", "mirror": "mirror"}.get(fld.name, fld.name)
        self.settings(table, node, f"{path}.", out, locations, label)
        return out if len(self.diags) == before else _INVALID

    def metadata(self, node: LNode, path: str, locations: Places) -> Any:
        if is_null(node):
            return {}
        if not isinstance(node, Map):
            self.error(f"{path} must be a map of text keys to text values", node.loc)
            return _INVALID
        out: dict[str, str] = {}
        ok = True
        for key, entry in node.entries.items():
            if key.startswith(RESERVED_META_PREFIXES):
                prefix = next(p for p in RESERVED_META_PREFIXES if key.startswith(p))
                self.error(
                    f"metadata key '{key}' is reserved: keys starting with '{prefix}' are "
                    "written by jelmore-infra or the server",
                    entry.key_loc,
                )
                ok = False
                continue
            value = entry.value
            if not isinstance(value, Scalar) or not isinstance(value.value, str):
                hint = (
                    f"; put it in quotes: '{value.raw}'"
                    if isinstance(value, Scalar) and value.raw
                    else ""
                )
                self.error(
                    f"metadata value of '{key}' must be text, not {describe(value)}{hint}",
                    value.loc,
                )
                ok = False
                continue
            out[key] = value.value
            locations[f"{path}.{key}"] = value.loc
        size = sum(len(k.encode()) + len(v.encode()) for k, v in out.items())
        if size > METADATA_MAX_BYTES:
            self.error(f"{path} is {size} bytes; the server allows at most 128 KiB", node.loc)
            ok = False
        return out if ok else _INVALID

    def scalar(self, fld: F.Field, node: LNode, path: str) -> Any:
        kind = fld.kind
        if not isinstance(node, Scalar):
            self.error(f"{path} must be {_kind_phrase(fld)}, not {describe(node)}", node.loc)
            return _INVALID
        v = node.value
        try:
            if kind is F.ValueKind.DURATION:
                return self.duration(fld, node, path)
            if kind is F.ValueKind.SIZE:
                n = parse_size(v)
                return self.bounded(fld, n, node, path, "size")
            if kind is F.ValueKind.COUNT:
                n = parse_count(v)
                return self.bounded(fld, n, node, path, "count")
        except UnitError as exc:
            self.error(f"{path}: {exc}", node.loc)
            return _INVALID
        if kind is F.ValueKind.INT:
            if isinstance(v, bool) or not isinstance(v, int):
                self.error(f"{path} must be a whole number, not {describe(node)}", node.loc)
                return _INVALID
            if v < 0 or v > INT64_MAX:
                self.error(f"{path} must be a whole number from 0 up, not {v}", node.loc)
                return _INVALID
            return v
        if kind is F.ValueKind.BOOL:
            if not isinstance(v, bool):
                self.error(f"{path} must be true or false, not {describe(node)}", node.loc)
                return _INVALID
            return v
        if kind is F.ValueKind.ENUM:
            if not isinstance(v, str) or v not in fld.choices:
                choices = ", ".join(fld.choices)
                hint = did_you_mean(v, fld.choices) if isinstance(v, str) else ""
                self.error(
                    f"invalid {path} {describe(node)}: choose one of {choices}{hint}", node.loc
                )
                return _INVALID
            return v
        if kind is F.ValueKind.SUBJECT:
            if not isinstance(v, str):
                self.error(f"{path} must be a subject, not {describe(node)}", node.loc)
                return _INVALID
            wildcards = fld.name != "deliver_subject"
            problem = subject_problem(v, wildcards=wildcards)
            if problem is not None:
                self.error(f"invalid subject '{printable(v)}' in {path}: it {problem}", node.loc)
                return _INVALID
            return v
        if kind is F.ValueKind.TIME:
            return self.time(node, path)
        if kind is F.ValueKind.STRING:
            if fld.name == "sample_freq":
                text = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
                if not isinstance(text, str) or not _SAMPLE_FREQ.match(text):
                    self.error(
                        f"{path} must be a percentage like '50%' (or a number), "
                        f"not {describe(node)}",
                        node.loc,
                    )
                    return _INVALID
                return text
            if not isinstance(v, str):
                hint = f"; put it in quotes: '{node.raw}'" if node.raw else ""
                self.error(f"{path} must be text, not {describe(node)}{hint}", node.loc)
                return _INVALID
            if fld.name == "description" and len(v) > DESCRIPTION_MAX:
                self.error(
                    f"{path} is {len(v)} characters long (at most {DESCRIPTION_MAX})", node.loc
                )
                return _INVALID
            return v
        self.error(f"{path}: unsupported value", node.loc)  # pragma: no cover
        return _INVALID

    def duration(self, fld: F.Field, node: Scalar, path: str) -> Any:
        ns = parse_duration(node.value, allow_unlimited=fld.unlimited)
        if ns > INT64_MAX:
            self.error(f"{path} {describe(node)} is too long", node.loc)
            return _INVALID
        if fld.minimum_ns is not None and 0 < ns < fld.minimum_ns:
            self.error(
                f"{path} must be at least {format_duration(fld.minimum_ns)} "
                f"(or 0 to leave it unset), not {format_duration(ns)}",
                node.loc,
            )
            return _INVALID
        return ns

    def bounded(self, fld: F.Field, n: int, node: Scalar, path: str, what: str) -> Any:
        if n == -1 and not fld.unlimited:
            self.error(f"{path} cannot be unlimited (-1); leave it out instead", node.loc)
            return _INVALID
        limit = INT32_MAX if fld.name == "max_msg_size" else INT64_MAX
        if n > limit:
            self.error(f"{path} {describe(node)} is too large (at most {limit:,})", node.loc)
            return _INVALID
        return n

    def time(self, node: Scalar, path: str) -> Any:
        text = node.raw.strip()
        m = _RFC3339.match(text)
        ok = m is not None
        if m is not None:
            offset = m.group(4)
            offset = "+00:00" if offset in ("Z", "z") else offset
            try:
                datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{offset}")
            except ValueError:
                ok = False
        if not ok:
            self.error(
                f"{path} must be an RFC 3339 time like '2026-01-31T12:00:00Z', "
                f"not {describe(node)}",
                node.loc,
            )
            return _INVALID
        return text


def _kind_phrase(fld: F.Field) -> str:
    return {
        F.ValueKind.DURATION: "a duration like '60s' or '7d'",
        F.ValueKind.SIZE: "a size like 1024, '512KiB' or '10GB'",
        F.ValueKind.COUNT: "a whole number or 'unlimited'",
        F.ValueKind.INT: "a whole number",
        F.ValueKind.BOOL: "true or false",
        F.ValueKind.STRING: "text",
        F.ValueKind.ENUM: "one of " + ", ".join(fld.choices),
        F.ValueKind.SUBJECT: "a subject",
        F.ValueKind.TIME: "an RFC 3339 time",
    }.get(fld.kind, "a single value")


def _check_name(conv: _Converter, kind: str, name: str, loc: Location) -> bool:
    problem = name_problem(name)
    if problem is None:
        return True
    shown = printable(name if len(name) <= 40 else name[:37] + "...")
    conv.error(f"invalid {kind} name '{shown}': it {problem}", loc)
    return False


def _convert_stream(conv: _Converter, res: RawResource) -> StreamDraft:
    draft = StreamDraft(res.name, res.name_loc)
    if _check_name(conv, "stream", res.name, res.name_loc) and res.name == model.AUDIT_STREAM:
        conv.error(
            f"'{res.name}' is the stream of jelmore-infra's audit trail (created and kept by "
            "apply); choose another name",
            res.name_loc,
        )
    node = res.settings
    if is_null(node):
        return draft
    if not isinstance(node, Map):
        conv.error(
            f"the settings of stream '{res.name}' must be a map, not {describe(node)}", node.loc
        )
        return draft

    def reject(entry: Entry) -> bool:
        if entry.key == "name":
            conv.error(
                f"do not write 'name' in the settings: the key '{res.name}' is the stream's name",
                entry.key_loc,
            )
            return True
        return False

    draft.written.update(node.entries)
    jelmore = node.entries.get("jelmore")
    if jelmore is not None:
        _convert_strategy(conv, jelmore, draft, "stream")
    conv.settings(
        F.STREAM_FIELD_MAP,
        node,
        "",
        draft.config,
        draft.locations,
        "stream",
        skip=STREAM_KEYS,
        reject=reject,
        extra_choices=STREAM_KEYS,
    )
    return draft


def _convert_strategy(conv: _Converter, entry: Entry, draft: StreamDraft, what: str) -> None:
    """A stream's or bucket's ``jelmore:`` block: settings for jelmore-infra itself, never sent."""
    node = entry.value
    if is_null(node):
        return
    if not isinstance(node, Map):
        keys = STREAM_JELMORE_KEYS if what == "stream" else ("replace_strategy",)
        conv.error(
            f"jelmore must be a map with {' or '.join(keys)}, not {describe(node)}", node.loc
        )
        return
    keys = STREAM_JELMORE_KEYS if what == "stream" else ("replace_strategy",)
    for key, item in node.entries.items():
        if key not in keys:
            conv.error(
                f"unknown {what} jelmore setting '{key}'{did_you_mean(key, keys)}"
                f"; the jelmore block of {'an' if what[0] in 'aeiou' else 'a'} {what} has "
                + " and ".join(keys),
                item.key_loc,
            )
            continue
        value = item.value
        if key == "durability":
            if not (isinstance(value, Scalar) and value.value in model.DURABILITIES):
                conv.error(
                    "jelmore.durability must be one of "
                    + ", ".join(model.DURABILITIES)
                    + f", not {describe(value)}",
                    value.loc,
                )
                continue
            draft.durability = str(value.value)
            draft.locations["jelmore.durability"] = value.loc
            continue
        if (
            not isinstance(value, Scalar)
            or not isinstance(value.value, str)
            or value.value not in model.REPLACE_STRATEGIES
        ):
            conv.error(
                "jelmore.replace_strategy must be one of "
                + ", ".join(model.REPLACE_STRATEGIES)
                + f", not {describe(value)}",
                value.loc,
            )
            continue
        draft.replace_strategy = value.value
        draft.locations["jelmore.replace_strategy"] = value.loc


def _convert_group(conv: _Converter, res: RawResource) -> GroupDraft:
    draft = GroupDraft(res.name, res.name_loc)
    _check_name(conv, "consumer group", res.name, res.name_loc)
    node = res.settings
    if not isinstance(node, Map):
        if is_null(node):
            conv.error(
                f"consumer group '{res.name}' needs settings, at least 'stream:'", res.name_loc
            )
        else:
            conv.error(
                f"the settings of consumer group '{res.name}' must be a map, not {describe(node)}",
                node.loc,
            )
        return draft

    draft.written.update(node.entries)
    stream = node.entries.get("stream")
    if stream is None:
        conv.error(
            f"consumer group '{res.name}' needs 'stream:' (the stream it reads)", res.name_loc
        )
    elif not isinstance(stream.value, Scalar) or not isinstance(stream.value.value, str):
        conv.error(f"stream must be a stream name, not {describe(stream.value)}", stream.value.loc)
    else:
        draft.stream = stream.value.value
        place(draft.locations, "stream", stream.value)

    jelmore = node.entries.get("jelmore")
    if jelmore is not None:
        _convert_jelmore(conv, jelmore, draft)

    def reject(entry: Entry) -> bool:
        if entry.key in ("name", "durable_name"):
            conv.error(
                f"do not write '{entry.key}' in the settings: the key '{res.name}' is the "
                "consumer group's durable name",
                entry.key_loc,
            )
            return True
        push = "deliver_subject" in node.entries
        if not push and entry.key in F.PUSH_ONLY_FIELDS and entry.key != "deliver_subject":
            conv.error(
                f"'{entry.key}' is a push consumer setting, but consumer group '{res.name}' is a "
                "pull consumer (it has no deliver_subject)",
                entry.key_loc,
            )
            return True
        if push and entry.key in F.PULL_ONLY_FIELDS:
            conv.error(
                f"'{entry.key}' is a pull consumer setting, but consumer '{res.name}' is a push "
                "consumer (it has a deliver_subject)",
                entry.key_loc,
            )
            return True
        if push and entry.key == "deliver_subject" and "jelmore" in node.entries:
            conv.error(
                f"consumer '{res.name}' has jelmore runtime settings, which need a pull consumer: "
                "remove deliver_subject (the runtime's consumer groups are pull consumers)",
                entry.key_loc,
            )
            return True
        return False

    conv.settings(
        F.CONSUMER_FIELD_MAP,
        node,
        "",
        draft.config,
        draft.locations,
        "consumer group",
        skip=GROUP_KEYS,
        reject=reject,
        extra_choices=GROUP_KEYS,
    )
    return draft


def _convert_jelmore(conv: _Converter, entry: Entry, draft: GroupDraft) -> None:
    node = entry.value
    if is_null(node):
        return
    if not isinstance(node, Map):
        conv.error(
            f"jelmore must be a map with retry_delays and/or dead_letter, not {describe(node)}",
            node.loc,
        )
        return
    draft.locations["jelmore"] = node.loc
    for key, item in node.entries.items():
        if key == "retry_delays":
            _convert_retry_delays(conv, item, draft)
        elif key == "dead_letter":
            _convert_dead_letter(conv, item, draft)
        else:
            conv.error(
                f"unknown jelmore setting '{key}'{did_you_mean(key, JELMORE_KEYS)}; "
                "the jelmore block has retry_delays and dead_letter",
                item.key_loc,
            )


def _convert_retry_delays(conv: _Converter, item: Entry, draft: GroupDraft) -> None:
    path = "jelmore.retry_delays"
    items = conv.seq(item.value, path, "a list of durations like [2s, 4s, 8s]")
    if items is None:
        return
    delays: list[int] = []
    for i, node in enumerate(items):
        if not isinstance(node, Scalar):
            conv.error(f"{path}[{i}] must be a duration, not {describe(node)}", node.loc)
            continue
        try:
            ns = parse_duration(node.value)
        except UnitError as exc:
            conv.error(f"{path}[{i}]: {exc}", node.loc)
            continue
        if ns <= 0:
            conv.error(f"{path}[{i}] must be longer than 0 (a delay before a retry)", node.loc)
            continue
        delays.append(ns)
        draft.locations[f"{path}.{i}"] = node.loc
    if len(delays) == len(items):
        draft.retry_delays = delays
        draft.locations[path] = item.value.loc


def _convert_dead_letter(conv: _Converter, item: Entry, draft: GroupDraft) -> None:
    path = "jelmore.dead_letter"
    node = item.value
    if not isinstance(node, Map):
        conv.error(
            f"{path} must be a map with 'stream:' and 'subject:', not {describe(node)}", node.loc
        )
        return
    draft.locations[path] = node.loc
    for key, entry in node.entries.items():
        value = entry.value
        if key not in DEAD_LETTER_KEYS:
            conv.error(
                f"unknown dead_letter setting '{key}'{did_you_mean(key, DEAD_LETTER_KEYS)}; "
                "dead_letter has 'stream:' and 'subject:'",
                entry.key_loc,
            )
            continue
        if not isinstance(value, Scalar) or not isinstance(value.value, str):
            what = "a stream name" if key == "stream" else "a subject prefix"
            conv.error(f"{path}.{key} must be {what}, not {describe(value)}", value.loc)
            continue
        if key == "subject":
            problem = subject_problem(value.value, wildcards=False)
            if problem is not None:
                conv.error(
                    f"invalid dead-letter subject '{printable(value.value)}': it {problem}",
                    value.loc,
                )
                continue
            draft.dead_letter_subject = value.value
        else:
            draft.dead_letter_stream = value.value
        draft.locations[f"{path}.{key}"] = value.loc
    for key in DEAD_LETTER_KEYS:
        if key not in node.entries:
            conv.error(f"{path} needs '{key}:'", node.loc)


def convert_topology(raw: RawTopology, diags: Diags) -> tuple[list[StreamDraft], list[GroupDraft]]:
    """The structural pass: every stream and group as a draft (invalid values left out)."""
    conv = _Converter(diags)
    streams = [_convert_stream(conv, r) for r in raw.streams]
    groups = [_convert_group(conv, r) for r in raw.groups]
    return streams, groups


# --- KV buckets and object stores (docs/buckets.md) ------------------------------------------

_BUCKET_WORDS = {"kv": "KV bucket", "objectstore": "object store"}


def _bucket_table(kind: str) -> dict[str, F.Field]:
    table = F.KV_FIELD_MAP if kind == "kv" else F.OBJECT_STORE_FIELD_MAP
    return {k: f for k, f in table.items() if k not in F.BUCKET_DERIVED}


def _convert_bucket(conv: _Converter, res: RawResource, kind: str) -> StreamDraft:
    what = _BUCKET_WORDS[kind]
    other_kind = "objectstore" if kind == "kv" else "kv"
    draft = StreamDraft(res.name, res.name_loc)
    if not model.BUCKET_NAME.match(res.name) or len(res.name) > NAME_MAX - 4:
        shown = printable(res.name if len(res.name) <= 40 else res.name[:37] + "...")
        conv.error(
            f"invalid {what} name '{shown}': use only letters, digits, '-' and '_' "
            "(the NATS clients and the server refuse other names)",
            res.name_loc,
        )
    elif kind == "kv" and res.name in model.INTERNAL_BUCKETS:
        what = "apply lock" if res.name == model.LOCK_BUCKET else "event catalogue"
        conv.error(
            f"'{res.name}' is the KV bucket of jelmore-infra's {what}; choose another name",
            res.name_loc,
        )
    node = res.settings
    if is_null(node):
        return draft
    if not isinstance(node, Map):
        conv.error(
            f"the settings of {what} '{res.name}' must be a map, not {describe(node)}", node.loc
        )
        return draft
    table = _bucket_table(kind)
    other = _bucket_table(other_kind)

    def reject(entry: Entry) -> bool:
        if entry.key not in table and entry.key in other:
            conv.error(
                f"'{entry.key}' is a {_BUCKET_WORDS[other_kind]} setting, not an {what} setting"
                if kind == "objectstore"
                else f"'{entry.key}' is an {_BUCKET_WORDS[other_kind]} setting, not a {what} "
                "setting",
                entry.key_loc,
            )
            return True
        return False

    draft.written.update(node.entries)
    jelmore = node.entries.get("jelmore")
    if jelmore is not None:
        _convert_strategy(conv, jelmore, draft, what)
    conv.settings(
        table,
        node,
        "",
        draft.config,
        draft.locations,
        what,
        skip=STREAM_KEYS,
        reject=reject,
        extra_choices=STREAM_KEYS,
    )
    history = draft.config.get("history")
    if isinstance(history, int) and not 1 <= history <= model.MAX_HISTORY:
        conv.error(
            f"history must be from 1 to {model.MAX_HISTORY} (the number of values kept per key), "
            f"not {history}",
            draft.locations["history"],
        )
        draft.config.pop("history")
    replicas = draft.config.get("replicas")
    if isinstance(replicas, int) and not 1 <= replicas <= MAX_REPLICAS:
        conv.error(
            f"replicas must be from 1 to {MAX_REPLICAS}, not {replicas}",
            draft.locations["replicas"],
        )
    return draft


def check_bucket_streams(
    streams: list[StreamDraft], kv: list[StreamDraft], obj: list[StreamDraft]
) -> Diags:
    """Errors for a stream declared under the name of a declared bucket's stream, or whose
    subjects overlap a declared bucket's (the server refuses overlapping subjects)."""
    out: Diags = []
    owners = {f"KV_{d.name}": ("KV bucket", d) for d in kv}
    owners.update({f"OBJ_{d.name}": ("object store", d) for d in obj})
    spaces = [(f"$KV.{d.name}.>", "KV bucket", d) for d in kv]
    spaces += [(f"$O.{d.name}.>", "object store", d) for d in obj]
    for stream in streams:
        for subject, loc in effective_subjects(stream) if spaces else ():
            for space, what, bucket in spaces:
                if subjects_overlap(subject, space):
                    out.append(
                        Diagnostic(
                            "error",
                            f"subject '{printable(subject)}' of stream '{stream.name}' overlaps "
                            f"{what} '{bucket.name}' ({space}); the server refuses streams with "
                            "overlapping subjects",
                            loc,
                            (bucket.location,),
                        )
                    )
        owner = owners.get(stream.name)
        if owner is not None:
            what, bucket = owner
            out.append(
                Diagnostic(
                    "error",
                    f"stream '{stream.name}' is the stream of {what} '{bucket.name}' (declared at "
                    f"{bucket.location}); declare it once, as the bucket",
                    stream.location,
                    (bucket.location,),
                )
            )
    return out


def convert_buckets(raw: RawTopology, diags: Diags) -> tuple[list[StreamDraft], list[StreamDraft]]:
    """The KV buckets and object stores as drafts of their bucket settings (wire form)."""
    conv = _Converter(diags)
    kv = [_convert_bucket(conv, r, "kv") for r in raw.kv_buckets]
    obj = [_convert_bucket(conv, r, "objectstore") for r in raw.object_stores]
    return kv, obj


# --- the semantic pass ------------------------------------------------------------------------


def effective_subjects(draft: StreamDraft) -> list[tuple[str, Location]]:
    """The stream's subjects with their places; the server uses the name when none are given."""
    cfg = draft.config
    subjects = cfg.get("subjects") or []
    if subjects:
        return [
            (s, draft.locations.get(f"subjects.{i}", draft.location))
            for i, s in enumerate(subjects)
        ]
    if "mirror" in cfg or cfg.get("sources"):
        return []
    if name_problem(draft.name) is not None:
        return []
    return [(draft.name, draft.location)]


class _Semantics(_Checker):
    def __init__(self, diags: Diags, streams: list[StreamDraft], groups: list[GroupDraft]):
        super().__init__(diags)
        self.streams = streams
        self.groups = groups
        self.by_name = {s.name: s for s in streams}
        self.own_counts: dict[int, list[int]] = {}

    @staticmethod
    def at(draft: StreamDraft | GroupDraft, path: str) -> Location:
        return draft.locations.get(path, draft.location)

    def run(self) -> None:
        for s in self.streams:
            self.stream(s)
        self.stream_overlaps()
        for g in self.groups:
            self.group(g)
        self.workqueues()

    # streams

    def stream(self, s: StreamDraft) -> None:
        cfg = s.config
        at = self.at
        subjects = effective_subjects(s)
        self.own_overlaps(s, subjects)
        for subj, loc in subjects:
            if subj == ">":
                if not cfg.get("no_ack"):
                    self.error("capturing all subjects ('>') requires no_ack: true", loc)
                if cfg.get("num_replicas", 1) > 1:
                    self.error(
                        "capturing all subjects ('>') requires num_replicas: 1",
                        at(s, "num_replicas"),
                        (loc,),
                    )
                continue
            reserved = reserved_space(subj)
            if reserved is not None and not cfg.get("no_ack"):
                space, what = reserved
                self.error(
                    f"subject '{subj}' overlaps '{space}', the subjects of {what}: the server "
                    "refuses it unless the stream has no_ack: true",
                    loc,
                )
            # Named subjects only: a capture starting with a wildcard ('*.>') overlaps every
            # subject space of the tool (the lock's too); its rule is the reserved spaces' above.
            wide = subj.split(".", 1)[0] in ("*", ">")
            if not wide and subjects_overlap(subj, model.AUDIT_SUBJECTS):
                self.error(
                    f"subject '{printable(subj)}' overlaps '{model.AUDIT_SUBJECTS}', the subjects "
                    "of jelmore-infra's audit trail: the server refuses streams with overlapping "
                    "subjects",
                    loc,
                )
        replicas = cfg.get("num_replicas")
        if replicas is not None and not 1 <= replicas <= MAX_REPLICAS:
            self.error(
                f"num_replicas must be from 1 to {MAX_REPLICAS} for a stream, not {replicas}",
                at(s, "num_replicas"),
            )
        if cfg.get("discard_new_per_subject"):
            if cfg.get("discard") != "new" and "discard" not in s.written - set(cfg):
                self.error(
                    "discard_new_per_subject needs discard: new", at(s, "discard_new_per_subject")
                )
            if not cfg.get("max_msgs_per_subject", 0) > 0 and "max_msgs_per_subject" not in (
                s.written - set(cfg)
            ):
                self.error(
                    "discard_new_per_subject needs max_msgs_per_subject greater than 0",
                    at(s, "discard_new_per_subject"),
                )
        max_age = cfg.get("max_age", 0)
        window = cfg.get("duplicate_window")
        if window is not None and max_age > 0 and window > max_age:
            self.error(
                f"duplicate_window ({format_duration(window)}) cannot be longer than max_age "
                f"({format_duration(max_age)}, at {at(s, 'max_age')})",
                at(s, "duplicate_window"),
                (at(s, "max_age"),),
            )
        if cfg.get("sealed"):
            self.error(
                "sealed cannot be true in a topology: a stream cannot be created sealed",
                at(s, "sealed"),
            )
        if cfg.get("deny_purge") and cfg.get("allow_rollup_hdrs"):
            self.error(
                "allow_rollup_hdrs cannot be combined with deny_purge: true "
                "(roll-ups require the purge permission)",
                at(s, "allow_rollup_hdrs"),
            )
        self.stream_features(s)
        self.stream_sources(s)
        placement = cfg.get("placement") or {}
        if placement.get("preferred"):
            self.error(
                "placement.preferred is not permitted in a stream's config (the server refuses it)",
                at(s, "placement.preferred"),
            )
        republish = cfg.get("republish") or {}
        dest = republish.get("dest")
        if isinstance(dest, str) and is_valid_subject(dest):
            for subj, loc in subjects:
                if subjects_overlap(dest, subj):
                    self.error(
                        f"republish.dest '{dest}' overlaps the stream's subject '{subj}' "
                        f"(at {loc}): republished messages would be stored again (a cycle)",
                        at(s, "republish.dest"),
                        (loc,),
                    )
                    break

    def stream_features(self, s: StreamDraft) -> None:
        cfg = s.config
        at = self.at
        discard_new = cfg.get("discard") == "new"
        sdm = cfg.get("subject_delete_marker_ttl", 0) > 0
        schedules = bool(cfg.get("allow_msg_schedules"))
        if cfg.get("allow_msg_counter"):
            loc = at(s, "allow_msg_counter")
            if cfg.get("retention", "limits") != "limits":
                self.error("a counter stream (allow_msg_counter) needs retention: limits", loc)
            if discard_new:
                self.error("a counter stream (allow_msg_counter) cannot use discard: new", loc)
            if cfg.get("allow_msg_ttl") or sdm:
                self.error("a counter stream (allow_msg_counter) cannot use message TTLs", loc)
            if schedules:
                self.error(
                    "a counter stream (allow_msg_counter) cannot use allow_msg_schedules", loc
                )
        if schedules:
            loc = at(s, "allow_msg_schedules")
            if discard_new:
                self.error("allow_msg_schedules cannot be used with discard: new", loc)
            if cfg.get("sources"):
                self.error("allow_msg_schedules cannot be used on a stream with sources", loc)
        for cause, on in (("subject_delete_marker_ttl", sdm), ("allow_msg_schedules", schedules)):
            if not on:
                continue
            if cfg.get("allow_rollup_hdrs") is False:
                self.error(
                    f"allow_rollup_hdrs: false conflicts with {cause}: the server turns "
                    "roll-ups on for it (remove allow_rollup_hdrs)",
                    at(s, "allow_rollup_hdrs"),
                )
            if cfg.get("deny_purge"):
                self.error(
                    f"deny_purge: true conflicts with {cause}: the server turns deny_purge off "
                    "for it",
                    at(s, "deny_purge"),
                )
        if sdm and cfg.get("allow_msg_ttl") is False:
            self.error(
                "allow_msg_ttl: false conflicts with subject_delete_marker_ttl: the server "
                "turns message TTLs on for it",
                at(s, "allow_msg_ttl"),
            )
        if cfg.get("persist_mode") == "async":
            loc = at(s, "persist_mode")
            if cfg.get("storage") == "memory":
                self.error("persist_mode: async needs file storage", loc)
            if cfg.get("num_replicas", 1) > 1:
                self.error("persist_mode: async is not supported on replicated streams", loc)
            if cfg.get("allow_atomic"):
                self.error("persist_mode: async cannot be used with allow_atomic", loc)

    def stream_sources(self, s: StreamDraft) -> None:
        cfg = s.config
        at = self.at
        mirror = cfg.get("mirror")
        if mirror is not None:
            for forbidden in MIRROR_FORBIDDEN:
                if cfg.get(forbidden):
                    self.error(
                        f"a mirror stream cannot have {forbidden} (the mirror defines its content)",
                        at(s, forbidden),
                    )
            self.source(s, mirror, "mirror")
        elif cfg.get("mirror_direct"):
            self.error("mirror_direct needs a mirror", at(s, "mirror_direct"))
        seen: dict[tuple[str, str, str], Location] = {}
        for i, src in enumerate(cfg.get("sources") or []):
            path = f"sources.{i}"
            self.source(s, src, path)
            key = (
                str(src.get("name")),
                str(src.get("filter_subject", "")),
                str((src.get("external") or {}).get("api", "")),
            )
            loc = at(s, path)
            if key in seen:
                self.error(
                    f"source '{key[0]}' is listed twice (first at {seen[key]})", loc, (seen[key],)
                )
            else:
                seen[key] = loc

    def source(self, s: StreamDraft, src: dict[str, Any], path: str) -> None:
        loc = self.at(s, path)
        name = src.get("name")
        if not name:
            self.error(f"{path} needs 'name:' (the stream to copy from)", loc)
        elif name == s.name and "external" not in src:
            self.error(f"stream '{s.name}' cannot copy from itself ({path})", loc)
        if src.get("filter_subject") and src.get("subject_transforms"):
            self.error(
                f"{path} cannot have both filter_subject and subject_transforms",
                self.at(s, f"{path}.filter_subject"),
            )
        if src.get("consumer"):
            for key in ("opt_start_seq", "opt_start_time", "filter_subject"):
                if key in src:
                    self.error(
                        f"{path}.{key} cannot be used with {path}.consumer",
                        self.at(s, f"{path}.{key}"),
                    )

    def own_overlaps(self, s: StreamDraft, subjects: list[tuple[str, Location]]) -> None:
        """Subjects of one stream that repeat or overlap an earlier one, once per subject.

        Remembers, for a stream with several subjects, how many of its own subjects each one
        overlaps (itself included): :meth:`stream_overlaps` subtracts them.
        """
        if len(subjects) < 2:
            return
        index = SubjectIndex()
        first: dict[str, Location] = {}
        for subj, loc in subjects:
            if subj in first:
                self.error(
                    f"subject '{subj}' is listed twice in stream '{s.name}' "
                    f"(first at {first[subj]})",
                    loc,
                    (first[subj],),
                )
            else:
                first[subj] = loc
                count = index.count_overlapping(subj)
                if count:
                    found = _places(index.overlapping(subj, OVERLAPS_SHOWN))
                    if count == 1:
                        ((prev, prev_loc),) = found
                        message = (
                            f"subject '{subj}' overlaps subject '{prev}' of the same stream "
                            f"'{s.name}' (at {prev_loc})"
                        )
                    else:
                        listed = _listing([f"'{p}' (at {at})" for p, at in found], count)
                        message = (
                            f"subject '{subj}' overlaps {count:,} earlier subjects of the same "
                            f"stream '{s.name}': {listed}"
                        )
                    self.error(message, loc, (at for _, at in found), "subject-overlap-in-stream")
            index.add(subj, loc)
        self.own_counts[id(s)] = [index.count_overlapping(subj) for subj, _ in subjects]

    def stream_overlaps(self) -> None:
        """Subjects stored by more than one stream: one error per such subject of each stream.

        Every stream's subjects go into one trie first. Each subject then counts what it overlaps
        (minus its own stream's subjects) from the trie's counts and lists only the first few, so
        n streams sharing one subject space give n errors, not n² lines.
        """
        index = SubjectIndex()
        per_stream = [effective_subjects(s) for s in self.streams]
        for s, subjects in zip(self.streams, per_stream, strict=True):
            for subj, loc in subjects:
                index.add(subj, (s, loc))
        for s, subjects in zip(self.streams, per_stream, strict=True):
            own = self.own_counts.get(id(s)) or [1] * len(subjects)
            for (subj, loc), mine in zip(subjects, own, strict=True):
                count = index.count_overlapping(subj) - mine
                if count <= 0:
                    continue
                found: list[tuple[str, StreamDraft, Location]] = []
                for other_subj, owner in index.overlapping(subj, OVERLAPS_SHOWN + mine):
                    other, other_loc = cast("tuple[StreamDraft, Location]", owner)
                    if other is not s and len(found) < OVERLAPS_SHOWN:
                        found.append((other_subj, other, other_loc))
                if count == 1:
                    ((other_subj, other, other_loc),) = found
                    message = (
                        f"subject '{subj}' of stream '{s.name}' overlaps subject "
                        f"'{other_subj}' of stream '{other.name}' (at {other_loc})"
                    )
                else:
                    listed = _listing(
                        [f"'{o}' of stream '{a.name}' (at {at})" for o, a, at in found], count
                    )
                    message = (
                        f"subject '{subj}' of stream '{s.name}' overlaps {count:,} subjects of "
                        f"other streams: {listed}"
                    )
                self.error(
                    f"{message}; a subject can be stored by only one stream",
                    loc,
                    (at for _, _, at in found),
                    "subject-overlap",
                )

    # consumer groups

    def group(self, g: GroupDraft) -> None:
        cfg = g.config
        at = self.at
        stream = self.by_name.get(g.stream) if g.stream is not None else None
        if g.stream is not None and stream is None:
            self.error(
                f"consumer group '{g.name}' reads stream '{g.stream}', which is not defined "
                f"in the topology{did_you_mean(g.stream, self.by_name)}",
                at(g, "stream"),
            )
        filters = self.filters(g, stream)
        self.delivery(g, filters)
        max_deliver = cfg.get("max_deliver")
        backoff = cfg.get("backoff")
        if backoff and max_deliver not in (None, 0, -1) and len(backoff) > max_deliver:
            self.error(
                f"backoff has {len(backoff)} delays but max_deliver is {max_deliver}: "
                "there can be at most as many delays as deliveries",
                at(g, "backoff"),
                (at(g, "max_deliver"),),
            )
        if backoff and "ack_wait" in cfg and cfg["ack_wait"] != backoff[0]:
            self.error(
                f"ack_wait ({format_duration(cfg['ack_wait'])}) differs from the first backoff "
                f"delay ({format_duration(backoff[0])}); the server replaces ack_wait with it "
                "(remove ack_wait or make them equal)",
                at(g, "ack_wait"),
            )
        if backoff and g.retry_delays is not None:
            self.error(
                "backoff cannot be combined with jelmore.retry_delays: the runtime retries with "
                "delayed naks, which the server's backoff would lengthen (use one of them)",
                at(g, "backoff"),
            )
        self.replicas(g, stream)
        if cfg.get("ack_policy") == "flow_control":
            self.error(
                "ack_policy: flow_control needs a push consumer: consumer groups are pull "
                "consumers",
                at(g, "ack_policy"),
            )
        self.priority(g)
        expires = cfg.get("max_expires", 0)
        if 0 < expires < 1_000_000:
            self.error("max_expires must be at least 1ms (or 0)", at(g, "max_expires"))
        if stream is not None:
            limits = stream.config.get("consumer_limits") or {}
            cap = limits.get("max_ack_pending", 0)
            if cap > 0 and cfg.get("max_ack_pending", 0) > cap:
                self.error(
                    f"max_ack_pending ({cfg['max_ack_pending']}) is above the limit of stream "
                    f"'{stream.name}' (consumer_limits.max_ack_pending: {cap})",
                    at(g, "max_ack_pending"),
                )
            cap = limits.get("inactive_threshold", 0)
            if cap > 0 and cfg.get("inactive_threshold", 0) > cap:
                self.error(
                    f"inactive_threshold is above the limit of stream '{stream.name}' "
                    f"(consumer_limits.inactive_threshold: {format_duration(cap)})",
                    at(g, "inactive_threshold"),
                )
        self.runtime(g)
        self.dead_letter(g)

    def runtime(self, g: GroupDraft) -> None:
        """The runtime retries with delayed naks and dead-letters after the last attempt."""
        if g.retry_delays is None and g.dead_letter_stream is None:
            return
        cfg = g.config
        if "ack_policy" in g.written and "ack_policy" not in cfg:
            return  # reported already: an invalid value
        ack = cfg.get("ack_policy", "none")
        if ack != "explicit":
            self.error(
                f"the jelmore retry and dead-letter settings need ack_policy: explicit (it is "
                f"{ack}{' by default' if 'ack_policy' not in cfg else ''}): the runtime retries "
                "by nak and dead-letters by ack",
                self.at(g, "ack_policy" if "ack_policy" in cfg else "jelmore"),
            )
        if (
            g.dead_letter_stream is not None
            and cfg.get("max_deliver", -1) in (-1, 0)
            and not ("max_deliver" in g.written and "max_deliver" not in cfg)
        ):
            self.warning(
                "jelmore.dead_letter is set but max_deliver is unlimited: failing events are "
                "retried forever and never dead-lettered (set max_deliver)",
                self.at(g, "jelmore.dead_letter"),
            )

    def filters(self, g: GroupDraft, stream: StreamDraft | None) -> list[tuple[str, Location]]:
        cfg = g.config
        at = self.at
        if "filter_subject" in cfg and "filter_subjects" in cfg:
            self.error(
                "filter_subject cannot be combined with filter_subjects (use filter_subjects)",
                at(g, "filter_subject"),
            )
        if "filter_subjects" in cfg and not cfg["filter_subjects"]:
            self.error(
                "filter_subjects is empty; leave it out to read every subject of the stream",
                at(g, "filter_subjects"),
            )
        filters: list[tuple[str, Location]] = []
        if "filter_subject" in cfg:
            filters.append((cfg["filter_subject"], at(g, "filter_subject")))
        for i, f in enumerate(cfg.get("filter_subjects") or []):
            filters.append((f, at(g, f"filter_subjects.{i}")))
        for i, (f, loc) in enumerate(filters):
            for prev, prev_loc in filters[:i]:
                if f == prev:
                    self.error(
                        f"filter '{f}' is listed twice (first at {prev_loc})", loc, (prev_loc,)
                    )
                elif subjects_overlap(f, prev):
                    self.error(
                        f"filter '{f}' overlaps filter '{prev}' (at {prev_loc}); the filters of "
                        "one consumer must not overlap",
                        loc,
                        (prev_loc,),
                    )
        if (
            stream is not None
            and "mirror" not in stream.config
            and not stream.config.get("sources")
            # A subject_transform stores messages under other subjects, which filters name.
            and not stream.config.get("subject_transform")
        ):
            subjects = [s for s, _ in effective_subjects(stream)]
            if subjects:
                for f, loc in filters:
                    if not is_subset_of_any(f, subjects):
                        self.error(
                            f"filter '{f}' is not within the subjects of stream "
                            f"'{stream.name}' ({', '.join(subjects)})",
                            loc,
                        )
        return filters

    def delivery(self, g: GroupDraft, filters: list[tuple[str, Location]]) -> None:
        cfg = g.config
        at = self.at
        policy = cfg.get("deliver_policy", "all")
        loc = at(g, "deliver_policy")
        if "deliver_policy" in g.written and "deliver_policy" not in cfg:
            return  # reported already: an invalid value
        if policy == "by_start_sequence" and "opt_start_seq" not in g.written:
            self.error("deliver_policy: by_start_sequence needs opt_start_seq", loc)
        if policy == "by_start_time" and "opt_start_time" not in g.written:
            self.error("deliver_policy: by_start_time needs opt_start_time", loc)
        if "opt_start_seq" in cfg and policy != "by_start_sequence":
            self.error(
                f"opt_start_seq is used only with deliver_policy: by_start_sequence "
                f"(deliver_policy is {policy})",
                at(g, "opt_start_seq"),
            )
        if "opt_start_time" in cfg and policy != "by_start_time":
            self.error(
                f"opt_start_time is used only with deliver_policy: by_start_time "
                f"(deliver_policy is {policy})",
                at(g, "opt_start_time"),
            )
        if (
            policy == "last_per_subject"
            and not filters
            and not ({"filter_subject", "filter_subjects"} & g.written)
        ):
            self.error(
                "deliver_policy: last_per_subject needs filter_subject or filter_subjects", loc
            )

    def replicas(self, g: GroupDraft, stream: StreamDraft | None) -> None:
        replicas = g.config.get("num_replicas")
        if replicas is None:
            return
        loc = self.at(g, "num_replicas")
        if not 0 <= replicas <= MAX_REPLICAS:
            self.error(
                f"num_replicas must be from 0 (the stream's) to {MAX_REPLICAS} for a consumer "
                f"group, not {replicas}",
                loc,
            )
            return
        if stream is None:
            return
        stream_replicas = stream.config.get("num_replicas", 1)
        if replicas > stream_replicas:
            self.error(
                f"num_replicas ({replicas}) cannot be more than its stream's "
                f"({stream_replicas}, stream '{stream.name}')",
                loc,
            )
        elif replicas not in (0, stream_replicas) and stream.config.get("retention") in (
            "interest",
            "workqueue",
        ):
            self.error(
                f"on a {stream.config['retention']} stream, num_replicas must be 0 or the "
                f"stream's ({stream_replicas})",
                loc,
            )

    def priority(self, g: GroupDraft) -> None:
        cfg = g.config
        at = self.at
        policy = cfg.get("priority_policy", "none")
        groups = cfg.get("priority_groups") or []
        if policy != "none" and not groups:
            self.error(
                f"priority_policy: {policy} needs at least one priority group (priority_groups)",
                at(g, "priority_policy"),
            )
        if policy == "none":
            if groups:
                self.error(
                    "priority_groups need a priority_policy other than none",
                    at(g, "priority_groups"),
                )
            if "priority_timeout" in cfg:
                self.error(
                    "priority_timeout needs a priority_policy other than none",
                    at(g, "priority_timeout"),
                )
        for i, name in enumerate(groups):
            if not _PRIORITY_GROUP.match(name):
                self.error(
                    f"invalid priority group name '{name}': use 1 to 16 letters, digits or / _ = -",
                    at(g, f"priority_groups.{i}"),
                )

    def dead_letter(self, g: GroupDraft) -> None:
        at = self.at
        name = g.dead_letter_stream
        if name is None:
            return
        loc = at(g, "jelmore.dead_letter.stream")
        dlq = self.by_name.get(name)
        if dlq is None:
            self.error(
                f"dead-letter stream '{name}' is not defined in the topology"
                f"{did_you_mean(name, self.by_name)}",
                loc,
            )
            return
        if name == g.stream:
            self.error(
                f"the dead-letter stream cannot be the group's own stream '{name}' "
                "(failed events would be delivered again)",
                loc,
            )
            return
        subject = g.dead_letter_subject
        if subject is None:
            return
        covered = f"{subject}.>"
        subjects = [s for s, _ in effective_subjects(dlq)]
        if not any(subject_is_subset(covered, s) for s in subjects):
            self.error(
                f"dead-letter subject '{covered}' is not within the subjects of stream "
                f"'{name}' ({', '.join(subjects) or 'none'})",
                at(g, "jelmore.dead_letter.subject"),
            )

    def workqueues(self) -> None:
        by_stream: dict[str, list[GroupDraft]] = {}
        for g in self.groups:
            if g.stream is not None:
                by_stream.setdefault(g.stream, []).append(g)
        for stream in self.streams:
            if stream.config.get("retention") != "workqueue":
                continue
            groups = by_stream.get(stream.name, [])
            unfiltered: GroupDraft | None = None
            seen: list[tuple[str, Location, GroupDraft]] = []
            for g in groups:
                cfg = g.config
                ack = cfg.get("ack_policy", "none")
                if ack != "explicit":
                    self.error(
                        f"consumer groups of work-queue stream '{stream.name}' need "
                        f"ack_policy: explicit (here it is {ack})",
                        self.at(g, "ack_policy"),
                    )
                policy = cfg.get("deliver_policy", "all")
                if policy != "all":
                    self.error(
                        f"consumer groups of work-queue stream '{stream.name}' need "
                        f"deliver_policy: all (here it is {policy})",
                        self.at(g, "deliver_policy"),
                    )
                filters: list[tuple[str, Location]] = []
                if "filter_subject" in cfg:
                    filters.append((cfg["filter_subject"], self.at(g, "filter_subject")))
                for i, f in enumerate(cfg.get("filter_subjects") or []):
                    filters.append((f, self.at(g, f"filter_subjects.{i}")))
                if unfiltered is not None and not filters:
                    self.error(
                        f"work-queue stream '{stream.name}' can have only one consumer group "
                        f"without filters: '{unfiltered.name}' (at {unfiltered.location}) "
                        "already reads every subject",
                        g.location,
                        (unfiltered.location,),
                    )
                    continue
                if unfiltered is not None:
                    self.error(
                        f"consumer group '{unfiltered.name}' (at {unfiltered.location}) reads "
                        f"every subject of work-queue stream '{stream.name}', so it must be the "
                        "stream's only consumer group",
                        g.location,
                        (unfiltered.location,),
                    )
                    continue
                if not filters:
                    if seen:
                        first = seen[0][2]
                        self.error(
                            f"consumer group '{g.name}' has no filter, but work-queue stream "
                            f"'{stream.name}' is also read by '{first.name}' (at "
                            f"{first.location}); a group without filters must be the stream's "
                            "only consumer group",
                            g.location,
                            (first.location,),
                        )
                    unfiltered = g
                    continue
                for f, loc in filters:
                    for prev, prev_loc, other in seen:
                        if other is not g and subjects_overlap(f, prev):
                            self.error(
                                f"filter '{f}' overlaps filter '{prev}' of consumer group "
                                f"'{other.name}' (at {prev_loc}); on work-queue stream "
                                f"'{stream.name}' each message goes to one group only",
                                loc,
                                (prev_loc,),
                            )
                            break
                seen.extend((f, loc, g) for f, loc in filters)


def _places(found: list[tuple[str, object]]) -> list[tuple[str, Location]]:
    return [(p, cast("Location", loc)) for p, loc in found]


def _listing(items: list[str], total: int) -> str:
    """``a, b and c`` when that is all of them, ``a, b, ... and 95 more`` when it is not."""
    if len(items) >= total:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return ", ".join(items) + f", ... and {total - len(items):,} more"


def check_semantics(streams: list[StreamDraft], groups: list[GroupDraft]) -> Diags:
    """Every cross-field and cross-resource problem of the drafts."""
    diags: Diags = []
    _Semantics(diags, streams, groups).run()
    return diags


__all__ = [
    "check_semantics",
    "convert_topology",
    "effective_subjects",
    "name_problem",
]
