"""The audit trail on real servers: every apply (fresh or saved plan, complete, stopped by the
server, refused) and every force-unlock appends a record that ``history`` lists, checked field by
field; the audit stream itself never shows in a plan; a record that cannot be written is reported
and fails the command.

The shared server requires a user and password, so "who" is the user the server reports.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nkeys
import pytest

from jelmore_infra import __version__
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.live.lock import ApplyLock, current_holder
from jelmore_infra.render.json import document_checksum
from tests.support import raw
from tests.support.cli import REPO, assert_clean_error, run_cli
from tests.support.natsserver import NatsCluster, NatsServer, binary_for

USER = "auditor"
PASSWORD = "pa55-w0rd-never-shown"
AUTH = ("--user", USER, "--password", PASSWORD)
AUDIT = "JELMORE_INFRA_AUDIT"
APPLY = (sys.executable, "-m", "jelmore_infra", "apply")

TOPOLOGY = """\
streams:
  ORDERS:
    subjects: [orders.>]
    storage: memory
  DLQ:
    subjects: [dlq.>]
    storage: memory
consumer_groups:
  workers:
    stream: DLQ
    ack_policy: explicit
"""
RECORD_KEYS = {
    "seq",
    "format",
    "id",
    "command",
    "time",
    "started",
    "environment",
    "who",
    "server",
    "plan",
    "changes",
    "outcome",
    "reason",
}


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    users = f'authorization {{ users: [ {{ user: "{USER}", password: "{PASSWORD}" }} ] }}'
    with NatsServer(config=users) as srv:
        yield srv


def admin(server: NatsServer) -> str:
    """The URL for the tests' own raw requests (with the credentials in it)."""
    return f"nats://{USER}:{PASSWORD}@127.0.0.1:{server.port}"


@pytest.fixture
def url(server: NatsServer) -> Iterator[str]:
    yield server.url
    for name in raw.stream_names(admin(server)):  # the next test starts from an empty server
        raw.js(admin(server), f"STREAM.DELETE.{name}")


def cli(url: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = run_cli(*args, "-s", url, *AUTH, **kw)
    assert PASSWORD not in proc.stdout + proc.stderr
    return proc


def write_topology(tmp_path: Path, body: str = TOPOLOGY, envs: tuple[str, ...] = ()) -> Path:
    topology = tmp_path / "topology"
    (topology / "environments").mkdir(parents=True, exist_ok=True)
    (topology / "t.yaml").write_text(body)
    for env in envs:
        (topology / "environments" / f"{env}.yaml").write_text("# the base topology as it is\n")
    return topology


def history(url: str, *args: str) -> list[dict[str, Any]]:
    proc = cli(url, "history", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def stamp(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_who(record: dict[str, Any], user: str | None = USER, auth: str = "user/password") -> None:
    who = record["who"]
    assert set(who) == {"user", "account", "auth", "host", "process_user", "pid", "tool_version"}
    assert who["user"] == user
    assert who["account"] == "$G"
    assert who["auth"] == auth
    assert who["host"] == socket.gethostname()
    assert who["process_user"] == getpass.getuser()
    assert isinstance(who["pid"], int) and who["pid"] > 0
    assert who["tool_version"] == __version__


def check_server(record: dict[str, Any], server: NatsServer) -> None:
    assert record["server"] == {
        "name": f"jelmore-test-{server.port}",
        "cluster": None,
        "domain": None,
        "version": record["server"]["version"],
        "url": server.url,
    }
    assert re.fullmatch(r"2\.\d+\.\d+", record["server"]["version"])


def change(address: str, action: str, status: str = "done", **kw: Any) -> dict[str, Any]:
    return {
        "address": address,
        "action": action,
        "status": status,
        "error": None,
        "fields": [],
        **kw,
    }


def test_apply_records_who_when_where_the_plan_each_change_and_the_outcome(
    server: NatsServer, url: str, tmp_path: Path
) -> None:
    topology = write_topology(tmp_path, envs=("audited",))
    where = ("--topology", str(topology), "--env", "audited")
    shown = cli(url, "plan", *where, "--json")
    assert shown.returncode == 0, shown.stderr
    before = datetime.now(UTC)
    applied = cli(url, "apply", *where, "--auto-approve")
    after = datetime.now(UTC)
    assert applied.returncode == 0, applied.stderr
    [record] = history(url, *where)
    assert set(record) == RECORD_KEYS
    assert record["seq"] == 1
    assert record["format"] == 1
    assert re.fullmatch(r"[0-9a-f]{32}", record["id"])
    assert record["command"] == "apply"
    assert before <= stamp(record["started"]) <= stamp(record["time"]) <= after
    assert record["environment"] == "audited"
    check_who(record)
    check_server(record, server)
    # the checksum `plan --json` showed for the same plan, made a moment before
    assert record["plan"] == {
        "checksum": json.loads(shown.stdout)["checksum"],
        "source": "fresh",
        "summary": {"add": 3, "change": 0, "replace": 0, "migrate": 0, "destroy": 0},
    }
    assert record["changes"] == [
        change("stream.DLQ", "create"),
        change("stream.ORDERS", "create"),
        change("consumer.DLQ.workers", "create"),
    ]
    assert record["outcome"] == "complete"
    assert record["reason"] is None

    # a change in place names the fields it changes
    (topology / "t.yaml").write_text(
        TOPOLOGY.replace(
            "    subjects: [orders.>]\n", "    subjects: [orders.>]\n    max_age: 1h\n"
        )
    )
    assert cli(url, "apply", *where, "--auto-approve").returncode == 0
    newest, first = history(url, *where)
    assert first == record
    assert newest["seq"] == 2
    assert newest["plan"]["summary"]["change"] == 1
    assert newest["changes"] == [change("stream.ORDERS", "update", fields=["max_age"])]
    assert newest["outcome"] == "complete"

    # the stream the first record created: append-only, kept, on the audit subjects
    config = raw.stream_config(admin(server), AUDIT)
    assert config is not None
    assert config["subjects"] == ["jelmore-infra.audit.>"]
    assert (config["retention"], config["storage"], config["num_replicas"]) == ("limits", "file", 1)
    assert config["deny_delete"] is True and config["deny_purge"] is True
    assert (config["max_age"], config["max_msgs"], config["max_bytes"]) == (0, -1, -1)
    stored = raw.js(
        admin(server), f"STREAM.MSG.GET.{AUDIT}", {"last_by_subj": "jelmore-infra.audit.audited"}
    )
    assert stored["message"]["seq"] == 2


def test_applying_a_saved_plan_records_the_checksum_its_file_carries(
    url: str, tmp_path: Path
) -> None:
    topology = write_topology(tmp_path)
    planfile = tmp_path / "plan.json"
    made = cli(url, "plan", "--topology", str(topology), "-out", str(planfile))
    assert made.returncode == 0, made.stderr
    applied = cli(url, "apply", str(planfile))
    assert applied.returncode == 0, applied.stderr
    [record] = history(url)
    assert record["environment"] == "default"
    assert record["plan"]["source"] == "saved"
    assert record["plan"]["checksum"] == json.loads(planfile.read_text())["checksum"]
    assert [c["status"] for c in record["changes"]] == ["done"] * 3
    assert record["outcome"] == "complete"
    check_who(record)

    # a signed plan: the record carries the plain checksum its signature covers
    signed = {"JELMORE_PLAN_KEY": "audit-test-key"}
    (topology / "t.yaml").write_text(
        TOPOLOGY.replace("storage: memory\n", "storage: memory\n    max_msgs: 9\n", 1)
    )
    made = cli(url, "plan", "--topology", str(topology), "-out", str(planfile), env=signed)
    assert made.returncode == 0, made.stderr
    doc = json.loads(planfile.read_text())
    assert doc["checksum"].startswith("hmac-sha256:")
    assert cli(url, "apply", str(planfile), env=signed).returncode == 0
    newest = history(url)[0]
    assert newest["plan"]["checksum"] == document_checksum(doc)
    assert newest["plan"]["source"] == "saved"
    assert "audit-test-key" not in json.dumps(newest)


def test_an_apply_the_server_stops_records_the_failed_step_and_what_was_not_attempted(
    server: NatsServer, url: str, tmp_path: Path
) -> None:
    # an unmanaged stream already stores the DLQ's subjects: the server refuses to create DLQ
    raw.create_stream(admin(server), {"name": "SQUATTER", "subjects": ["dlq.x.>"]})
    proc = cli(url, "apply", "--topology", str(write_topology(tmp_path)), "--auto-approve")
    assert_clean_error(proc)
    [record] = history(url)
    assert record["outcome"] == "stopped"
    by_address = {c["address"]: c for c in record["changes"]}
    dlq = by_address["stream.DLQ"]
    assert dlq["status"] == "failed"
    assert "overlap" in dlq["error"] and "\n" not in dlq["error"]
    assert by_address["stream.ORDERS"] == change("stream.ORDERS", "create")
    assert by_address["consumer.DLQ.workers"] == change(
        "consumer.DLQ.workers", "create", "not attempted"
    )
    assert record["reason"] == f"stream.DLQ (create) failed: {dlq['error']}"
    assert dlq["error"] in proc.stderr


def test_a_stale_saved_plan_is_refused_and_recorded_as_refused(
    server: NatsServer, url: str, tmp_path: Path
) -> None:
    topology = write_topology(tmp_path, envs=("audited",))
    assert cli(url, "apply", "--topology", str(topology), "--auto-approve").returncode == 0
    (topology / "t.yaml").write_text(
        TOPOLOGY.replace("storage: memory\n", "storage: memory\n    max_msgs: 10\n", 1)
    )
    planfile = tmp_path / "plan.json"
    where = ("--topology", str(topology), "--env", "audited")
    assert cli(url, "plan", *where, "-out", str(planfile)).returncode == 0
    raw.update_stream(admin(server), "ORDERS", max_msgs=20)  # the server moves on
    refused = cli(url, "apply", str(planfile), *where)
    assert_clean_error(refused)
    assert "stale" in refused.stderr
    [record] = history(url, *where)
    assert record["outcome"] == "refused"
    assert record["reason"].startswith("plan is stale: stream.ORDERS was changed")
    assert record["plan"]["source"] == "saved"
    assert record["plan"]["checksum"] == json.loads(planfile.read_text())["checksum"]
    assert record["changes"] == [
        change("stream.ORDERS", "update", "not attempted", fields=["max_msgs"])
    ]
    assert raw.stream_config(admin(server), "ORDERS")["max_msgs"] == 20  # nothing was sent


def _hold_lock(server: NatsServer) -> str:
    """Take the apply lock as an apply that then vanished would have; who holds it."""

    async def take() -> str:
        api = await JetStreamAPI.connect(
            ConnectionSettings(url=server.url, user=USER, password=PASSWORD)
        )
        try:
            lock = ApplyLock(api, ttl=600)
            await lock.acquire()
            holder = await current_holder(api)
            assert holder is not None
            return holder.describe()
        finally:
            await api.close()

    return asyncio.run(take())


def test_force_unlock_is_recorded_with_whose_lock_it_removed_and_a_blocked_apply_as_refused(
    server: NatsServer, url: str, tmp_path: Path
) -> None:
    topology = write_topology(tmp_path, envs=("audited",))
    where = ("--topology", str(topology), "--env", "audited")
    holder = _hold_lock(server)
    blocked = cli(url, "apply", *where, "--auto-approve")
    assert_clean_error(blocked)
    before = datetime.now(UTC)
    removed = cli(url, "force-unlock", *where, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert f"Removed the apply lock held by {holder}." in removed.stdout
    nothing = cli(url, "force-unlock", *where, "--yes")
    assert nothing.returncode == 0 and "No apply lock was held." in nothing.stdout
    again, unlocked, refused = history(url, *where)

    assert refused["command"] == "apply"
    assert refused["outcome"] == "refused"
    assert refused["reason"].startswith("another apply holds the lock")
    assert (refused["plan"], refused["changes"]) == (None, [])

    assert set(unlocked) == {
        "seq", "format", "id", "command", "time", "started", "environment", "who", "server",
        "lock_holder", "outcome", "reason",
    }  # fmt: skip
    assert unlocked["command"] == "force-unlock"
    assert unlocked["environment"] == "audited"
    assert unlocked["lock_holder"] == holder
    assert unlocked["outcome"] == "complete" and unlocked["reason"] is None
    assert before <= stamp(unlocked["started"]) <= stamp(unlocked["time"])
    check_who(unlocked)
    check_server(unlocked, server)
    assert again["lock_holder"] is None and again["outcome"] == "complete"
    # the lock is gone: the next apply goes ahead
    assert cli(url, "apply", *where, "--auto-approve").returncode == 0


def test_history_lists_newest_first_as_a_table_or_json_lines_limited_and_by_environment(
    url: str, tmp_path: Path
) -> None:
    empty = cli(url, "history")
    assert empty.returncode == 0 and empty.stdout.strip() == "No audit records."
    topology = write_topology(tmp_path, envs=("blue", "green"))
    for env in ("blue", "green", "blue"):
        proc = cli(url, "apply", "--topology", str(topology), "--env", env, "--auto-approve")
        assert proc.returncode == 0, proc.stderr
    cli(url, "force-unlock", "--yes")
    every = history(url)
    assert [(r["seq"], r["environment"], r["command"]) for r in every] == [
        (4, "default", "force-unlock"),
        (3, "blue", "apply"),
        (2, "green", "apply"),
        (1, "blue", "apply"),
    ]
    assert history(url, "-n", "2") == every[:2]
    assert history(url, "--limit", "1", "--topology", str(topology), "--env", "blue") == [every[1]]
    assert history(url, "--topology", str(topology), "--env", "blue") == [every[1], every[3]]
    assert history(url, "--topology", str(topology), "--env", "green", "-n", "5") == [every[2]]

    table = cli(url, "history", env={"COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "complete" in line]
    assert len(rows) == 4
    assert "force-unlock" in rows[0] and "no lock was held" in rows[0]
    for row, record in zip(rows[1:], every[1:], strict=True):
        assert record["environment"] in row
        assert f"{USER} ({getpass.getuser()}@{socket.gethostname()})" in row
        assert record["time"][:19].replace("T", " ") in row
    assert "+3" in rows[3] and "no changes" in rows[1]

    bad = cli(url, "history", "-n", "0")
    assert_clean_error(bad)


def test_the_audit_stream_never_shows_in_plans_or_imports(
    url: str, server: NatsServer, tmp_path: Path
) -> None:
    topology = write_topology(tmp_path)
    assert cli(url, "apply", "--topology", str(topology), "--auto-approve").returncode == 0
    assert AUDIT in raw.stream_names(admin(server))
    for args in (("plan",), ("plan", "--json"), ("plan", "--markdown")):
        proc = cli(url, *args, "--topology", str(topology), "--detailed-exitcode")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert AUDIT not in proc.stdout + proc.stderr
    # even a topology without the streams plans their deletes, never the audit stream's
    bare = write_topology(tmp_path / "bare", "streams: {}\n")
    deletes = cli(url, "plan", "--topology", str(bare), "--json")
    assert {c["address"] for c in json.loads(deletes.stdout)["changes"]} == {
        "stream.ORDERS", "stream.DLQ", "consumer.DLQ.workers",
    }  # fmt: skip
    assert AUDIT not in deletes.stdout
    imported = cli(url, "import", "-o", str(tmp_path / "imported"))
    assert imported.returncode == 0, imported.stderr
    written = "".join(p.read_text() for p in (tmp_path / "imported").glob("*.yaml"))
    assert "ORDERS" in written and AUDIT not in written
    named = cli(url, "import", AUDIT, "-o", str(tmp_path / "imported2"))
    assert_clean_error(named)


def test_a_record_that_cannot_be_written_fails_the_command_in_one_line(
    server: NatsServer, url: str, tmp_path: Path
) -> None:
    # another stream holds the audit subjects: the audit stream cannot be created
    raw.create_stream(admin(server), {"name": "SQUAT", "subjects": ["jelmore-infra.audit.>"]})
    topology = write_topology(tmp_path)
    done = cli(url, "apply", "--topology", str(topology), "--auto-approve")
    assert_clean_error(done)
    assert "Apply complete! Resources: 3 added" in done.stdout
    [line] = [x for x in done.stderr.splitlines() if "audit" in x]
    assert line.startswith(
        "Error: the apply is complete, but the audit record of this apply could not be written "
        f"to stream {AUDIT}: "
    )
    assert "overlap" in line
    assert raw.stream_config(admin(server), "ORDERS") is not None  # the changes are made

    # an apply that fails anyway warns about its record, then ends with its own error
    raw.create_stream(admin(server), {"name": "SQUATTER", "subjects": ["elsewhere.>"]})
    (topology / "t.yaml").write_text(TOPOLOGY.replace("[dlq.>]", "[dlq.>, elsewhere.x]"))
    failed = cli(url, "apply", "--topology", str(topology), "--auto-approve")
    assert_clean_error(failed)
    warning = [x for x in failed.stderr.splitlines() if "audit" in x]
    assert len(warning) == 1 and warning[0].startswith(
        f"Warning: the audit record of this apply could not be written to stream {AUDIT}: "
    )
    assert failed.stderr.splitlines()[-1].startswith("Error: apply stopped at stream.DLQ")

    unlock = cli(url, "force-unlock", "--yes")
    assert_clean_error(unlock)
    assert "No apply lock was held." in unlock.stdout
    assert unlock.stderr.strip() == (
        f"Error: the audit record of this force-unlock could not be written to stream {AUDIT}: "
        + line.split(f"{AUDIT}: ", 1)[1]
    )
    assert AUDIT not in raw.stream_names(admin(server))


def test_an_interrupted_apply_is_recorded_with_what_it_had_done(url: str, tmp_path: Path) -> None:
    lines = ["streams:"]
    for i in range(1000):
        lines += [f"  S{i:04d}:", f"    subjects: [s{i:04d}.>]", "    storage: memory"]
    topology = write_topology(tmp_path, "\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [*APPLY, "-s", url, *AUTH, "--topology", str(topology), "--auto-approve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stderr is not None
    created = 0
    for line in proc.stderr:
        created += line.rstrip().endswith("Created.")
        if created == 10:
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    [record] = history(url)
    assert record["outcome"] == "interrupted"
    assert record["reason"] == "interrupted (SIGINT or SIGTERM)"
    statuses = [c["status"] for c in record["changes"]]
    assert len(statuses) == 1000
    assert statuses.count("done") >= 10
    assert set(statuses) <= {"done", "interrupted", "not attempted"}
    assert "not attempted" in statuses  # it stopped part-way


@pytest.mark.parametrize("version", ["2.10.26", "2.15.1"])
def test_who_is_the_user_the_server_reports_and_never_a_token(version: str, tmp_path: Path) -> None:
    topology = write_topology(tmp_path)
    token = "t0ken-that-2.10-reports-as-the-user"
    with NatsServer(
        binary=binary_for(version), config=f'authorization {{ token: "{token}" }}'
    ) as srv:
        for args in (("--token", token), ()):
            target = srv.url if args else f"nats://{token}@127.0.0.1:{srv.port}"
            proc = run_cli(
                "apply", "-s", target, *args, "--topology", str(topology), "--auto-approve"
            )
            assert proc.returncode == 0, proc.stderr
        listed = run_cli("history", "--json", "-s", srv.url, "--token", token)
        assert listed.returncode == 0, listed.stderr
        records = [json.loads(line) for line in listed.stdout.splitlines()]
        assert len(records) == 2
        for record in records:
            check_who(record, user=None, auth="token")
        stored = raw.js(
            f"nats://{token}@127.0.0.1:{srv.port}", f"STREAM.MSG.GET.{AUDIT}", {"seq": 1}
        )
        assert token not in json.dumps(stored) + listed.stdout + json.dumps(records)

    seed = nkeys.encode_seed(b"\x01" * 32, nkeys.PREFIX_BYTE_USER).decode()
    public = nkeys.from_seed(seed.encode()).public_key.decode()
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(seed + "\n")
    nkey = ("--nkey", str(seed_file))
    with NatsServer(
        binary=binary_for(version), config=f'authorization {{ users: [ {{ nkey: "{public}" }} ] }}'
    ) as srv:
        proc = run_cli("apply", "-s", srv.url, *nkey, "--topology", str(topology), "--auto-approve")
        assert proc.returncode == 0, proc.stderr
        listed = run_cli("history", "--json", "-s", srv.url, *nkey)
        [record] = [json.loads(line) for line in listed.stdout.splitlines()]
        check_who(record, user=public, auth="nkey")
        assert seed not in listed.stdout

    users = f'authorization {{ users: [ {{ user: "{USER}", password: "{PASSWORD}" }} ] }}'
    with NatsServer(binary=binary_for(version), config=users) as srv:
        assert cli(srv.url, "apply", "--topology", str(topology), "--auto-approve").returncode == 0
        [record] = history(srv.url)
        check_who(record)


def test_on_a_cluster_the_audit_stream_has_three_replicas(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    url = nats_cluster.url
    topology = write_topology(tmp_path, "streams:\n  AUDITED_R3:\n    subjects: [audited-r3.>]\n")
    try:
        proc = run_cli("apply", "-s", url, "--topology", str(topology), "--auto-approve")
        assert proc.returncode == 0, proc.stderr
        config = raw.stream_config(nats_cluster.urls[0], AUDIT)
        assert config is not None and config["num_replicas"] == 3
        listed = run_cli("history", "--json", "-s", url)
        # The cluster is shared by the session: other modules' applies may be recorded too.
        records = [json.loads(line) for line in listed.stdout.splitlines()]
        [record] = [
            r for r in records if any(c["address"] == "stream.AUDITED_R3" for c in r["changes"])
        ]
        assert record["server"]["cluster"] == nats_cluster.name
        assert record["outcome"] == "complete"
    finally:
        for name in ("AUDITED_R3", AUDIT):
            raw.js(nats_cluster.urls[0], f"STREAM.DELETE.{name}")
