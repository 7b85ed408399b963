"""Runtime hardening against a real server, on the oldest and newest supported server versions:
publishing through a server outage (issue 9 defect 8), permanent publish errors reported at once
and odd payloads refused clearly (defect 9), and a handler calling ``sys.exit()`` (defect 15).

The outage tests stop the server with SIGTERM (a clean stop: a SIGKILL would also test the
server's own durability, which is not the runtime's business) and restart it on the same port
and store directory.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jelmore_infra import runtime
from jelmore_infra.runtime import metrics
from jelmore_infra.runtime.envelope import build_event, wire_size
from jelmore_infra.runtime.publish import Outcome
from tests.integration.conftest import RUNTIME_VERSIONS
from tests.support.natsserver import NatsServer, binary_for
from tests.support.runtime_topology import (
    add_group_async,
    provision_async,
    stream_messages,
    wait_until,
)

#: the oldest and the newest supported server (the ``server`` fixture runs on each)
VERSIONS = RUNTIME_VERSIONS
ROOT = Path(__file__).resolve().parents[2]
#: how long the server stays down: longer than the publisher's old retry budget (about 3.3 s with
#: a 1 s timeout), far shorter than the retry deadline (half of JELMORE's 60 s duplicate window)
OUTAGE = 5.0


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:6]}"


async def stored_ids(url: str, session: str) -> list[str]:
    return [
        m["headers"]["Nats-Msg-Id"]
        for m in await stream_messages(url, "JELMORE")
        if m["headers"].get("Session-Id") == session
    ]


# -- defect 8: an outage while publishing ----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_events_unacknowledged_during_an_outage_are_retried_with_their_ids_and_stored_once(
    version: str,
) -> None:
    total, window = 2000, 256
    srv = NatsServer(binary=binary_for(version))
    srv.start()
    try:
        await provision_async(srv.url, groups=False, advisories=False)
        metrics.reset()
        runtime.configure(url=srv.url, client_id="outage-test")
        session = uuid.uuid4().hex
        ids = [f"{session}-{i}" for i in range(total)]
        sequential = [f"{session}-seq-{i}" for i in range(10)]
        pub = runtime.Publisher(window=window, timeout=1.0)
        half = asyncio.Event()
        down = asyncio.Event()

        async def pipelined() -> None:
            async with pub:
                for i, mid in enumerate(ids):
                    if i == total // 4:
                        half.set()  # the server is stopped while these are in flight
                    if i == total // 2:
                        await down.wait()  # the rest is published during the outage
                    await pub.publish("session.output", session, {"i": i}, message_id=mid)

        async def one_by_one() -> list[bool]:
            await down.wait()
            return [
                await runtime.publish_event("session.status", session, {}, message_id=mid)
                for mid in sequential
            ]

        producer = asyncio.create_task(pipelined())
        singles = asyncio.create_task(one_by_one())
        await asyncio.wait_for(half.wait(), 60)
        await asyncio.to_thread(srv.stop)
        down.set()
        await asyncio.sleep(OUTAGE)  # the outage itself, not a synchronisation wait
        await asyncio.to_thread(srv.start)
        await asyncio.wait_for(producer, 120)
        answers = await asyncio.wait_for(singles, 120)
        await runtime.close()
        stored = await stored_ids(srv.url, session)
    finally:
        await runtime.close()
        srv.cleanup()
    print(
        f"\n[{version}] acknowledged {pub.ok}, duplicate acks {pub.duplicates}, failed"
        f" {pub.failed}, not confirmed {pub.not_confirmed}, stored {len(stored)}, distinct"
        f" {len(set(stored))}, retries {metrics.METRICS.publish_retries}"
    )
    assert metrics.METRICS.reconnects >= 1
    assert metrics.METRICS.publish_retries > 0  # the outage did leave attempts unacknowledged
    assert len(stored) == len(set(stored))  # no event stored twice
    assert pub.not_confirmed == 0 and pub.failed == 0 and pub.unacknowledged == 0
    assert pub.ok == total
    acknowledged = {r.message_id for r in pub.results if r.ok}
    assert acknowledged == set(ids)
    assert all(r.outcome is Outcome.ACKNOWLEDGED for r in pub.results)
    assert answers == [True] * len(sequential)
    assert set(stored) == set(ids) | set(sequential)


@pytest.mark.parametrize("version", VERSIONS)
async def test_events_whose_fate_stays_unknown_are_reported_not_confirmed_rather_than_failed(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    srv = NatsServer(binary=binary_for(version))
    srv.start()
    try:
        await provision_async(srv.url, groups=False, advisories=False)
        metrics.reset()
        runtime.configure(url=srv.url, client_id="unknown-test")
        session = uuid.uuid4().hex
        assert await runtime.publish_event("session.output", session, {"before": True})
        await asyncio.to_thread(srv.stop)  # and it stays down
        pub = runtime.Publisher(window=4, timeout=0.3, retry_for=1.5)
        async with pub:
            for i in range(6):
                await pub.publish("session.output", session, {"i": i})
        caplog.clear()
        single = await runtime.publish_event(
            "session.output", session, {"single": True}, timeout=0.3, retry_for=1.5
        )
    finally:
        await runtime.close()
        srv.cleanup()
    assert pub.ok == 0 and pub.failed == 0
    assert pub.not_confirmed == 6 and pub.unacknowledged == 6
    assert pub.summary()["not_confirmed"] == 6 and pub.summary()["failed"] == 0
    for result in pub.results:
        assert result.outcome is Outcome.NOT_CONFIRMED and result.not_confirmed
        assert not result.failed and not result.ok
        assert result.error is not None and result.error.startswith("not confirmed")
        assert "failed" not in result.error
    assert single is False
    [line] = [
        r.getMessage() for r in caplog.records if "to jelmore.session.output" in r.getMessage()
    ]
    assert "not confirmed after" in line and "failed" not in line
    assert metrics.METRICS.snapshot()["publish"]["not_confirmed"] == 7


async def test_an_event_the_server_refuses_is_reported_failed_at_once_without_retries(
    url: str,
) -> None:
    wrong = {"Nats-Expected-Stream": "NOT_JELMORE"}
    session = uuid.uuid4().hex
    assert await runtime.publish_event("session.output", session, {}, headers=wrong) is False
    pub = runtime.Publisher(window=4)
    async with pub:
        await pub.publish("session.output", session, {}, headers=wrong)
    [result] = pub.results
    assert result.outcome is Outcome.FAILED and result.failed and not result.not_confirmed
    assert result.attempts == 1
    assert result.error is not None and result.error.startswith("failed")
    assert "expected stream does not match" in result.error
    assert pub.failed == 1 and pub.not_confirmed == 0
    assert metrics.METRICS.publish_retries == 0
    assert await stored_ids(url, session) == []


# -- defect 9: permanent errors fail at once, odd payloads are EventErrors -------------------------


async def test_a_message_over_the_servers_max_payload_is_refused_at_once_with_the_sizes(
    url: str,
) -> None:
    session = uuid.uuid4().hex
    big = "x" * (2 * 1024 * 1024)
    with pytest.raises(
        runtime.EventError, match=r"exceeds the server's max_payload of 1,048,576 bytes"
    ):
        await runtime.publish_event("session.output", session, {"blob": big})
    pub = runtime.Publisher(window=4)
    with pytest.raises(runtime.EventError, match=r"of 2,097,\d{3} bytes .* exceeds"):
        await pub.publish("session.output", session, {"blob": big})
    await pub.wait()
    assert metrics.METRICS.publish_retries == 0
    assert metrics.METRICS.disconnects == 0
    assert await stored_ids(url, session) == []


async def test_the_size_limit_counts_the_headers_like_the_server_does(url: str) -> None:
    """An event of exactly ``max_payload`` bytes with its headers is stored; one byte more is
    refused before it is sent (the server would refuse it and close the connection)."""
    bus = runtime.default_runtime().bus
    await bus.connect()
    limit = bus.max_payload
    assert limit is not None
    session = uuid.uuid4().hex
    now = datetime.now(UTC)

    def size(content: str) -> int:  # message ids "fits" and "over" have the same length
        event = build_event(
            "jelmore.session.output",
            "session.output",
            session,
            {"content": content},
            now=now,
            message_id="fits",
            schema_version=1,  # the runtime's header counts too
        )
        return wire_size(event)

    fits = "x" * (limit - size(""))
    assert size(fits) == limit
    assert await runtime.publish_event(
        "session.output", session, {"content": fits}, message_id="fits"
    )
    with pytest.raises(runtime.EventError, match="max_payload"):
        await runtime.publish_event(
            "session.output", session, {"content": fits + "x"}, message_id="over"
        )
    assert metrics.METRICS.disconnects == 0
    assert await stored_ids(url, session) == ["fits"]


async def test_strings_utf8_cannot_encode_are_event_errors_naming_the_field(url: str) -> None:
    session = uuid.uuid4().hex
    with pytest.raises(runtime.EventError, match=r"lone surrogate in payload\.note"):
        await runtime.publish_event("session.output", session, {"note": "\ud800"})
    pub = runtime.Publisher(window=4)
    with pytest.raises(runtime.EventError, match=r"lone surrogate in payload\.items\[1\]"):
        await pub.publish("session.output", session, {"items": ["ok", "bad\udcff"]})
    with pytest.raises(runtime.EventError, match="header Note cannot be encoded as UTF-8"):
        await runtime.publish_event("session.output", session, {}, headers={"Note": "\ud800"})
    await pub.wait()
    assert await stored_ids(url, session) == []


# -- defect 15: a handler calling sys.exit() ---------------------------------------------------------

WORKER = """
import asyncio
import logging
import sys

sys.path.insert(0, {root!r})
from jelmore_infra import runtime


async def main(url: str, group: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    runtime.configure(url=url, client_id="exiting-worker")

    async def handler(event, msg):
        {statement}

    sub = await runtime.subscribe_to_events(None, handler, consumer_group=group)
    print("ready", flush=True)
    await sub.wait()
    print("stopped:", sub.exit_reason, flush=True)
    await runtime.close()


asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize(
    ("statement", "reason"),
    [("sys.exit(3)", "SystemExit: 3"), ("raise KeyboardInterrupt", "KeyboardInterrupt")],
)
async def test_a_handler_that_exits_fails_its_attempt_and_stops_its_worker_cleanly(
    url: str, tmp_path: Path, statement: str, reason: str
) -> None:
    group = unique("exits")
    # the retry delay outlasts the worker's last fetch (0.5 s), so the stopping worker cannot
    # pick up the redelivery itself
    await add_group_async(
        url, group, ["jelmore.session.completed"], retry_delays="1500ms", ack_wait="30s"
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT), statement=statement))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        url,
        group,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        session = uuid.uuid4().hex
        assert await runtime.publish_event("session.completed", session, {"n": 1})
        raw_out, raw_err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    out, err = raw_out.decode(), raw_err.decode()
    # the attempt was handed back with the retry delay: another worker gets it at once, long
    # before the group's 30 s ack_wait would have released an unacknowledged event
    got: list[tuple[int, Any]] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        got.append((msg.metadata.num_delivered, event["retry_count"]))

    sub = await runtime.subscribe_to_events(None, handler, consumer_group=group)
    try:
        await wait_until(lambda: got, limit=15)
    finally:
        await sub.stop()
    assert got == [(2, 1)]
    assert proc.returncode == 0, err
    assert f"stopped: {reason}" in out
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len([line for line in lines if reason in line]) == 1, err
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL"))][1:], err
