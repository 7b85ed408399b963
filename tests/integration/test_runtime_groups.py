"""Consumer groups against a real server: binding, sharing, acks, graceful stop, ephemeral tails,
retries at the delays read from the server, and the dead-letter queue (issue 5 part 8a).

Test groups are provisioned with scaled-down delays (metadata ``300ms,600ms,1200ms``) and short
ack waits; the runtime reads them from the server exactly like the production ``2s,4s,8s``.
Tolerance for retry timing: each gap between attempts is at least its configured delay minus
50 ms (the server never redelivers a ``nak(delay)`` early) and less than the delay plus 1.5 s.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import nats
import pytest

from jelmore_infra import runtime
from jelmore_infra.runtime import metrics
from jelmore_infra.runtime.dlq import REQUIRED_FIELDS, ROUTER_FAILURE_REASON
from tests.support.natsserver import NatsServer
from tests.support.runtime_topology import (
    add_group_async,
    consumer_names,
    consumer_state,
    provision_async,
    stream_messages,
    wait_until,
)


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:6]}"


async def dlq_records(url: str, group: str) -> list[dict[str, Any]]:
    found = []
    for msg in await stream_messages(url, "JELMORE_DLQ"):
        if msg["subject"].startswith(f"jelmore.dlq.{group}."):
            found.append({**json.loads(msg["data"]), "_headers": msg["headers"], **msg})
    return found


async def test_a_handler_that_always_fails_gets_three_attempts_at_the_configured_delays_then_one_dlq_event(
    url: str,
) -> None:
    group = unique("always_fails")
    await add_group_async(
        url, group, ["jelmore.session.failed"], retry_delays="300ms,600ms,1200ms", ack_wait="5s"
    )
    session = uuid.uuid4().hex
    attempts: list[tuple[float, int]] = []
    loop = asyncio.get_running_loop()

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            attempts.append((loop.time(), msg.metadata.num_delivered))
            raise ConnectionError("Connection timeout")

    sub = await runtime.subscribe_to_events(None, handler, consumer_group=group)
    try:
        assert await runtime.publish_event(
            "session.failed", session, {"provider": "claude"}, headers={"Priority": "high"}
        )
        await wait_until(lambda: len(attempts) >= 3)
        await wait_until(lambda: dlq_records(url, group), limit=10)
        await asyncio.sleep(2.0)  # longer than any delay: a 4th attempt would show up here
    finally:
        await sub.stop()

    assert [n for _, n in attempts] == [1, 2, 3]
    gaps = [attempts[1][0] - attempts[0][0], attempts[2][0] - attempts[1][0]]
    for gap, delay in zip(gaps, (0.3, 0.6), strict=True):
        assert delay - 0.05 <= gap < delay + 1.5, (gaps, delay)

    records = await dlq_records(url, group)
    assert len(records) == 1
    record = records[0]
    for name in REQUIRED_FIELDS:
        assert name in record, name
    assert record["event_type"] == "session.failed"
    assert record["session_id"] == session
    assert record["original_subject"] == "jelmore.session.failed"
    assert record["failure_reason"] == "ConnectionError: Connection timeout"
    assert record["retry_count"] == 3
    assert record["payload"] == {"provider": "claude"}
    assert record["consumer_group"] == group
    assert record["dlq_timestamp"].endswith("Z")
    assert record["_headers"]["Nats-Msg-Id"] == f"dlq-JELMORE-{group}-{record['stream_seq']}"
    assert record["_headers"]["Priority"] == "high"
    assert record["subject"] == f"jelmore.dlq.{group}.jelmore.session.failed"
    state = await consumer_state(url, "JELMORE", group)
    assert state is not None
    assert state["num_ack_pending"] == 0  # terminated, not left waiting
    assert state["num_redelivered"] == 0
    # terminated with the reason: no max-deliveries advisory, so the router has nothing to add
    advisories = [
        json.loads(m["data"])
        for m in await stream_messages(url, "JELMORE_ADVISORIES")
        if m["subject"].endswith(f".{group}")
    ]
    assert advisories == []
    snap = metrics.METRICS.snapshot()
    assert snap["consume"]["dead_lettered"] == 1
    assert snap["consume"]["retries_scheduled"] == 2


async def test_routing_the_same_failed_event_twice_stores_it_once(url: str) -> None:
    group = unique("route_twice")
    await add_group_async(url, group, ["jelmore.session.status"], retry_delays="100ms")
    session = uuid.uuid4().hex

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            raise runtime.PermanentError("bad input")

    sub = await runtime.subscribe_to_events(None, handler, consumer_group=group)
    try:
        await runtime.publish_event("session.status", session, {"state": "x"})
        await wait_until(lambda: dlq_records(url, group))
    finally:
        await sub.stop()
    [record] = await dlq_records(url, group)
    assert record["retry_count"] == 1  # PermanentError: no retries
    # the router receives a (synthetic) max-deliveries advisory for the same event
    advisory = {
        "type": "io.nats.jetstream.advisory.v1.max_deliver",
        "stream": "JELMORE",
        "consumer": group,
        "stream_seq": record["stream_seq"],
        "deliveries": 3,
    }
    nc = await nats.connect(url)
    try:
        await nc.publish(
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JELMORE.{group}",
            json.dumps(advisory).encode(),
        )
        await nc.flush()
    finally:
        await nc.close()
    router = runtime.DeadLetterRouter(runtime.default_runtime().bus)
    routed = 0
    for _ in range(20):
        routed += await router.route_once()
        if router.routed:
            break
    await router.stop()
    assert router.routed == 1  # the DLQ acknowledged it …
    records = await dlq_records(url, group)
    assert len(records) == 1  # … as a duplicate: still one copy
    assert records[0]["failure_reason"] == "PermanentError: bad input"


async def test_a_body_that_is_not_a_json_event_is_dead_lettered_at_once(url: str) -> None:
    group = unique("not_json")
    await add_group_async(url, group, ["jelmore.session.git_activity"])
    seen: list[Any] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        seen.append(event)

    sub = await runtime.subscribe_to_events(None, handler, consumer_group=group)
    try:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.publish("jelmore.session.git_activity", b"not json at all")
        await nc.close()
        await wait_until(lambda: dlq_records(url, group))
    finally:
        await sub.stop()
    [record] = await dlq_records(url, group)
    assert seen == []
    assert record["payload"] == "not json at all"
    assert record["failure_reason"].startswith("PermanentError: message is not a JSON event")


async def test_a_missing_consumer_group_is_a_clear_error(url: str) -> None:
    async def handler(event: dict[str, Any], msg: Any) -> None:
        pass

    with pytest.raises(runtime.TopologyMissing) as info:
        await runtime.subscribe_to_events(None, handler, consumer_group="no_such_group")
    assert str(info.value) == (
        "consumer group no_such_group does not exist on stream JELMORE: run `jelmore-infra apply`"
    )
    assert "no_such_group" not in await consumer_names(url, "JELMORE")


async def test_subjects_that_differ_from_the_groups_filter_are_refused(url: str) -> None:
    async def handler(event: dict[str, Any], msg: Any) -> None:
        pass

    with pytest.raises(runtime.SubscriptionError, match="file_watchers receives"):
        await runtime.subscribe_to_events(
            ["jelmore.session.created"], handler, consumer_group="file_watchers"
        )
    sub = await runtime.subscribe_to_events(
        ["jelmore.session.file_modified", "jelmore.session.directory_changed"],
        handler,
        consumer_group="file_watchers",
    )
    await sub.stop()


async def test_binding_to_a_group_never_changes_its_consumer(url: str) -> None:
    before = await consumer_state(url, "JELMORE", "git_monitors")

    async def handler(event: dict[str, Any], msg: Any) -> None:
        pass

    sub = await runtime.subscribe_to_events(None, handler, consumer_group="git_monitors")
    await sub.stop()
    after = await consumer_state(url, "JELMORE", "git_monitors")
    assert before is not None and after is not None
    assert after["config"] == before["config"]
    assert after["created"] == before["created"]


async def test_two_workers_of_one_group_share_the_events_without_duplicates(url: str) -> None:
    group = unique("shared")
    await add_group_async(url, group, ["jelmore.session.output"])
    session = uuid.uuid4().hex
    got: dict[str, list[str]] = {"a": [], "b": []}

    def make(name: str) -> Any:
        async def handler(event: dict[str, Any], msg: Any) -> None:
            if event["session_id"] == session:
                got[name].append(event["message_id"])
                await asyncio.sleep(0.002)

        return handler

    sub_a = await runtime.subscribe_to_events(None, make("a"), consumer_group=group, batch=5)
    sub_b = await runtime.subscribe_to_events(None, make("b"), consumer_group=group, batch=5)
    results = await runtime.publish_events(
        [
            {"event_type": "session.output", "session_id": session, "payload": {"i": i}}
            for i in range(400)
        ]
    )
    try:
        await wait_until(lambda: len(got["a"]) + len(got["b"]) >= 400)
    finally:
        await sub_a.stop()
        await sub_b.stop()
    published = {r.message_id for r in results if r.ok}
    assert len(published) == 400
    assert sorted(got["a"] + got["b"]) == sorted(published)
    assert got["a"] and got["b"]


async def test_manual_acks_are_left_to_the_handler(url: str) -> None:
    group = unique("manual")
    await add_group_async(url, group, ["jelmore.session.completed"], ack_wait="1s")
    session = uuid.uuid4().hex
    deliveries: list[int] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] != session:
            await msg.ack()
            return
        deliveries.append(msg.metadata.num_delivered)
        if msg.metadata.num_delivered == 2:
            await msg.ack()
        # the first time: return without acking → redelivered after ack_wait

    sub = await runtime.subscribe_to_events(None, handler, consumer_group=group, auto_ack=False)
    try:
        await runtime.publish_event("session.completed", session, {})
        await wait_until(lambda: len(deliveries) >= 2)
        await wait_until(
            lambda: _ack_pending_is(url, group, 0),
        )
    finally:
        await sub.stop()
    assert deliveries == [1, 2]


async def _ack_pending_is(url: str, group: str, value: int) -> bool:
    state = await consumer_state(url, "JELMORE", group)
    return state is not None and state["num_ack_pending"] == value and state["num_pending"] == 0


async def test_a_handler_still_working_is_not_redelivered_to_another_worker(url: str) -> None:
    group = unique("long_handler")
    await add_group_async(url, group, ["jelmore.session.directory_changed"], ack_wait="1500ms")
    session = uuid.uuid4().hex
    calls: list[tuple[str, int]] = []

    def make(name: str) -> Any:
        async def handler(event: dict[str, Any], msg: Any) -> None:
            if event["session_id"] == session:
                calls.append((name, msg.metadata.num_delivered))
                await asyncio.sleep(3.5)  # more than twice the ack wait

        return handler

    sub_a = await runtime.subscribe_to_events(None, make("a"), consumer_group=group)
    sub_b = await runtime.subscribe_to_events(None, make("b"), consumer_group=group)
    try:
        await runtime.publish_event("session.directory_changed", session, {"path": "/x"})
        await wait_until(lambda: calls)
        await wait_until(lambda: _ack_pending_is(url, group, 0), limit=10)
        await asyncio.sleep(1.6)  # past another ack wait: nothing more may arrive
    finally:
        await sub_a.stop()
        await sub_b.stop()
    assert len(calls) == 1
    assert calls[0][1] == 1


async def test_stopping_hands_a_running_event_back_at_once(url: str) -> None:
    group = unique("handback")
    # ack_wait 30s: a redelivery within the test can only come from the immediate nak
    await add_group_async(url, group, ["jelmore.session.file_modified"], ack_wait="30s")
    session = uuid.uuid4().hex
    started = asyncio.Event()
    second: list[int] = []

    async def stuck(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            started.set()
            await asyncio.Event().wait()

    async def quick(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            second.append(msg.metadata.num_delivered)

    sub_a = await runtime.subscribe_to_events(None, stuck, consumer_group=group)
    sub_a.drain_timeout = 0.2
    await runtime.publish_event("session.file_modified", session, {"path": "/y"})
    await asyncio.wait_for(started.wait(), 10)
    sub_b = await runtime.subscribe_to_events(None, quick, consumer_group=group)
    try:
        await sub_a.stop()
        await wait_until(lambda: second, limit=10)
    finally:
        await sub_b.stop()
    assert second == [2]
    assert metrics.METRICS.nacked_on_stop >= 1


async def test_a_subscription_without_a_group_leaves_nothing_behind(url: str) -> None:
    session = uuid.uuid4().hex
    got: list[dict[str, Any]] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            got.append(event)

    before = set(await consumer_names(url, "JELMORE"))
    sub = await runtime.subscribe_to_events(["jelmore.session.created"], handler)
    during = set(await consumer_names(url, "JELMORE")) - before
    try:
        await runtime.publish_event("session.created", session, {"provider": "claude"})
        await runtime.publish_event("session.output", session, {"content": "not subscribed"})
        await wait_until(lambda: got)
    finally:
        await sub.stop()
    after = set(await consumer_names(url, "JELMORE"))
    assert len(during) == 1
    assert after == before
    assert [e["event_type"] for e in got] == ["session.created"]
    assert got[0]["payload"] == {"provider": "claude"}
    state = await consumer_state(url, "JELMORE", next(iter(during)))
    assert state is None


async def test_the_dead_letter_router_reports_when_the_safety_net_is_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with NatsServer() as bare:
        await provision_async(bare.url, advisories=False)
        runtime.configure(url=bare.url)
        try:
            router = runtime.DeadLetterRouter(runtime.default_runtime().bus)
            assert await router.start() is False
        finally:
            await runtime.close()
    assert "dead-letter safety net not provisioned" in caplog.text
    assert ROUTER_FAILURE_REASON.startswith("worker did not acknowledge")


async def test_a_handler_over_its_time_limit_is_cancelled_and_the_attempt_counts_as_failed(
    url: str,
) -> None:
    group = unique("slow_handler")
    await add_group_async(url, group, ["jelmore.session.output"], retry_delays="100ms")
    session = uuid.uuid4().hex
    attempts: list[tuple[int, int]] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            attempts.append((msg.metadata.num_delivered, event["retry_count"]))
            await asyncio.sleep(30)

    sub = await runtime.subscribe_to_events(
        None, handler, consumer_group=group, handler_timeout=0.3
    )
    try:
        await runtime.publish_event("session.output", session, {"big": True})
        await wait_until(lambda: dlq_records(url, group), limit=15)
    finally:
        await sub.stop()
    assert attempts == [(1, 0), (2, 1), (3, 2)]  # retry_count: attempts before this one
    [record] = await dlq_records(url, group)
    assert record["failure_reason"] == "HandlerTimeout: handler did not finish within 0.3s"


async def test_close_stops_running_subscriptions_and_removes_ephemeral_consumers(
    url: str,
) -> None:
    async def handler(event: dict[str, Any], msg: Any) -> None:
        pass

    before = set(await consumer_names(url, "JELMORE"))
    tail = await runtime.subscribe_to_events(["jelmore.session.status"], handler)
    group = await runtime.subscribe_to_events(None, handler, consumer_group="system_monitors")
    await runtime.close()
    assert not tail.running and not group.running
    await asyncio.wait_for(tail.wait(), 5)
    await asyncio.wait_for(group.wait(), 5)
    assert set(await consumer_names(url, "JELMORE")) == before
