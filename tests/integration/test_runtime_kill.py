"""No event lost when worker processes die (issue 5 part 8b and 8c).

Workers are ``python tests/support/runtime_worker.py`` subprocesses of one consumer group, each
recording the event ids it handled to a file; every worker also runs the dead-letter router. Test
groups use scaled-down retry delays and ack waits (read from the server by the runtime). Every
worker is killed in the fixture's finaliser, also when a test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jelmore_infra import runtime
from jelmore_infra.runtime.dlq import ROUTER_FAILURE_REASON
from tests.support.natsserver import NatsServer
from tests.support.runtime_topology import add_group_async, wait_until
from tests.support.workers import (
    Workers,
    dlq_for,
    handled_ids,
    kill,
    lines,
    ten_thousand_events_with_a_worker_killed,
)


@pytest.fixture
def workers(server: NatsServer, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(server.url, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


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
    group = f"kill_load_{uuid.uuid4().hex[:6]}"
    await add_group_async(
        url, group, ["jelmore.session.output"], retry_delays="100ms,200ms,400ms", ack_wait="2s"
    )
    counts = await ten_thousand_events_with_a_worker_killed(
        workers, group, runtime.publish_events, read_url=url
    )
    print(f"\n(c) {counts}")
