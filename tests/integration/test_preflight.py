"""Preflight warnings against real servers: ``doctor`` reads every server's VARZ through a system
account and names a server that does not sync every write while streams are marked strict;
``plan`` warns about a known defect of the server version and says when VARZ cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.natsserver import NatsServer, binary_for

ACCOUNTS = """
accounts {
  SYS: { users: [ { user: sys, password: sys } ] }
  APP: { users: [ { user: app, password: app } ], jetstream: enabled }
}
system_account: SYS
"""
STRICT = """\
streams:
  ORDERS:
    subjects: [orders.>]
    jelmore: {durability: strict}
"""


def topology(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "topology"
    directory.mkdir()
    (directory / "t.yaml").write_text(text)
    return directory


def doctor(url: str, directory: Path, user: str) -> dict[str, object]:
    proc = run_cli(
        "doctor", "-s", url, "--user", user, "--password", user, "--topology", str(directory),
        "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout))


def test_doctor_names_a_server_that_does_not_sync_every_write_under_strict_streams(
    tmp_path: Path,
) -> None:
    directory = topology(tmp_path, STRICT)
    with NatsServer(config=ACCOUNTS, server_name="lazy") as lazy:
        found = doctor(lazy.url, directory, "sys")
    assert found["servers_read"] == 1
    (finding,) = found["findings"]  # type: ignore[misc]
    assert finding["topic"] == "fsync"
    assert finding["message"].startswith("server lazy syncs to disk every 120s, not on every write")
    with NatsServer(config=ACCOUNTS, jetstream_config="sync_interval: always") as strict:
        assert doctor(strict.url, directory, "sys")["findings"] == []


def test_without_the_system_account_doctor_and_plan_say_what_they_could_not_check(
    tmp_path: Path,
) -> None:
    directory = topology(tmp_path, STRICT)
    with NatsServer(config=ACCOUNTS) as srv:
        found = doctor(srv.url, directory, "app")
        assert found["servers_read"] is None
        assert [f["topic"] for f in found["findings"]] == ["unread"]  # type: ignore[union-attr]
        proc = run_cli(
            "plan", "-s", srv.url, "--user", "app", "--password", "app",
            "--topology", str(directory), "--json",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(proc.stdout)["warnings"]
    assert [w["kind"] for w in warnings] == ["preflight"]
    assert "cannot tell whether the servers sync every write" in warnings[0]["message"]


def test_plan_warns_about_a_known_defect_of_the_server_version(tmp_path: Path) -> None:
    directory = topology(
        tmp_path, "streams:\n  ORDERS:\n    subjects: [orders.>]\n    compression: s2\n"
    )
    with NatsServer(binary=binary_for("2.12.8")) as old:
        proc = run_cli("plan", "-s", old.url, "--topology", str(directory))
    assert proc.returncode == 0, proc.stderr
    assert (
        "nats-server 2.12.8 has a known data-loss defect: compaction can corrupt compressed (s2) "
        "blocks" in proc.stdout
    )
    assert "(source: nats-server issue #8312)" in proc.stdout
