"""Publishing events: ``publish_event`` (one event, waits for the stream's ack) and ``Publisher`` /
``publish_events`` (a pipeline with a bounded in-flight window and a timeout per publish, for
thousands of events per second). Both retry through ``send``.

Every publish is a request whose PubAck is awaited with its own timeout; nats-py's
``publish_async`` is not used because its futures never resolve on server errors (nats.py #985).

**Outcomes.** Each event ends in one of three outcomes (``Outcome``):

* *acknowledged*: the stream stored it (or had stored it already: a duplicate ack);
* *failed*: it is certainly not stored: the server refused it with an error reply (for example a
  ``Nats-Expected-Stream`` mismatch), or every attempt was answered "no stream here" (503);
* *not confirmed*: no attempt was acknowledged and at least one may have reached the stream (a
  timeout, a disconnection). Such an event may or may not be stored: nats-py keeps publishes made
  while it is disconnected in a buffer and sends them after reconnecting, long after their request
  timed out. Publish it again only with the same message id.

**Retries.** An attempt that was not acknowledged is repeated with the event's original
``Nats-Msg-Id``, so a stream that did store an earlier attempt answers with a duplicate ack
instead of storing it twice. An event is retried for ``retry_for`` seconds from its first send
(``DEFAULT_RETRY_FOR``, 30 s, unless the caller sets it): long enough to ride out the election of
a new stream leader after the old one died, during which the stream answers "no stream here"
(503) or not at all. Attempts certainly not stored (503, never sent) are repeated until then.
The duplicate protection lasts only for the stream's duplicate window, so after an attempt
whose outcome is unknown another attempt is sent only while its acknowledgement is due within
``WINDOW_SHARE`` of the window after the first send (the window is read from the stream's config
and cached; the other half is a margin for an attempt nats-py buffered across a disconnection).
While the window cannot be read (the server is busy electing a leader) such an attempt waits
for it, and is never sent without it. Attempts are sent only while connected, never into
nats-py's reconnect buffer: after a reconnection nats-py first flushes that buffer, so a retry
always reaches the server after the attempts before it. A message larger than the server's
``max_payload`` can never be stored; it is refused at once, before anything is sent.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jelmore_infra.errors import JelmoreError, JetStreamAPIError
from jelmore_infra.runtime.bus import Bus, BusDenied, BusError, BusUnavailable, PubAck
from jelmore_infra.runtime.crypto import protect
from jelmore_infra.runtime.envelope import EventError, OutgoingEvent, build_event, wire_size

log = logging.getLogger("jelmore_infra.runtime")

DEFAULT_TIMEOUT = 2.0
RETRY_WAIT = 0.25
MAX_RETRY_WAIT = 2.0
#: seconds from an event's first send during which it is retried: a stream leader's election
#: after its server died took about 5 s on a 3-node test cluster (docs/faults.md)
DEFAULT_RETRY_FOR = 30.0
#: share of the stream's duplicate window (from the first send) within which an attempt whose
#: predecessor's outcome is unknown must be acknowledged
WINDOW_SHARE = 0.5
#: seconds between checks of the connection (and of the window) while waiting to retry
CONNECTION_POLL = 0.1
#: seconds a stream's duplicate window is cached (an apply may change it)
WINDOW_CACHE_SECONDS = 60.0
#: seconds before a look-up of the window that failed, or found no stream, is made again (one
#: look-up per subject at a time, however many events wait for it)
LOOKUP_PAUSE = 1.0
NS = 1_000_000_000


class Outcome(enum.StrEnum):
    """What became of one event."""

    ACKNOWLEDGED = "acknowledged"
    NOT_CONFIRMED = "not confirmed"
    FAILED = "failed"


class AttemptKind(enum.Enum):
    """What one unacknowledged attempt says about the event."""

    REFUSED = "refused"  # the server answered with an error: retrying cannot help
    NOT_STORED = "not stored"  # certainly not stored by this attempt; retrying is safe
    UNKNOWN = "unknown"  # may have been stored (a timeout, a disconnection)


def attempt_kind(exc: BaseException, *, sent: bool = True) -> AttemptKind:
    """Classify a failed attempt; ``sent=False`` when the publish never left the client."""
    if not sent or isinstance(exc, BusUnavailable):
        return AttemptKind.NOT_STORED
    if isinstance(exc, BusDenied):
        return AttemptKind.REFUSED  # no permission to publish there: it was never stored
    if isinstance(exc, JetStreamAPIError):
        # 503: JetStream temporarily unavailable (leader election, restart): nothing stored
        return AttemptKind.NOT_STORED if exc.code == 503 else AttemptKind.REFUSED
    return AttemptKind.UNKNOWN


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The outcome of one publish. ``ok`` is true only when acknowledged; ``outcome`` tells a
    refused event (``failed``) from one whose fate is unknown (``not confirmed``)."""

    message_id: str
    ok: bool
    seq: int | None = None
    duplicate: bool = False
    latency: float = 0.0  # seconds from the first send to the ack (or to giving up)
    attempts: int = 1
    error: str | None = None
    outcome: Outcome = Outcome.ACKNOWLEDGED

    @property
    def not_confirmed(self) -> bool:
        return self.outcome is Outcome.NOT_CONFIRMED

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED


def retry_limits(
    started: float, window: float | None, retry_for: float | None
) -> tuple[float, float | None]:
    """``(give_up_at, safe_until)`` for an event first sent at ``started``: no attempt is sent
    whose acknowledgement would be due after ``give_up_at`` (``retry_for`` seconds, default
    ``DEFAULT_RETRY_FOR``, whatever the window), and none after an attempt with an unknown
    outcome unless its acknowledgement is due by ``safe_until`` (``None``: the window is not
    known, so not yet)."""
    safe_until = started + window * WINDOW_SHARE if window else None
    patience = DEFAULT_RETRY_FOR if retry_for is None else retry_for
    return started + patience, safe_until


class Next(enum.Enum):
    """What a retrying event does next."""

    SEND = "send"
    WAIT = "wait"  # back-off not over, disconnected, or the window must be read first
    GIVE_UP = "give up"


def next_step(
    *,
    now: float,
    resume: float,
    timeout: float,
    give_up_at: float,
    safe_until: float | None,
    unknown: bool,
    connected: bool,
) -> Next:
    """Whether to send the next attempt of an event now (its back-off ends at ``resume``), wait,
    or give up (pure): an attempt whose ack would be due after ``give_up_at`` is never sent;
    after an attempt with an ``unknown`` outcome none is sent without a known window
    (``safe_until``) or past it."""
    due = max(now, resume) + timeout
    if due > give_up_at:
        return Next.GIVE_UP
    if unknown:
        if safe_until is None:
            return Next.WAIT
        if due > safe_until:
            return Next.GIVE_UP
    if now < resume or not connected:
        return Next.WAIT
    return Next.SEND


def unacknowledged_outcome(
    attempts: int, elapsed: float, last: str, *, unknown: bool, refused: bool
) -> tuple[Outcome, str]:
    """The outcome and the one-line reason of an event none of whose ``attempts`` was
    acknowledged: *failed* when refused or when no attempt can have been stored, else *not
    confirmed*."""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if refused or not unknown:
        return Outcome.FAILED, f"failed (not stored) after {tries}: {last}"
    return Outcome.NOT_CONFIRMED, (
        f"not confirmed after {tries} in {elapsed:.1f}s ({last}): it may or may not be stored;"
        " publish it again only with the same message id"
    )


@dataclass
class _Attempts:
    """The attempts made for one event so far and what they say about it."""

    started: float
    made: int = 0
    unknown: bool = False
    refused: bool = False
    last: str = ""
    wait: float = RETRY_WAIT

    def record(self, exc: BaseException, *, sent: bool = True) -> None:
        self.made += 1
        self.last = str(exc) or type(exc).__name__
        kind = attempt_kind(exc, sent=sent)
        if kind is AttemptKind.REFUSED:
            self.refused = True
        elif kind is AttemptKind.UNKNOWN:
            self.unknown = True

    def next_wait(self) -> float:
        wait, self.wait = self.wait, min(self.wait * 2, MAX_RETRY_WAIT)
        return wait

    def result(self, event: OutgoingEvent) -> PublishResult:
        elapsed = time.monotonic() - self.started
        outcome, error = unacknowledged_outcome(
            self.made, elapsed, self.last, unknown=self.unknown, refused=self.refused
        )
        return PublishResult(
            event.message_id,
            False,
            latency=elapsed,
            attempts=self.made,
            error=error,
            outcome=outcome,
        )


# -- the duplicate window of the stream behind a subject ------------------------------------------


async def duplicate_window(bus: Bus, subject: str) -> float | None:
    """The duplicate window (seconds) of the stream capturing ``subject``, cached for
    ``WINDOW_CACHE_SECONDS``; ``None`` when no stream captures it or it cannot be read now (the
    server is not asked while disconnected). A window read before is kept while a new look-up
    fails (a restarting server, or a cluster electing a leader, may not answer for a while), and
    a failed look-up is not repeated for ``LOOKUP_PAUSE``; concurrent callers share one look-up."""
    hit = bus.windows.get(subject)
    if hit is not None and time.monotonic() < hit[1]:
        return hit[0]
    stale = hit[0] if hit is not None else None
    if not bus.is_connected:
        return stale
    loop = asyncio.get_running_loop()
    pending = bus.window_lookups.get(subject)
    if pending is None or pending.done() or pending.get_loop() is not loop:
        pending = loop.create_task(_look_up_window(bus, subject, stale))
        bus.window_lookups[subject] = pending
    return await asyncio.shield(pending)


async def _look_up_window(bus: Bus, subject: str, stale: float | None) -> float | None:
    from jelmore_infra.runtime.discovery import TopologyMissing, stream_for

    try:
        info = await bus.stream_info(await stream_for(bus, subject))
    except (TopologyMissing, JelmoreError):
        bus.windows[subject] = (stale, time.monotonic() + LOOKUP_PAUSE)
        return stale
    finally:
        if bus.window_lookups.get(subject) is asyncio.current_task():
            del bus.window_lookups[subject]
    nanos = int(((info or {}).get("config") or {}).get("duplicate_window") or 0)
    window = nanos / NS if nanos > 0 else None
    bus.windows[subject] = (window, time.monotonic() + WINDOW_CACHE_SECONDS)
    return window


def _window_fresh(bus: Bus, subject: str) -> bool:
    hit = bus.windows.get(subject)
    return hit is not None and time.monotonic() < hit[1]


async def prepare(bus: Bus, event: OutgoingEvent) -> None:
    """Before the first attempt: connect, refuse an event over ``max_payload`` (``EventError``),
    and read the subject's duplicate window while the server is reachable (cached)."""
    if bus.max_payload is None:
        await bus.connect()
    check_fits(bus, event)
    if not _window_fresh(bus, event.subject):
        await duplicate_window(bus, event.subject)


async def new_event(
    bus: Bus,
    event_type: str,
    session_id: str,
    payload: Any,
    headers: Mapping[str, str] | None,
    message_id: str | None,
) -> OutgoingEvent:
    """An event of a type the catalogue declares, its payload valid under the type's current
    schema, on the catalogue's subject, stamped now, its payload encrypted when the catalogue
    (or the runtime's settings) call the type sensitive (``EventError`` otherwise, or sensitive
    without a key: nothing is sent)."""
    kind = await bus.catalogue.prepare(event_type, payload)
    event = build_event(
        kind.subject,
        event_type,
        session_id,
        payload,
        now=datetime.now(UTC),
        message_id=message_id,
        headers=headers,
        schema_version=kind.version,
    )
    rules = bus.settings
    sensitive = kind.sensitive or rules.is_sensitive(event_type)
    return protect(event, sensitive=sensitive, keys=rules.encryption_keys)


def check_fits(bus: Bus, event: OutgoingEvent) -> None:
    """Refuse (``EventError``) an event larger than the connected server's ``max_payload``:
    the server would reject it every time (and close the connection)."""
    limit = bus.max_payload
    size = wire_size(event)
    if limit and size > limit:
        what = f"{event.event_type} event" if event.event_type else "message"
        raise EventError(
            f"{what} of {size:,} bytes (payload, envelope and headers) exceeds the server's"
            f" max_payload of {limit:,} bytes"
        )


# -- one event ------------------------------------------------------------------------------------


async def _may_retry(
    bus: Bus,
    event: OutgoingEvent,
    tried: _Attempts,
    *,
    timeout: float,  # noqa: ASYNC109
    attempts: int | None,
    retry_for: float | None,
) -> bool:
    """Wait until the next attempt may be sent (back-off elapsed, connected, the window known
    after an unknown outcome); ``False`` when it must not be: refused, attempts used up, the
    connection closed by the application, or its ack would be due past the deadlines."""
    if tried.refused or (attempts is not None and tried.made >= attempts):
        return False
    resume = time.monotonic() + tried.next_wait()
    while True:
        if bus.max_payload is None:  # the application closed the connection: stop here
            return False
        window = await duplicate_window(bus, event.subject)
        give_up_at, safe_until = retry_limits(tried.started, window, retry_for)
        now = time.monotonic()
        step = next_step(
            now=now,
            resume=resume,
            timeout=timeout,
            give_up_at=give_up_at,
            safe_until=safe_until,
            unknown=tried.unknown,
            connected=bus.is_connected,
        )
        if step is not Next.WAIT:
            return step is Next.SEND
        await asyncio.sleep(max(min(resume - now, MAX_RETRY_WAIT), CONNECTION_POLL))


async def _deliver(
    bus: Bus,
    event: OutgoingEvent,
    tried: _Attempts,
    *,
    timeout: float,  # noqa: ASYNC109
    attempts: int | None,
    retry_for: float | None,
    count: bool,
) -> PublishResult:
    while True:
        if tried.made:
            if not await _may_retry(
                bus, event, tried, timeout=timeout, attempts=attempts, retry_for=retry_for
            ):
                return tried.result(event)
            if count:
                bus.metrics.publish_retries += 1
        try:
            fut = await bus.publish_start(event.subject, event.data, event.headers, timeout=timeout)
        except (BusError, JetStreamAPIError) as exc:
            tried.record(exc, sent=False)
            continue
        except JelmoreError as exc:  # ConnectionFailed: the connection could not be reopened
            if not tried.made:
                raise
            tried.record(exc, sent=False)
            continue
        try:
            ack = await fut
        except (BusError, JetStreamAPIError) as exc:
            tried.record(exc)
            continue
        latency = time.monotonic() - tried.started
        if count:
            bus.metrics.record_publish(latency, duplicate=ack.duplicate)
        return PublishResult(
            event.message_id, True, ack.seq, ack.duplicate, latency, tried.made + 1
        )


def _count_failure(bus: Bus, result: PublishResult) -> None:
    if result.not_confirmed:
        bus.metrics.publish_not_confirmed += 1
    else:
        bus.metrics.publish_errors += 1


async def send(
    bus: Bus,
    event: OutgoingEvent,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    attempts: int | None = None,
    retry_for: float | None = None,
    count: bool = True,
) -> PublishResult:
    """Publish ``event`` until the stream acknowledges it, retrying with the same
    ``Nats-Msg-Id`` (a duplicate ack counts as success) within the limits of the module
    docstring; ``attempts`` caps the number of sends and ``retry_for`` the seconds from the first
    send. ``count=False`` keeps the runtime's own publishes (dead letters) out of the publish
    metrics. A message over the server's ``max_payload`` fails at once."""
    started = time.monotonic()
    try:
        await prepare(bus, event)
    except EventError as exc:
        result = PublishResult(
            event.message_id,
            False,
            latency=0.0,
            attempts=0,
            error=f"failed: {exc}",
            outcome=Outcome.FAILED,
        )
    else:
        result = await _deliver(
            bus,
            event,
            _Attempts(started),
            timeout=timeout,
            attempts=attempts,
            retry_for=retry_for,
            count=count,
        )
    if not result.ok:
        if count:
            _count_failure(bus, result)
        log.warning("event %s to %s %s", event.message_id, event.subject, result.error)
    return result


# -- the pipeline ---------------------------------------------------------------------------------


@dataclass
class Publisher:
    """A publishing pipeline: at most ``window`` events in flight, each attempt with its own
    timeout, unacknowledged events retried like ``send`` (``attempts`` / ``retry_for`` cap it).

    ::

        async with Publisher(window=200) as pub:
            for i in range(10_000):
                await pub.publish("session.output", sid, {"n": i})
        print(pub.summary())

    Counters: ``ok`` (acknowledged), ``failed`` (certainly not stored), ``not_confirmed`` (may or
    may not be stored), ``unacknowledged`` (the last two together), ``duplicates``.

    ``bus`` is the connection of the runtime it publishes through: ``Runtime.publisher()`` sets
    it, and ``jelmore_infra.runtime.Publisher`` uses the default runtime's.
    """

    window: int = 256
    timeout: float = DEFAULT_TIMEOUT
    attempts: int | None = None
    bus: Bus | None = None
    keep_results: bool = True
    retry_for: float | None = None
    results: list[PublishResult] = field(default_factory=list)
    ok: int = 0
    failed: int = 0
    not_confirmed: int = 0
    duplicates: int = 0
    latencies: list[float] = field(default_factory=list)
    _slots: asyncio.Semaphore | None = None
    _tasks: set[asyncio.Task[PublishResult]] = field(default_factory=set)
    _in_flight: int = 0
    _idle: asyncio.Event | None = None
    _reported: tuple[int, int] = (0, 0)
    _subjects: set[str] = field(default_factory=set)  # subjects whose window was looked up

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError("window must be at least 1")

    def _bus(self) -> Bus:
        if self.bus is None:
            raise ValueError(
                "a Publisher needs a bus: use jelmore_infra.runtime.Publisher or"
                " Runtime.publisher()"
            )
        return self.bus

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.wait()

    @property
    def unacknowledged(self) -> int:
        """Events not acknowledged: failed plus not confirmed."""
        return self.failed + self.not_confirmed

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
        Invalid events (also those over the server's ``max_payload``) raise ``EventError`` at
        once."""
        event = await new_event(self._bus(), event_type, session_id, payload, headers, message_id)
        await self.send(event)
        return event.message_id

    async def send(self, event: OutgoingEvent) -> None:
        """Queue an already built event (``EventError`` when it exceeds the server's
        ``max_payload``). The first attempt is sent here and completed by a callback (no task per
        event); only an unacknowledged attempt spawns a retrying task."""
        bus = self._bus()
        if event.subject in self._subjects and bus.max_payload is not None:
            check_fits(bus, event)  # the hot path: connected, window read for this subject
        else:
            await prepare(bus, event)
            self._subjects.add(event.subject)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.window)
        await self._slots.acquire()
        self._in_flight += 1
        tried = _Attempts(time.monotonic())
        try:
            fut = await bus.publish_start(
                event.subject, event.data, event.headers, timeout=self.timeout
            )
        except (BusError, JetStreamAPIError) as exc:
            tried.record(exc, sent=False)
            self._retry(bus, event, tried)
            return
        except BaseException as exc:
            tried.record(exc, sent=False)
            self._finish(tried.result(event))
            raise
        fut.add_done_callback(lambda f: self._acked(bus, event, tried, f))

    def _acked(
        self, bus: Bus, event: OutgoingEvent, tried: _Attempts, fut: asyncio.Future[PubAck]
    ) -> None:
        if fut.cancelled():
            tried.record(BusError("publish cancelled"))
            self._finish(tried.result(event))
            return
        exc = fut.exception()
        if exc is None:
            ack = fut.result()
            latency = time.monotonic() - tried.started
            bus.metrics.record_publish(latency, duplicate=ack.duplicate)
            self._finish(PublishResult(event.message_id, True, ack.seq, ack.duplicate, latency))
            return
        tried.record(exc)
        self._retry(bus, event, tried)

    def _retry(self, bus: Bus, event: OutgoingEvent, tried: _Attempts) -> None:
        if tried.refused or self.attempts == 1:
            self._finish(tried.result(event))
            return
        task = asyncio.create_task(
            _deliver(
                bus,
                event,
                tried,
                timeout=self.timeout,
                attempts=self.attempts,
                retry_for=self.retry_for,
                count=True,
            )
        )
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._retried(event, tried, t))

    def _retried(
        self, event: OutgoingEvent, tried: _Attempts, task: asyncio.Task[PublishResult]
    ) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is not None:
            self._finish(tried.result(event))
        else:
            self._finish(task.result())

    def _finish(self, result: PublishResult) -> None:
        self._in_flight -= 1
        if self._slots is not None:
            self._slots.release()
        if result.ok:
            self.ok += 1
            self.latencies.append(result.latency)
            if result.duplicate:
                self.duplicates += 1
        else:
            _count_failure(self._bus(), result)
            if result.not_confirmed:
                self.not_confirmed += 1
            else:
                self.failed += 1
            log.debug("event %s %s", result.message_id, result.error)
        if self.keep_results:
            self.results.append(result)
        if self._in_flight == 0 and self._idle is not None:
            self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def wait(self) -> None:
        """Wait until every queued publish has finished (acknowledged, failed or not
        confirmed); logs one line when events were not acknowledged since the last wait."""
        while self._in_flight > 0:
            self._idle = asyncio.Event()
            await self._idle.wait()
        if (self.failed, self.not_confirmed) != self._reported:
            failed = self.failed - self._reported[0]
            unknown = self.not_confirmed - self._reported[1]
            self._reported = (self.failed, self.not_confirmed)
            log.warning(
                "%d event(s) not confirmed (they may or may not be stored), %d failed (not stored)",
                unknown,
                failed,
            )

    def summary(self) -> dict[str, Any]:
        from jelmore_infra.runtime.metrics import summarise

        return {
            "published": self.ok,
            "failed": self.failed,
            "not_confirmed": self.not_confirmed,
            "duplicates": self.duplicates,
            "ack_latency": summarise(self.latencies),
        }
