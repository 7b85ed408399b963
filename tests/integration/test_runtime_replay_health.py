"""Replay by time, stream info, health status and performance metrics against a real server
(issue 5 parts 5 and 6)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jelmore_infra import runtime
from tests.support.natsserver import NatsServer
from tests.support.runtime_topology import (
    add_group_async,
    consumer_names,
    delete_async,
    provision_async,
)


async def test_replay_returns_the_events_between_start_and_end_and_cleans_up(url: str) -> None:
    session = uuid.uuid4().hex
    for i in range(3):
        await runtime.publish_event("session.output", session, {"phase": "before", "i": i})
    await asyncio.sleep(0.05)
    start = datetime.now(UTC)
    for i in range(5):
        await runtime.publish_event("session.output", session, {"phase": "during", "i": i})
    await runtime.publish_event("session.created", session, {"phase": "other subject"})
    await asyncio.sleep(0.05)
    end = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await runtime.publish_event("session.output", session, {"phase": "after"})
    before = set(await consumer_names(url, "JELMORE"))

    events = await runtime.replay_events(["jelmore.session.output"], start, end)

    mine = [e for e in events if e["session_id"] == session]
    assert [e["payload"] for e in mine] == [{"phase": "during", "i": i} for i in range(5)]
    assert set(await consumer_names(url, "JELMORE")) == before


async def test_replay_stops_at_the_last_event_when_called_and_feeds_a_handler(url: str) -> None:
    session = uuid.uuid4().hex
    start = datetime.now(UTC) - timedelta(seconds=1)
    for i in range(4):
        await runtime.publish_event("session.git_activity", session, {"i": i})
    seen: list[dict[str, Any]] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            seen.append(event)
            if len(seen) == 1:  # events published during the replay are not waited for
                await runtime.publish_event("session.git_activity", session, {"i": "late"})

    returned = await asyncio.wait_for(
        runtime.replay_events("jelmore.session.git_activity", start, handler=handler), 30
    )
    assert returned == []
    assert [e["payload"]["i"] for e in seen] == [0, 1, 2, 3]


async def test_replay_recovers_when_its_consumer_disappears_midway(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = uuid.uuid4().hex
    start = datetime.now(UTC) - timedelta(seconds=1)
    for i in range(6):
        await runtime.publish_event("session.file_modified", session, {"i": i})
    seen: list[int] = []
    deleted: list[str] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] != session:
            return
        seen.append(event["payload"]["i"])
        if len(seen) == 2 and not deleted:
            deleted.append(msg.metadata.consumer)
            await delete_async(url, "CONSUMER", "JELMORE", msg.metadata.consumer)

    await asyncio.wait_for(
        runtime.replay_events(["jelmore.session.file_modified"], start, handler=handler, batch=1),
        60,
    )
    assert deleted and deleted[0].startswith("replay-")
    assert "resuming after sequence" in caplog.text
    assert seen == [0, 1, 2, 3, 4, 5]  # resumed after the last event seen: none lost, none twice
    assert not [n for n in await consumer_names(url, "JELMORE") if n.startswith("replay-")]


async def test_replay_with_a_naive_utc_start_time_works_like_the_seed_example(url: str) -> None:
    session = uuid.uuid4().hex
    await runtime.publish_event("session.completed", session, {})
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    events = await runtime.replay_events(["jelmore.session.completed"], start_time=start)
    assert session in {e["session_id"] for e in events}


async def test_stream_info_has_the_seed_shape(url: str) -> None:
    await runtime.publish_event("session.status", "s-info", {})
    info = await runtime.get_stream_info()
    main, dlq = info["main_stream"], info["dlq_stream"]
    assert main["name"] == "JELMORE"
    assert main["messages"] >= 1 and main["bytes"] > 0
    assert main["first_time"] and main["last_time"]
    assert main["subjects"] == ["jelmore.session.>"]
    assert dlq["name"] == "JELMORE_DLQ"
    assert {"messages", "bytes", "first_time", "last_time"} <= set(dlq)


async def test_health_is_ok_on_a_fresh_topology_and_lists_every_group(url: str) -> None:
    health = await runtime.get_health_status(
        ["session_handlers", "file_watchers", "git_monitors", "system_monitors"]
    )
    assert health["stream_health"] in ("ok", "degraded", "critical")
    assert set(health["consumer_lag"]) == {
        "session_handlers",
        "file_watchers",
        "git_monitors",
        "system_monitors",
    }
    for lag in health["consumer_lag"].values():
        assert set(lag) == {"pending", "ack_pending", "redelivered", "waiting"}
    assert health["advisory_stream"] == "JELMORE_ADVISORIES"
    assert health["dlq_size"] == 0


async def test_health_turns_degraded_then_critical_as_a_group_lags(url: str) -> None:
    group = f"lagging_{uuid.uuid4().hex[:6]}"
    await add_group_async(url, group, ["jelmore.session.file_modified"])
    session = uuid.uuid4().hex
    await runtime.publish_events(
        [
            {"event_type": "session.file_modified", "session_id": session, "payload": {"i": i}}
            for i in range(101)
        ]
    )
    degraded = await runtime.get_health_status([group])
    await runtime.publish_events(
        [
            {"event_type": "session.file_modified", "session_id": session, "payload": {"i": i}}
            for i in range(900)
        ]
    )
    critical = await runtime.get_health_status([group])
    assert degraded["stream_health"] == "degraded"
    assert degraded["reasons"] == [f"{group}: lag 101 > 100"]
    assert critical["stream_health"] == "critical"
    assert critical["reasons"] == [f"{group}: lag 1001 > 1000"]
    assert critical["consumer_lag"][group]["pending"] == 1001
    await delete_async(url, "CONSUMER", "JELMORE", group)


async def test_health_is_critical_when_a_group_or_the_stream_is_missing() -> None:
    with NatsServer() as bare:
        runtime.configure(url=bare.url)
        try:
            nothing = await runtime.get_health_status()
            await provision_async(bare.url, groups=False)
            no_group = await runtime.get_health_status(["session_handlers"])
            await delete_async(bare.url, "STREAM", "JELMORE_ADVISORIES")
            no_net = await runtime.get_health_status([])
        finally:
            await runtime.close()
    assert nothing["stream_health"] == "critical"
    assert nothing["reasons"] == ["event stream missing: run `jelmore-infra apply`"]
    assert no_group["stream_health"] == "critical"
    assert "consumer group session_handlers missing on stream JELMORE" in no_group["reasons"]
    assert "max-deliveries advisory stream missing (no DLQ safety net)" in no_net["reasons"]


async def test_health_reports_an_unreachable_server_as_critical() -> None:
    runtime.configure(url="nats://127.0.0.1:1", connect_timeout=1.0)
    try:
        health = await runtime.get_health_status()
    finally:
        await runtime.close()
    assert health["stream_health"] == "critical"
    assert health["reasons"][0].startswith("cannot connect to nats://127.0.0.1:1")


async def test_performance_metrics_count_this_process_and_include_server_statistics(
    url: str,
) -> None:
    group = f"metrics_{uuid.uuid4().hex[:6]}"
    await add_group_async(url, group, ["jelmore.session.directory_changed"], retry_delays="50ms")
    session = uuid.uuid4().hex
    done: list[int] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if msg.metadata.num_delivered == 1 and event["payload"]["i"] == 0:
            raise RuntimeError("first attempt fails")
        done.append(event["payload"]["i"])

    sub = await runtime.subscribe_to_events(None, handler, consumer_group=group)
    try:
        for i in range(10):
            await runtime.publish_event("session.directory_changed", session, {"i": i})
        for _ in range(200):
            if len(done) >= 10:
                break
            await asyncio.sleep(0.05)
    finally:
        await sub.stop()
    result = await runtime.get_performance_metrics()
    process = result["process"]
    assert process["publish"]["count"] == 10
    assert process["publish"]["ack_latency"]["count"] == 10
    assert process["publish"]["ack_latency"]["p50_ms"] is not None
    assert process["consume"]["count"] == 11
    assert process["consume"]["handled"] == 10
    assert process["consume"]["handler_errors"] == 1
    assert process["consume"]["redeliveries"] == 1
    assert process["consume"]["by_event_type"] == {"session.directory_changed": 11}
    assert result["server"]["main_stream"]["name"] == "JELMORE"
    assert result["server"]["consumer_groups"][group]["pending"] == 0
    await delete_async(url, "CONSUMER", "JELMORE", group)
