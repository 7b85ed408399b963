"""The shared data model: desired topology, live server state, and resource addresses.

Desired and live resources carry JetStream configs as plain JSON dicts in the server's wire form
(the API's own field names, durations as integer nanoseconds, sizes as integer bytes), so no field
is ever lost in translation and the same normalisation applies to both sides.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jelmore_infra.diagnostics import Location

JSONDict = dict[str, Any]

#: Metadata key marking a resource as created (owned) by jelmore-infra.
MANAGED_BY_KEY = "jelmore.managed-by"
MANAGED_BY_VALUE = "jelmore-infra"
#: Prefix of every metadata key jelmore-infra writes; users may not set such keys themselves.
JELMORE_META_PREFIX = "jelmore."
#: Metadata keys carrying a consumer group's runtime settings (read back by the runtime shim).
META_RETRY_DELAYS = "jelmore.retry-delays"
META_DEAD_LETTER_STREAM = "jelmore.dead-letter-stream"
META_DEAD_LETTER_SUBJECT = "jelmore.dead-letter-subject"
#: A stream's or bucket's ``jelmore.replace_strategy``: what apply does when a change forces a
#: replace (``recreate``: delete and create, losing the messages; ``migrate``: copy them across,
#: docs/migration.md). A topology setting only, never sent to the server.
REPLACE_RECREATE = "recreate"
REPLACE_MIGRATE = "migrate"
REPLACE_STRATEGIES = (REPLACE_RECREATE, REPLACE_MIGRATE)
#: A stream's ``jelmore.durability``: ``strict`` marks a stream whose acknowledged writes must
#: survive a crash; ``doctor`` and ``plan`` then warn about servers that do not sync every write
#: (:mod:`jelmore_infra.preflight`). A topology setting only, never sent to the server.
DURABILITY_STRICT = "strict"
DURABILITY_DEFAULT = "default"
DURABILITIES = (DURABILITY_DEFAULT, DURABILITY_STRICT)
#: Metadata keys the server adds by itself (2.11+); never diffed, never sent.
SERVER_META_PREFIX = "_nats."


def stream_address(name: str) -> str:
    return f"stream.{name}"


def consumer_address(stream: str, name: str) -> str:
    return f"consumer.{stream}.{name}"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream as the topology wants it.

    ``config`` is the JetStream ``StreamConfig`` in wire form, with only the fields the user set
    (plus ``name`` and the jelmore metadata). ``locations`` maps a field name (or dotted path) to
    where it was written, for messages that point at the YAML. ``replace_strategy``
    (``jelmore.replace_strategy``) says what apply does when a change forces a replace; it is
    not part of the config and never reaches the server.
    """

    name: str
    config: JSONDict
    location: Location | None = None
    locations: Mapping[str, Location] = field(default_factory=dict)
    replace_strategy: str = REPLACE_RECREATE
    #: ``jelmore.durability`` (``default`` or ``strict``); never sent.
    durability: str = DURABILITY_DEFAULT

    @property
    def address(self) -> str:
        return stream_address(self.name)


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """A consumer group (a durable pull consumer) as the topology wants it.

    ``config`` is the JetStream ``ConsumerConfig`` in wire form with ``durable_name`` set and the
    group's jelmore settings (retry delays, dead-letter target) in ``metadata``.
    """

    stream: str
    name: str
    config: JSONDict
    location: Location | None = None
    locations: Mapping[str, Location] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return consumer_address(self.stream, self.name)


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """A KV bucket or an object store as the topology wants it.

    ``config`` holds the bucket settings as written (the clients' names: ``history``, ``ttl``,
    …) in wire form (durations in nanoseconds, sizes in bytes), plus the jelmore metadata; the
    bucket's stream is derived from it (:mod:`jelmore_infra.kinds.bucket`).
    """

    name: str
    config: JSONDict
    location: Location | None = None
    locations: Mapping[str, Location] = field(default_factory=dict)
    #: ``jelmore.replace_strategy``, as for a stream (:class:`StreamSpec`); never sent.
    replace_strategy: str = REPLACE_RECREATE


#: An event type's ``compatibility``: which payload schema changes a plan accepts
#: (:mod:`jelmore_infra.catalogue.compat`). ``backward`` is the default.
COMPATIBILITY_MODES = ("none", "backward", "forward", "full")
DEFAULT_COMPATIBILITY = "backward"


def event_address(event_type: str) -> str:
    return f"event.{event_type}"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event type as the topology declares it (``events:``).

    ``config`` holds ``subject`` (defaulted to ``<prefix>.<event type>``), ``description``,
    ``compatibility`` (one of :data:`COMPATIBILITY_MODES`), ``sensitive`` (bool) and ``payload``
    (the JSON Schema, draft 2020-12, of the envelope's ``payload``). ``stream`` is the stream
    whose subjects capture ``subject`` (set by validation; ``None`` when none does).
    """

    type: str
    config: JSONDict
    location: Location | None = None
    locations: Mapping[str, Location] = field(default_factory=dict)
    stream: str | None = None

    @property
    def address(self) -> str:
        return event_address(self.type)

    @property
    def subject(self) -> str:
        return str(self.config["subject"])

    @property
    def payload(self) -> JSONDict:
        return dict(self.config.get("payload") or {})

    @property
    def compatibility(self) -> str:
        return str(self.config.get("compatibility") or DEFAULT_COMPATIBILITY)

    @property
    def sensitive(self) -> bool:
        return bool(self.config.get("sensitive"))


@dataclass(frozen=True, slots=True)
class Policy:
    """An environment's plan policy (``policy:`` in its file), each rule with where it is written
    so a violation can name the line: addresses whose delete or replace is refused, whether
    data-losing changes are refused, and the fewest replicas any resource may have."""

    prevent_destroy: Mapping[str, Location] = field(default_factory=dict)
    forbid_data_loss: Location | None = None
    min_replicas: tuple[int, Location] | None = None

    @property
    def empty(self) -> bool:
        return not (self.prevent_destroy or self.forbid_data_loss or self.min_replicas)


@dataclass(frozen=True, slots=True)
class Topology:
    """Everything the topology files declare (with an environment's overlay merged in, when one
    was selected: ``environment`` names it and ``policy`` is its policy)."""

    streams: Mapping[str, StreamSpec] = field(default_factory=dict)
    consumers: Mapping[tuple[str, str], ConsumerSpec] = field(default_factory=dict)
    kv_buckets: Mapping[str, BucketSpec] = field(default_factory=dict)
    object_stores: Mapping[str, BucketSpec] = field(default_factory=dict)
    events: Mapping[str, EventSpec] = field(default_factory=dict)
    environment: str | None = None
    policy: Policy = field(default_factory=Policy)


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """Which server (and account and domain) a live read or a plan is about."""

    server_name: str
    server_id: str
    version: str
    api_level: int
    cluster: str | None = None
    domain: str | None = None
    account: str | None = None
    url: str | None = None  # without credentials

    def to_dict(self) -> JSONDict:
        return {
            "server_name": self.server_name,
            "server_id": self.server_id,
            "version": self.version,
            "api_level": self.api_level,
            "cluster": self.cluster,
            "domain": self.domain,
            "account": self.account,
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerIdentity:
        return cls(
            server_name=str(data["server_name"]),
            server_id=str(data["server_id"]),
            version=str(data["version"]),
            api_level=int(data["api_level"]),
            cluster=data.get("cluster"),
            domain=data.get("domain"),
            account=data.get("account"),
            url=data.get("url"),
        )


@dataclass(frozen=True, slots=True)
class LiveStream:
    """A stream as the server reports it: its config and its state (messages, bytes, times)."""

    name: str
    config: JSONDict
    state: JSONDict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return stream_address(self.name)


@dataclass(frozen=True, slots=True)
class LiveConsumer:
    """A consumer as the server reports it: its config and delivery state."""

    stream: str
    name: str
    config: JSONDict
    state: JSONDict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return consumer_address(self.stream, self.name)


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """An event type as the catalogue on the server holds it.

    ``config`` has the keys of :class:`EventSpec`'s config; ``version`` counts the payload
    schemas stored for the type (1 for the first); ``messages`` is how many messages the stream
    capturing its subject holds on that subject (``None`` when it was not read).
    """

    type: str
    config: JSONDict
    version: int = 1
    messages: int | None = None
    #: Removed from the catalogue (a delete marker holding its last version): not planned, but
    #: a type declared again continues from that version.
    deleted: bool = False

    @property
    def address(self) -> str:
        return event_address(self.type)


@dataclass(frozen=True, slots=True)
class LiveState:
    """Everything read from the server in one pass.

    ``unavailable`` holds addresses the server listed as missing or offline, with the reason: they
    are never planned for create or delete.
    """

    server: ServerIdentity
    streams: Mapping[str, LiveStream] = field(default_factory=dict)
    consumers: Mapping[tuple[str, str], LiveConsumer] = field(default_factory=dict)
    unavailable: Mapping[str, str] = field(default_factory=dict)
    events: Mapping[str, LiveEvent] = field(default_factory=dict)


def parse_version(version: str) -> tuple[int, int, int]:
    """``"2.12.5"`` (or ``"v2.12.5-beta"``) → ``(2, 12, 5)``."""
    core = version.lstrip("v").split("-", 1)[0].split("+", 1)[0]
    parts = [int(p) if p.isdigit() else 0 for p in core.split(".")[:3]]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def is_managed(config: Mapping[str, Any]) -> bool:
    meta = config.get("metadata") or {}
    return bool(meta.get(MANAGED_BY_KEY))


#: JetStream KV bucket holding the apply lock; its stream is never shown as drift or unmanaged.
#: A bucket name both clients accept (docs/buckets.md §1).
BUCKET_NAME = re.compile(r"^[a-zA-Z0-9_-]+\Z")
#: The largest KV ``history`` the clients accept.
MAX_HISTORY = 64

LOCK_BUCKET = "jelmore-infra-locks"
LOCK_STREAM = f"KV_{LOCK_BUCKET}"
#: JetStream KV bucket holding the event catalogue (one key per event type, its history the
#: earlier schema versions); like the lock bucket it is the tool's own, never drift or unmanaged.
CATALOGUE_BUCKET = "jelmore-catalogue"
CATALOGUE_STREAM = f"KV_{CATALOGUE_BUCKET}"
#: The audit trail (docs/audit.md): one record per apply and force-unlock, on the subject
#: ``jelmore-infra.audit.<environment>``. The tool's own stream, created by the first apply and
#: never deleted; never drift or unmanaged, and no topology may declare it or its subjects.
AUDIT_STREAM = "JELMORE_INFRA_AUDIT"
AUDIT_SUBJECT_PREFIX = "jelmore-infra.audit"
AUDIT_SUBJECTS = f"{AUDIT_SUBJECT_PREFIX}.>"
#: Buckets and their streams that belong to jelmore-infra itself.
INTERNAL_BUCKETS = (LOCK_BUCKET, CATALOGUE_BUCKET)
INTERNAL_STREAMS = (LOCK_STREAM, CATALOGUE_STREAM, AUDIT_STREAM)
#: The tool's streams a live read skips entirely (the catalogue is read: it holds the events).
UNPLANNED_STREAMS = (LOCK_STREAM, AUDIT_STREAM)
