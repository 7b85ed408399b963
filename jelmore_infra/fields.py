"""The field table: every JetStream stream and consumer config field the supported servers know.

For each field: how topology files spell its value (duration, size, count, …), the first server
version that knows it (and the last, for removed fields), and what the server does when it
changes on a live resource (update in place, replace, one-way, …). Schema generation, building the
desired model, normalisation, the diff rules, rendering with human units and ``import`` all read
this one table, so they cannot disagree.

The server behaviour behind each field's mode and versions, and how each was verified against real
servers, is listed in ``docs/server-semantics.md`` ("Server rules the plan encodes"). The rules
that depend on values (retention to workqueue, mirror removal, pull ↔ push) live in the kind
modules (:mod:`jelmore_infra.kinds`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ValueKind(StrEnum):
    DURATION = "duration"  # topology: "60s"; wire: int nanoseconds
    DURATION_LIST = "duration_list"  # backoff
    SIZE = "size"  # topology: 1024 / "10GB" / "512KiB" / -1; wire: int bytes
    COUNT = "count"  # int, -1/unlimited
    INT = "int"  # plain integer (num_replicas, first_seq, …)
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"
    SUBJECT = "subject"
    SUBJECT_LIST = "subject_list"
    STRING_LIST = "string_list"
    TIME = "time"  # RFC 3339 timestamp
    METADATA = "metadata"  # map[string]string
    OBJECT = "object"  # nested object, see ``sub_fields``
    OBJECT_LIST = "object_list"


class Update(StrEnum):
    """What the server does when the field changes on an existing resource."""

    IN_PLACE = "in_place"
    REPLACE = "replace"  # the server refuses: delete and recreate
    ONE_WAY = "one_way"  # false → true only; the other way is a plan error
    IDENTITY = "identity"  # the resource's name: never diffed
    IGNORED = "ignored"  # never diffed (server-managed or handled by another API)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: ValueKind
    update: Update = Update.IN_PLACE
    since: tuple[int, int, int] = (2, 10, 0)
    until: tuple[int, int, int] | None = None  # first version that no longer knows it
    choices: tuple[str, ...] = ()
    #: For ``update=REPLACE`` fields that became updatable in a later version.
    in_place_since: tuple[int, int, int] | None = None
    description: str = ""
    sub_fields: tuple[Field, ...] = ()
    #: Whether ``-1``/``unlimited`` is accepted (counts and sizes).
    unlimited: bool = False
    #: Durations: the smallest non-zero value the server accepts, in nanoseconds.
    minimum_ns: int | None = None

    def known_by(self, version: tuple[int, int, int]) -> bool:
        return version >= self.since and (self.until is None or version < self.until)


V2_11 = (2, 11, 0)
V2_12 = (2, 12, 0)
V2_14 = (2, 14, 0)
MS100 = 100_000_000

_SOURCE_FIELDS = (
    Field("name", ValueKind.STRING),
    Field("opt_start_seq", ValueKind.INT),
    Field("opt_start_time", ValueKind.TIME),
    Field("filter_subject", ValueKind.SUBJECT),
    Field(
        "subject_transforms",
        ValueKind.OBJECT_LIST,
        sub_fields=(Field("src", ValueKind.SUBJECT), Field("dest", ValueKind.STRING)),
    ),
    Field(
        "external",
        ValueKind.OBJECT,
        sub_fields=(Field("api", ValueKind.STRING), Field("deliver", ValueKind.STRING)),
    ),
    Field(
        "consumer",
        ValueKind.OBJECT,
        since=V2_14,
        sub_fields=(Field("name", ValueKind.STRING), Field("deliver_subject", ValueKind.SUBJECT)),
    ),
)

STREAM_FIELDS: tuple[Field, ...] = (
    Field("name", ValueKind.STRING, Update.IDENTITY),
    Field("description", ValueKind.STRING),
    Field("subjects", ValueKind.SUBJECT_LIST),
    Field("retention", ValueKind.ENUM, choices=("limits", "interest", "workqueue")),
    Field(
        "max_consumers",
        ValueKind.COUNT,
        Update.REPLACE,
        in_place_since=(2, 12, 5),
        unlimited=True,
    ),
    Field("max_msgs", ValueKind.COUNT, unlimited=True),
    Field("max_bytes", ValueKind.SIZE, unlimited=True),
    Field("max_age", ValueKind.DURATION, unlimited=True, minimum_ns=MS100),
    Field("max_msgs_per_subject", ValueKind.COUNT, unlimited=True),
    Field("max_msg_size", ValueKind.SIZE, unlimited=True),
    Field("discard", ValueKind.ENUM, choices=("old", "new")),
    Field("discard_new_per_subject", ValueKind.BOOL),
    Field("storage", ValueKind.ENUM, Update.REPLACE, choices=("file", "memory")),
    Field("num_replicas", ValueKind.INT),
    Field("no_ack", ValueKind.BOOL),
    Field("template_owner", ValueKind.STRING, Update.REPLACE, until=V2_14),
    Field("duplicate_window", ValueKind.DURATION, minimum_ns=MS100),
    Field(
        "placement",
        ValueKind.OBJECT,
        sub_fields=(
            Field("cluster", ValueKind.STRING),
            Field("tags", ValueKind.STRING_LIST),
            Field("preferred", ValueKind.STRING, since=V2_11),
        ),
    ),
    Field("mirror", ValueKind.OBJECT, Update.REPLACE, sub_fields=_SOURCE_FIELDS),
    Field("sources", ValueKind.OBJECT_LIST, sub_fields=_SOURCE_FIELDS),
    Field("compression", ValueKind.ENUM, choices=("none", "s2")),
    Field("first_seq", ValueKind.INT, Update.REPLACE),
    Field(
        "subject_transform",
        ValueKind.OBJECT,
        sub_fields=(Field("src", ValueKind.SUBJECT), Field("dest", ValueKind.STRING)),
    ),
    Field(
        "republish",
        ValueKind.OBJECT,
        sub_fields=(
            Field("src", ValueKind.SUBJECT),
            Field("dest", ValueKind.STRING),
            Field("headers_only", ValueKind.BOOL),
        ),
    ),
    Field("allow_direct", ValueKind.BOOL),
    Field("mirror_direct", ValueKind.BOOL),
    Field("sealed", ValueKind.BOOL, Update.ONE_WAY),
    Field("deny_delete", ValueKind.BOOL, Update.ONE_WAY),
    Field("deny_purge", ValueKind.BOOL, Update.ONE_WAY),
    Field("allow_rollup_hdrs", ValueKind.BOOL),
    Field(
        "consumer_limits",
        ValueKind.OBJECT,
        sub_fields=(
            Field("inactive_threshold", ValueKind.DURATION),
            Field("max_ack_pending", ValueKind.COUNT),
        ),
    ),
    Field("metadata", ValueKind.METADATA),
    Field("allow_msg_ttl", ValueKind.BOOL, Update.ONE_WAY, since=V2_11),
    Field("subject_delete_marker_ttl", ValueKind.DURATION, since=V2_11, minimum_ns=1_000_000_000),
    Field("allow_msg_counter", ValueKind.BOOL, Update.REPLACE, since=V2_12),
    Field("allow_atomic", ValueKind.BOOL, since=V2_12),
    Field("allow_msg_schedules", ValueKind.BOOL, Update.ONE_WAY, since=V2_12),
    Field(
        "persist_mode", ValueKind.ENUM, Update.REPLACE, since=V2_12, choices=("default", "async")
    ),
    Field("allow_batched", ValueKind.BOOL, since=V2_14),
)

CONSUMER_FIELDS: tuple[Field, ...] = (
    Field("durable_name", ValueKind.STRING, Update.IDENTITY),
    Field("name", ValueKind.STRING, Update.IDENTITY),
    Field("description", ValueKind.STRING),
    Field(
        "deliver_policy",
        ValueKind.ENUM,
        Update.REPLACE,
        choices=("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject"),
    ),
    Field("opt_start_seq", ValueKind.INT, Update.REPLACE),
    Field("opt_start_time", ValueKind.TIME, Update.REPLACE),
    Field(
        "ack_policy",
        ValueKind.ENUM,
        Update.REPLACE,
        choices=("none", "all", "explicit", "flow_control"),
    ),
    Field("ack_wait", ValueKind.DURATION),
    Field("max_deliver", ValueKind.COUNT, unlimited=True),
    Field("backoff", ValueKind.DURATION_LIST),
    Field("filter_subject", ValueKind.SUBJECT),
    Field("filter_subjects", ValueKind.SUBJECT_LIST),
    Field("replay_policy", ValueKind.ENUM, Update.REPLACE, choices=("instant", "original")),
    Field("rate_limit_bps", ValueKind.INT),
    Field("sample_freq", ValueKind.STRING),
    Field("max_waiting", ValueKind.INT, Update.REPLACE),
    Field("max_ack_pending", ValueKind.COUNT, unlimited=True),
    Field("flow_control", ValueKind.BOOL, Update.REPLACE),
    Field("headers_only", ValueKind.BOOL),
    Field("max_batch", ValueKind.INT),
    Field("max_expires", ValueKind.DURATION),
    Field("max_bytes", ValueKind.SIZE),
    Field("deliver_subject", ValueKind.SUBJECT, Update.REPLACE),
    Field("deliver_group", ValueKind.STRING),
    Field("idle_heartbeat", ValueKind.DURATION, Update.REPLACE),
    Field("inactive_threshold", ValueKind.DURATION),
    Field("num_replicas", ValueKind.INT),
    Field("mem_storage", ValueKind.BOOL, Update.REPLACE),
    Field("metadata", ValueKind.METADATA),
    Field("pause_until", ValueKind.TIME, Update.IGNORED, since=V2_11),
    Field("priority_groups", ValueKind.STRING_LIST, since=V2_11),
    Field(
        "priority_policy",
        ValueKind.ENUM,
        since=V2_11,
        choices=("none", "overflow", "pinned_client", "prioritized"),
    ),
    Field("priority_timeout", ValueKind.DURATION, since=V2_11),
)

#: Consumer settings that only make sense for push consumers (rejected on pull consumers).
PUSH_ONLY_FIELDS = (
    "deliver_subject",
    "deliver_group",
    "idle_heartbeat",
    "flow_control",
    "rate_limit_bps",
)
#: Consumer settings that only make sense for pull consumers.
PULL_ONLY_FIELDS = ("max_waiting", "max_batch", "max_expires", "max_bytes")
#: Enum values that need a newer server than their field.
ENUM_VALUE_SINCE: dict[tuple[str, str, str], tuple[int, int, int]] = {
    ("consumer", "priority_policy", "prioritized"): V2_12,
    ("consumer", "ack_policy", "flow_control"): V2_14,
}

STREAM_FIELD_MAP: dict[str, Field] = {f.name: f for f in STREAM_FIELDS}
CONSUMER_FIELD_MAP: dict[str, Field] = {f.name: f for f in CONSUMER_FIELDS}


def fields_for(kind: str) -> dict[str, Field]:
    """``"stream"`` or ``"consumer"`` → name → :class:`Field` (the kinds' ``fields``)."""
    return STREAM_FIELD_MAP if kind == "stream" else CONSUMER_FIELD_MAP


# --- KV buckets and object stores (docs/buckets.md) ---------------------------------------------
#
# Bucket settings carry the names of the NATS clients' bucket configs; each is a spelling of one
# stream field of the bucket's ``KV_<name>`` / ``OBJ_<name>`` stream (the mapping lives in
# :mod:`jelmore_infra.kinds.bucket`). ``allow_direct`` and ``allow_msg_ttl`` are the two settings
# in which the clients' buckets differ; a topology that leaves them out accepts the live value.

_BUCKET_PLACEMENT = Field(
    "placement",
    ValueKind.OBJECT,
    sub_fields=(
        Field("cluster", ValueKind.STRING),
        Field("tags", ValueKind.STRING_LIST),
        Field("preferred", ValueKind.STRING, since=V2_11),
    ),
)
_BUCKET_COMMON: tuple[Field, ...] = (
    Field("description", ValueKind.STRING),
    Field("ttl", ValueKind.DURATION, minimum_ns=MS100),
    Field("max_bytes", ValueKind.SIZE, unlimited=True),
    Field("storage", ValueKind.ENUM, Update.REPLACE, choices=("file", "memory")),
    Field("replicas", ValueKind.INT),
    Field("compression", ValueKind.BOOL),
    _BUCKET_PLACEMENT,
    Field("metadata", ValueKind.METADATA),
    Field("allow_direct", ValueKind.BOOL),
)

#: KV bucket settings (``kv_buckets:``).
KV_FIELDS: tuple[Field, ...] = (
    *_BUCKET_COMMON[:1],
    Field("history", ValueKind.INT),
    *_BUCKET_COMMON[1:],
    Field("max_value_size", ValueKind.SIZE, unlimited=True),
    Field(
        "republish",
        ValueKind.OBJECT,
        sub_fields=(
            Field("src", ValueKind.SUBJECT),
            Field("dest", ValueKind.STRING),
            Field("headers_only", ValueKind.BOOL),
        ),
    ),
    Field("limit_marker_ttl", ValueKind.DURATION, since=V2_11, minimum_ns=1_000_000_000),
    # nats.go only: ``name`` is the origin bucket (its stream is ``KV_<name>``).
    Field("mirror", ValueKind.OBJECT, Update.REPLACE, sub_fields=_SOURCE_FIELDS),
    Field("sources", ValueKind.OBJECT_LIST, sub_fields=_SOURCE_FIELDS),
    Field("allow_msg_ttl", ValueKind.BOOL, Update.ONE_WAY, since=V2_11),
    # A mirror's direct get follows its origin's ``allow_direct`` (the server sets it).
    Field("mirror_direct", ValueKind.BOOL),
)
#: Object store settings (``object_stores:``).
OBJECT_STORE_FIELDS: tuple[Field, ...] = _BUCKET_COMMON

#: An event type in the catalogue (:mod:`jelmore_infra.kinds.event`): its settings change in
#: place (a new schema is a new version of the type); ``type``, ``stream`` and ``version`` are
#: the entry's identity and bookkeeping, never diffed.
EVENT_FIELDS: tuple[Field, ...] = (
    Field("type", ValueKind.STRING, Update.IDENTITY),
    Field("subject", ValueKind.SUBJECT),
    Field("description", ValueKind.STRING),
    Field("compatibility", ValueKind.ENUM, choices=("none", "backward", "forward", "full")),
    Field("sensitive", ValueKind.BOOL),
    Field("payload", ValueKind.OBJECT),
    Field("metadata", ValueKind.METADATA),
    Field("stream", ValueKind.STRING, Update.IDENTITY),
    Field("version", ValueKind.INT, Update.IDENTITY),
)
EVENT_FIELD_MAP: dict[str, Field] = {f.name: f for f in EVENT_FIELDS}
KV_FIELD_MAP: dict[str, Field] = {f.name: f for f in KV_FIELDS}
OBJECT_STORE_FIELD_MAP: dict[str, Field] = {f.name: f for f in OBJECT_STORE_FIELDS}
#: Settings derived by jelmore-infra, never written in a topology (``import`` leaves them out).
BUCKET_DERIVED: tuple[str, ...] = ("allow_msg_ttl", "mirror_direct")
