"""No event lost when worker processes die (issue 5 part 8b and 8c).

Workers are ``python tests/support/runtime_worker.py`` subprocesses of one consumer group, each
recording the event ids it handled to a file; every worker also runs the dead-letter router. Test
groups use scaled-down retry delays and ack waits (read from the server by the runtime). Every
worker is killed in the fixture's finaliser, also when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jelmore_infra import runtime
from jelmore_infra.runtime.dlq import ROUTER_FAILURE_REASON
from tests.support.natsserver import NatsServer
from tests.support.runtime_topology import add_group_async, stream_messages, wait_until
from tests.support.runtime_worker import fate

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "support" / "runtime_worker.py"
#: shares of the 10,000 events that fail every attempt, and that fail their first attempt only
POISON = 0.005
FLAKY = 0.05


class Workers:
    """Starts worker processes and always stops them."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, group: str, name: str, *args: str) -> tuple[subprocess.Popen[str], Path]:
        record = self.tmp / f"{name}.log"
        record.touch()
        proc = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                "--url",
                self.url,
                "--group",
                group,
                "--record",
                str(record),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"worker {name} did not start: {line!r} {err[-2000:]}")
        return proc, record

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def workers(server: NatsServer, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(server.url, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


def lines(record: Path) -> list[list[str]]:
    return [line.split() for line in record.read_text().splitlines() if line.strip()]


def handled_ids(*records: Path) -> set[str]:
    return {parts[1] for r in records for parts in lines(r) if parts[0] == "done"}


async def dlq_for(url: str, group: str) -> list[dict[str, Any]]:
    return [
        json.loads(m["data"])
        for m in await stream_messages(url, "JELMORE_DLQ")
        if m["subject"].startswith(f"jelmore.dlq.{group}.")
    ]


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


async def test_b_an_event_whose_worker_is_killed_mid_handler_goes_to_another_worker(
    url: str, workers: Workers
) -> None:
    group = f"kill_mid_{uuid.uuid4().hex[:6]}"
    await add_group_async(url, group, ["jelmore.session.created"], ack_wait="1s")
    proc_a, rec_a = workers.start(group, "a", "--hang-attempt", "1")
    mid = uuid.uuid4().hex
    assert await runtime.publish_event("session.created", "s-b1", {"n": 1}, message_id=mid)
    await wait_until(lambda: ["start", mid, "1", str(proc_a.pid)] in lines(rec_a))
    _proc_b, rec_b = workers.start(group, "b")
    kill(proc_a)
    await wait_until(lambda: mid in handled_ids(rec_b), limit=20)
    assert [p[:3] for p in lines(rec_b) if p[1] == mid] == [["start", mid, "2"], ["done", mid, "2"]]
    assert mid not in handled_ids(rec_a)
    assert await dlq_for(url, group) == []


async def test_b_an_event_whose_worker_is_killed_on_its_last_attempt_still_reaches_the_dlq(
    url: str, workers: Workers
) -> None:
    group = f"kill_last_{uuid.uuid4().hex[:6]}"
    await add_group_async(
        url, group, ["jelmore.session.completed"], retry_delays="200ms,400ms", ack_wait="1s"
    )
    proc_a, rec_a = workers.start(group, "a", "--fail-below", "3", "--hang-attempt", "3")
    mid = uuid.uuid4().hex
    assert await runtime.publish_event(
        "session.completed", "s-b2", {"result": "ok"}, message_id=mid
    )
    await wait_until(lambda: ["start", mid, "3", str(proc_a.pid)] in lines(rec_a))
    _proc_b, rec_b = workers.start(group, "b")  # a live worker of the group (runs the router)
    kill(proc_a)
    await wait_until(lambda: dlq_for(url, group), limit=30)
    [record] = await dlq_for(url, group)
    assert record["message_id"] == mid
    assert record["failure_reason"] == ROUTER_FAILURE_REASON
    assert record["retry_count"] == 3
    assert record["payload"] == {"result": "ok"}
    assert record["original_subject"] == "jelmore.session.completed"
    assert record["consumer_group"] == group
    assert [p[0] for p in lines(rec_a) if p[1] == mid] == ["start", "start", "start"]
    assert mid not in {p[1] for p in lines(rec_b)}  # no 4th attempt anywhere


@pytest.mark.slow
async def test_c_ten_thousand_events_through_three_workers_with_failures_and_a_kill_lose_none(
    url: str, workers: Workers
) -> None:
    """Three workers share 10,000 events, 0.5% of them poison (every attempt fails: dead-lettered
    after the third), 5% flaky (the first attempt fails). One worker is SIGKILLed while the first
    4,000 are being published and handled; the other 6,000 are published after the kill, so at
    least a third of the events are still unhandled when it dies. Every event ends handled or
    dead-lettered, never both, and exactly the poison ones are dead."""
    total, first_part = 10_000, 4_000
    group = f"kill_load_{uuid.uuid4().hex[:6]}"
    await add_group_async(
        url, group, ["jelmore.session.output"], retry_delays="100ms,200ms,400ms", ack_wait="2s"
    )
    rates = ("--poison-rate", str(POISON), "--flaky-rate", str(FLAKY))
    procs = [workers.start(group, f"w{i}", *rates) for i in range(3)]
    records = [rec for _, rec in procs]
    session = f"s-c-{uuid.uuid4().hex[:6]}"

    async def publish(numbers: range) -> set[str]:
        results = await runtime.publish_events(
            (
                {"event_type": "session.output", "session_id": session, "payload": {"n": i}}
                for i in numbers
            ),
            window=256,
        )
        return {r.message_id for r in results if r.ok}

    first = asyncio.create_task(publish(range(first_part)))
    await wait_until(lambda: len(handled_ids(*records)) >= 1_000, limit=60)
    kill(procs[0][0])  # while the first part is still being published and handled
    handled_at_kill = len(handled_ids(*records))  # after the kill: at least as many as at it
    killed_handled = len(handled_ids(records[0]))
    published = await first
    published |= await publish(range(first_part, total))
    assert len(published) == total
    unhandled_at_kill = total - handled_at_kill
    assert unhandled_at_kill >= total / 3, f"only {unhandled_at_kill} unhandled at the kill"

    async def accounted() -> bool:
        done = handled_ids(*records)
        if len(published - done) > 2 * len(published) * POISON + 50:
            return False
        dead = {r["message_id"] for r in await dlq_for(url, group)}
        return not (published - done - dead)

    await wait_until(accounted, limit=120, interval=0.5)
    handled = handled_ids(*records)
    dead_records = await dlq_for(url, group)
    dead = {r["message_id"] for r in dead_records}
    poison = {mid for mid in published if fate(mid) < POISON}
    print(
        f"\n(c) published {len(published)}, handled {len(handled & published)}, dead-lettered"
        f" {len(dead)} ({len(dead_records)} records, {len(poison)} poison), in both"
        f" {len(handled & dead)}, missing {len(published - handled - dead)}; worker w0 killed"
        f" with {unhandled_at_kill} unhandled, after handling {killed_handled}"
    )
    assert published - handled - dead == set()  # every event handled or dead-lettered
    assert handled & dead == set()  # never both
    assert dead == poison  # exactly the events that fail every attempt
    assert handled <= published
    assert procs[0][0].returncode == -signal.SIGKILL
