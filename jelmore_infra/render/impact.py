"""The prose of data-impact records: one sentence per :class:`~jelmore_infra.impact.Impact`.

:func:`impact_text` is the only place that words a record; the diff stores its result as the
plan message's ``message`` (so saved plans and the apply gates read it), and the human, Markdown
and JSON views all show a message with an impact record through :func:`message_body`.

Pure: no I/O.
"""

from __future__ import annotations

from jelmore_infra.impact import (
    AgeLowered,
    BucketDataLost,
    CompressionDeferred,
    ConsumerStateLost,
    EventMessagesRemain,
    HistoryLowered,
    Impact,
    LimitLowered,
    MirrorPromoted,
    OverLimitKept,
    PlacementDropped,
    ReplicasAdded,
    RetentionNarrowed,
    StreamMessagesLost,
    StreamMoved,
    SubjectsRemoved,
    UnmanagedConsumerLost,
)
from jelmore_infra.plan import PlanMessage
from jelmore_infra.units import format_count, format_duration, format_size


def byte_count(size: int) -> str:
    """``1,463 bytes`` or ``10 GB (10,000,000,000 bytes)``."""
    human = format_size(size)
    exact = f"{size:,} bytes"
    return exact if human.endswith(" B") else f"{human} ({exact})"


def _limit_value(field: str, value: int) -> str:
    return format_size(value) if field == "max_bytes" else format_count(value)


def impact_text(record: Impact) -> str:
    """The sentence a reviewer reads for ``record`` (without the address)."""
    if isinstance(record, StreamMessagesLost):
        doing = "deleting" if record.cause == "delete" else "replacing"
        return (
            f"{doing} stream {record.stream}: {format_count(record.messages)} messages, "
            f"{byte_count(record.bytes)} will be lost"
        )
    if isinstance(record, ConsumerStateLost):
        doing = "will be deleted:" if record.cause == "delete" else "will be recreated:"
        outcome = "lost" if record.cause == "delete" else "reset"
        return (
            f"{record.address} {doing} its delivery state — "
            f"{format_count(record.num_pending)} pending, "
            f"{format_count(record.num_ack_pending)} unacknowledged — is {outcome}"
        )
    if isinstance(record, UnmanagedConsumerLost):
        doing = "deleting" if record.cause == "delete" else "replacing"
        return (
            f"{record.address} is not managed by jelmore-infra but will be LOST: "
            f"{doing} stream {record.stream} deletes its consumers"
        )
    if isinstance(record, LimitLowered):
        return _limit_lowered(record)
    if isinstance(record, AgeLowered):
        human = format_duration(record.max_age)
        if record.estimate == "unknown":
            return f"lowering max_age to {human} may remove some stored messages"
        stored = format_count(record.stored_messages)
        if record.estimate == "some" or record.removed is None:
            return f"messages older than {human} — some of {stored} — will be removed"
        return (
            f"messages older than {human} — about {format_count(record.removed)} of "
            f"{stored} — will be removed"
        )
    if isinstance(record, RetentionNarrowed):
        return (
            "switching retention from limits to interest removes stored messages without "
            f"interest (the stream holds {format_count(record.stored_messages)} messages)"
        )
    if isinstance(record, OverLimitKept):
        return (
            f"stream {record.stream} holds more than the new {record.limit_field} "
            f"{_limit_value(record.limit_field, record.limit)}: with discard new the server "
            "keeps the stored messages and refuses new ones until the stream is below the limit"
        )
    if isinstance(record, SubjectsRemoved):
        return (
            f"subjects removed from stream {record.stream}: {', '.join(record.removed)}; new "
            "messages on them are no longer stored, messages already stored stay"
        )
    if isinstance(record, MirrorPromoted):
        return (
            f"stream {record.stream} stops mirroring {record.origin} and becomes a normal "
            "stream (mirror promotion); this cannot be undone in place"
        )
    if isinstance(record, StreamMoved):
        moving = f"moving {record.label} from {record.origin} to {record.destination}"
        if record.messages <= 0:
            return (
                f"{moving}: the server gives it servers of the new placement (it holds no "
                "messages, so nothing is copied)"
            )
        return (
            f"{moving}: the server copies its {_stored(record.messages, record.bytes)} to the "
            "servers of the new placement, then drops the old copies; the time and traffic this "
            "takes grow with what is stored"
        )
    if isinstance(record, ReplicasAdded):
        added = record.replicas - record.replicas_before
        to = "the new replica" if added == 1 else f"each of the {added} new replicas"
        return (
            f"raising {record.setting} of {record.label} from {record.replicas_before} to "
            f"{record.replicas}: the server copies its "
            f"{_stored(record.messages, record.bytes)} to {to}"
        )
    if isinstance(record, PlacementDropped):
        return (
            f"removing the placement of {record.label} ({record.origin}) moves nothing: it "
            "stays on the servers it is on now"
        )
    if isinstance(record, BucketDataLost):
        doing = "deleting" if record.cause == "delete" else "replacing"
        what = "KV bucket" if record.bucket_kind == "kv" else "object store"
        return (
            f"{doing} {what} {record.bucket}: {format_count(record.messages)} messages, "
            f"{byte_count(record.bytes)} will be lost"
        )
    if isinstance(record, CompressionDeferred):
        state = "on" if record.compression else "off"
        return (
            f"compression {state}: the server applies it only to data written after its next "
            "restart; what is stored now stays as it is"
        )
    if isinstance(record, HistoryLowered):
        keys = f"{format_count(record.num_keys)} key{'' if record.num_keys == 1 else 's'}"
        if record.removed is None:
            return (
                f"lowering history to {record.history} removes at once the older revisions of "
                f"every key holding more than {record.history} (the bucket holds "
                f"{format_count(record.stored_messages)} messages, {keys})"
            )
        return (
            f"lowering history to {record.history} removes at once at least "
            f"{format_count(record.removed)} of {format_count(record.stored_messages)} stored "
            f"revisions ({keys}); raising it again restores none"
        )
    if isinstance(record, EventMessagesRemain):
        return (
            f"event type {record.event_type} leaves the catalogue while stream {record.stream} "
            f"holds {format_count(record.messages)} of its messages: they stay stored, consumers "
            "still validate them against the schema history the catalogue keeps, and publishing "
            "the type is refused"
        )
    raise TypeError(f"no text for impact record {type(record).__name__}")


def _stored(messages: int, size: int) -> str:
    """``1,234 stored messages (5 MB (5,000,000 bytes))``."""
    plural = "message" if messages == 1 else "messages"
    return f"{format_count(messages)} stored {plural} ({byte_count(size)})"


def _limit_lowered(record: LimitLowered) -> str:
    field, stored = record.limit_field, format_count(record.stored_messages)
    limit = _limit_value(field, record.limit)
    if field == "max_msgs_per_subject":
        when = (
            "will remove (for each subject when its next message arrives)"
            if record.lazy
            else "will remove"
        )
        if record.removed is None:
            return f"lowering {field} to {limit} {when} some stored messages"
        return (
            f"lowering {field} to {limit} {when} up to about {format_count(record.removed)} of "
            f"{stored} stored messages ({format_count(record.num_subjects)} subjects)"
        )
    held = f" (the stream holds {format_size(record.stored_bytes)})" if field == "max_bytes" else ""
    removed = format_count(record.removed) if record.removed is not None else "some"
    return (
        f"lowering {field} to {limit}{held} will remove about {removed} of {stored} stored messages"
    )


def message_body(message: PlanMessage) -> str:
    """A plan message's text: worded from its impact record when it has one."""
    return impact_text(message.impact) if message.impact is not None else message.message
