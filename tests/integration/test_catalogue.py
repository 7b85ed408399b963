"""The event catalogue against real servers (the oldest and the newest supported): apply stores
it, nats-py reads it, the runtime follows it while it runs, publishing validates, and a consumer
group validates against the schema version each message names."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from jelmore_infra import runtime
from jelmore_infra.runtime import EventError, Runtime
from tests.integration.conftest import RUNTIME_VERSIONS
from tests.support.cli import assert_clean_error, copy_topology, run_cli
from tests.support.natsserver import NatsServer, binary_for
from tests.support.runtime_topology import (
    add_group_async,
    provision_async,
    put_event,
    stream_messages,
    wait_until,
)

ARCHIVED = """
  session.archived:
    description: Session archived for later reading
    payload:
      type: object
      required: [archive_id]
      properties:
        archive_id: {type: string}
"""


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(params=RUNTIME_VERSIONS)
def fresh(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    """An empty server of each runtime version (apply provisions it)."""
    with NatsServer(binary=binary_for(request.param)) as srv:
        yield srv


@pytest.fixture
async def rt(server: NatsServer) -> AsyncIterator[Runtime]:
    async with Runtime(url=server.url, client_id="catalogue-test") as each:
        yield each


async def dlq_records(url: str, group: str) -> list[dict[str, Any]]:
    return [
        json.loads(m["data"])
        for m in await stream_messages(url, "JELMORE_DLQ")
        if m["subject"].startswith(f"jelmore.dlq.{group}.")
    ]


async def stored_sessions(url: str, session: str) -> list[dict[str, Any]]:
    found = []
    for m in await stream_messages(url, "JELMORE"):
        event = json.loads(m["data"])
        if event.get("session_id") == session:
            found.append({**event, "_headers": m["headers"]})
    return found


def apply(url: str, topology: Path) -> None:
    done = run_cli("apply", "-s", url, "--topology", str(topology), "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr


async def test_apply_stores_the_catalogue_that_nats_py_reads_and_a_second_plan_is_clean(
    fresh: NatsServer, tmp_path: Path
) -> None:
    topology = copy_topology(tmp_path)
    apply(fresh.url, topology)
    nc = await nats.connect(fresh.url)
    try:
        kv = await nc.jetstream().key_value("jelmore-catalogue")
        entry = json.loads((await kv.get("session.created")).value)
        assert entry["version"] == 1 and entry["subject"] == "jelmore.session.created"
        assert set(entry["payload"]["properties"]) == {"provider", "timeout"}
        assert sorted(await kv.keys()) == sorted(
            [
                "session.completed",
                "session.created",
                "session.directory_changed",
                "session.failed",
                "session.file_modified",
                "session.git_activity",
                "session.output",
                "session.status",
            ]
        )
    finally:
        await nc.close()
    again = run_cli("plan", "-s", fresh.url, "--topology", str(topology), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


async def test_a_new_event_type_is_published_and_consumed_with_no_code_change(
    fresh: NatsServer, tmp_path: Path
) -> None:
    topology = copy_topology(tmp_path)
    apply(fresh.url, topology)
    handled: list[dict[str, Any]] = []
    session = uuid.uuid4().hex

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            handled.append(event)

    async with Runtime(url=fresh.url, client_id="archiver") as rt:
        sub = await rt.subscribe_to_events(None, handler, consumer_group="session_handlers")
        try:
            with pytest.raises(EventError, match=r"unknown event type 'session\.archived'"):
                await rt.publish_event("session.archived", session, {"archive_id": "a1"})
            events = topology / "events.yaml"
            events.write_text(events.read_text() + ARCHIVED)
            await asyncio.to_thread(apply, fresh.url, topology)
            # the same runtime, still running, now knows the type
            assert await rt.publish_event("session.archived", session, {"archive_id": "a1"})
            await wait_until(lambda: handled)
        finally:
            await sub.stop()
    assert handled[0]["event_type"] == "session.archived"
    assert handled[0]["payload"] == {"archive_id": "a1"}
    stored = await stored_sessions(fresh.url, session)
    assert [e["_headers"]["Jelmore-Schema-Version"] for e in stored] == ["1"]


async def test_an_invalid_payload_is_refused_on_publish_and_dead_lettered_when_sent_raw(
    server: NatsServer, rt: Runtime
) -> None:
    group = unique("validating")
    await add_group_async(server.url, group, ["jelmore.session.created"])
    session = uuid.uuid4().hex
    bad = {"provider": "claude", "timeout": "soon"}
    with pytest.raises(EventError) as refused:
        await rt.publish_event("session.created", session, bad)
    assert str(refused.value) == (
        "session.created payload violates its schema (version 1): payload.timeout: 'soon' is "
        "not of type 'integer'"
    )
    assert await stored_sessions(server.url, session) == []

    called: list[dict[str, Any]] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        called.append(event)

    sub = await rt.subscribe_to_events(None, handler, consumer_group=group)
    try:
        envelope = {
            "event_type": "session.created",
            "session_id": session,
            "timestamp": "2026-11-30T12:00:00.000Z",
            "message_id": uuid.uuid4().hex,
            "retry_count": 0,
            "payload": bad,
        }
        nc = await nats.connect(server.url)
        try:
            await nc.jetstream().publish("jelmore.session.created", json.dumps(envelope).encode())
        finally:
            await nc.close()
        await wait_until(lambda: dlq_records(server.url, group))
        records = await dlq_records(server.url, group)
    finally:
        await sub.stop()
    assert called == []
    assert len(records) == 1
    assert records[0]["failure_reason"] == (
        "schema violation: payload.timeout: 'soon' is not of type 'integer'"
    )
    assert records[0]["retry_count"] == 1  # one delivery: never retried


async def test_a_consumer_validates_each_message_against_the_version_it_names(
    server: NatsServer, rt: Runtime
) -> None:
    event_type = unique("session.versioned").replace("_", "-")
    group = unique("versions")
    v1 = {"type": "object", "properties": {"note": {"type": "string"}}}
    v2 = {**v1, "required": ["note"]}
    config = {"subject": f"jelmore.{event_type}", "payload": v1}
    nc = await nats.connect(server.url)
    try:
        await put_event(nc, event_type, config, version=1)
        old = uuid.uuid4().hex
        assert await rt.publish_event(event_type, old, {})  # valid under version 1
        await put_event(nc, event_type, {**config, "payload": v2}, version=2)
        new = uuid.uuid4().hex
        await wait_until(lambda: _current_version(rt, event_type, 2))
        with pytest.raises(EventError, match="'note' is a required property"):
            await rt.publish_event(event_type, new, {})
        # the same payload claiming version 2, sent raw: a violation of version 2
        envelope = {
            "event_type": event_type,
            "session_id": new,
            "timestamp": "2026-11-30T12:00:00.000Z",
            "message_id": uuid.uuid4().hex,
            "retry_count": 0,
            "payload": {},
        }
        await nc.jetstream().publish(
            f"jelmore.{event_type}",
            json.dumps(envelope).encode(),
            headers={"Jelmore-Schema-Version": "2"},
        )
    finally:
        await nc.close()
    handled: list[str] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        handled.append(event["session_id"])

    await add_group_async(server.url, group, [f"jelmore.{event_type}"], deliver_policy="all")
    sub = await rt.subscribe_to_events(None, handler, consumer_group=group)
    try:
        await wait_until(lambda: handled and dlq_records(server.url, group))
        records = await dlq_records(server.url, group)
    finally:
        await sub.stop()
    assert handled == [old]
    assert [r["session_id"] for r in records] == [new]
    assert (
        records[0]["failure_reason"] == "schema violation: payload: 'note' is a required property"
    )


async def _current_version(rt: Runtime, event_type: str, version: int) -> bool:
    return (await rt.bus.catalogue.kind(event_type)).version == version


async def test_without_a_catalogue_publishing_is_an_error_pointing_at_apply() -> None:
    with NatsServer(binary=binary_for(RUNTIME_VERSIONS[-1])) as srv:
        await provision_async(srv.url, catalogue=False)
        async with Runtime(url=srv.url) as rt:
            with pytest.raises(runtime.CatalogueMissing) as missing:
                await rt.publish_event("session.created", "s", {})
        assert str(missing.value) == (
            "the event catalogue is not on the server (KV bucket jelmore-catalogue): run "
            "`jelmore-infra apply` with a topology that declares its events"
        )
        proc = run_cli("events", "publish", "-s", srv.url, "-t", "session.created")
        assert_clean_error(proc)
        assert "jelmore-infra apply" in proc.stderr


async def test_a_type_the_catalogue_marks_sensitive_is_encrypted_with_no_runtime_setting(
    server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64
    import os

    from jelmore_infra.runtime.crypto import ENV_VAR, HDR_ENCRYPTION

    monkeypatch.delenv(ENV_VAR, raising=False)
    event_type = unique("session.secret").replace("_", "-")
    config = {"subject": f"jelmore.{event_type}", "sensitive": True, "payload": {"type": "object"}}
    nc = await nats.connect(server.url)
    try:
        await put_event(nc, event_type, config)
    finally:
        await nc.close()
    session = uuid.uuid4().hex
    async with Runtime(url=server.url) as no_keys:
        with pytest.raises(EventError, match="no encryption key"):
            await no_keys.publish_event(event_type, session, {"secret": "hunter2"})
    key = base64.b64encode(os.urandom(32)).decode()
    async with Runtime(url=server.url, encryption_keys=f"k1:{key}") as rt:
        assert await rt.publish_event(event_type, session, {"secret": "hunter2"})
    (stored,) = await stored_sessions(server.url, session)
    assert stored["_headers"][HDR_ENCRYPTION] == "AES-256-GCM; kid=k1"
    assert "hunter2" not in json.dumps(stored)


async def test_shell_completion_offers_the_catalogues_event_types(
    server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import click

    from jelmore_infra.cli.events_cmd import EVENT_TYPE_PARAM, publish

    monkeypatch.setenv("NATS_URL", server.url)
    ctx = click.Context(publish)
    param = next(p for p in publish.params if p.name == "event_type")
    items = await asyncio.to_thread(EVENT_TYPE_PARAM.shell_complete, ctx, param, "session.c")
    assert [i.value for i in items] == ["session.completed", "session.created"]
    assert items[1].help == "New session started"


async def test_a_violation_quoting_a_huge_value_is_cut_short(rt: Runtime) -> None:
    with pytest.raises(EventError) as refused:
        await rt.publish_event("session.output", uuid.uuid4().hex, "x" * 100_000)
    text = str(refused.value)
    assert text.startswith("session.output payload violates its schema (version 1): payload: 'x")
    assert text.endswith("…") and len(text) < 300
