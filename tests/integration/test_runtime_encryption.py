"""Sensitive events against a real server (oldest and newest supported versions): what the stream
stores, consumer groups, rotation, undecryptable events and the DLQ, publishing without a key,
``replay_events``, and what ``events subscribe/replay/dlq show`` print with and without the key.

Each runtime here is a ``Runtime`` with explicit keys (so a publisher and a consumer can hold
different ones); ``JELMORE_ENCRYPTION_KEYS`` is removed from the test's environment.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jelmore_infra.runtime import EventError, PermanentError, Runtime
from jelmore_infra.runtime.crypto import ENV_VAR, HDR_ENCRYPTION
from tests.support.cli import run_cli
from tests.support.natsserver import NatsServer
from tests.support.runtime_topology import (
    add_group_async,
    consumer_state,
    stream_messages,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
KEY_A = base64.b64encode(os.urandom(32)).decode()
KEY_B = base64.b64encode(os.urandom(32)).decode()
KEY_C = base64.b64encode(os.urandom(32)).decode()
SECRET = {"token": "hunter2-sk-live-0123", "note": "only for the handler"}
OUTPUT = "jelmore.session.output"
JELMORE = (sys.executable, "-m", "jelmore_infra", "events")


@pytest.fixture(autouse=True)
def _no_keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


@asynccontextmanager
async def runtime(
    server: NatsServer, keys: str | None = None, sensitive: tuple[str, ...] = ("session.output",)
) -> AsyncIterator[Runtime]:
    async with Runtime(
        url=server.url,
        client_id="test-crypto",
        encryption_keys=keys,
        sensitive_event_types=sensitive,
    ) as rt:
        yield rt


async def group_on_output(server: NatsServer, name: str) -> str:
    group = f"{name}_{uuid.uuid4().hex[:6]}"
    await add_group_async(server.url, group, [OUTPUT], retry_delays="100ms,200ms")
    return group


async def stored_of(server: NatsServer, stream: str, session: str) -> list[dict[str, Any]]:
    """The raw messages of ``stream`` whose readable envelope names ``session``."""
    found = []
    for msg in await stream_messages(server.url, stream):
        if session.encode() in msg["data"]:
            found.append({**msg, "body": json.loads(msg["data"])})
    return found


async def test_a_sensitive_event_is_stored_encrypted_and_a_group_handler_gets_it_decrypted(
    server: NatsServer,
) -> None:
    group = await group_on_output(server, "crypto_round_trip")
    session = uuid.uuid4().hex
    received: list[dict[str, Any]] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            received.append(event)

    async with runtime(server, f"a:{KEY_A}") as pub, runtime(server, f"a:{KEY_A}") as con:
        sub = await con.subscribe_to_events(None, handler, consumer_group=group)
        try:
            assert await pub.publish_event("session.output", session, SECRET)
            assert await pub.publish_event("session.status", session, {"state": "plain"})
            await wait_until(lambda: received)
        finally:
            await sub.stop()

    [event] = received
    assert event["payload"] == SECRET
    assert event["event_type"] == "session.output"
    stored = {m["subject"]: m for m in await stored_of(server, "JELMORE", session)}
    secret = stored[OUTPUT]
    assert b"hunter2" not in secret["data"]
    assert secret["headers"][HDR_ENCRYPTION] == "AES-256-GCM; kid=a"
    body = secret["body"]
    assert isinstance(body["payload"], str)
    assert body["event_type"] == "session.output"
    assert body["session_id"] == session
    assert body["message_id"] == event["message_id"] == secret["headers"]["Nats-Msg-Id"]
    assert body["retry_count"] == 0 and body["timestamp"].endswith("Z")
    plain = stored["jelmore.session.status"]  # not a sensitive type: stored as given
    assert plain["body"]["payload"] == {"state": "plain"}
    assert HDR_ENCRYPTION not in plain["headers"]


async def test_events_encrypted_under_the_old_key_still_decrypt_after_rotation(
    server: NatsServer,
) -> None:
    group = await group_on_output(server, "crypto_rotation")
    session = uuid.uuid4().hex
    received: list[Any] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            received.append((msg.headers[HDR_ENCRYPTION], event["payload"]))

    async with runtime(server, f"a:{KEY_A}") as before:
        assert await before.publish_event("session.output", session, {"n": 1, **SECRET})
    async with (
        runtime(server, f"b:{KEY_B},a:{KEY_A}") as after,
        runtime(server, f"b:{KEY_B},a:{KEY_A}") as con,
    ):
        assert await after.publish_event("session.output", session, {"n": 2, **SECRET})
        sub = await con.subscribe_to_events(None, handler, consumer_group=group)
        try:
            await wait_until(lambda: len(received) >= 2)
        finally:
            await sub.stop()

    assert sorted(received, key=lambda r: r[1]["n"]) == [
        ("AES-256-GCM; kid=a", {"n": 1, **SECRET}),
        ("AES-256-GCM; kid=b", {"n": 2, **SECRET}),
    ]


async def test_an_event_without_a_matching_key_is_dead_lettered_encrypted_and_never_handled(
    server: NatsServer,
) -> None:
    group = await group_on_output(server, "crypto_wrong_key")
    session = uuid.uuid4().hex
    handled: list[dict[str, Any]] = []

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            handled.append(event)

    async with runtime(server, f"a:{KEY_A}") as pub_a, runtime(server, f"c:{KEY_C}") as pub_c:
        assert await pub_a.publish_event("session.output", session, {"k": "a", **SECRET})
        assert await pub_c.publish_event("session.output", session, {"k": "c", **SECRET})
    # key id a with other key material (the authentication fails), and no key c at all
    async with runtime(server, f"a:{KEY_B}") as wrong:
        sub = await wrong.subscribe_to_events(None, handler, consumer_group=group)
        try:

            async def both_dead_lettered() -> bool:
                return len(await stored_of(server, "JELMORE_DLQ", session)) >= 2

            await wait_until(both_dead_lettered)
        finally:
            await sub.stop()

    assert handled == []
    originals = {
        m["headers"]["Nats-Msg-Id"]: m for m in await stored_of(server, "JELMORE", session)
    }
    records = await stored_of(server, "JELMORE_DLQ", session)
    assert len(records) == 2
    by_kid: dict[str, dict[str, Any]] = {}
    for record in records:
        body = record["body"]
        original = originals[body["message_id"]]
        kid = record["headers"][HDR_ENCRYPTION].rsplit("=", 1)[1]
        by_kid[kid] = record
        assert body["failure_reason"] == f"cannot decrypt (key {kid})"
        assert record["headers"]["Jelmore-Failure-Reason"] == f"cannot decrypt (key {kid})"
        assert body["retry_count"] == 1  # no retries
        assert body["payload"] == original["body"]["payload"]  # the original ciphertext
        assert record["headers"][HDR_ENCRYPTION] == original["headers"][HDR_ENCRYPTION]
        assert b"hunter2" not in record["data"]
    assert sorted(by_kid) == ["a", "c"]
    state = await consumer_state(server.url, "JELMORE", group)
    assert state is not None
    assert state["num_redelivered"] == 0 and state["num_ack_pending"] == 0

    # with the right key, the DLQ copy is re-published still encrypted and handled decrypted
    async with runtime(server, f"a:{KEY_A}") as fixed:
        result = await fixed.replay_dead_letters([by_kid["a"]["seq"]])
        assert result["republished"] == 1, result
        sub = await fixed.subscribe_to_events(None, handler, consumer_group=group)
        try:
            await wait_until(lambda: handled)
        finally:
            await sub.stop()
    assert [e["payload"] for e in handled] == [{"k": "a", **SECRET}]
    replayed = [
        m
        for m in await stored_of(server, "JELMORE", session)
        if "Jelmore-Replayed-From" in m["headers"]
    ]
    assert len(replayed) == 1
    assert b"hunter2" not in replayed[0]["data"]
    assert replayed[0]["headers"][HDR_ENCRYPTION] == "AES-256-GCM; kid=a"


async def test_publishing_a_sensitive_event_without_a_key_is_an_error_and_stores_nothing(
    server: NatsServer,
) -> None:
    session = uuid.uuid4().hex
    async with runtime(server) as rt:
        info = await rt.bus.stream_info("JELMORE")
        assert info is not None
        last_seq = info["state"]["last_seq"]
        with pytest.raises(EventError, match="sensitive and no encryption key is configured"):
            await rt.publish_event("session.output", session, SECRET)
        with pytest.raises(EventError, match="sensitive and no encryption key is configured"):
            await rt.publish_events(
                [{"event_type": "session.output", "session_id": session, "payload": SECRET}]
            )
        assert await rt.publish_event("session.status", session, {"state": "plain"})
        info = await rt.bus.stream_info("JELMORE")
        assert info is not None
        assert info["state"]["last_seq"] == last_seq + 1  # only the event that is not sensitive
    assert [m["subject"] for m in await stored_of(server, "JELMORE", session)] == [
        "jelmore.session.status"
    ]


async def test_replay_decrypts_with_the_key_and_skips_what_it_cannot_decrypt(
    server: NatsServer,
) -> None:
    session = uuid.uuid4().hex
    start = datetime.now(UTC) - timedelta(minutes=1)
    async with runtime(server, f"a:{KEY_A}") as rt:
        assert await rt.publish_event("session.output", session, SECRET)
        assert await rt.publish_event("session.status", session, {"state": "plain"})
        with_key = await rt.replay_events("jelmore.session.>", start)
    async with runtime(server) as keyless:
        without_key = await keyless.replay_events("jelmore.session.>", start)
        as_stored = await keyless.replay_events("jelmore.session.>", start, decrypt=False)

    def mine(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
        return [(e["event_type"], e["payload"]) for e in events if e["session_id"] == session]

    assert mine(with_key) == [("session.output", SECRET), ("session.status", {"state": "plain"})]
    assert mine(without_key) == [("session.status", {"state": "plain"})]
    [(_, ciphertext), _plain] = mine(as_stored)
    assert isinstance(ciphertext, str) and "hunter2" not in ciphertext


# -- the CLI --------------------------------------------------------------------------------------


def cli_env(keys: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "NATS_URL")}
    env["NO_COLOR"] = "1"
    if keys is not None:
        env[ENV_VAR] = keys
    return env


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def dead_letter_one(server: NatsServer, session: str) -> dict[str, Any]:
    """Publish one sensitive event that a group's handler rejects; its raw DLQ message."""
    group = await group_on_output(server, "crypto_cli")

    async def handler(event: dict[str, Any], msg: Any) -> None:
        if event["session_id"] == session:
            raise PermanentError("rejected")

    async def dead_lettered() -> bool:
        return bool(await stored_of(server, "JELMORE_DLQ", session))

    async with runtime(server, f"a:{KEY_A}") as rt:
        sub = await rt.subscribe_to_events(None, handler, consumer_group=group)
        try:
            assert await rt.publish_event("session.output", session, SECRET)
            await wait_until(dead_lettered)
        finally:
            await sub.stop()
    [record] = await stored_of(server, "JELMORE_DLQ", session)
    return record


def test_cli_replay_and_dlq_show_print_the_payload_with_the_key_and_the_key_id_without(
    server: NatsServer,
) -> None:
    session = uuid.uuid4().hex
    record = asyncio.run(dead_letter_one(server, session))

    def replay(keys: str | None) -> list[Any]:
        proc = run_cli(
            "events", "replay", "-s", server.url, "--json", "--subjects", OUTPUT, env=cli_env(keys)
        )
        assert proc.returncode == 0, proc.stderr
        return [e["payload"] for e in json_lines(proc.stdout) if e["session_id"] == session]

    def dlq_show(keys: str | None) -> dict[str, Any]:
        proc = run_cli(
            "events", "dlq", "show", "-s", server.url, str(record["seq"]), env=cli_env(keys)
        )
        assert proc.returncode == 0, proc.stderr
        shown: dict[str, Any] = json.loads(proc.stdout)
        return shown

    assert replay(f"b:{KEY_B},a:{KEY_A}") == [SECRET]
    assert replay(None) == ["<encrypted: key a>"]
    assert replay(f"b:{KEY_B}") == ["<encrypted: key a>"]
    shown = dlq_show(f"a:{KEY_A}")
    assert shown["record"]["payload"] == SECRET
    assert shown["record"]["failure_reason"] == "PermanentError: rejected"
    assert shown["headers"][HDR_ENCRYPTION] == "AES-256-GCM; kid=a"
    hidden = dlq_show(None)
    assert hidden["record"]["payload"] == "<encrypted: key a>"
    assert "hunter2" not in json.dumps(hidden)


@pytest.fixture
def tails(server: NatsServer) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


async def publish_one(server: NatsServer, session: str) -> None:
    async with runtime(server, f"a:{KEY_A}") as rt:
        assert await rt.publish_event("session.output", session, SECRET)


def test_cli_subscribe_prints_the_payload_with_the_key_and_the_key_id_without(
    server: NatsServer, tails: list[subprocess.Popen[str]]
) -> None:
    session = uuid.uuid4().hex
    command = [*JELMORE, "subscribe", "specific", "--subjects", OUTPUT, "-s", server.url, "--json"]
    for keys in (f"a:{KEY_A}", None):
        # --duration only bounds a tail that never prints; each is stopped once it has printed
        proc = subprocess.Popen(
            [*command, "--duration", "60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=cli_env(keys),
        )
        tails.append(proc)
    for proc in tails:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith(f"listening on {OUTPUT}"), first
    asyncio.run(publish_one(server, session))
    printed = []
    for proc in tails:
        assert proc.stdout is not None
        mine: list[Any] = []
        while not mine:
            line = proc.stdout.readline()
            if not line:
                break
            mine = [e["payload"] for e in json_lines(line) if e["session_id"] == session]
        printed.append(mine)
        proc.terminate()  # SIGTERM: the command stops gracefully
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "1 event(s) received" in err
    assert printed == [[SECRET], ["<encrypted: key a>"]]
