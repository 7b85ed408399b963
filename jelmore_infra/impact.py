"""Typed data-impact records: what a planned change does to stored messages and consumer state.

The diff (:mod:`jelmore_infra.diff.impact`) computes these records from the live state; the plan
carries each one on its :class:`~jelmore_infra.plan.PlanMessage` (``impact``), and the one
function that turns a record into prose is :func:`jelmore_infra.render.impact.impact_text`, used
by every view. A record knows its message kind (``data-loss`` or ``note``), the field it is about,
and the numbers JSON consumers read (``data``); a saved plan stores it as ``{"type": …, …}``.

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

ImpactKind = Literal["data-loss", "note"]


@dataclass(frozen=True, slots=True)
class Impact:
    """Base of every record: the address of the resource the change touches."""

    TYPE: ClassVar[str] = ""
    MESSAGE_KIND: ClassVar[ImpactKind] = "data-loss"

    address: str

    @property
    def field(self) -> str | None:
        """The field the impact comes from (``None``: the whole resource)."""
        return None

    def data(self) -> dict[str, Any]:
        """The numbers behind the record, as the plan's JSON ``data``."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True)
class StreamMessagesLost(Impact):
    """Deleting or replacing a stream loses every stored message."""

    TYPE: ClassVar[str] = "stream-messages-lost"

    stream: str
    cause: Literal["delete", "replace"]
    messages: int
    bytes: int

    def data(self) -> dict[str, Any]:
        return {"messages": self.messages, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class ConsumerStateLost(Impact):
    """Deleting (lost) or recreating (reset) a consumer drops its delivery state."""

    TYPE: ClassVar[str] = "consumer-state-lost"

    cause: Literal["delete", "recreate"]
    num_pending: int
    num_ack_pending: int
    num_redelivered: int

    def data(self) -> dict[str, Any]:
        return {
            "num_pending": self.num_pending,
            "num_ack_pending": self.num_ack_pending,
            "num_redelivered": self.num_redelivered,
        }


@dataclass(frozen=True, slots=True)
class UnmanagedConsumerLost(Impact):
    """A consumer jelmore-infra does not manage goes with its deleted or replaced stream."""

    TYPE: ClassVar[str] = "unmanaged-consumer-lost"

    stream: str
    cause: Literal["delete", "replace"]
    num_pending: int
    num_ack_pending: int
    num_redelivered: int

    def data(self) -> dict[str, Any]:
        return {
            "num_pending": self.num_pending,
            "num_ack_pending": self.num_ack_pending,
            "num_redelivered": self.num_redelivered,
        }


@dataclass(frozen=True, slots=True)
class LimitLowered(Impact):
    """A lower ``max_msgs``, ``max_bytes`` or ``max_msgs_per_subject`` removes stored messages.

    ``removed`` is the estimate (``None``: unknown, some); ``lazy``: the server trims each subject
    only when its next message arrives (``max_msgs_per_subject`` before 2.14).
    """

    TYPE: ClassVar[str] = "limit-lowered"

    limit_field: Literal["max_msgs", "max_bytes", "max_msgs_per_subject"]
    limit: int
    stored_messages: int
    removed: int | None = None
    stored_bytes: int = 0
    num_subjects: int = 0
    lazy: bool = False

    @property
    def field(self) -> str | None:
        return self.limit_field

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.removed is not None:
            out["messages"] = self.removed
        out["stored_messages"] = self.stored_messages
        if self.limit_field == "max_bytes":
            out["bytes"] = self.stored_bytes - self.limit
        if self.num_subjects and self.removed is not None:
            out["num_subjects"] = self.num_subjects
        return out


@dataclass(frozen=True, slots=True)
class AgeLowered(Impact):
    """A lower ``max_age`` removes the older messages.

    ``estimate``: ``about`` (``removed`` from the spread of stored timestamps), ``some`` (the
    oldest is too old, the spread is unknown) or ``unknown`` (no timestamps at all).
    """

    TYPE: ClassVar[str] = "age-lowered"

    max_age: int
    stored_messages: int
    estimate: Literal["about", "some", "unknown"]
    removed: int | None = None

    @property
    def field(self) -> str | None:
        return "max_age"

    def data(self) -> dict[str, Any]:
        if self.removed is not None:
            return {"messages": self.removed, "stored_messages": self.stored_messages}
        return {"stored_messages": self.stored_messages}


@dataclass(frozen=True, slots=True)
class RetentionNarrowed(Impact):
    """Limits → interest retention removes stored messages nobody is interested in."""

    TYPE: ClassVar[str] = "retention-narrowed"

    stored_messages: int

    @property
    def field(self) -> str | None:
        return "retention"

    def data(self) -> dict[str, Any]:
        return {"stored_messages": self.stored_messages}


@dataclass(frozen=True, slots=True)
class OverLimitKept(Impact):
    """With ``discard: new`` a lower limit keeps the stored messages and refuses new ones."""

    TYPE: ClassVar[str] = "over-limit-kept"
    MESSAGE_KIND: ClassVar[ImpactKind] = "note"

    stream: str
    limit_field: Literal["max_msgs", "max_bytes"]
    limit: int
    stored_messages: int

    @property
    def field(self) -> str | None:
        return self.limit_field

    def data(self) -> dict[str, Any]:
        return {"stored_messages": self.stored_messages}


@dataclass(frozen=True, slots=True)
class SubjectsRemoved(Impact):
    """Subjects leave a stream: new messages on them are no longer stored."""

    TYPE: ClassVar[str] = "subjects-removed"
    MESSAGE_KIND: ClassVar[ImpactKind] = "note"

    stream: str
    removed: tuple[str, ...]

    @property
    def field(self) -> str | None:
        return "subjects"

    def data(self) -> dict[str, Any]:
        return {"removed": list(self.removed)}


@dataclass(frozen=True, slots=True)
class MirrorPromoted(Impact):
    """A mirror becomes a normal stream (mirror promotion, one way)."""

    TYPE: ClassVar[str] = "mirror-promoted"
    MESSAGE_KIND: ClassVar[ImpactKind] = "note"

    stream: str
    origin: str | None

    @property
    def field(self) -> str | None:
        return "mirror"


@dataclass(frozen=True, slots=True)
class StreamMoved(Impact):
    """A new placement moves a stream (or a bucket's stream) to the servers it names: the server
    copies every stored message to them, then drops the old copies (docs/multi-region.md).

    ``label``: how the text names the resource (``stream JELMORE``, ``KV bucket config``);
    ``origin`` and ``destination``: the placements, worded (``cluster C1``, ``tags site:a``).
    """

    TYPE: ClassVar[str] = "stream-moved"
    MESSAGE_KIND: ClassVar[ImpactKind] = "note"

    label: str
    origin: str
    destination: str
    messages: int
    bytes: int

    @property
    def field(self) -> str | None:
        return "placement"

    def data(self) -> dict[str, Any]:
        return {"messages": self.messages, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class ReplicasAdded(Impact):
    """More replicas: the server copies every stored message to each new replica.

    ``setting``: ``num_replicas`` (streams) or ``replicas`` (buckets).
    """

    TYPE: ClassVar[str] = "replicas-added"
    MESSAGE_KIND: ClassVar[ImpactKind] = "note"

    label: str
    setting: str
    replicas_before: int
    replicas: int
    messages: int
    bytes: int

    @property
    def field(self) -> str | None:
        return self.setting

    def data(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "new_replicas": self.replicas - self.replicas_before,
        }


@dataclass(frozen=True, slots=True)
class PlacementDropped(Impact):
    """Removing a placement moves nothing: the stream stays on the servers it is on."""

    TYPE: ClassVar[str] = "placement-dropped"
    MESSAGE_KIND: ClassVar[ImpactKind] = "note"

    label: str
    origin: str

    @property
    def field(self) -> str | None:
        return "placement"


@dataclass(frozen=True, slots=True)
class BucketDataLost(Impact):
    """Deleting or replacing a KV bucket or an object store loses everything stored in it.

    ``bucket_kind``: ``kv`` or ``objectstore``; ``messages`` counts every stored message (KV:
    values, their older revisions and delete markers; object store: chunks and metadata).
    """

    TYPE: ClassVar[str] = "bucket-data-lost"

    bucket: str
    bucket_kind: Literal["kv", "objectstore"]
    cause: Literal["delete", "replace"]
    messages: int
    bytes: int

    def data(self) -> dict[str, Any]:
        return {"messages": self.messages, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class HistoryLowered(Impact):
    """A lower KV ``history`` removes each key's older revisions at once (docs/buckets.md §7).

    ``removed``: the fewest revisions removed (stored messages beyond ``history`` per key, from
    the stream's message and subject counts); ``None`` when none can be shown to go.
    """

    TYPE: ClassVar[str] = "history-lowered"

    history: int
    stored_messages: int
    num_keys: int
    removed: int | None = None

    @property
    def field(self) -> str | None:
        return "history"

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stored_messages": self.stored_messages, "num_keys": self.num_keys}
        if self.removed is not None:
            out["messages"] = self.removed
        return out


@dataclass(frozen=True, slots=True)
class CompressionDeferred(Impact):
    """Turning a bucket's compression on or off in place changes only what the server writes
    after its next restart; stored data stays as it is (docs/buckets.md §7)."""

    TYPE: ClassVar[str] = "compression-deferred"
    MESSAGE_KIND: ClassVar[ImpactKind] = "note"

    compression: bool

    @property
    def field(self) -> str | None:
        return "compression"


@dataclass(frozen=True, slots=True)
class EventMessagesRemain(Impact):
    """An event type leaves the catalogue while its stream still holds messages of that type:
    they stay stored and readable, but publishers can no longer send the type."""

    TYPE: ClassVar[str] = "event-messages-remain"
    MESSAGE_KIND: ClassVar[ImpactKind] = "note"

    event_type: str
    stream: str
    messages: int

    def data(self) -> dict[str, Any]:
        return {"messages": self.messages}


_TYPES: dict[str, type[Impact]] = {
    cls.TYPE: cls
    for cls in (
        StreamMessagesLost,
        ConsumerStateLost,
        UnmanagedConsumerLost,
        LimitLowered,
        AgeLowered,
        RetentionNarrowed,
        OverLimitKept,
        SubjectsRemoved,
        MirrorPromoted,
        StreamMoved,
        ReplicasAdded,
        PlacementDropped,
        BucketDataLost,
        HistoryLowered,
        CompressionDeferred,
        EventMessagesRemain,
    )
}


def impact_from_dict(data: Mapping[str, Any]) -> Impact:
    """The record a plan document stored (``ValueError`` for an unknown type or shape)."""
    cls = _TYPES.get(str(data.get("type")))
    if cls is None:
        raise ValueError(f"unknown impact type {data.get('type')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    try:
        return cls(**values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"malformed impact record: {exc}") from None
