"""``jelmore-infra import`` against a real server: it only reads, planning its files shows the
adoption for review, and names holding control characters reach no terminal or file name raw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import raw
from tests.support.cli import assert_clean_error, copy_topology, run_cli
from tests.support.natsserver import NatsServer

MANAGED_BY = "metadata.jelmore.managed-by"
#: Accepted by the server (a newline cannot travel in a subject, so names cannot hold one).
EVIL = "EVIL\x1b[2J\x07"
EVIL_GROUP = "G\x1b]0;x\x07"


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        yield srv


@pytest.fixture
def url(server: NatsServer) -> Iterator[str]:
    yield server.url
    for name in raw.stream_names(server.url):  # leave an empty server to the next test
        raw.js(server.url, f"STREAM.DELETE.{name}")


def _legacy(url: str) -> None:
    """A stream and a durable consumer created by hand, as import finds them."""
    raw.create_stream(url, {"name": "LEGACY", "subjects": ["legacy.>"], "max_msgs": 500})
    body = {
        "stream_name": "LEGACY",
        "config": {"durable_name": "worker", "ack_policy": "explicit", "max_deliver": 4},
        "action": "create",
    }
    reply = raw.js(url, "CONSUMER.CREATE.LEGACY.worker", body)
    assert "error" not in reply, reply


def _evil(url: str) -> None:
    config = {"name": EVIL, "subjects": ["evil.>"], "description": "line\nbreak\x1b[31m"}
    reply = raw.js(url, f"STREAM.CREATE.{EVIL}", config)
    assert "error" not in reply, reply
    body = {
        "stream_name": EVIL,
        "config": {"durable_name": EVIL_GROUP, "ack_policy": "explicit"},
        "action": "create",
    }
    reply = raw.js(url, f"CONSUMER.CREATE.{EVIL}.{EVIL_GROUP}", body)
    assert "error" not in reply, reply


def _server_state(url: str) -> dict[str, Any]:
    """Every stream's and consumer's config (metadata included) as the server reports it."""
    state: dict[str, Any] = {}
    for name in raw.stream_names(url):
        state[name] = raw.stream_config(url, name)
        for consumer in raw.js(url, f"CONSUMER.NAMES.{name}").get("consumers") or []:
            state[f"{name}/{consumer}"] = raw.consumer_config(url, name, consumer)
    return state


def _plan_json(url: str, topology: Path) -> dict[str, Any]:
    proc = run_cli("plan", "-s", url, "--topology", str(topology), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout))


def _raw_controls(text: str) -> list[str]:
    return [ch for ch in text if ch != "\n" and not ch.isprintable()]


def test_import_never_writes_to_the_server(url: str, tmp_path: Path) -> None:
    _legacy(url)
    before = _server_state(url)
    assert before["LEGACY"].get("metadata", {}).get("jelmore.managed-by") is None

    printed = run_cli("import", "-s", url)
    assert printed.returncode == 0, printed.stderr
    assert "LEGACY:" in printed.stdout
    assert _server_state(url) == before

    out = tmp_path / "imported"
    written = run_cli("import", "-s", url, "-o", str(out), "LEGACY")
    assert written.returncode == 0, written.stderr
    assert (out / "LEGACY.yaml").exists()
    assert _server_state(url) == before

    refused = run_cli("import", "-s", url, "-o", str(out))
    assert_clean_error(refused)
    assert "already exists; not overwriting" in refused.stderr
    assert _server_state(url) == before


def test_a_failing_import_writes_no_file(url: str, tmp_path: Path) -> None:
    _legacy(url)
    raw.create_stream(url, {"name": "ANOTHER", "subjects": ["another.>"]})
    out = tmp_path / "imported"
    out.mkdir()
    (out / "LEGACY.yaml").write_text("# mine\n")
    refused = run_cli("import", "-s", url, "-o", str(out))
    assert_clean_error(refused)
    assert sorted(p.name for p in out.iterdir()) == ["LEGACY.yaml"]
    assert (out / "LEGACY.yaml").read_text() == "# mine\n"


@pytest.mark.parametrize("option", ["--adopt", "--no-adopt"])
def test_import_has_no_adopt_option(url: str, option: str) -> None:
    proc = run_cli("import", "-s", url, option)
    assert_clean_error(proc)
    assert option in proc.stderr


def test_planning_imported_files_shows_only_the_adoption_then_apply_converges(
    url: str, tmp_path: Path
) -> None:
    _legacy(url)
    out = tmp_path / "imported"
    proc = run_cli("import", "-s", url, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "stream.LEGACY" in proc.stderr and "consumer.LEGACY.worker" in proc.stderr
    assert "adoption" in proc.stderr
    assert "adoption" in (out / "LEGACY.yaml").read_text()

    doc = _plan_json(url, out)
    changes = {c["address"]: c for c in doc["changes"]}
    assert set(changes) == {"stream.LEGACY", "consumer.LEGACY.worker"}
    for change in changes.values():
        assert change["action"] == "update"
        assert [f["path"] for f in change["fields"]] == [MANAGED_BY]
    adopted = {w["address"] for w in doc["warnings"] if w["kind"] == "adopt"}
    assert adopted == set(changes)
    human = run_cli("plan", "-s", url, "--topology", str(out)).stdout
    assert "stream.LEGACY will be adopted and updated in place" in human

    applied = run_cli("apply", "-s", url, "--topology", str(out), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert raw.stream_config(url, "LEGACY")["max_msgs"] == 500  # type: ignore[index]
    again = run_cli("plan", "-s", url, "--topology", str(out), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout
    assert "No changes." in again.stdout


def test_after_import_a_topology_not_naming_the_resources_proposes_no_deletion(
    url: str, tmp_path: Path
) -> None:
    _legacy(url)
    assert run_cli("import", "-s", url, "-o", str(tmp_path / "imported")).returncode == 0
    doc = _plan_json(url, copy_topology(tmp_path))
    deletes = [c["address"] for c in doc["changes"] if c["action"] in ("delete", "replace")]
    assert deletes == []
    assert "stream.LEGACY" in doc["unmanaged"]
    applied = run_cli(
        "apply",
        "-s",
        url,
        "--topology",
        str(copy_topology(tmp_path / "again")),
        "--auto-approve",
        "--allow-destroy",
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "LEGACY" in raw.stream_names(url)


def test_names_with_control_characters_are_escaped_in_every_human_output(
    url: str, tmp_path: Path
) -> None:
    _evil(url)
    out = tmp_path / "imported"
    imported = run_cli("import", "-s", url, "-o", str(out))
    assert imported.returncode == 0, imported.stderr
    assert [p.name for p in out.iterdir()] == ["EVIL\\x1b[2J\\x07.yaml"]
    assert _raw_controls(imported.stderr) == []
    assert "stream.EVIL\\x1b[2J\\x07" in imported.stderr
    text = (out / "EVIL\\x1b[2J\\x07.yaml").read_text()
    assert _raw_controls(text) == []
    printed = run_cli("import", "-s", url)
    assert printed.returncode == 0 and _raw_controls(printed.stdout + printed.stderr) == []

    # planned from the imported file: the adoption, with the name in headers and warnings
    human = run_cli("plan", "-s", url, "--topology", str(out))
    assert human.returncode == 0, human.stderr
    assert _raw_controls(human.stdout + human.stderr) == []
    assert "# stream.EVIL\\x1b[2J\\x07 will be adopted" in human.stdout
    markdown = run_cli("plan", "-s", url, "--topology", str(out), "--markdown")
    assert markdown.returncode == 0 and _raw_controls(markdown.stdout) == []
    assert "EVIL\\x1b" in markdown.stdout
    doc = _plan_json(url, out)  # JSON keeps the exact name
    assert {c["name"] for c in doc["changes"]} == {EVIL, EVIL_GROUP}

    # planned from a topology that does not name it: the unmanaged list
    unrelated = run_cli("plan", "-s", url, "--topology", str(copy_topology(tmp_path)))
    assert _raw_controls(unrelated.stdout + unrelated.stderr) == []
    assert "  stream.EVIL\\x1b[2J\\x07" in unrelated.stdout
    unrelated_md = run_cli(
        "plan", "-s", url, "--topology", str(copy_topology(tmp_path / "md")), "--markdown"
    )
    assert _raw_controls(unrelated_md.stdout) == []

    # apply's progress lines
    applied = run_cli("apply", "-s", url, "--topology", str(out), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _raw_controls(applied.stdout + applied.stderr) == []
    assert "stream.EVIL\\x1b[2J\\x07: Updat" in applied.stderr

    # an error that echoes a name
    missing = run_cli("import", "-s", url, "NOPE\x1b[2J")
    assert_clean_error(missing)
    assert _raw_controls(missing.stderr) == [] and "NOPE\\x1b[2J" in missing.stderr
