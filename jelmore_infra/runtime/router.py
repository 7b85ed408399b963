"""Dead-lettering, and the advisory router: the safety net that moves events to the DLQ when the
worker holding their last delivery attempt died or hung.

``dead_letter`` publishes one failed event to its group's DLQ subject with the idempotency key
``dlq-<stream>-<consumer>-<stream_seq>``. Workers call it on the final failed attempt (with the
handler's exception as the reason) before terminating the message.

The server sends ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`` when a
message has used up its attempts without an ack. The topology captures these advisories in a stream
(``JELMORE_ADVISORIES``), so none is lost while no router runs. ``DeadLetterRouter`` reads that
stream through the durable pull consumer ``dlq_router`` (every worker process of a consumer group
runs one, sharing the work; ``jelmore-infra events dlq route`` runs one alone), fetches the
original event by sequence and dead-letters it with the same key: if the worker already did, the
DLQ's duplicate window drops the second copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from jelmore_infra.errors import JelmoreError, JetStreamAPIError
from jelmore_infra.runtime.bus import Bus, BusError, PullHandle
from jelmore_infra.runtime.discovery import (
    ROUTER_CONSUMER,
    advisory_stream,
    main_stream,
)
from jelmore_infra.runtime.dlq import ROUTER_FAILURE_REASON, build_dead_letter
from jelmore_infra.runtime.envelope import OutgoingEvent
from jelmore_infra.runtime.publish import send
from jelmore_infra.runtime.retry import GroupPolicy, policy_from_consumer_info

log = logging.getLogger("jelmore_infra.runtime")

HDR_EXPECTED_STREAM = "Nats-Expected-Stream"
#: seconds a group's policy is cached by the router
POLICY_TTL = 30.0
MAX_DELIVER_TYPE = "io.nats.jetstream.advisory.v1.max_deliver"


async def dead_letter(
    bus: Bus,
    policy: GroupPolicy,
    *,
    subject: str,
    data: bytes,
    headers: dict[str, str] | None,
    stream_seq: int,
    num_delivered: int,
    reason: str,
    original_time: datetime | None = None,
) -> bool:
    """Publish one event to the group's DLQ; ``True`` when the DLQ stored it (or had it already)."""
    dlq_subject = policy.dead_letter_subject_for(subject)
    if dlq_subject is None:
        log.error(
            "consumer group %s has no dead-letter subject (metadata): event %s of %s not"
            " dead-lettered",
            policy.consumer,
            stream_seq,
            policy.stream,
        )
        return False
    record = build_dead_letter(
        dlq_subject=dlq_subject,
        original_subject=subject,
        original_data=data,
        original_headers=headers,
        stream=policy.stream,
        consumer=policy.consumer,
        stream_seq=stream_seq,
        num_delivered=num_delivered,
        failure_reason=reason,
        now=datetime.now(UTC),
        original_time=original_time,
    )
    out_headers = dict(record.headers)
    if policy.dead_letter_stream:
        out_headers[HDR_EXPECTED_STREAM] = policy.dead_letter_stream
    event = OutgoingEvent(record.subject, record.data, out_headers, record.message_id, "", "")
    result = await send(bus, event, timeout=2.0, attempts=3, count=False)
    if not result.ok:
        bus.metrics.dead_letter_errors += 1
        return False
    if not result.duplicate:
        bus.metrics.dead_lettered += 1
    return True


class DeadLetterRouter:
    """Routes max-deliveries advisories (captured in a stream) to the dead-letter queue."""

    def __init__(
        self,
        bus: Bus,
        *,
        stream: str | None = None,
        consumer: str = ROUTER_CONSUMER,
        batch: int = 20,
        fetch_timeout: float = 0.5,
    ) -> None:
        self.bus = bus
        self.stream = stream
        self.consumer = consumer
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.routed = 0
        self.skipped = 0
        self._handle: PullHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._policies: dict[tuple[str, str], tuple[float, GroupPolicy]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def resolve(self) -> bool:
        """Find the advisory stream and bind to the router consumer; ``False`` when the topology
        has no safety net (one warning is logged)."""
        try:
            if self.stream is None:
                events = await main_stream(self.bus)
                self.stream = await advisory_stream(self.bus, events)
            if self.stream is None:
                log.warning(
                    "dead-letter safety net not provisioned (no stream captures max-deliveries"
                    " advisories): run `jelmore-infra apply`"
                )
                return False
            if await self.bus.consumer_info(self.stream, self.consumer) is None:
                log.warning(
                    "dead-letter safety net not provisioned (no consumer %s on stream %s):"
                    " run `jelmore-infra apply`",
                    self.consumer,
                    self.stream,
                )
                return False
        except (JelmoreError, BusError) as exc:
            log.warning("dead-letter router not started: %s", exc)
            return False
        self._handle = await self.bus.bind(self.stream, self.consumer)
        return True

    async def start(self) -> bool:
        if self._task is not None:
            return True
        if not await self.resolve():
            return False
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._route_loop(), name="jelmore-dlq-router")
        return True

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._handle is not None:
            await self._handle.unsubscribe()
            self._handle = None

    async def run(self, duration: float | None = None) -> None:
        """Route until cancelled (or for ``duration`` seconds)."""
        if not await self.start():
            raise JelmoreError("dead-letter router cannot run: the topology has no safety net")
        try:
            if duration is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(duration)
        finally:
            await self.stop()

    async def route_once(self) -> int:
        """Route what is waiting now (one fetch); returns how many advisories were handled."""
        if self._handle is None and not await self.resolve():
            return 0
        assert self._handle is not None
        msgs = await self._handle.fetch(self.batch, timeout=self.fetch_timeout)
        for msg in msgs:
            await self._handle_one(msg)
        return len(msgs)

    async def _route_loop(self) -> None:
        assert self._handle is not None
        failures = 0
        while not self._stopping:
            try:
                msgs = await self._handle.fetch(self.batch, timeout=self.fetch_timeout)
                failures = 0
            except Exception as exc:  # BusError, or an unexpected client error: keep routing
                failures += 1
                if failures == 1:
                    log.warning("dead-letter router: %s", exc)
                await asyncio.sleep(min(0.5 * failures, 5.0))
                continue
            for msg in msgs:
                try:
                    await self._handle_one(msg)
                except Exception as exc:
                    log.warning("dead-letter router: advisory not routed yet: %s", exc)
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=2.0)

    async def _policy(self, stream: str, consumer: str) -> GroupPolicy | None:
        key = (stream, consumer)
        cached = self._policies.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < POLICY_TTL:
            return cached[1]
        info = await self.bus.consumer_info(stream, consumer)
        if info is None:
            return None
        policy = policy_from_consumer_info(info)
        self._policies[key] = (now, policy)
        return policy

    async def _handle_one(self, msg: Any) -> None:
        try:
            adv = json.loads(msg.data)
            stream = str(adv["stream"])
            consumer = str(adv["consumer"])
            seq = int(adv["stream_seq"])
            deliveries = int(adv.get("deliveries") or 0)
        except (ValueError, KeyError, TypeError):
            self.skipped += 1
            await msg.ack()
            return
        if adv.get("type") not in (None, MAX_DELIVER_TYPE):
            self.skipped += 1
            await msg.ack()
            return
        policy = await self._policy(stream, consumer)
        if policy is None or not policy.dead_letter_subject:
            # not a consumer group (an ephemeral tail, a replay, or a consumer deleted since)
            self.skipped += 1
            await msg.ack()
            return
        stored = await self.bus.get_message(stream, seq)
        if stored is None:
            log.error(
                "event %d of stream %s reached max deliveries in group %s but is no longer in"
                " the stream (removed by its limits): it cannot be dead-lettered",
                seq,
                stream,
                consumer,
            )
            self.skipped += 1
            await msg.ack()
            return
        try:
            ok = await dead_letter(
                self.bus,
                policy,
                subject=stored.subject,
                data=stored.data,
                headers=stored.headers,
                stream_seq=seq,
                num_delivered=deliveries or max(policy.max_deliver, 1),
                reason=ROUTER_FAILURE_REASON,
                original_time=stored.time,
            )
        except JetStreamAPIError as exc:
            log.warning("dead-letter router: %s", exc)
            ok = False
        if ok:
            self.routed += 1
            self.bus.metrics.routed_from_advisories += 1
            await msg.ack()
        else:
            await msg.nak(delay=2.0)
