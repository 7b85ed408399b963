"""Dead-letter records: the body and headers of an event moved to the DLQ, and the event that
``dlq replay`` re-publishes from such a record.

A dead-lettered event is published to ``<dead-letter-subject>.<original subject>`` (for example
``jelmore.dlq.session_handlers.jelmore.session.created``) with the idempotency key
``Nats-Msg-Id: dlq-<stream>-<consumer>-<stream_seq>``: the worker (on the final failed attempt)
and the advisory router (when the worker died) use the same key, so the DLQ stores it once.

Body (the seed's fields plus where the event came from)::

    {"event_type", "session_id", "original_subject", "dlq_timestamp", "failure_reason",
     "retry_count", "payload", "message_id", "consumer_group", "stream_seq",
     "original_stream", "original_timestamp"}

An encrypted event (see ``crypto``) stays encrypted: the record's ``payload`` is the original
ciphertext and the ``Jelmore-Encryption`` header is kept, on the record and on a replay.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jelmore_infra.runtime.crypto import HDR_ENCRYPTION
from jelmore_infra.runtime.envelope import (
    HDR_EVENT_TYPE,
    HDR_MSG_ID,
    HDR_SESSION_ID,
    OutgoingEvent,
    encode_json,
    format_timestamp,
    user_headers,
)

#: failure_reason of events routed from a max-deliveries advisory (worker killed or hung).
ROUTER_FAILURE_REASON = (
    "worker did not acknowledge the last delivery attempt (max deliveries reached)"
)
HDR_ORIGINAL_SUBJECT = "Jelmore-Original-Subject"
HDR_CONSUMER_GROUP = "Jelmore-Consumer-Group"
HDR_FAILURE_REASON = "Jelmore-Failure-Reason"
HDR_REPLAYED_FROM = "Jelmore-Replayed-From"
#: On a re-published event: only this consumer group handles it (the others acknowledge it).
HDR_TARGET_GROUP = "Jelmore-Target-Group"
_HEADER_REASON_CHARS = 200

REQUIRED_FIELDS = (
    "event_type",
    "session_id",
    "original_subject",
    "dlq_timestamp",
    "failure_reason",
    "retry_count",
    "payload",
    "message_id",
    "consumer_group",
    "stream_seq",
)


def dlq_message_id(stream: str, consumer: str, stream_seq: int) -> str:
    return f"dlq-{stream}-{consumer}-{stream_seq}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A DLQ message ready to publish."""

    subject: str
    data: bytes
    headers: dict[str, str]
    message_id: str


def build_dead_letter(
    *,
    dlq_subject: str,
    original_subject: str,
    original_data: bytes,
    original_headers: Mapping[str, str] | None,
    stream: str,
    consumer: str,
    stream_seq: int,
    num_delivered: int,
    failure_reason: str,
    now: datetime,
    original_time: datetime | None = None,
) -> DeadLetter:
    """The DLQ record of one failed event. Works for events that are not valid envelopes too
    (their raw text becomes the payload)."""
    headers = dict(original_headers or {})
    envelope: dict[str, Any] | None
    try:
        parsed = json.loads(original_data.decode("utf-8"))
        envelope = parsed if isinstance(parsed, dict) else None
    except (UnicodeDecodeError, ValueError):
        envelope = None
    if envelope is not None and "payload" in envelope:
        payload: Any = envelope.get("payload")
    elif envelope is not None:
        payload = envelope
    else:
        payload = original_data.decode("utf-8", errors="replace")
    env = envelope or {}
    event_type = str(env.get("event_type") or headers.get(HDR_EVENT_TYPE) or "")
    session_id = str(env.get("session_id") or headers.get(HDR_SESSION_ID) or "")
    message_id = str(env.get("message_id") or headers.get(HDR_MSG_ID) or "")
    body = {
        "event_type": event_type,
        "session_id": session_id,
        "original_subject": original_subject,
        "dlq_timestamp": format_timestamp(now),
        "failure_reason": failure_reason,
        "retry_count": num_delivered,
        "payload": payload,
        "message_id": message_id,
        "consumer_group": consumer,
        "stream_seq": stream_seq,
        "original_stream": stream,
        "original_timestamp": env.get("timestamp")
        or (format_timestamp(original_time) if original_time else None),
    }
    mid = dlq_message_id(stream, consumer, stream_seq)
    out_headers = user_headers(headers)
    out_headers.update(
        {
            HDR_MSG_ID: mid,
            HDR_ORIGINAL_SUBJECT: original_subject,
            HDR_CONSUMER_GROUP: consumer,
            HDR_FAILURE_REASON: _one_line(failure_reason)[:_HEADER_REASON_CHARS],
        }
    )
    if event_type:
        out_headers[HDR_EVENT_TYPE] = event_type
    if session_id:
        out_headers[HDR_SESSION_ID] = session_id
    data = encode_json(body, what="dead-letter record")
    return DeadLetter(dlq_subject, data, out_headers, mid)


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def replay_from_dead_letter(
    record: Mapping[str, Any],
    *,
    dlq_stream: str,
    dlq_seq: int,
    now: datetime,
    encryption: str | None = None,
) -> OutgoingEvent:
    """The event ``dlq replay`` re-publishes: the original envelope on the original subject,
    addressed (``Jelmore-Target-Group``) to the group that dead-lettered it, so groups that
    handled it the first time do not handle it again.

    ``Nats-Msg-Id`` is ``dlq-replay-<dlq stream>-<dlq seq>`` (a retry within the duplicate window is
    stored once); the envelope keeps the original ``message_id`` and ``retry_count`` says how many
    attempts the event already had. ``encryption``: the record's ``Jelmore-Encryption`` header,
    kept on the replayed event (its payload is still the ciphertext).
    """
    subject = str(record.get("original_subject") or "")
    if not subject:
        raise ValueError(f"DLQ message {dlq_seq} has no original_subject")
    event_type = str(record.get("event_type") or "")
    session_id = str(record.get("session_id") or "")
    envelope = {
        "event_type": event_type,
        "session_id": session_id,
        "timestamp": record.get("original_timestamp") or format_timestamp(now),
        "message_id": record.get("message_id") or f"dlq-replay-{dlq_stream}-{dlq_seq}",
        "retry_count": int(record.get("retry_count") or 0),
        "payload": record.get("payload"),
    }
    mid = f"dlq-replay-{dlq_stream}-{dlq_seq}"
    headers = {
        HDR_MSG_ID: mid,
        HDR_REPLAYED_FROM: f"{dlq_stream}:{dlq_seq}",
    }
    group = str(record.get("consumer_group") or "")
    if group:
        headers[HDR_TARGET_GROUP] = group
    if event_type:
        headers[HDR_EVENT_TYPE] = event_type
    if session_id:
        headers[HDR_SESSION_ID] = session_id
    if encryption:
        headers[HDR_ENCRYPTION] = encryption
    data = encode_json(envelope, what="replayed event")
    return OutgoingEvent(subject, data, headers, mid, event_type, session_id)
