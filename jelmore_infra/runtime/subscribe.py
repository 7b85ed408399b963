"""Consuming events: ``subscribe_to_events`` and the ``Subscription`` it returns.

With a ``consumer_group`` the subscription binds to the group's provisioned durable pull consumer
(it never creates or changes consumers); every process subscribed to the group shares the work.
The group's policy (attempts, retry delays, dead-letter target, ack wait) is read from the server.
Per message:

* the handler ``async def handler(event: dict, msg) -> None`` runs while a heartbeat task sends
  ``in_progress()`` every ack_wait/3, so a still-working handler is never redelivered elsewhere
  (up to ``handler_timeout``, after which it is cancelled and the attempt counts as failed);
  ``event["retry_count"]`` says how many attempts came before this one;
* success → ``ack`` (with ``auto_ack``; otherwise the handler acks, naks or terms itself, and an
  event it leaves unacknowledged is redelivered after the group's ack_wait);
* failure with attempts left → ``nak(delay)`` with the group's next retry delay;
* failure on the last attempt (or ``PermanentError``, or a body that is not a JSON event) → the
  event is published to the DLQ (idempotently) and terminated with the reason; if the DLQ publish
  fails the message is handed back and the advisory router dead-letters it later.
* a handler raising ``SystemExit`` (``sys.exit()``) or ``KeyboardInterrupt`` is a failed attempt
  like any other (retried after the group's delay, or dead-lettered on the last attempt), and then
  the subscription stops gracefully (``wait()`` returns, ``exit_reason`` says why) instead of the
  exception tearing down the event loop with the event left unacknowledged until ack_wait.

Messages are fetched ``batch`` at a time, and never more than ``concurrency`` handlers run at
once. While handlers run, the next fetch waits until half the slots (of ``min(batch,
concurrency)``) are free: fetching whenever one slot freed pulled one message per request while
the handlers kept up.

Each group worker also runs the dead-letter router its runtime's groups share (see ``router``).

An encrypted event (header ``Jelmore-Encryption``, see ``crypto``) reaches the handler decrypted
with the runtime's keys. One that cannot be decrypted (unknown key id, failed authentication)
never reaches the handler: it is dead-lettered at once, still encrypted, with the reason
``cannot decrypt (key KID)`` and no retries. ``decrypt=False`` hands events over as stored.

Without a group an ephemeral consumer (in memory, removed on stop or after a short inactivity)
reads the subjects: a live tail for one process, with no retries and nothing left behind.

``stop()`` (or ``unsubscribe()``) stops fetching, hands messages fetched but not started back at
once (``nak`` without delay), lets running handlers finish (up to ``drain_timeout``) and unbinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jelmore_infra.catalogue.entry import schema_version_of
from jelmore_infra.errors import JelmoreError
from jelmore_infra.runtime.bus import BusError, BusUnavailable, PullHandle
from jelmore_infra.runtime.catalogue import (
    MISSING,
    NEEDS_READ,
    CatalogueMissing,
    schema_violation_reason,
)
from jelmore_infra.runtime.core import RuntimeCore
from jelmore_infra.runtime.crypto import DecryptError, open_event
from jelmore_infra.runtime.discovery import TopologyMissing, group_policy, stream_for
from jelmore_infra.runtime.dlq import HDR_TARGET_GROUP
from jelmore_infra.runtime.envelope import EventError, decode_event
from jelmore_infra.runtime.retry import (
    Action,
    GroupPolicy,
    PermanentError,
    RejectedEvent,
    decide,
    failure_reason,
    policy_from_consumer_info,
)
from jelmore_infra.runtime.router import DeadLetterRouter, dead_letter

log = logging.getLogger("jelmore_infra.runtime")

Handler = Callable[[dict[str, Any], Any], Awaitable[None]]

NS = 1_000_000_000
EPHEMERAL_INACTIVE = 15.0
EPHEMERAL_ACK_WAIT = 30.0
#: seconds between re-reads of a group's policy from the server
POLICY_REFRESH = 30.0


class HandlerTimeout(Exception):
    """A handler ran longer than ``handler_timeout``: it was cancelled and counts as a failure."""


class SubscriptionError(JelmoreError):
    """The subjects or group given to ``subscribe_to_events`` do not fit the topology."""


class Subscription:
    """A running consumer: a fetch loop feeding at most ``concurrency`` handler tasks."""

    def __init__(
        self,
        runtime: RuntimeCore,
        handler: Handler,
        *,
        stream: str,
        consumer: str,
        policy: GroupPolicy | None,
        auto_ack: bool,
        batch: int,
        concurrency: int,
        fetch_timeout: float,
        drain_timeout: float,
        ephemeral: bool,
        ack_wait: float,
        handler_timeout: float | None = None,
        decrypt: bool = True,
    ) -> None:
        self.runtime = runtime
        self.decrypt = decrypt
        self.bus = runtime.bus
        self.metrics = runtime.metrics
        self.handler = handler
        self.stream = stream
        self.consumer = consumer
        self.policy = policy
        self.auto_ack = auto_ack
        self.batch = max(1, batch)
        self.concurrency = max(1, concurrency)
        self.fetch_timeout = fetch_timeout
        #: free slots wanted before the next fetch while handlers are running
        self._refill_at = max(1, min(batch, concurrency) // 2)
        self.drain_timeout = drain_timeout
        self.ephemeral = ephemeral
        self.ack_wait = ack_wait
        self.handler_timeout = handler_timeout
        self.handled = 0
        self.failed = 0
        self._handle: PullHandle | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._active: set[asyncio.Task[None]] = set()
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._router: DeadLetterRouter | None = None
        self._policy_read = time.monotonic()
        #: Messages whose handler is running: id → (message, start time), for the heartbeats.
        self._working: dict[int, tuple[Any, float, asyncio.Task[Any] | None]] = {}
        #: Ids of messages whose handler the watchdog cancelled for running too long.
        self._overdue: set[int] = set()
        self._warned_catalogue = False
        self._heartbeat_task: asyncio.Task[None] | None = None
        #: Why the subscription stopped itself: a handler raised SystemExit/KeyboardInterrupt.
        self.exit_reason: str | None = None
        self._exit_task: asyncio.Task[None] | None = None

    @property
    def consumer_group(self) -> str | None:
        return None if self.ephemeral else self.consumer

    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the subscription runs in (``None`` before it started)."""
        return self._loop_task.get_loop() if self._loop_task is not None else None

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._stopping

    async def start(self, *, with_router: bool) -> None:
        if self.policy is not None:
            await self.bus.catalogue.load()  # a group validates: CatalogueMissing without one
        self._handle = await self.bus.bind(self.stream, self.consumer)
        self.runtime.track(self)
        if with_router:
            self._router = await self.runtime.acquire_router()
        self._loop_task = asyncio.create_task(self._run(), name=f"jelmore-sub-{self.consumer}")
        self._heartbeat_task = asyncio.create_task(
            self._heartbeats(), name=f"jelmore-heartbeat-{self.consumer}"
        )

    async def wait(self) -> None:
        """Wait until the subscription has stopped."""
        await self._stopped.wait()

    async def unsubscribe(self) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop gracefully: no new fetches, unstarted messages handed back at once, running
        handlers given ``drain_timeout`` seconds, then unbind (and delete an ephemeral consumer)."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self._slot_free.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._active:
            _done, pending = await asyncio.wait(set(self._active), timeout=self.drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
        if self._handle is not None:
            await self._handle.unsubscribe()
        if self.ephemeral:
            with contextlib.suppress(JelmoreError, BusError):
                await self.bus.delete_consumer(self.stream, self.consumer)
        if self._router is not None:
            self._router = None
            await self.runtime.release_router()
        self.runtime.untrack(self)
        self._stopped.set()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the fetch loop ---------------------------------------------------------------------

    async def _refresh_policy(self) -> None:
        """Re-read the group's policy (an apply may have changed delays or the DLQ target)."""
        self._policy_read = time.monotonic()
        if self.policy is None:
            return
        try:
            info = await self.bus.consumer_info(self.stream, self.consumer)
        except (JelmoreError, BusError):
            return
        if info is None:
            log.error(
                "consumer group %s no longer exists on stream %s: run `jelmore-infra apply`",
                self.consumer,
                self.stream,
            )
            return
        self.policy = policy_from_consumer_info(info)
        self.ack_wait = self.policy.ack_wait

    async def _run(self) -> None:
        assert self._handle is not None
        failures = 0
        while not self._stopping:
            if time.monotonic() - self._policy_read > POLICY_REFRESH:
                await self._refresh_policy()
            free = self.concurrency - len(self._active)
            if free <= 0 or (self._active and free < self._refill_at):
                # Fetch when a good share of the slots is free: fetching as soon as one frees
                # would pull one message per request while the handlers keep up.
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                msgs = await self._handle.fetch(min(self.batch, free), timeout=self.fetch_timeout)
                failures = 0
            except BusUnavailable as exc:
                failures += 1
                if failures == 1:
                    log.error("%s: %s", self.consumer, exc)
                if self.ephemeral and await self._recreate_ephemeral():
                    continue
                await asyncio.sleep(min(0.5 * failures, 5.0))
                continue
            except BusError as exc:
                failures += 1
                if failures == 1:
                    log.warning("%s: %s", self.consumer, exc)
                await asyncio.sleep(min(0.2 * failures, 2.0))
                continue
            except Exception as exc:  # never let an unexpected client error end the loop
                failures += 1
                if failures == 1:
                    log.error("%s: fetch failed: %s: %s", self.consumer, type(exc).__name__, exc)
                await asyncio.sleep(min(0.5 * failures, 5.0))
                continue
            for msg in msgs:
                if self._stopping:
                    await self._hand_back(msg)
                    continue
                task = asyncio.create_task(self._process(msg))
                self._active.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._active.discard(task)
        if self.concurrency - len(self._active) >= self._refill_at:
            self._slot_free.set()  # wake the fetch loop only when it will fetch

    async def _hand_back(self, msg: Any) -> None:
        self.metrics.nacked_on_stop += 1
        with contextlib.suppress(Exception):
            await msg.nak()

    async def _recreate_ephemeral(self) -> bool:
        """An ephemeral consumer removed by the server (inactivity): create a fresh one."""
        try:
            info = await self.bus.consumer_info(self.stream, self.consumer)
            if info is None:
                config = _ephemeral_config(self.consumer, self._filters, "new", self.ack_wait)
                await self.bus.create_consumer(self.stream, config)
                self._handle = await self.bus.bind(self.stream, self.consumer)
            return True
        except (JelmoreError, BusError):
            return False

    _filters: Sequence[str] = ()

    # -- one message --------------------------------------------------------------------------

    async def _process(self, msg: Any) -> None:
        try:
            meta = msg.metadata
            num_delivered = int(meta.num_delivered)
            stream_seq = int(meta.sequence.stream)
        except Exception:  # not a JetStream message; nothing to ack
            return
        target = (msg.headers or {}).get(HDR_TARGET_GROUP)
        if target and not self.ephemeral and target != self.consumer:
            # a dead-letter replay meant for another group: nothing to do here
            with contextlib.suppress(Exception):
                await msg.ack()
            return
        exc: BaseException | None = None
        event: dict[str, Any] = {}
        try:
            event = decode_event(msg.data)
            if self.decrypt:
                event = open_event(event, msg.headers, self.runtime.settings.encryption_keys)
        except EventError as err:
            exc = PermanentError(str(err))
        except DecryptError as err:
            exc = err
        if exc is None and self.policy is not None:
            exc = await self._check_schema(event, msg)
        self.metrics.record_consumed(str(event.get("event_type", "")), num_delivered)
        with contextlib.suppress(Exception):
            self.metrics.record_delivery_delay(time.time() - meta.timestamp.timestamp())
        if exc is None and num_delivered > 1:
            # the seed's retry_count: attempts before this one (plus any a DLQ replay carried)
            event["retry_count"] = int(event.get("retry_count") or 0) + num_delivered - 1
        started = time.monotonic()
        if exc is None:
            self._working[id(msg)] = (msg, started, asyncio.current_task())
            try:
                await self.handler(event, msg)
            except asyncio.CancelledError:
                self._working.pop(id(msg), None)
                if id(msg) in self._overdue:
                    # the watchdog stopped a handler over its time limit: a failed attempt
                    self._overdue.discard(id(msg))
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                    exc = HandlerTimeout(f"handler did not finish within {self.handler_timeout:g}s")
                else:
                    # stopped while running: hand the event back so another worker takes it now
                    await self._hand_back(msg)
                    raise
            except Exception as err:  # any handler failure is a failed attempt
                exc = err
            except (SystemExit, KeyboardInterrupt) as err:
                # sys.exit() or Ctrl-C inside a handler: a failed attempt, then a clean stop
                exc = err
            finally:
                self._working.pop(id(msg), None)
        self.metrics.record_handled(time.monotonic() - started, ok=exc is None)
        if exc is None:
            self.handled += 1
            if self.auto_ack and not msg.is_acked:
                with contextlib.suppress(Exception):
                    await msg.ack()
            return
        self.failed += 1
        if msg.is_acked:
            log.warning(
                "%s: handler failed after acknowledging event %d: %s",
                self.consumer,
                stream_seq,
                failure_reason(exc),
            )
        else:
            await self._failed(msg, exc, num_delivered, stream_seq)
        if isinstance(exc, SystemExit | KeyboardInterrupt):
            self._stop_on_exit(exc, stream_seq)

    async def _check_schema(self, event: dict[str, Any], msg: Any) -> RejectedEvent | None:
        """A consumer group's check before the handler: the payload against the schema version
        its message names (:mod:`jelmore_infra.runtime.catalogue`)."""
        event_type = str(event.get("event_type") or "")
        version = schema_version_of(msg.headers)
        catalogue = self.bus.catalogue
        payload = event.get("payload")
        try:
            problem = catalogue.violation_now(event_type, version, payload)
            if problem is NEEDS_READ:
                problem = await catalogue.violation(event_type, version, payload)
        except CatalogueMissing:
            if not self._warned_catalogue:
                self._warned_catalogue = True
                log.warning("%s: %s; events are not validated", self.consumer, MISSING)
            return None
        return None if problem is None else RejectedEvent(schema_violation_reason(problem))

    def _stop_on_exit(self, exc: BaseException, stream_seq: int) -> None:
        """A handler asked the process to exit: stop this subscription (in its own task: ``stop``
        waits for the running handlers, this one included) and say so in one line."""
        if self.exit_reason is not None:
            return
        self.exit_reason = failure_reason(exc)
        log.error(
            "%s: handler raised %s on event %d: a failed attempt; the subscription stops",
            self.consumer,
            self.exit_reason,
            stream_seq,
        )
        self._exit_task = asyncio.create_task(
            self._stop_after_exit(), name=f"jelmore-stop-{self.consumer}"
        )

    async def _stop_after_exit(self) -> None:
        try:
            await self.stop()
        except Exception as exc:  # nobody awaits this task: report in one line, no traceback
            log.error("%s: stopping failed: %s", self.consumer, failure_reason(exc))

    async def _failed(
        self, msg: Any, exc: BaseException, num_delivered: int, stream_seq: int
    ) -> None:
        reason = str(exc) if isinstance(exc, DecryptError) else failure_reason(exc)
        if self.policy is None:  # ephemeral tail: no retries, no DLQ
            log.warning("%s: handler failed on event %d: %s", self.consumer, stream_seq, reason)
            with contextlib.suppress(Exception):
                await self.bus.term(msg, reason)
            return
        decision = decide(num_delivered, self.policy.max_deliver, self.policy.retry_delays, exc)
        if decision.action is Action.RETRY:
            self.metrics.retries_scheduled += 1
            with contextlib.suppress(Exception):
                await msg.nak(delay=decision.delay)
            return
        try:
            ok = await dead_letter(
                self.bus,
                self.policy,
                subject=msg.subject,
                data=msg.data,
                headers=dict(msg.headers or {}),
                stream_seq=stream_seq,
                num_delivered=num_delivered,
                reason=reason,
                original_time=None,
            )
        except JelmoreError as err:
            log.warning("%s: dead-lettering event %d failed: %s", self.consumer, stream_seq, err)
            ok = False
        if ok:
            with contextlib.suppress(Exception):
                await self.bus.term(msg, reason)
        else:
            # Hand it back: on the last attempt the server's max-deliveries advisory lets the
            # router dead-letter it; a PermanentError before that gets a normal retry.
            with contextlib.suppress(Exception):
                await msg.nak(delay=decision.delay or None)

    async def _heartbeats(self) -> None:
        """Watch the running handlers: heartbeats and the time limit.

        Every handler still running gets ``in_progress`` so the server never redelivers its
        event to another worker meanwhile, and a handler over ``handler_timeout`` is cancelled
        (the attempt counts as failed). One loop for the whole subscription instead of a task
        and a timer per message: it wakes every ``ack_wait / 3`` (sooner when the time limit is
        short), so the first heartbeat goes out well before the ack deadline.
        """
        while True:
            limit = self.handler_timeout
            interval = max(min(self.ack_wait / 3, limit / 4 if limit else math.inf), 0.05)
            await asyncio.sleep(interval)
            now = time.monotonic()
            for key, (msg, started, task) in list(self._working.items()):
                running = now - started
                if limit is not None and running >= limit and task is not None:
                    if key not in self._overdue:
                        self._overdue.add(key)
                        task.cancel()
                    continue
                if running < interval or msg.is_acked:
                    continue
                try:
                    await msg.in_progress()
                except Exception:  # a lost heartbeat only risks a redelivery
                    continue


def _ephemeral_config(
    name: str, filters: Sequence[str], deliver: str, ack_wait: float
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "deliver_policy": deliver,
        "ack_policy": "explicit",
        "ack_wait": int(ack_wait * NS),
        "max_deliver": -1,
        "max_ack_pending": 1000,
        "inactive_threshold": int(EPHEMERAL_INACTIVE * NS),
        "mem_storage": True,
        "num_replicas": 1,
    }
    if len(filters) == 1:
        config["filter_subject"] = filters[0]
    elif filters:
        config["filter_subjects"] = list(filters)
    return config


async def subscribe_to_events(
    runtime: RuntimeCore,
    subjects: Sequence[str] | str | None,
    handler: Handler,
    consumer_group: str | None = None,
    auto_ack: bool = True,
    *,
    batch: int = 100,
    concurrency: int = 100,
    fetch_timeout: float = 0.5,
    drain_timeout: float = 10.0,
    deliver: str = "new",
    route_dead_letters: bool = True,
    handler_timeout: float | None = 300.0,
    decrypt: bool = True,
) -> Subscription:
    """Start consuming and return the running ``Subscription``.

    With ``consumer_group``: bind to that group's durable consumer; ``subjects`` may be ``None`` or
    must equal the group's filter subjects (a group cannot be narrowed without losing events).
    Without: an ephemeral consumer on ``subjects`` (``deliver`` = ``"new"`` or ``"all"``).
    ``decrypt=False``: encrypted events reach the handler as stored (for display tools).
    """
    bus = runtime.bus
    wanted = [subjects] if isinstance(subjects, str) else list(subjects or [])
    if consumer_group:
        policy = await group_policy(bus, consumer_group)
        if wanted and sorted(set(wanted)) != sorted(set(policy.filter_subjects)):
            raise SubscriptionError(
                f"consumer group {consumer_group} receives {', '.join(policy.filter_subjects)};"
                f" subjects {', '.join(wanted)} differ (pass no subjects, or subscribe without a"
                " group to read other subjects)"
            )
        sub = Subscription(
            runtime,
            handler,
            stream=policy.stream,
            consumer=consumer_group,
            policy=policy,
            auto_ack=auto_ack,
            batch=batch,
            concurrency=concurrency,
            fetch_timeout=fetch_timeout,
            drain_timeout=drain_timeout,
            ephemeral=False,
            ack_wait=policy.ack_wait,
            handler_timeout=handler_timeout,
            decrypt=decrypt,
        )
        await sub.start(with_router=route_dead_letters)
        return sub
    if not wanted:
        wanted = [bus.settings.main_subjects()]
    if deliver not in ("new", "all"):
        raise SubscriptionError(f"deliver must be 'new' or 'all', got {deliver!r}")
    streams = {await stream_for(bus, s) for s in wanted}
    if len(streams) > 1:
        raise SubscriptionError(
            f"subjects {', '.join(wanted)} are in different streams ({', '.join(sorted(streams))})"
        )
    stream = streams.pop()
    name = f"tail-{uuid.uuid4().hex[:12]}"
    try:
        await bus.create_consumer(
            stream, _ephemeral_config(name, wanted, deliver, EPHEMERAL_ACK_WAIT)
        )
    except JelmoreError as exc:
        raise TopologyMissing(f"cannot read {', '.join(wanted)} from {stream}: {exc}") from None
    sub = Subscription(
        runtime,
        handler,
        stream=stream,
        consumer=name,
        policy=None,
        auto_ack=auto_ack,
        batch=batch,
        concurrency=concurrency,
        fetch_timeout=fetch_timeout,
        drain_timeout=drain_timeout,
        ephemeral=True,
        ack_wait=EPHEMERAL_ACK_WAIT,
        handler_timeout=handler_timeout,
        decrypt=decrypt,
    )
    sub._filters = tuple(wanted)
    try:
        await sub.start(with_router=False)
    except BaseException:
        with contextlib.suppress(Exception):
            await bus.delete_consumer(stream, name)
        raise
    return sub
