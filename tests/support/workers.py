"""Consumer-group worker processes for the runtime's no-loss tests.

``Workers`` starts ``python tests/support/runtime_worker.py`` processes, each recording the event
ids it handled to a file, and always stops them; ``handled_ids`` reads what they handled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from jelmore_infra.runtime.publish import PublishResult
from tests.support.runtime_topology import stream_messages, wait_until
from tests.support.runtime_worker import fate

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "support" / "runtime_worker.py"


class Workers:
    """Starts worker processes and always stops them."""

    def __init__(self, url: str, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.tmp = tmp
        #: variables added to each worker's environment (credentials: ``NATS_USER``, …)
        self.env = env or {}
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
            env={**os.environ, **self.env},
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


def lines(record: Path) -> list[list[str]]:
    return [line.split() for line in record.read_text().splitlines() if line.strip()]


def handled_ids(*records: Path) -> set[str]:
    return {parts[1] for r in records for parts in lines(r) if parts[0] == "done"}


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


#: shares of the 10,000 events that fail every attempt, and that fail their first attempt only
POISON = 0.005
FLAKY = 0.05
#: publishes events the way ``Runtime.publish_events`` does
PublishEvents = Callable[..., Awaitable[list[PublishResult]]]


async def dlq_for(url: str, group: str) -> list[dict[str, Any]]:
    return [
        json.loads(m["data"])
        for m in await stream_messages(url, "JELMORE_DLQ")
        if m["subject"].startswith(f"jelmore.dlq.{group}.")
    ]


async def ten_thousand_events_with_a_worker_killed(
    workers: Workers,
    group: str,
    publish_events: PublishEvents,
    *,
    read_url: str,
    worker_args: Sequence[str] = (),
) -> str:
    """Three workers of ``group`` (on ``jelmore.session.output``) share 10,000 events, 0.5% of
    them poison (every attempt fails: dead-lettered after the third), 5% flaky (the first attempt
    fails). One worker is SIGKILLed while the first 4,000 are being published and handled; the
    other 6,000 are published after the kill, so at least a third of the events are still
    unhandled when it dies. Asserts that every event ends handled or dead-lettered, never both,
    and that exactly the poison ones are dead; returns the counts. ``read_url`` reads the
    dead-letter stream."""
    total, first_part = 10_000, 4_000
    rates = ("--poison-rate", str(POISON), "--flaky-rate", str(FLAKY), *worker_args)
    procs = [workers.start(group, f"w{i}", *rates) for i in range(3)]
    records = [rec for _, rec in procs]
    session = f"s-c-{uuid.uuid4().hex[:6]}"

    async def publish(numbers: range) -> set[str]:
        results = await publish_events(
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
        dead = {r["message_id"] for r in await dlq_for(read_url, group)}
        return not (published - done - dead)

    await wait_until(accounted, limit=120, interval=0.5)
    handled = handled_ids(*records)
    dead_records = await dlq_for(read_url, group)
    dead = {r["message_id"] for r in dead_records}
    poison = {mid for mid in published if fate(mid) < POISON}
    assert published - handled - dead == set()  # every event handled or dead-lettered
    assert handled & dead == set()  # never both
    assert dead == poison  # exactly the events that fail every attempt
    assert handled <= published
    assert procs[0][0].returncode == -signal.SIGKILL
    return (
        f"published {len(published)}, handled {len(handled & published)}, dead-lettered"
        f" {len(dead)} ({len(dead_records)} records, {len(poison)} poison), in both"
        f" {len(handled & dead)}, missing {len(published - handled - dead)}; worker w0 killed"
        f" with {unhandled_at_kill} unhandled, after handling {killed_handled}"
    )
