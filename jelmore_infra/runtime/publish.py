"""Publishing events: ``publish_event`` (one event, waits for the stream's ack, retries a timeout
with the same message id) and ``Publisher`` / ``publish_events`` (a pipeline with a bounded
in-flight window and a timeout per publish, for thousands of events per second).

Every publish is a request whose PubAck is awaited with its own timeout; nats-py's
``publish_async`` is not used because its futures never resolve on server errors (nats.py #985).
A retried publish carries the same ``Nats-Msg-Id``, so the stream stores the event once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jelmore_infra.errors import JetStreamAPIError
from jelmore_infra.runtime.bus import Bus, BusError, PubAck, get_bus
from jelmore_infra.runtime.envelope import OutgoingEvent, build_event
from jelmore_infra.runtime.metrics import METRICS

log = logging.getLogger("jelmore_infra.runtime")

DEFAULT_TIMEOUT = 2.0
DEFAULT_ATTEMPTS = 10
RETRY_WAIT = 0.25
MAX_RETRY_WAIT = 2.0


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The outcome of one publish."""

    message_id: str
    ok: bool
    seq: int | None = None
    duplicate: bool = False
    latency: float = 0.0  # seconds from the first send to the ack
    attempts: int = 1
    error: str | None = None


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, JetStreamAPIError):
        return exc.code == 503  # JetStream temporarily unavailable (leader election, restart)
    return isinstance(exc, BusError)


async def send(
    bus: Bus,
    event: OutgoingEvent,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    attempts: int = DEFAULT_ATTEMPTS,
    count: bool = True,
) -> PublishResult:
    """Publish ``event`` until the stream acknowledges it or ``attempts`` are used up. Retries
    reuse the event's ``Nats-Msg-Id``; a duplicate ack counts as success. ``count=False`` keeps
    the runtime's own publishes (dead letters) out of the publish metrics."""
    started = time.monotonic()
    wait = RETRY_WAIT
    last = ""
    for attempt in range(1, max(1, attempts) + 1):
        try:
            ack: PubAck = await bus.publish(
                event.subject, event.data, event.headers, timeout=timeout
            )
        except (BusError, JetStreamAPIError) as exc:
            last = str(exc)
            if not _retryable(exc) or attempt >= attempts:
                break
            if count:
                METRICS.publish_retries += 1
            await asyncio.sleep(wait)
            wait = min(wait * 2, MAX_RETRY_WAIT)
            continue
        latency = time.monotonic() - started
        if count:
            METRICS.record_publish(latency, duplicate=ack.duplicate)
        return PublishResult(event.message_id, True, ack.seq, ack.duplicate, latency, attempt)
    if count:
        METRICS.publish_errors += 1
    log.warning("event %s to %s not published: %s", event.message_id, event.subject, last)
    return PublishResult(
        event.message_id, False, latency=time.monotonic() - started, attempts=attempts, error=last
    )


async def publish_event(
    event_type: str,
    session_id: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    *,
    message_id: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    attempts: int = DEFAULT_ATTEMPTS,
) -> bool:
    """Publish one event and wait until the stream has stored it.

    Returns ``True`` when stored (or already stored: same message id within the duplicate window),
    ``False`` when no acknowledgement came after ``attempts`` tries (each ``timeout`` seconds).
    Raises ``EventError`` for an unknown event type, an unserialisable payload or a bad header,
    and ``ConnectionFailed`` when the first connection to the server cannot be made (later
    disconnections are retried).
    """
    bus = get_bus()
    event = build_event(
        bus.settings.prefix,
        event_type,
        session_id,
        payload,
        now=datetime.now(UTC),
        message_id=message_id,
        headers=headers,
    )
    result = await send(bus, event, timeout=timeout, attempts=attempts)
    return result.ok


@dataclass
class Publisher:
    """A publishing pipeline: at most ``window`` publishes in flight, each with its own timeout.

    ::

        async with Publisher(window=200) as pub:
            for i in range(10_000):
                await pub.publish("session.output", sid, {"n": i})
        print(pub.summary())
    """

    window: int = 256
    timeout: float = DEFAULT_TIMEOUT
    attempts: int = 3
    bus: Bus | None = None
    keep_results: bool = True
    results: list[PublishResult] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    duplicates: int = 0
    latencies: list[float] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None
    _tasks: set[asyncio.Task[PublishResult]] = field(default_factory=set)
    _in_flight: int = 0
    _idle: asyncio.Event | None = None

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("window must be at least 1")

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.wait()

    async def publish(
        self,
        event_type: str,
        session_id: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        message_id: str | None = None,
    ) -> str:
        """Queue one event (waits while ``window`` publishes are in flight); returns its id.
        Invalid events raise ``EventError`` at once."""
        bus = self.bus or get_bus()
        event = build_event(
            bus.settings.prefix,
            event_type,
            session_id,
            payload,
            now=datetime.now(UTC),
            message_id=message_id,
            headers=headers,
        )
        await self.send(event)
        return event.message_id

    async def send(self, event: OutgoingEvent) -> None:
        """Queue an already built event. The first attempt is sent here and completed by a
        callback (no task per event); only a failed attempt spawns a retrying task."""
        bus = self.bus or get_bus()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.window)
        await self._slots.acquire()
        self._in_flight += 1
        started = time.monotonic()
        try:
            fut = await bus.publish_start(
                event.subject, event.data, event.headers, timeout=self.timeout
            )
        except (BusError, JetStreamAPIError):
            self._retry(bus, event, started)
            return
        except BaseException:
            self._finish(None)
            raise
        fut.add_done_callback(lambda f: self._acked(bus, event, started, f))

    def _acked(
        self, bus: Bus, event: OutgoingEvent, started: float, fut: asyncio.Future[PubAck]
    ) -> None:
        if fut.cancelled():
            self._finish(PublishResult(event.message_id, False, error="cancelled"))
            return
        exc = fut.exception()
        if exc is None:
            ack = fut.result()
            latency = time.monotonic() - started
            METRICS.record_publish(latency, duplicate=ack.duplicate)
            self._finish(PublishResult(event.message_id, True, ack.seq, ack.duplicate, latency))
            return
        if isinstance(exc, BusError | JetStreamAPIError) and _retryable(exc) and self.attempts > 1:
            self._retry(bus, event, started)
            return
        METRICS.publish_errors += 1
        self._finish(PublishResult(event.message_id, False, error=str(exc)))

    def _retry(self, bus: Bus, event: OutgoingEvent, started: float) -> None:
        METRICS.publish_retries += 1
        task = asyncio.create_task(
            send(bus, event, timeout=self.timeout, attempts=max(1, self.attempts - 1))
        )
        self._tasks.add(task)
        task.add_done_callback(self._retried)

    def _retried(self, task: asyncio.Task[PublishResult]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is not None:
            self._finish(None)
        else:
            self._finish(task.result())

    def _finish(self, result: PublishResult | None) -> None:
        self._in_flight -= 1
        if self._slots is not None:
            self._slots.release()
        if result is None or not result.ok:
            self.failed += 1
        else:
            self.ok += 1
            self.latencies.append(result.latency)
            if result.duplicate:
                self.duplicates += 1
        if result is not None and self.keep_results:
            self.results.append(result)
        if self._in_flight == 0 and self._idle is not None:
            self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def wait(self) -> None:
        """Wait until every queued publish has finished (acknowledged or failed)."""
        while self._in_flight > 0:
            self._idle = asyncio.Event()
            await self._idle.wait()

    def summary(self) -> dict[str, Any]:
        from jelmore_infra.runtime.metrics import summarise

        return {
            "published": self.ok,
            "failed": self.failed,
            "duplicates": self.duplicates,
            "ack_latency": summarise(self.latencies),
        }


async def publish_events(
    events: Iterable[Mapping[str, Any]],
    *,
    window: int = 256,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    attempts: int = 3,
) -> list[PublishResult]:
    """Publish many events through a ``Publisher``; each event is a mapping with ``event_type``,
    ``session_id``, ``payload`` and optionally ``headers`` and ``message_id``. Returns one result
    per event, in completion order."""
    pub = Publisher(window=window, timeout=timeout, attempts=attempts)
    async with pub:
        for item in events:
            await pub.publish(
                item["event_type"],
                item["session_id"],
                item.get("payload"),
                item.get("headers"),
                message_id=item.get("message_id"),
            )
    return pub.results
