"""``jelmore-infra plan`` as CI runs it: formats, exit codes, targets, unmanaged resources, data
impact, and one-line errors (real servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import raw
from tests.support.cli import assert_clean_error, copy_topology, run_cli
from tests.support.natsserver import NatsServer, free_port


def plan(url: str, topology: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("plan", "-s", url, "--topology", str(topology), *extra)


def apply(url: str, topology: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("apply", "-s", url, "--topology", str(topology), "--auto-approve", *extra)


def test_detailed_exitcode_is_2_with_changes_and_0_without(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    pending = plan(nats_server.url, topo, "--detailed-exitcode")
    assert pending.returncode == 2, pending.stderr
    assert "Plan: 16 to add, 0 to change, 0 to replace, 0 to destroy." in pending.stdout
    plain = plan(nats_server.url, topo)
    assert plain.returncode == 0
    assert apply(nats_server.url, topo).returncode == 0
    done = plan(nats_server.url, topo, "--detailed-exitcode")
    assert done.returncode == 0
    assert "No changes. The server matches the topology." in done.stdout


def test_plan_shows_each_changed_field_old_to_new_with_units(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    assert apply(nats_server.url, topo).returncode == 0
    text = (topo / "streams.yaml").read_text()
    text = text.replace("max_age: 7d", "max_age: 14d", 1).replace(
        "max_bytes: 10GB", "max_bytes: 20GB"
    )
    (topo / "streams.yaml").write_text(text)
    out = plan(nats_server.url, topo).stdout
    assert "stream.JELMORE will be updated in place" in out
    assert "7d → 14d" in out
    assert "10 GB (10000000000 bytes) → 20 GB (20000000000 bytes)" in out
    assert "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy." in out


def test_replace_names_the_field_that_forces_it_and_warns_about_lost_messages(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    assert apply(nats_server.url, topo).returncode == 0
    raw.publish(nats_server.url, "jelmore.session.created", 7)
    text = (topo / "streams.yaml").read_text().replace("storage: file", "storage: memory", 1)
    (topo / "streams.yaml").write_text(text)
    proc = plan(nats_server.url, topo, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    change = next(c for c in doc["changes"] if c["address"] == "stream.JELMORE")
    assert change["action"] == "replace"
    assert any("storage" in r for r in change["replace_reasons"])
    loss = [
        w for w in doc["warnings"] if w["kind"] == "data-loss" and w["address"] == "stream.JELMORE"
    ]
    assert loss
    assert "7 messages" in loss[0]["message"]
    assert "will be lost" in loss[0]["message"]
    # The consumers on the replaced stream are recreated, and their delivery state is reset.
    replaced = {c["address"] for c in doc["changes"] if c["action"] == "replace"}
    assert "consumer.JELMORE.session_handlers" in replaced


def test_target_limits_the_plan_and_a_stream_target_includes_its_groups(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    doc = json.loads(plan(nats_server.url, topo, "--json", "--target", "stream.JELMORE_DLQ").stdout)
    assert [c["address"] for c in doc["changes"]] == ["stream.JELMORE_DLQ"]
    doc = json.loads(plan(nats_server.url, topo, "--json", "--target", "stream.JELMORE").stdout)
    addresses = {c["address"] for c in doc["changes"]}
    assert "stream.JELMORE" in addresses and "consumer.JELMORE.git_monitors" in addresses
    assert "stream.JELMORE_DLQ" not in addresses
    # A consumer alone cannot be created before its stream: a clear plan error.
    alone = plan(nats_server.url, topo, "--target", "consumer.JELMORE.git_monitors")
    assert alone.returncode == 1
    assert "target stream.JELMORE too" in alone.stdout + alone.stderr
    assert apply(nats_server.url, topo).returncode == 0
    groups = (topo / "consumer_groups.yaml").read_text().replace("ack_wait: 30s", "ack_wait: 45s")
    (topo / "consumer_groups.yaml").write_text(groups)
    doc = json.loads(
        plan(nats_server.url, topo, "--json", "--target", "consumer.JELMORE.git_monitors").stdout
    )
    assert [c["address"] for c in doc["changes"]] == ["consumer.JELMORE.git_monitors"]
    assert [f["path"] for f in doc["changes"][0]["fields"]] == ["ack_wait"]


@pytest.mark.parametrize("target", ["JELMORE", "stream.", "consumer.JELMORE", "queue.X"])
def test_a_malformed_target_is_a_one_line_usage_error(
    nats_server: NatsServer, tmp_path: Path, target: str
) -> None:
    proc = plan(nats_server.url, copy_topology(tmp_path), "--target", target)
    assert_clean_error(proc)
    assert (
        "stream.NAME, kv.NAME, objectstore.NAME, consumer.STREAM.NAME or event.TYPE" in proc.stderr
    )


def test_unmanaged_resources_are_listed_and_never_deleted(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    raw.create_stream(nats_server.url, {"name": "LEGACY", "subjects": ["legacy.>"]})
    topo = copy_topology(tmp_path)
    out = plan(nats_server.url, topo).stdout
    assert "Not managed by jelmore-infra" in out or "not managed" in out.lower()
    assert "stream.LEGACY" in out
    assert apply(nats_server.url, topo, "--allow-destroy", "--allow-data-loss").returncode == 0
    assert "LEGACY" in raw.stream_names(nats_server.url)


def test_an_unmanaged_stream_named_in_the_topology_is_adopted(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    raw.create_stream(
        nats_server.url,
        {"name": "JELMORE_DLQ", "subjects": ["jelmore.dlq.>"], "max_age": 30 * 86400 * 10**9},
    )
    topo = copy_topology(tmp_path)
    doc = json.loads(plan(nats_server.url, topo, "--json").stdout)
    change = next(c for c in doc["changes"] if c["address"] == "stream.JELMORE_DLQ")
    assert change["action"] == "update"
    assert any(f["path"] == "metadata.jelmore.managed-by" for f in change["fields"])
    assert any(w["kind"] == "adopt" for w in doc["warnings"])
    assert apply(nats_server.url, topo).returncode == 0
    config = raw.stream_config(nats_server.url, "JELMORE_DLQ")
    assert config is not None and config["metadata"]["jelmore.managed-by"] == "jelmore-infra"


def test_markdown_plan_is_a_pull_request_comment(nats_server: NatsServer, tmp_path: Path) -> None:
    proc = plan(nats_server.url, copy_topology(tmp_path), "--markdown")
    assert proc.returncode == 0
    assert "<details>" in proc.stdout and "stream.JELMORE" in proc.stdout
    assert "| " in proc.stdout  # the summary table


def test_plan_with_nothing_listening_is_one_line(tmp_path: Path) -> None:
    proc = plan(f"nats://127.0.0.1:{free_port()}", copy_topology(tmp_path))
    assert_clean_error(proc)
    assert len(proc.stderr.strip().splitlines()) == 1


def test_invalid_topology_fails_before_connecting(tmp_path: Path) -> None:
    topo = copy_topology(tmp_path)
    (topo / "streams.yaml").write_text(
        (topo / "streams.yaml").read_text().replace("max_msgs: 100000", "max_mesages: 1")
    )
    proc = plan(f"nats://127.0.0.1:{free_port()}", topo)
    assert_clean_error(proc)
    assert "streams.yaml:" in proc.stderr and "did you mean 'max_msgs'" in proc.stderr
