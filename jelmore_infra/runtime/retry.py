"""Retry decisions and a consumer group's runtime policy as read from the server.

The policy of a group (attempts, delays between attempts, dead-letter target) lives on the server,
in the durable consumer's config and metadata (written by ``jelmore-infra apply``): ``max_deliver``,
``ack_wait`` and the ``jelmore.retry-delays`` / ``jelmore.dead-letter-*`` metadata keys.

``decide`` maps one handler outcome to what happens to the message: acknowledge it, retry it
later with ``nak(delay)``, or dead-letter it. Retries use ``nak(delay)`` with a plain ``ack_wait``
and no server ``backoff`` (mixing them changes the delays; see runtime-notes §2).

Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jelmore_infra.model import (
    MANAGED_BY_KEY,
    META_DEAD_LETTER_STREAM,
    META_DEAD_LETTER_SUBJECT,
    META_RETRY_DELAYS,
)
from jelmore_infra.units import UnitError, parse_duration

NS = 1_000_000_000
MAX_REASON_CHARS = 1000


class PermanentError(Exception):
    """Raise from a handler when retrying cannot help: the event is dead-lettered at once."""


class RejectedEvent(PermanentError):
    """The runtime refuses the event itself before any handler sees it (its payload breaks its
    schema, it cannot be decrypted): dead-lettered at once, its text the failure reason as is."""


class Action(enum.Enum):
    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Disposition:
    """What to do with a message after its handler ran."""

    action: Action
    delay: float = 0.0  # seconds, for RETRY
    reason: str = ""  # failure reason, for RETRY and DEAD_LETTER


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """A consumer group's delivery settings, read from its consumer info."""

    stream: str
    consumer: str
    max_deliver: int  # -1 / 0 = unlimited
    ack_wait: float  # seconds
    retry_delays: tuple[float, ...]
    dead_letter_stream: str | None
    dead_letter_subject: str | None
    filter_subjects: tuple[str, ...]
    managed: bool

    def dead_letter_subject_for(self, original_subject: str) -> str | None:
        """``jelmore.dlq.session_handlers`` + ``jelmore.session.created`` → the DLQ subject."""
        if not self.dead_letter_subject:
            return None
        return f"{self.dead_letter_subject}.{original_subject}"


def parse_delays(text: str) -> tuple[float, ...]:
    """``"2s,4s,8s"`` → ``(2.0, 4.0, 8.0)``; an unreadable value raises ``UnitError``."""
    delays: list[float] = []
    for part in text.split(","):
        item = part.strip()
        if item:
            delays.append(parse_duration(item) / NS)
    return tuple(delays)


def policy_from_consumer_info(info: Mapping[str, Any]) -> GroupPolicy:
    """Read a ``$JS.API.CONSUMER.INFO`` response (wire form) into a ``GroupPolicy``."""
    config: Mapping[str, Any] = info.get("config") or {}
    meta: Mapping[str, str] = config.get("metadata") or {}
    try:
        delays = parse_delays(meta.get(META_RETRY_DELAYS, ""))
    except UnitError:
        delays = ()
    filters = config.get("filter_subjects") or (
        [config["filter_subject"]] if config.get("filter_subject") else []
    )
    return GroupPolicy(
        stream=str(info.get("stream_name", "")),
        consumer=str(info.get("name", "")),
        max_deliver=int(config.get("max_deliver", -1) or -1),
        ack_wait=int(config.get("ack_wait", 30 * NS) or 30 * NS) / NS,
        retry_delays=delays,
        dead_letter_stream=meta.get(META_DEAD_LETTER_STREAM) or None,
        dead_letter_subject=meta.get(META_DEAD_LETTER_SUBJECT) or None,
        filter_subjects=tuple(str(f) for f in filters),
        managed=bool(meta.get(MANAGED_BY_KEY)) or META_RETRY_DELAYS in meta,
    )


def failure_reason(exc: BaseException) -> str:
    """One line naming the exception, at most ``MAX_REASON_CHARS`` characters."""
    text = str(exc).strip().replace("\r", " ").replace("\n", " ")
    if isinstance(exc, RejectedEvent) and text:
        reason = text
    else:
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    return reason


def retry_delay(num_delivered: int, delays: Sequence[float]) -> float:
    """Delay after failed attempt ``num_delivered`` (1-based); the last value repeats."""
    if not delays:
        return 0.0
    index = min(max(num_delivered, 1) - 1, len(delays) - 1)
    return float(delays[index])


def decide(
    num_delivered: int,
    max_deliver: int,
    delays: Sequence[float],
    exc: BaseException | None,
) -> Disposition:
    """Acknowledge on success; retry with the scheduled delay while attempts remain; otherwise
    (last attempt, or a ``PermanentError``) dead-letter."""
    if exc is None:
        return Disposition(Action.ACK)
    reason = failure_reason(exc)
    if isinstance(exc, PermanentError):
        return Disposition(Action.DEAD_LETTER, reason=reason)
    if max_deliver > 0 and num_delivered >= max_deliver:
        return Disposition(Action.DEAD_LETTER, reason=reason)
    return Disposition(Action.RETRY, delay=retry_delay(num_delivered, delays), reason=reason)
