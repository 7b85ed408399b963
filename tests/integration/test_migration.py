"""The data-preserving migration on real servers: messages, consumers, interruptions, refusals.

One server per supported line where the migration is allowed (2.10.26 and 2.15.1), shared by the
module. A stream moves from file to memory storage; afterwards it holds the same messages in the
same order (subject, payload and headers compared by content hash), every durable consumer exists
with its config, and nothing a consumer acknowledged is delivered again. The executor is also
SIGKILLed before each of its steps in turn and then re-run to convergence. Refusals (a mirror, a
stream sourced by another, nats-server 2.12) leave the server untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.migration.executor import MigrationError, StepEvent, migrate_stream
from jelmore_infra.migration.steps import META_RESUMED_AT, STEP_ORDER, Step, temp_name
from tests.support.natsserver import NatsServer, binary_for
from tests.support.waiting import unique, wait_for

ROOT = Path(__file__).resolve().parents[2]
S = 1_000_000_000
SKIPPED_HEADERS = {"Nats-Stream-Source"}


@pytest.fixture(scope="module", params=["2.10.26", "2.15.1"])
def server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as srv:
        yield srv


async def fill(nc: Client, stream: str, count: int) -> None:
    """``count`` messages with distinct payloads and headers (Nats-Msg-Id included)."""
    js = nc.jetstream()
    for start in range(0, count, 500):
        pending = []
        for i in range(start, min(start + 500, count)):
            payload = hashlib.sha256(f"{stream}-{i}".encode()).digest() * (1 + i % 4)
            headers = {"Nats-Msg-Id": f"{stream}-id-{i}", "X-Index": str(i), "X-Tag": f"t{i % 13}"}
            pending.append(js.publish(f"{stream}.s{i % 7}", payload, headers=headers))
        await asyncio.gather(*pending)


async def contents(nc: Client, stream: str) -> list[str]:
    """A content hash of every message in stream order (subject, payload, headers).

    Read through a push consumer without acks; the header the server adds when copying
    (Nats-Stream-Source) is left out.
    """
    info = json.loads((await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"")).data)
    count = info["state"]["messages"]
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, pending_msgs_limit=count + 10)
    config = {
        "deliver_subject": inbox,
        "ack_policy": "none",
        "deliver_policy": "all",
        "inactive_threshold": 5 * S,
        "mem_storage": True,
    }
    body = json.dumps({"stream_name": stream, "config": config}).encode()
    reply = json.loads((await nc.request(f"$JS.API.CONSUMER.CREATE.{stream}", body)).data)
    assert "error" not in reply, reply
    out = []
    for _ in range(count):
        msg = await sub.next_msg(timeout=10)
        headers = sorted((k, v) for k, v in (msg.headers or {}).items() if k not in SKIPPED_HEADERS)
        digest = hashlib.sha256(repr((msg.subject, msg.data, headers)).encode()).hexdigest()
        out.append(digest)
    await sub.unsubscribe()
    await nc.request(f"$JS.API.CONSUMER.DELETE.{stream}.{reply['name']}", b"")
    return out


async def make_stream(api: JetStreamAPI, name: str, **extra: Any) -> dict[str, Any]:
    """Create the test's stream. A loaded machine once made the server answer "error creating
    store for stream" (10049) for a moment: the create is asked again, a few times."""
    from jelmore_infra.errors import JetStreamAPIError

    config = {"name": name, "subjects": [f"{name}.>"], "storage": "file", **extra}
    for attempt in range(5):
        try:
            return await api.create_stream(config)
        except JetStreamAPIError as exc:
            if exc.err_code != 10049 or attempt == 4:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


def desired_memory(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "subjects": [f"{name}.>"],
        "storage": "memory",
        "duplicate_window": 90 * S,
        "max_age": 3600 * S,
        "metadata": {"jelmore.managed-by": "jelmore-infra"},
    }


WORKER = {"durable_name": "worker", "ack_policy": "explicit", "deliver_policy": "all"}
AUDIT = {
    "durable_name": "audit",
    "ack_policy": "explicit",
    "deliver_policy": "all",
    "filter_subject": "{name}.s1",
    "description": "reads one subject",
    "max_ack_pending": 500,
}


async def add_consumers(api: JetStreamAPI, nc: Client, stream: str, acked: int) -> None:
    """The ``worker`` durable acknowledges the first ``acked`` messages; ``audit`` none."""
    await api.create_consumer(stream, WORKER)
    audit = dict(AUDIT, filter_subject=f"{stream}.s1")
    await api.create_consumer(stream, audit)
    sub = await nc.jetstream().pull_subscribe_bind("worker", stream=stream)
    done = 0
    while done < acked:
        for msg in await sub.fetch(min(500, acked - done), timeout=10):
            await msg.ack()
            done += 1
    await sub.unsubscribe()

    async def floor_reached() -> bool:
        info = await api.consumer_info(stream, "worker")
        return info is not None and info["ack_floor"]["stream_seq"] == acked

    await wait_for(floor_reached, f"worker's ack floor to reach {acked}")


async def check_consumers(api: JetStreamAPI, nc: Client, stream: str, acked: int) -> None:
    """Both durables exist with their configs; worker resumes right after its ack floor."""
    for base in (WORKER, dict(AUDIT, filter_subject=f"{stream}.s1")):
        info = await api.consumer_info(stream, str(base["durable_name"]))
        assert info is not None, base["durable_name"]
        config = info["config"]
        assert config["deliver_policy"] == "by_start_sequence"
        assert config["metadata"][META_RESUMED_AT] == str(config["opt_start_seq"])
        for key, value in base.items():
            if key != "deliver_policy":
                assert config[key] == value, (key, config[key], value)
    sub = await nc.jetstream().pull_subscribe_bind("worker", stream=stream)
    first = (await sub.fetch(1, timeout=10))[0]
    assert first.headers is not None
    assert first.headers["X-Index"] == str(acked)  # nothing before the floor comes again
    await sub.unsubscribe()


async def assert_no_temp(api: JetStreamAPI, name: str) -> None:
    assert await api.stream_info(temp_name(name)) is None


# -- a whole migration ----------------------------------------------------------------------


async def test_a_stream_of_10000_messages_moves_to_memory_keeping_messages_and_positions(
    api: JetStreamAPI, nc: Client, server: NatsServer
) -> None:
    name, count, acked = unique("MOVE"), 10_000, 3_000
    await make_stream(api, name)
    await fill(nc, name, count)
    await add_consumers(api, nc, name, acked)
    before = await contents(nc, name)
    events: list[StepEvent] = []
    result = await migrate_stream(api, desired_memory(name), on_progress=events.append)
    try:
        info = await api.stream_info(name)
        assert info is not None
        assert info["config"]["storage"] == "memory"
        assert info["config"]["subjects"] == [f"{name}.>"]
        assert info["config"]["duplicate_window"] == 90 * S
        assert not info["config"].get("sources")
        assert await contents(nc, name) == before
        await check_consumers(api, nc, name, acked)
        await assert_no_temp(api, name)
        assert result.resumed_from is Step.CREATE_TEMP
        assert [e.step for e in events if e.phase == "done"] == list(STEP_ORDER[:-1])
        # Publishes are accepted again, and a retried message id is still deduplicated.
        js = nc.jetstream()
        ack = await js.publish(f"{name}.s0", b"after", headers={"Nats-Msg-Id": "new-1"})
        again = await js.publish(f"{name}.s0", b"after", headers={"Nats-Msg-Id": "new-1"})
        assert again.duplicate and again.seq == ack.seq
        print(
            f"\n{Path(server.binary).parent.name}: {count} messages, copy "
            f"{result.timings['copy']:.2f} s, switch-over {result.timings['switch-over']:.2f} s, "
            "steps " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items())
        )
    finally:
        await api.delete_stream(name)


async def test_a_pair_of_messages_sharing_a_msg_id_is_kept_whole(
    api: JetStreamAPI, nc: Client
) -> None:
    """Such a pair exists when a retry came after the window; the copies must not drop it."""
    name = unique("DUPS")
    await make_stream(api, name, duplicate_window=S // 10)
    js = nc.jetstream()
    await js.publish(f"{name}.s0", b"first", headers={"Nats-Msg-Id": "same"})
    first = time.monotonic()

    async def window_passed() -> bool:
        return time.monotonic() - first > 0.3

    await wait_for(window_passed, "the 100 ms window to pass")
    assert not (await js.publish(f"{name}.s0", b"again", headers={"Nats-Msg-Id": "same"})).duplicate
    await js.publish(f"{name}.s1", b"after")
    before = await contents(nc, name)
    try:
        result = await migrate_stream(api, desired_memory(name))
        assert result.messages == 3
        assert await contents(nc, name) == before
    finally:
        await api.delete_stream(name)


# -- interrupted at each step ---------------------------------------------------------------

RUNNER = """
import asyncio, json, sys, time
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.migration.executor import migrate_stream

url, desired, block = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]

def hook(event):
    print(event.phase, event.step.value, flush=True)
    if event.phase == "start" and event.step.value == block:
        time.sleep(3600)  # SIGKILLed here by the test

async def main():
    api = await JetStreamAPI.connect(ConnectionSettings(url=url))
    try:
        await migrate_stream(api, desired, on_progress=hook)
    finally:
        await api.close()

asyncio.run(main())
"""


def run_until_killed(url: str, desired: dict[str, Any], step: Step) -> list[str]:
    """Run the executor in a subprocess and SIGKILL it when it starts ``step``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, url, json.dumps(desired), step.value],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line.strip())
            if line.strip() == f"start {step.value}":
                break
        else:
            raise AssertionError(f"runner ended before {step}: {seen} {proc.stderr.read()}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close() if proc.stdout else None
        proc.stderr.close() if proc.stderr else None
    return seen


KILL_STEPS = [s for s in STEP_ORDER if s is not Step.DONE]
#: Where a re-run starts when the run was killed before a step: steps whose effect the server
#: cannot show (a wait, a check) are repeated from the last step it can.
RESUMES_AT = {
    Step.FREEZE: Step.WAIT_COPY,
    Step.DETACH: Step.VERIFY_COPY,
    Step.RECREATE_CONSUMERS: Step.VERIFY_COPY_BACK,
    Step.OPEN: Step.VERIFY_COPY_BACK,
}


@pytest.mark.parametrize("step", KILL_STEPS, ids=[s.value for s in KILL_STEPS])
async def test_a_migration_killed_before_a_step_converges_on_rerun_without_losing_a_message(
    api: JetStreamAPI, nc: Client, server: NatsServer, step: Step
) -> None:
    name, count, acked = unique("KILL"), 2_000, 700
    await make_stream(api, name)
    await fill(nc, name, count)
    await add_consumers(api, nc, name, acked)
    before = await contents(nc, name)
    desired = desired_memory(name)
    seen = await asyncio.to_thread(run_until_killed, server.url, desired, step)
    assert seen[-1] == f"start {step.value}"
    try:
        result = await migrate_stream(api, desired)
        assert result.resumed_from is RESUMES_AT.get(step, step)
        info = await api.stream_info(name)
        assert info is not None and info["config"]["storage"] == "memory"
        assert await contents(nc, name) == before
        await check_consumers(api, nc, name, acked)
        await assert_no_temp(api, name)
    finally:
        for stream in (name, temp_name(name)):
            if await api.stream_info(stream) is not None:
                await api.delete_stream(stream)


# -- refusals -------------------------------------------------------------------------------


async def test_a_mirror_is_refused_and_left_untouched(api: JetStreamAPI, nc: Client) -> None:
    origin, mirror = unique("ORIGIN"), unique("MIRROR")
    await make_stream(api, origin)
    await api.create_stream({"name": mirror, "mirror": {"name": origin}, "storage": "file"})
    try:
        desired = {"name": mirror, "mirror": {"name": origin}, "storage": "memory"}
        with pytest.raises(MigrationError, match=f"{mirror}'s messages: it is a mirror"):
            await migrate_stream(api, desired)
        await assert_no_temp(api, mirror)
    finally:
        await api.delete_stream(mirror)
        await api.delete_stream(origin)


async def test_a_stream_sourced_by_another_is_refused_and_left_untouched(
    api: JetStreamAPI, nc: Client
) -> None:
    origin, reader = unique("SOURCED"), unique("READER")
    await make_stream(api, origin)
    await api.create_stream({"name": reader, "sources": [{"name": origin}], "storage": "file"})
    try:
        with pytest.raises(MigrationError, match=f"{reader} sources or mirrors it"):
            await migrate_stream(api, desired_memory(origin))
        await assert_no_temp(api, origin)
        info = await api.stream_info(origin)
        assert info is not None and info["config"]["storage"] == "file"
    finally:
        await api.delete_stream(reader)
        await api.delete_stream(origin)


async def test_a_stream_named_like_the_temporary_copy_stops_the_migration(
    api: JetStreamAPI,
) -> None:
    name = unique("TAKEN")
    await make_stream(api, name)
    await api.create_stream({"name": temp_name(name), "storage": "memory"})
    try:
        with pytest.raises(MigrationError, match="not a migration copy"):
            await migrate_stream(api, desired_memory(name))
    finally:
        await api.delete_stream(temp_name(name))
        await api.delete_stream(name)


async def test_nats_server_2_12_refuses_the_migration_naming_the_version() -> None:
    with NatsServer(binary=binary_for("2.12.8")) as srv:
        async with await JetStreamAPI.connect(ConnectionSettings(url=srv.url)) as api:
            name = unique("OLD")
            await make_stream(api, name)
            with pytest.raises(MigrationError, match=r"refused on nats-server 2\.12\.8"):
                await migrate_stream(api, desired_memory(name))
            await assert_no_temp(api, name)
