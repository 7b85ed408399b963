"""The roles of ``jelmore-infra permissions`` on a server that enforces them (issue 13 part 2).

One server per supported edge version (2.10 and 2.15) per module. Its configuration is the
``server-config`` output of the real CLI for the test topology, plus one user per role whose
``permissions`` reference those variables (and an ``admin`` user without limits, used only to
look at what the roles did). So the tests prove the generated configuration itself works:

* every role does its whole job through the real CLI and runtime: the planner plans an empty
  server (no writes, no lock), the applier applies from empty and a saved plan of a change,
  publishers publish, a worker consumes with retries until its dead-letter queue, the router
  dead-letters an event whose worker gave up, the operator runs health, replay and the DLQ tools;
* a matrix of attempts outside each role, each refused by the server with a permissions
  violation.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nkeys
import pytest
from nats.aio.client import Client

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.runtime import Runtime
from jelmore_infra.runtime.dlq import ROUTER_FAILURE_REASON
from tests.support.cli import REPO, copy_topology, run_cli
from tests.support.natsserver import NatsServer, binary_for
from tests.support.roles import (
    admin_url,
    fast_topology,
    generated_config,
    password_of,
    user_of,
    users_block,
)
from tests.support.runtime_topology import stream_messages
from tests.support.waiting import wait_for

VERSIONS = ("2.10.26", "2.15.1")
#: The roles given a user on the test server (every variable the output defines must be used).
ROLES = (
    "publisher",
    "publisher:session.created",
    "publisher:session.file_modified",
    "worker:file_watchers",
    "worker:git_monitors",
    "worker:session_handlers",
    "router",
    "planner",
    "applier",
    "operator",
)
#: A role whose clients use an inbox space of their own (``--inbox-prefix _INBOX_{role}``).
PRIVATE_INBOX_ROLE = "worker:system_monitors"
PRIVATE_INBOX = "_INBOX_worker_system_monitors"


@dataclass
class World:
    """The enforcing server, the test topology, and what the set-up's commands did."""

    server: NatsServer
    topology: Path
    #: the set-up's commands (plan on the empty server, apply from empty, plan after it)
    setup: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    #: the streams on the server right after the planner planned the empty server
    streams_after_plan: list[str] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return admin_url(self.server.port)

    def cli(
        self, role: str, *args: str, topology: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``jelmore-infra ARGS`` connecting as the user of ``role``."""
        auth = ["-s", self.server.url, "--user", user_of(role), "--password", password_of(role)]
        where = ["--topology", str(topology or self.topology)] if args[0] in TOPOLOGY_CMDS else []
        proc = run_cli(*args, *where, *auth)
        assert password_of(role) not in proc.stdout + proc.stderr
        return proc

    def start_cli(self, role: str, *args: str) -> subprocess.Popen[str]:
        """``jelmore-infra ARGS`` as ``role``, running in the background."""
        auth = ["-s", self.server.url, "--user", user_of(role), "--password", password_of(role)]
        return subprocess.Popen(
            [sys.executable, "-m", "jelmore_infra", *args, *auth],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "NO_COLOR": "1"},
        )

    def settings(self, role: str) -> ConnectionSettings:
        inbox = PRIVATE_INBOX if role == PRIVATE_INBOX_ROLE else None
        return ConnectionSettings(
            url=self.server.url, user=user_of(role), password=password_of(role), inbox_prefix=inbox
        )


TOPOLOGY_CMDS = ("plan", "apply")


async def stream_names(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        reply = await nc.request("$JS.API.STREAM.NAMES", b"", timeout=5)
        return sorted(json.loads(reply.data).get("streams") or [])
    finally:
        await nc.close()


@pytest.fixture(scope="module", params=VERSIONS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    topology = fast_topology(tmp_path_factory.mktemp("permissions"))
    shared, variables = generated_config(topology, ROLES)
    private, more = generated_config(
        topology, [PRIVATE_INBOX_ROLE], "--inbox-prefix", "_INBOX_{role}"
    )
    config = shared + private + users_block({**variables, **more})
    with NatsServer(binary=binary_for(request.param), config=config) as server:
        world = World(server, topology)
        # The planner plans the empty server; then the applier applies the topology from empty.
        world.setup["plan on empty"] = world.cli("planner", "plan")
        world.streams_after_plan = asyncio.run(stream_names(world.admin_url))
        world.setup["apply"] = world.cli("applier", "apply", "--auto-approve")
        world.setup["plan after apply"] = world.cli("planner", "plan", "--detailed-exitcode")
        yield world


# -- each role does its job ---------------------------------------------------------------------


def test_the_planner_plans_an_empty_server_without_writing_anything_or_taking_the_lock(
    world: World,
) -> None:
    plan = world.setup["plan on empty"]
    assert plan.returncode == 0, plan.stderr
    assert "stream.JELMORE" in plan.stdout and "to add" in plan.stdout
    assert "permission" not in plan.stderr.lower()
    # no lock bucket, no catalogue, nothing at all
    assert world.streams_after_plan == []


def test_the_applier_applies_the_topology_from_empty_and_the_planner_then_sees_no_changes(
    world: World,
) -> None:
    applied = world.setup["apply"]
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete" in applied.stdout + applied.stderr
    after = world.setup["plan after apply"]
    assert after.returncode == 0, after.stdout + after.stderr
    names = asyncio.run(stream_names(world.admin_url))
    assert {"JELMORE", "JELMORE_DLQ", "JELMORE_ADVISORIES", "KV_jelmore-catalogue"} <= set(names)


def test_the_applier_applies_a_change_the_planner_saved_and_can_force_unlock(
    world: World, tmp_path: Path
) -> None:
    changed = copy_topology(tmp_path)
    for path in changed.glob("*.yaml"):
        path.write_text((world.topology / path.name).read_text())
    streams = changed / "streams.yaml"
    streams.write_text(
        streams.read_text().replace(
            "description: Jelmore dead-letter queue", "description: Jelmore dead letters"
        )
    )
    events = changed / "events.yaml"
    events.write_text(
        events.read_text().replace(
            "description: Session output received", "description: Output of a session"
        )
    )
    saved = tmp_path / "plan.json"
    plan = world.cli("planner", "plan", "-out", str(saved), topology=changed)
    assert plan.returncode == 0, plan.stderr
    assert "stream.JELMORE_DLQ" in plan.stdout and "event.session.output" in plan.stdout
    applied = world.cli("applier", "apply", str(saved), "--auto-approve", topology=changed)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = world.cli("planner", "plan", "--detailed-exitcode", topology=changed)
    assert again.returncode == 0, again.stdout + again.stderr
    unlocked = world.cli("applier", "force-unlock", "--yes")
    assert unlocked.returncode == 0, unlocked.stderr


def test_an_apply_beyond_the_appliers_permissions_stops_and_says_what_was_done(
    world: World, tmp_path: Path
) -> None:
    """Permissions generated before a stream was added do not let the applier create it: the
    apply carries out what it may, stops at the refused step and says what was done."""
    grown = copy_topology(tmp_path)
    for path in grown.glob("*.yaml"):
        path.write_text((world.topology / path.name).read_text())
    streams = grown / "streams.yaml"
    text = streams.read_text().replace(
        "description: Jelmore session events", "description: Session events"
    )
    streams.write_text(text + "\n  EXTRA:\n    subjects: [extra.>]\n")
    applied = world.cli("applier", "apply", "--auto-approve", "--timeout", "1", topology=grown)
    assert applied.returncode == 1
    assert "Traceback" not in applied.stderr
    assert "no permission to publish to $JS.API.STREAM.CREATE.EXTRA" in applied.stderr
    done = re.search(r"^  done: (.*)$", applied.stderr, re.MULTILINE)
    assert done is not None and "stream.JELMORE" in done.group(1).split(", "), applied.stderr
    assert "EXTRA" not in asyncio.run(stream_names(world.admin_url))


def test_publishers_publish_the_events_their_role_names(world: World) -> None:
    session = uuid.uuid4().hex
    every = world.cli(
        "publisher",
        "events",
        "publish",
        "-t",
        "session.created",
        "--session-id",
        session,
        "--payload",
        '{"provider": "claude"}',
    )
    assert every.returncode == 0, every.stderr
    one = world.cli(
        "publisher:session.file_modified",
        "events",
        "publish",
        "-t",
        "session.file_modified",
        "--session-id",
        session,
        "--payload",
        '{"path": "a.py", "change": "modified"}',
    )
    assert one.returncode == 0, one.stderr

    async def stored() -> set[str]:
        msgs = await stream_messages(world.admin_url, "JELMORE")
        return {m["subject"] for m in msgs if session.encode() in m["data"]}

    subjects = asyncio.run(wait_for(stored, "the published events"))
    assert subjects == {"jelmore.session.created", "jelmore.session.file_modified"}


async def test_a_publisher_is_told_at_once_that_an_event_outside_its_role_is_refused(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jelmore_infra.runtime")
    async with Runtime(connection=world.settings("publisher:session.created")) as publisher:
        assert await publisher.publish_event("session.created", uuid.uuid4().hex, {})
        assert not await publisher.publish_event("session.output", uuid.uuid4().hex, {})
        assert publisher.metrics.publish_errors == 1  # failed, not "not confirmed"
        assert publisher.metrics.publish_not_confirmed == 0
    assert (
        "failed (not stored) after 1 attempt: the server refused jelmore.session.output"
        in caplog.text
    )


async def dlq_records(world: World, group: str, session: str) -> list[dict[str, Any]]:
    found = []
    for msg in await stream_messages(world.admin_url, "JELMORE_DLQ"):
        record = json.loads(msg["data"])
        if record.get("consumer_group") == group and record.get("session_id") == session:
            found.append({**record, "dlq_seq": msg["seq"]})
    return found


async def test_a_worker_retries_a_failing_event_and_dead_letters_it_within_its_role(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    session = uuid.uuid4().hex
    attempts: list[int] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            attempts.append(msg.metadata.num_delivered)
            raise RuntimeError("disk full")

    caplog.set_level(logging.WARNING, logger="jelmore_infra.runtime")
    async with (
        Runtime(connection=world.settings("publisher")) as publisher,
        Runtime(connection=world.settings("worker:file_watchers")) as worker,
    ):
        sub = await worker.subscribe_to_events(
            None, handler, consumer_group="file_watchers", route_dead_letters=False
        )
        try:
            payload = {"path": "x.py", "change": "deleted"}
            assert await publisher.publish_event("session.file_modified", session, payload)
            records = await wait_for(
                lambda: dlq_records(world, "file_watchers", session), "the dead letter"
            )
        finally:
            await sub.stop()
    assert attempts == [1, 2, 3]
    assert len(records) == 1 and "disk full" in records[0]["failure_reason"]
    assert "ermissions violation" not in caplog.text


async def test_a_worker_started_with_the_defaults_leaves_the_router_to_its_own_role(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers run the dead-letter router by default; under a worker role the server refuses
    it, and the worker says so at once and goes on without it."""

    async def handler(event: dict[str, Any], msg: Any) -> None:
        return None

    caplog.set_level(logging.WARNING, logger="jelmore_infra.runtime")
    async with Runtime(connection=world.settings("worker:session_handlers")) as worker:
        sub = await worker.subscribe_to_events(None, handler, consumer_group="session_handlers")
        try:
            assert sub.running and worker.router is None
        finally:
            await sub.stop()
    assert (
        "dead-letter router not started: the server refused "
        "$JS.API.CONSUMER.INFO.JELMORE_ADVISORIES.dlq_router" in caplog.text
    )


async def consumer_info(world: World, stream: str, name: str) -> dict[str, Any]:
    nc = await nats.connect(world.admin_url)
    try:
        reply = await nc.request(f"$JS.API.CONSUMER.INFO.{stream}.{name}", b"", timeout=5)
        info: dict[str, Any] = json.loads(reply.data)
        return info
    finally:
        await nc.close()


async def test_a_worker_with_an_inbox_space_of_its_own_consumes_and_acknowledges(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    session = uuid.uuid4().hex
    handled: list[str] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        handled.append(event["session_id"])

    caplog.set_level(logging.WARNING, logger="jelmore_infra.runtime")
    async with (
        Runtime(connection=world.settings("publisher")) as publisher,
        Runtime(connection=world.settings(PRIVATE_INBOX_ROLE)) as worker,
    ):
        sub = await worker.subscribe_to_events(
            None, handler, consumer_group="system_monitors", route_dead_letters=False
        )
        try:
            assert await publisher.publish_event("session.status", session, {"status": "up"})
            await wait_for(lambda: session in handled, "the event to be handled")

            async def all_acknowledged() -> bool:
                info = await consumer_info(world, "JELMORE", "system_monitors")
                return info["num_ack_pending"] == 0 and info["num_pending"] == 0

            await wait_for(all_acknowledged, "the acknowledgement")
        finally:
            await sub.stop()
    assert handled.count(session) == 1
    assert "ermissions violation" not in caplog.text


async def test_the_router_dead_letters_an_event_whose_worker_gave_up(world: World) -> None:
    session = uuid.uuid4().hex
    async with Runtime(connection=world.settings("publisher")) as publisher:
        assert await publisher.publish_event("session.git_activity", session, {"branch": "main"})
    # A git_monitors worker that hands the event back three times without finishing it (as one
    # that keeps crashing would): the server then advises that it ran out of deliveries.
    nc = await nats.connect(
        world.server.url,
        user=user_of("worker:git_monitors"),
        password=password_of("worker:git_monitors"),
    )
    try:
        sub = await nc.jetstream().pull_subscribe_bind("git_monitors", "JELMORE")
        handed_back = 0
        while handed_back < 3:
            for msg in await sub.fetch(1, timeout=5):
                if session.encode() in msg.data:
                    handed_back += 1
                    await msg.nak()
                else:
                    await msg.ack()
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=0.5)  # no 4th delivery; this pull makes the advisory go
    finally:
        await nc.close()

    async def advised() -> bool:
        msgs = await stream_messages(world.admin_url, "JELMORE_ADVISORIES")
        return any(b'"git_monitors"' in m["data"] for m in msgs)

    await wait_for(advised, "the max-deliveries advisory")
    router = world.start_cli("router", "events", "dlq", "route")
    try:
        records = await wait_for(
            lambda: dlq_records(world, "git_monitors", session), "the dead letter"
        )
    finally:
        router.send_signal(signal.SIGTERM)  # stops it gracefully: it reports what it routed
        out, err = router.communicate(timeout=60)
    assert router.returncode == 0, err
    assert "1 event(s) routed" in out
    assert records[0]["failure_reason"] == ROUTER_FAILURE_REASON


def test_the_operator_runs_health_replay_and_the_dead_letter_tools(world: World) -> None:
    session = uuid.uuid4().hex
    published = world.cli(
        "publisher",
        "events",
        "publish",
        "-t",
        "session.status",
        "--session-id",
        session,
        "--payload",
        '{"status": "running"}',
    )
    assert published.returncode == 0, published.stderr
    health = world.cli("operator", "events", "health", "--json")
    assert health.returncode in (0, 1), health.stderr  # 1 when the DLQ holds events
    status = json.loads(health.stdout)
    assert status["stream_health"] == "ok", status
    assert set(status["consumer_lag"]) == {
        "file_watchers",
        "git_monitors",
        "session_handlers",
        "system_monitors",
    }
    assert status["dlq_size"] >= 1, status

    replay = world.cli("operator", "events", "replay", "--hours", "1", "--json")
    assert replay.returncode == 0, replay.stderr
    replayed = [json.loads(line) for line in replay.stdout.splitlines()]
    assert any(e["session_id"] == session for e in replayed)

    dead = world.cli("operator", "events", "dlq", "list", "--json")
    assert dead.returncode == 0, dead.stderr
    rows = [json.loads(line) for line in dead.stdout.splitlines()]
    assert rows, "the worker and router tests left dead letters"
    seq = rows[0]["dlq_seq"]
    shown = world.cli("operator", "events", "dlq", "show", str(seq))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["dlq_seq"] == seq
    again = world.cli("operator", "events", "dlq", "replay", "--seq", str(seq))
    assert again.returncode == 0, again.stderr
    assert "re-published 1 event(s)" in again.stdout
    after = world.cli("operator", "events", "dlq", "list", "--json")
    assert str(seq) not in [str(json.loads(line)["dlq_seq"]) for line in after.stdout.splitlines()]
    history = world.cli("operator", "history", "--json")
    assert history.returncode == 0, history.stderr
    assert any(json.loads(line)["command"] == "apply" for line in history.stdout.splitlines())
    for proc in (health, replay, dead, shown, again, after, history):
        assert "permission" not in proc.stderr.lower(), proc.stderr


# -- attempts outside each role -------------------------------------------------------------------

PUB, SUB = "publish", "subscribe"

#: (role, publish or subscribe, subject, what it would do)
OUTSIDE: list[tuple[str, str, str, str]] = [
    ("publisher", PUB, "$JS.API.STREAM.DELETE.JELMORE", "delete the event stream"),
    ("publisher", SUB, "jelmore.session.>", "listen to the events"),
    ("publisher", PUB, "$JS.API.CONSUMER.MSG.NEXT.JELMORE.file_watchers", "fetch a group's events"),
    ("publisher", PUB, "jelmore.dlq.file_watchers.jelmore.session.created", "forge a dead letter"),
    ("publisher", PUB, "$KV.jelmore-catalogue.session.created", "rewrite the catalogue"),
    ("publisher", PUB, "jelmore.session.undeclared", "publish an undeclared event type"),
    ("publisher", PUB, "$JS.API.CONSUMER.CREATE.JELMORE.spy", "create a consumer"),
    ("publisher:session.created", PUB, "jelmore.session.file_modified", "publish another type"),
    (
        "worker:file_watchers",
        PUB,
        "$JS.API.CONSUMER.MSG.NEXT.JELMORE.git_monitors",
        "fetch from git_monitors",
    ),
    ("worker:file_watchers", PUB, "$JS.ACK.JELMORE.git_monitors.1.1.1.0.0", "ack for git_monitors"),
    (
        "worker:file_watchers",
        PUB,
        "$JS.API.CONSUMER.INFO.JELMORE.git_monitors",
        "read git_monitors' consumer",
    ),
    (
        "worker:file_watchers",
        PUB,
        "jelmore.dlq.git_monitors.jelmore.session.git_activity",
        "dead-letter for git_monitors",
    ),
    ("worker:file_watchers", PUB, "jelmore.dlq.other", "publish outside its dead-letter subject"),
    ("worker:file_watchers", PUB, "jelmore.session.file_modified", "publish an event"),
    (
        "worker:file_watchers",
        PUB,
        "$JS.API.CONSUMER.CREATE.JELMORE.file_watchers",
        "change its own consumer",
    ),
    (
        "worker:file_watchers",
        PUB,
        "$JS.API.CONSUMER.DELETE.JELMORE.file_watchers",
        "delete its own consumer",
    ),
    ("worker:file_watchers", PUB, "$JS.API.STREAM.MSG.GET.JELMORE", "read around its filter"),
    ("worker:file_watchers", SUB, "$JS.EVENT.ADVISORY.>", "listen to advisories"),
    (
        "worker:file_watchers",
        PUB,
        "$JS.API.CONSUMER.MSG.NEXT.JELMORE_ADVISORIES.dlq_router",
        "fetch the router's advisories",
    ),
    ("worker:system_monitors", SUB, "_INBOX.>", "listen to the other roles' inboxes"),
    ("worker:file_watchers", SUB, f"{PRIVATE_INBOX}.>", "listen to another role's own inbox"),
    ("router", PUB, "jelmore.session.created", "publish an event"),
    ("router", PUB, "$JS.API.STREAM.MSG.DELETE.JELMORE_DLQ", "delete a dead letter"),
    ("router", PUB, "$JS.API.CONSUMER.MSG.NEXT.JELMORE.session_handlers", "fetch a group's events"),
    ("planner", PUB, "$JS.API.STREAM.CREATE.ROGUE", "create a stream"),
    ("planner", PUB, "$JS.API.STREAM.UPDATE.JELMORE", "update a stream"),
    ("planner", PUB, "$JS.API.STREAM.PURGE.JELMORE", "purge a stream"),
    ("planner", PUB, "$KV.jelmore-infra-locks.apply", "write the apply lock"),
    ("planner", PUB, "$JS.API.STREAM.CREATE.KV_jelmore-infra-locks", "create the lock bucket"),
    ("planner", PUB, "$JS.API.CONSUMER.CREATE.JELMORE.file_watchers", "change a consumer"),
    ("planner", PUB, "$JS.API.CONSUMER.DELETE.JELMORE.file_watchers", "delete a consumer"),
    ("planner", PUB, "$KV.jelmore-catalogue.session.created", "write the catalogue"),
    ("planner", PUB, "$JS.API.STREAM.MSG.GET.JELMORE", "read event payloads"),
    ("planner", PUB, "jelmore.session.created", "publish an event"),
    ("applier", PUB, "$JS.API.STREAM.CREATE.ROGUE", "create a stream outside the topology"),
    ("applier", PUB, "$JS.API.STREAM.PURGE.JELMORE", "purge the event stream"),
    ("applier", PUB, "$JS.API.STREAM.MSG.GET.JELMORE", "read event payloads"),
    ("applier", PUB, "$JS.API.CONSUMER.MSG.NEXT.JELMORE.file_watchers", "fetch a group's events"),
    ("applier", PUB, "jelmore.session.created", "publish an event"),
    ("applier", SUB, "jelmore.>", "listen to the events"),
    ("operator", PUB, "$JS.API.CONSUMER.MSG.NEXT.JELMORE.file_watchers", "fetch a group's events"),
    ("operator", PUB, "$JS.API.CONSUMER.CREATE.JELMORE.file_watchers", "change a group's consumer"),
    ("operator", PUB, "$JS.API.CONSUMER.DELETE.JELMORE.file_watchers", "delete a group's consumer"),
    ("operator", PUB, "$JS.ACK.JELMORE.file_watchers.1.1.1.0.0", "ack for a group"),
    ("operator", PUB, "$JS.API.STREAM.DELETE.JELMORE", "delete the event stream"),
    ("operator", PUB, "$JS.API.STREAM.UPDATE.JELMORE_DLQ", "update the dead-letter stream"),
    ("operator", PUB, "jelmore.dlq.file_watchers.jelmore.session.created", "forge a dead letter"),
    ("operator", PUB, "$KV.jelmore-infra-locks.apply", "write the apply lock"),
]


async def connect_as(world: World, role: str, seen: list[str] | None = None) -> Client:
    async def on_error(exc: Exception) -> None:
        if seen is not None and "permissions violation" in str(exc).lower():
            seen.append(str(exc).lower())

    return await nats.connect(
        world.server.url,
        user=user_of(role),
        password=password_of(role),
        error_cb=on_error,
        allow_reconnect=False,
    )


async def refusal(world: World, role: str, op: str, subject: str) -> str:
    """Try ``op`` on ``subject`` as ``role`` and wait for the server's permissions violation
    naming that subject (nats-py reports the server's error in lower case)."""
    seen: list[str] = []
    quoted = f'"{subject}"'.lower()
    nc = await connect_as(world, role, seen)
    try:
        if op == PUB:
            await nc.publish(subject, b"{}", reply=nc.new_inbox())
        else:
            await nc.subscribe(subject)
        await nc.flush()
        found: str = await wait_for(
            lambda: next((text for text in seen if quoted in text), None),
            f"the server to refuse {op} {subject} to {role}",
            within=10,
        )
        return found
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("role", "op", "subject", "what"),
    OUTSIDE,
    ids=[f"{role}-cannot-{what.replace(' ', '-')}" for role, _, _, what in OUTSIDE],
)
async def test_the_server_refuses_each_attempt_outside_the_role(
    world: World, role: str, op: str, subject: str, what: str
) -> None:
    assert "permissions violation" in await refusal(world, role, op, subject)


#: Requests inside the roles, each answered (the matrix's check is not refusing everything).
INSIDE: list[tuple[str, str]] = [
    ("publisher", "jelmore.session.created"),
    ("worker:file_watchers", "$JS.API.CONSUMER.INFO.JELMORE.file_watchers"),
    ("planner", "$JS.API.STREAM.LIST"),
    ("operator", "$JS.API.CONSUMER.INFO.JELMORE.replay-1"),
    ("applier", "$JS.API.STREAM.INFO.JELMORE"),
]


@pytest.mark.parametrize(("role", "subject"), INSIDE)
async def test_the_server_answers_what_the_role_needs(
    world: World, role: str, subject: str
) -> None:
    seen: list[str] = []
    nc = await connect_as(world, role, seen)
    try:
        reply = await nc.request(subject, b"", timeout=5)
        assert reply.data
        assert seen == []
        # and the role hears what comes on its inbox (its subscribe permission)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        admin = await nats.connect(world.admin_url)
        try:
            await admin.publish(inbox, b"hello")
            await admin.flush()
        finally:
            await admin.close()
        assert (await sub.next_msg(timeout=5)).data == b"hello"
    finally:
        await nc.close()


# -- the json format as JWT user claims ----------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _seeded(prefix: int) -> tuple[Any, bytes]:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return nkeys.from_seed(seed), seed


def _jwt(signer: Any, subject: str, name: str, nats_claims: dict[str, Any]) -> str:
    """A NATS JWT (``ed25519-nkey``) of ``nats_claims`` about ``subject``, signed by ``signer``."""
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": signer.public_key.decode(),
        "name": name,
        "sub": subject,
        "nats": {**nats_claims, "version": 2},
    }
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signer.sign(f'{head}.{body}'.encode()))}"


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "conn": -1}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_json_permissions_work_as_the_claims_of_jwt_users(version: str, tmp_path: Path) -> None:
    """Operator mode: an operator, a JetStream account and one user per role whose JWT carries
    the role's ``--format json`` permissions; the applier applies, the planner plans and a
    publisher publishes through the CLI with those users' creds files."""
    topology = fast_topology(tmp_path)
    operator, _ = _seeded(nkeys.PREFIX_BYTE_OPERATOR)
    account, _ = _seeded(nkeys.PREFIX_BYTE_ACCOUNT)
    system, _ = _seeded(nkeys.PREFIX_BYTE_ACCOUNT)
    limits = {**UNLIMITED, "wildcards": True, "leaf": -1}
    js = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
    accounts = {
        account.public_key.decode(): _jwt(
            operator,
            account.public_key.decode(),
            "APP",
            {"type": "account", "limits": {**limits, **js}},
        ),
        system.public_key.decode(): _jwt(
            operator, system.public_key.decode(), "SYS", {"type": "account", "limits": limits}
        ),
    }
    creds: dict[str, Path] = {}
    for role in ("applier", "planner", "publisher:session.created"):
        out = run_cli(
            "permissions", "--topology", str(topology), "--role", role, "--format", "json"
        )
        assert out.returncode == 0, out.stderr
        user, seed = _seeded(nkeys.PREFIX_BYTE_USER)
        claims = {"type": "user", **UNLIMITED, **json.loads(out.stdout)}
        token = _jwt(account, user.public_key.decode(), role, claims)
        path = tmp_path / f"{user_of(role)}.creds"
        path.write_text(
            f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{seed.decode()}\n------END USER NKEY SEED------\n"
        )
        creds[role] = path
    preload = ", ".join(f'{key}: "{value}"' for key, value in accounts.items())
    config = (
        f'operator: "{_jwt(operator, operator.public_key.decode(), "OP", {"type": "operator"})}"\n'
        f"system_account: {system.public_key.decode()}\n"
        f"resolver: MEMORY\nresolver_preload: {{ {preload} }}\n"
    )
    with NatsServer(binary=binary_for(version), config=config) as server:

        def as_role(role: str, *args: str) -> subprocess.CompletedProcess[str]:
            where = ["--topology", str(topology)] if args[0] in TOPOLOGY_CMDS else []
            return run_cli(*args, *where, "-s", server.url, "--creds", str(creds[role]))

        applied = as_role("applier", "apply", "--auto-approve")
        assert applied.returncode == 0, applied.stderr
        planned = as_role("planner", "plan", "--detailed-exitcode")
        assert planned.returncode == 0, planned.stdout + planned.stderr
        published = as_role(
            "publisher:session.created", "events", "publish", "-t", "session.created"
        )
        assert published.returncode == 0, published.stderr
        refused = as_role("publisher:session.created", "events", "publish", "-t", "session.output")
        assert refused.returncode == 1
        assert "Traceback" not in refused.stderr
        assert "no permission to publish" in refused.stderr, refused.stderr
