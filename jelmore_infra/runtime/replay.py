"""Replaying stored events by time: ``replay_events(subjects, start_time, end_time=None,
handler=None)``.

Reads through its own short-lived consumer (deliver by start time, no acks, in memory, removed
after a short inactivity and deleted at the end), not nats-py's ordered consumer, whose recreate
with a start time fails (runtime-notes §1). It stops at ``end_time`` or at the stream's last
sequence when the call started, so a busy stream cannot make it run forever. If the consumer
disappears or fetching fails, it is recreated from the last sequence seen + 1.

Encrypted events (see ``crypto``) are decrypted with the runtime's keys; one that cannot be is
skipped with a warning, like a message that is not an event. ``decrypt=False`` returns events as
stored.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from jelmore_infra.errors import JelmoreError
from jelmore_infra.runtime.bus import Bus, BusError, PullHandle
from jelmore_infra.runtime.core import RuntimeCore
from jelmore_infra.runtime.crypto import DecryptError, open_event
from jelmore_infra.runtime.discovery import stream_for
from jelmore_infra.runtime.envelope import EventError, decode_event, format_timestamp

log = logging.getLogger("jelmore_infra.runtime")

NS = 1_000_000_000
REPLAY_INACTIVE = 30.0
MAX_RECREATES = 20

ReplayHandler = Callable[[dict[str, Any], Any], Awaitable[None]]


def _aware(moment: datetime) -> datetime:
    """Naive datetimes (``datetime.utcnow()`` in the seed's examples) are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def replay_config(
    name: str, filters: Sequence[str], *, start_time: datetime | None, start_seq: int | None
) -> dict[str, Any]:
    """The replay consumer: by start time, or by start sequence when resuming."""
    config: dict[str, Any] = {
        "name": name,
        "ack_policy": "none",
        "mem_storage": True,
        "num_replicas": 1,
        "inactive_threshold": int(REPLAY_INACTIVE * NS),
        "replay_policy": "instant",
    }
    if start_seq is not None:
        config["deliver_policy"] = "by_start_sequence"
        config["opt_start_seq"] = start_seq
    else:
        assert start_time is not None
        config["deliver_policy"] = "by_start_time"
        config["opt_start_time"] = format_timestamp(start_time)
    if len(filters) == 1:
        config["filter_subject"] = filters[0]
    elif filters:
        config["filter_subjects"] = list(filters)
    return config


class _Replay:
    def __init__(self, bus: Bus, stream: str, filters: Sequence[str]) -> None:
        self.bus = bus
        self.stream = stream
        self.filters = list(filters)
        self.name = ""
        self.handle: PullHandle | None = None

    async def open(self, *, start_time: datetime | None, start_seq: int | None) -> None:
        await self.close()
        self.name = f"replay-{uuid.uuid4().hex[:12]}"
        config = replay_config(self.name, self.filters, start_time=start_time, start_seq=start_seq)
        await self.bus.create_consumer(self.stream, config)
        self.handle = await self.bus.bind(self.stream, self.name)

    async def pending(self) -> int:
        info = await self.bus.consumer_info(self.stream, self.name)
        if info is None:
            raise BusError(f"replay consumer {self.name} is gone")
        return int(info.get("num_pending", 0))

    async def close(self) -> None:
        if self.handle is not None:
            await self.handle.unsubscribe()
            self.handle = None
        if self.name:
            with contextlib.suppress(JelmoreError, BusError):
                await self.bus.delete_consumer(self.stream, self.name)
            self.name = ""


async def replay_events(
    runtime: RuntimeCore,
    subjects: Sequence[str] | str | None,
    start_time: datetime,
    end_time: datetime | None = None,
    handler: ReplayHandler | None = None,
    *,
    batch: int = 200,
    fetch_timeout: float = 1.0,
    decrypt: bool = True,
) -> list[dict[str, Any]]:
    """Events stored on ``subjects`` from ``start_time`` up to ``end_time`` (or up to the stream's
    last event when called), oldest first.

    Without ``handler`` the events are returned. With one, ``await handler(event, msg)`` runs for
    each and the returned list is empty (nothing is kept in memory). ``decrypt=False`` leaves
    encrypted payloads as stored.
    """
    bus = runtime.bus
    wanted = [subjects] if isinstance(subjects, str) else list(subjects or [])
    if not wanted:
        wanted = [bus.settings.main_subjects()]
    streams = {await stream_for(bus, s) for s in wanted}
    if len(streams) > 1:
        raise JelmoreError(f"subjects {', '.join(wanted)} are in different streams")
    stream = streams.pop()
    start = _aware(start_time)
    end = _aware(end_time) if end_time is not None else None
    info = await bus.stream_info(stream)
    last_seq = int(((info or {}).get("state") or {}).get("last_seq", 0))
    events: list[dict[str, Any]] = []
    if last_seq == 0:
        return events
    replay = _Replay(bus, stream, wanted)
    last_done = 0
    recreates = 0
    try:
        await replay.open(start_time=start, start_seq=None)
        done = False
        while not done:
            try:
                assert replay.handle is not None
                msgs = await replay.handle.fetch(batch, timeout=fetch_timeout)
                if not msgs:
                    if await replay.pending() == 0:
                        break
                    continue
            except BusError as exc:
                recreates += 1
                if recreates > MAX_RECREATES:
                    raise JelmoreError(f"replay of {stream} keeps failing: {exc}") from None
                log.warning("replay: %s; resuming after sequence %d", exc, last_done)
                if last_done:
                    await replay.open(start_time=None, start_seq=last_done + 1)
                else:
                    await replay.open(start_time=start, start_seq=None)
                continue
            for msg in msgs:
                meta = msg.metadata
                seq = int(meta.sequence.stream)
                if seq > last_seq or (end is not None and meta.timestamp > end):
                    done = True
                    break
                if seq <= last_done:
                    continue  # already seen before a recreate
                last_done = seq
                try:
                    event = decode_event(msg.data)
                    if decrypt:
                        event = open_event(event, msg.headers, runtime.settings.encryption_keys)
                except (EventError, DecryptError) as exc:
                    log.warning("replay: skipping message %d of %s: %s", seq, stream, exc)
                    continue
                if handler is None:
                    events.append(event)
                else:
                    await handler(event, msg)
                if seq >= last_seq or int(meta.num_pending) == 0:
                    done = True
                    break
    finally:
        await replay.close()
    return events
