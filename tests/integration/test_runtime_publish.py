"""Publishing against a real server: the envelope and headers on the wire, refused events,
de-duplication (issue 5 part 8e), the pipelined publisher, and a server restart while publishing
(part 8d: no acknowledged event lost, retried publishes not duplicated)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest

from jelmore_infra import runtime
from jelmore_infra.runtime import metrics
from jelmore_infra.runtime.envelope import build_event
from jelmore_infra.runtime.publish import send
from tests.support.natsserver import NatsServer
from tests.support.runtime_topology import catalogue_only_async, provision_async, stream_messages


async def test_an_event_is_stored_with_the_seed_envelope_and_headers(url: str) -> None:
    mid = uuid.uuid4().hex
    ok = await runtime.publish_event(
        "session.created",
        "session-uuid",
        {"provider": "claude", "timeout": 7200},
        headers={"Priority": "high"},
        message_id=mid,
    )
    assert ok is True
    [stored] = [
        m for m in await stream_messages(url, "JELMORE") if m["headers"].get("Nats-Msg-Id") == mid
    ]
    assert stored["subject"] == "jelmore.session.created"
    assert stored["headers"]["Event-Type"] == "session.created"
    assert stored["headers"]["Session-Id"] == "session-uuid"
    assert stored["headers"]["Priority"] == "high"
    body = json.loads(stored["data"])
    assert set(body) == {
        "event_type",
        "session_id",
        "timestamp",
        "message_id",
        "retry_count",
        "payload",
    }
    assert body["message_id"] == mid
    assert body["retry_count"] == 0
    assert body["payload"] == {"provider": "claude", "timeout": 7200}
    assert body["timestamp"].endswith("Z") and len(body["timestamp"]) == 24


async def test_unknown_event_types_and_unserialisable_payloads_are_refused(url: str) -> None:
    before = len(await stream_messages(url, "JELMORE"))
    with pytest.raises(runtime.EventError, match=r"unknown event type 'session\.deleted'"):
        await runtime.publish_event("session.deleted", "s", {})
    with pytest.raises(runtime.EventError, match="not JSON-serialisable"):
        await runtime.publish_event("session.output", "s", {"when": object()})
    with pytest.raises(runtime.EventError, match="not JSON-serialisable"):
        await runtime.publish_event("session.output", "s", {"nan": float("nan")})
    assert len(await stream_messages(url, "JELMORE")) == before


async def test_e_the_same_message_id_published_twice_is_stored_once(url: str) -> None:
    bus = runtime.default_runtime().bus
    mid = uuid.uuid4().hex
    event = build_event(
        "jelmore.session.output", "session.output", "s-e", {"n": 1}, now=_now(), message_id=mid
    )
    first = await send(bus, event)
    second = await send(bus, event)
    assert first.ok and second.ok
    assert first.duplicate is False
    assert second.duplicate is True
    assert second.seq == first.seq
    assert await runtime.publish_event("session.output", "s-e", {"n": 1}, message_id=mid)
    stored = [
        m for m in await stream_messages(url, "JELMORE") if m["headers"].get("Nats-Msg-Id") == mid
    ]
    assert len(stored) == 1


def _now() -> datetime:
    return datetime.now(UTC)


async def test_the_pipelined_publisher_stores_every_event_once(url: str) -> None:
    session = uuid.uuid4().hex
    async with runtime.Publisher(window=100) as pub:
        ids = [await pub.publish("session.output", session, {"n": i}) for i in range(3000)]
    assert pub.ok == 3000 and pub.failed == 0
    stored = [
        m["headers"]["Nats-Msg-Id"]
        for m in await stream_messages(url, "JELMORE")
        if m["headers"].get("Session-Id") == session
    ]
    assert sorted(stored) == sorted(ids)
    assert pub.summary()["ack_latency"]["count"] == 3000


async def test_publishing_to_a_server_without_the_stream_reports_failure() -> None:
    with NatsServer() as bare:
        await catalogue_only_async(bare.url)  # the event types are declared, no stream stores them
        runtime.configure(url=bare.url)
        try:
            ok = await runtime.publish_event("session.output", "s", {}, attempts=2, timeout=0.5)
        finally:
            await runtime.close()
    assert ok is False


async def test_d_a_server_restart_while_publishing_loses_no_acknowledged_event_and_stores_none_twice() -> (
    None
):
    srv = NatsServer()
    srv.start()
    try:
        await provision_async(srv.url)
        metrics.reset()
        runtime.configure(url=srv.url)
        acked: list[str] = []
        failed: list[str] = []
        restarted = asyncio.Event()

        async def publisher() -> None:
            for i in range(400):
                mid = f"restart-{i}"
                if await runtime.publish_event("session.status", "s-d", {"i": i}, message_id=mid):
                    acked.append(mid)
                else:
                    failed.append(mid)
                if i == 150:
                    restarted.set()

        task = asyncio.create_task(publisher())
        await restarted.wait()
        await asyncio.to_thread(srv.restart)  # SIGTERM, then start again on the same port/store
        await asyncio.wait_for(task, 60)
        await runtime.close()
        stored = [m["headers"]["Nats-Msg-Id"] for m in await stream_messages(srv.url, "JELMORE")]
    finally:
        srv.cleanup()
    print(
        f"\n(d) acknowledged {len(acked)}, not acknowledged {len(failed)}, stored {len(stored)}, "
        f"distinct stored {len(set(stored))}, reconnects {metrics.METRICS.reconnects}, "
        f"publish retries {metrics.METRICS.publish_retries}"
    )
    assert metrics.METRICS.reconnects >= 1
    assert set(acked) <= set(stored)  # no acknowledged event lost
    assert len(stored) == len(set(stored))  # nothing stored twice
    assert failed == []


async def test_a_consumer_group_keeps_consuming_across_a_server_restart() -> None:
    srv = NatsServer()
    srv.start()
    try:
        await provision_async(srv.url)
        runtime.configure(url=srv.url)
        got: list[int] = []

        async def handler(event: dict[str, object], msg: object) -> None:
            got.append(event["payload"]["i"])  # type: ignore[index]

        sub = await runtime.subscribe_to_events(None, handler, consumer_group="git_monitors")
        for i in range(5):
            assert await runtime.publish_event("session.git_activity", "s-r", {"i": i})
        for _ in range(100):
            if len(got) >= 5:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(srv.restart)
        for i in range(5, 10):
            assert await runtime.publish_event("session.git_activity", "s-r", {"i": i})
        for _ in range(300):
            if len(got) >= 10:
                break
            await asyncio.sleep(0.05)
        await sub.stop()
        await runtime.close()
    finally:
        srv.cleanup()
    assert sorted(set(got)) == list(range(10))
