"""Publishing against a real server: the envelope and headers on the wire, refused events,
de-duplication (issue 5 part 8e), the pipelined publisher, and a server restart while publishing
(part 8d: no acknowledged event lost, retried publishes not duplicated)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client

from jelmore_infra import runtime
from jelmore_infra.runtime import metrics
from jelmore_infra.runtime.envelope import build_event
from jelmore_infra.runtime.publish import send
from tests.integration.conftest import RUNTIME_VERSIONS
from tests.support.natsserver import NatsServer, binary_for
from tests.support.runtime_topology import catalogue_only_async, provision_async, stream_messages
from tests.support.waiting import wait_for


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


async def test_an_event_no_stream_answers_for_is_retried_until_one_does_whatever_its_window(
    url: str, nc: Client
) -> None:
    """As while a replicated stream elects a new leader: every attempt is answered "no stream
    here" (certainly not stored), so the event is retried until the stream answers again, up to
    the retry deadline (30 s by default), even when the stream's duplicate window is short."""
    name = f"RETRY_{uuid.uuid4().hex[:8]}"
    subject = f"retrytest.{name}"
    config = {"name": name, "subjects": [subject], "duplicate_window": 4_000_000_000}

    async def js(api: str, body: object = None) -> dict[str, object]:
        reply = await nc.request(f"$JS.API.{api}", json.dumps(body or {}).encode(), timeout=5)
        return dict(json.loads(reply.data))

    assert "error" not in await js(f"STREAM.CREATE.{name}", config)
    bus = runtime.default_runtime().bus
    first = build_event(subject, "session.output", "s-w", {"n": 1}, now=_now())
    assert (await send(bus, first, timeout=0.5)).ok  # the window (4 s) is known from here on
    assert "error" not in await js(f"STREAM.DELETE.{name}")
    second = build_event(subject, "session.output", "s-w", {"n": 2}, now=_now())
    task = asyncio.create_task(send(bus, second, timeout=0.5))
    try:
        # past half the 4 s window (when it used to give up), still retrying
        await wait_for(
            lambda: task.done() or metrics.METRICS.publish_retries >= 3, "a fourth attempt"
        )
        assert not task.done(), task.result()
        assert "error" not in await js(f"STREAM.CREATE.{name}", config)
        result = await asyncio.wait_for(task, 40)
        assert result.ok, result.error
        assert result.attempts >= 4
        stored = [m["headers"]["Nats-Msg-Id"] for m in await stream_messages(url, name)]
        assert stored == [second.message_id]
    finally:
        task.cancel()
        await js(f"STREAM.DELETE.{name}")


async def test_publishing_to_a_server_without_the_stream_reports_failure() -> None:
    with NatsServer() as bare:
        await catalogue_only_async(bare.url)  # the event types are declared, no stream stores them
        runtime.configure(url=bare.url)
        try:
            ok = await runtime.publish_event("session.output", "s", {}, attempts=2, timeout=0.5)
        finally:
            await runtime.close()
    assert ok is False


@pytest.mark.parametrize("version", RUNTIME_VERSIONS)
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_d_a_server_restart_while_publishing_loses_no_acknowledged_event_and_stores_none_twice(
    how: str, version: str
) -> None:
    """A pipelined publisher (window 256) and a sequential one publish while the server is
    stopped (SIGTERM) or killed (SIGKILL) and started again on the same port and store: the
    publishes left unanswered are retried with their message ids, every event is acknowledged,
    none is lost and none stored twice."""
    srv = NatsServer(binary=binary_for(version))
    srv.start()
    pipe = runtime.Publisher(window=256)
    seq_acked: list[str] = []
    seq_failed: list[str] = []
    sent = 0
    stop = asyncio.Event()

    async def sequential() -> None:
        i = 0
        while not stop.is_set():
            mid = f"restart-seq-{i}"
            if await runtime.publish_event("session.status", "s-d", {"i": i}, message_id=mid):
                seq_acked.append(mid)
            else:
                seq_failed.append(mid)
            i += 1

    async def pipelined() -> None:
        nonlocal sent
        started = asyncio.get_running_loop().time()
        while not stop.is_set():
            pause = started + sent / 1000 - asyncio.get_running_loop().time()
            if pause > 0:
                await asyncio.sleep(pause)  # pacing the load (1,000 events/s)
            await pipe.publish("session.output", "s-d", {"i": sent}, message_id=f"restart-{sent}")
            sent += 1
        await pipe.wait()

    def progress() -> tuple[int, int]:
        return pipe.ok, len(seq_acked)

    async def gained(since: tuple[int, int]) -> bool:
        return pipe.ok >= since[0] + 300 and len(seq_acked) >= since[1] + 30

    tasks: list[asyncio.Task[None]] = []
    try:
        await provision_async(srv.url, groups=False, advisories=False)
        metrics.reset()
        runtime.configure(url=srv.url)
        pipe.bus = runtime.default_runtime().bus
        tasks = [asyncio.create_task(sequential()), asyncio.create_task(pipelined())]
        await wait_for(lambda: gained((0, 0)), "publishing to get going")
        if how == "SIGKILL":
            await asyncio.to_thread(srv.kill)  # abruptly, keeping the store
            await asyncio.to_thread(srv.start)
        else:
            await asyncio.to_thread(srv.restart)  # SIGTERM, then start again
        restarted = progress()
        await wait_for(lambda: gained(restarted), "publishing after the restart", 60)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        await runtime.close()
        stored = [m["headers"]["Nats-Msg-Id"] for m in await stream_messages(srv.url, "JELMORE")]
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runtime.close()
        srv.cleanup()
    acked = {r.message_id for r in pipe.results if r.ok} | set(seq_acked)
    print(
        f"\n(d) [{version}, {how}] pipelined published {sent}, acknowledged {pipe.ok}, not"
        f" confirmed {pipe.not_confirmed}, failed {pipe.failed}; sequential published"
        f" {len(seq_acked) + len(seq_failed)}, acknowledged {len(seq_acked)}; stored"
        f" {len(stored)}, distinct {len(set(stored))}, acknowledged lost {len(acked - set(stored))};"
        f" reconnects {metrics.METRICS.reconnects}, publish retries"
        f" {metrics.METRICS.publish_retries}"
    )
    assert metrics.METRICS.reconnects >= 1
    assert metrics.METRICS.publish_retries > 0  # unanswered publishes were retried
    assert acked <= set(stored)  # no acknowledged event lost
    assert len(stored) == len(set(stored))  # nothing stored twice
    assert seq_failed == []
    assert pipe.unacknowledged == 0 and pipe.ok == sent


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
