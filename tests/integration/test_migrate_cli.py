"""``replace_strategy: migrate`` end to end through the CLI, on the oldest and newest server.

A stream on file storage holding 10,000 messages (distinct payloads and headers) with a consumer
group that acknowledged some of them moves to memory storage: ``plan`` shows a ``migrate`` with
its effects, ``apply --auto-approve`` (without ``--allow-data-loss``) converges, the next plan
shows no changes, the messages are identical in order and the group's next delivery is the first
message it had not acknowledged. A consumer setting changed in the same plan is applied after the
migration. Apply SIGKILLed while it migrates converges when run again, losing nothing. A saved
migrate plan applies; a migration refused at apply time and one whose apply lock is lost between
steps stop, report it and keep every message.

One server per version, shared by the module; each test uses its own stream.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.migration.steps import Step, temp_name
from tests.integration.test_migration import contents, fill
from tests.support.cli import apply_until_killed, run_cli
from tests.support.natsserver import NatsServer, binary_for

_names = itertools.count(1)


@pytest.fixture(scope="module", params=["2.10.26", "2.15.1"])
def server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as srv:
        yield srv


def write_topology(
    directory: Path, name: str, *, storage: str, migrate: bool, max_ack_pending: int = 1000
) -> Path:
    """Stream ``name`` with the ``worker`` and ``audit`` groups (as tests.integration.test_migration
    creates them)."""
    directory.mkdir(parents=True, exist_ok=True)
    strategy = "    jelmore:\n      replace_strategy: migrate\n" if migrate else ""
    (directory / "t.yaml").write_text(
        f"streams:\n"
        f"  {name}:\n"
        f"    subjects: ['{name}.>']\n"
        f"    storage: {storage}\n"
        f"{strategy}"
        f"consumer_groups:\n"
        f"  worker:\n"
        f"    stream: {name}\n"
        f"    ack_policy: explicit\n"
        f"    max_ack_pending: {max_ack_pending}\n"
        f"  audit:\n"
        f"    stream: {name}\n"
        f"    ack_policy: explicit\n"
        f"    filter_subject: {name}.s1\n"
        f"    description: reads one subject\n"
        f"    max_ack_pending: 500\n",
        encoding="utf-8",
    )
    return directory


def cli(command: str, url: str, topology: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(command, "-s", url, "--topology", str(topology), *extra)


@pytest.fixture
async def name(api: JetStreamAPI) -> AsyncIterator[str]:
    """A fresh stream name; the stream (and any copy) is deleted afterwards, so the next test's
    topology does not plan to delete it."""
    stream = f"MIG{next(_names)}"
    yield stream
    for each in (stream, temp_name(stream)):
        if await api.stream_info(each) is not None:
            await api.delete_stream(each)


async def prepare(
    api: JetStreamAPI, nc: Client, url: str, tmp_path: Path, name: str, count: int, acked: int
) -> list[str]:
    """Create the stream and groups with apply, fill it, ack ``acked``; the content hashes."""
    topo = write_topology(tmp_path / "before", name, storage="file", migrate=False)
    created = await asyncio.to_thread(cli, "apply", url, topo, "--auto-approve")
    assert created.returncode == 0, created.stderr
    await fill(nc, name, count)
    await ack_first(api, nc, name, acked)
    return await contents(nc, name)


async def ack_first(api: JetStreamAPI, nc: Client, name: str, acked: int) -> None:
    """The ``worker`` group acknowledges the first ``acked`` messages."""
    sub = await nc.jetstream().pull_subscribe_bind("worker", stream=name)
    done = 0
    while done < acked:
        for msg in await sub.fetch(min(500, acked - done), timeout=10):
            await msg.ack_sync()
            done += 1
    await sub.unsubscribe()
    info = await api.consumer_info(name, "worker")
    assert info is not None and info["ack_floor"]["stream_seq"] == acked


async def next_delivery_index(nc: Client, name: str) -> str:
    sub = await nc.jetstream().pull_subscribe_bind("worker", stream=name)
    msg = (await sub.fetch(1, timeout=10))[0]
    await sub.unsubscribe()
    assert msg.headers is not None
    return msg.headers["X-Index"]


async def test_plan_and_apply_migrate_a_stream_of_10000_messages_to_memory(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, name: str
) -> None:
    count, acked = 10_000, 3_000
    before = await prepare(api, nc, server.url, tmp_path, name, count, acked)
    topo = write_topology(
        tmp_path / "after", name, storage="memory", migrate=True, max_ack_pending=900
    )
    planned = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    out = planned.stdout
    assert f"# stream.{name} will be migrated, keeping its messages" in out
    assert f'~> stream "{name}"' in out
    assert f"keeps all {count:,} messages" in out
    assert "sequence numbers change" in out
    assert "refused for about" in out and "the jelmore runtime retries them" in out
    assert "consumer worker is re-created at the first message after its acknowledgement" in out
    assert f"(stream sequence {acked})" in out
    assert "message times restart" in out
    assert "data loss" not in out
    assert f"consumer.{name}.worker will be updated in place" in out  # max_ack_pending
    assert f"consumer.{name}.audit" not in out  # not replaced: the migration keeps it
    assert "1 to migrate" in out

    applied = await asyncio.to_thread(cli, "apply", server.url, topo, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "1 migrated" in applied.stdout
    for step in ("create-temp", "freeze", "delete-original", "recreate-consumers", "delete-temp"):
        assert f"stream.{name}: {step}: " in applied.stderr

    again = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    info = await api.stream_info(name)
    assert info is not None and info["config"]["storage"] == "memory"
    assert await api.stream_info(temp_name(name)) is None
    assert await contents(nc, name) == before
    worker = await api.consumer_info(name, "worker")
    assert worker is not None and worker["config"]["max_ack_pending"] == 900
    assert await next_delivery_index(nc, name) == str(acked)  # message acked + 1 (1-based)


#: Steps at which apply is killed (as each starts): the temporary copy being made, the original
#: frozen (publishes refused), and the original deleted with every message only in the copy.
KILL_AT = [Step.WAIT_COPY, Step.FREEZE, Step.CREATE_NEW]


@pytest.mark.parametrize("step", KILL_AT, ids=[s.value for s in KILL_AT])
async def test_apply_killed_while_migrating_converges_when_run_again(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, step: Step, name: str
) -> None:
    count, acked = 2_000, 700
    before = await prepare(api, nc, server.url, tmp_path, name, count, acked)
    topo = write_topology(tmp_path / "after", name, storage="memory", migrate=True)
    await asyncio.to_thread(apply_until_killed, server.url, topo, f"stream.{name}", step.value)
    assert await api.stream_info(temp_name(name)) is not None  # killed mid-migration

    planned = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "will be migrated (resume" in planned.stdout
    assert "to destroy" in planned.stdout and "0 to destroy" in planned.stdout
    assert "data loss" not in planned.stdout
    assert f"{temp_name(name)} is the copy of an interrupted migration" in planned.stdout

    # The apply lock of the killed run is taken over (it was never released).
    rerun = await asyncio.to_thread(cli, "apply", server.url, topo, "--auto-approve")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    done = await asyncio.to_thread(cli, "plan", server.url, topo, "--detailed-exitcode")
    assert done.returncode == 0, done.stdout + done.stderr
    assert await api.stream_info(temp_name(name)) is None
    assert await contents(nc, name) == before
    assert await next_delivery_index(nc, name) == str(acked)


# -- failures reported by the apply library ---------------------------------------------------


async def test_a_migration_refused_at_apply_time_reports_that_nothing_was_lost(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, name: str
) -> None:
    """Planned while allowed, then another stream starts sourcing it: apply stops, keeps all."""
    from jelmore_infra.apply import apply_plan
    from jelmore_infra.topology import load_topology
    from jelmore_infra.workflow import make_plan

    before = await prepare(api, nc, server.url, tmp_path, name, 500, 100)
    topo = write_topology(tmp_path / "after", name, storage="memory", migrate=True)
    plan = await make_plan(api, load_topology(topo))
    assert [c.action.value for c in plan.changes] == ["migrate"] and not plan.errors
    copy = f"{name}_COPY"
    await api.create_stream({"name": copy, "sources": [{"name": name}]})
    try:
        result = await apply_plan(api, plan)
        failed = result.failed
        assert failed is not None and failed.error is not None
        assert f"migration of {name} stopped before its first step" in failed.error
        assert f"{copy} sources or mirrors it" in failed.error
        assert "no message was lost" in failed.error and "run apply again" in failed.error
        info = await api.stream_info(name)
        assert info is not None and info["config"]["storage"] == "file"
        assert await contents(nc, name) == before
    finally:
        await api.delete_stream(copy)


class LeaseLostAfter:
    """An apply lock that the server stops confirming after ``n`` confirmations."""

    def __init__(self, n: int) -> None:
        self.left = n

    async def ensure_held(self) -> None:
        return None

    async def confirm(self) -> None:
        from jelmore_infra.errors import LockError

        if self.left <= 0:
            raise LockError("the apply lock was taken over by another apply")
        self.left -= 1


async def test_a_lost_lock_stops_the_migration_between_steps_and_a_rerun_finishes_it(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, name: str
) -> None:
    from jelmore_infra.apply import ApplyHooks, apply_plan
    from jelmore_infra.topology import load_topology
    from jelmore_infra.workflow import make_plan

    before = await prepare(api, nc, server.url, tmp_path, name, 500, 100)
    topo = write_topology(tmp_path / "after", name, storage="memory", migrate=True)
    plan = await make_plan(api, load_topology(topo))
    lines: list[str] = []
    hooks = ApplyHooks(on_progress=lambda change, line: lines.append(line))
    # One confirmation for the phase, then three steps: the fourth (verify-copy) never starts.
    result = await apply_plan(api, plan, hooks=hooks, lease=LeaseLostAfter(4))
    assert result.lock_lost is not None and "taken over" in result.lock_lost
    done = [line.split(":")[0] for line in lines if not line.endswith("...")]
    assert done == ["create-temp", "wait-copy", "freeze"]
    assert await api.stream_info(temp_name(name)) is not None
    rerun = await asyncio.to_thread(cli, "apply", server.url, topo, "--auto-approve")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert await contents(nc, name) == before
    assert await api.stream_info(temp_name(name)) is None


async def test_a_saved_migrate_plan_applies_without_allow_data_loss(
    api: JetStreamAPI, nc: Client, server: NatsServer, tmp_path: Path, name: str
) -> None:
    before = await prepare(api, nc, server.url, tmp_path, name, 500, 100)
    topo = write_topology(tmp_path / "after", name, storage="memory", migrate=True)
    planfile = tmp_path / "plan.json"
    saved = await asyncio.to_thread(cli, "plan", server.url, topo, "-out", str(planfile))
    assert saved.returncode == 0, saved.stderr
    applied = await asyncio.to_thread(run_cli, "apply", "-s", server.url, str(planfile))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "1 migrated" in applied.stdout
    assert await contents(nc, name) == before
    assert await next_delivery_index(nc, name) == "100"
