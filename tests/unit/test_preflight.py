"""Preflight findings: known server defects by version, lazy fsync under strict streams, R1 file
streams under a replicas policy, and placement no server has. Pure: no server."""

from __future__ import annotations

from textwrap import dedent

import pytest

from jelmore_infra.model import Topology
from jelmore_infra.preflight import (
    fsync_findings,
    needs_varz,
    placement_findings,
    replica_findings,
    version_findings,
)
from jelmore_infra.topology.load import parse_sources


def topo(text: str, overlay: str | None = None) -> Topology:
    env = ("prod", "environments/prod.yaml", dedent(overlay)) if overlay else None
    topology, diags = parse_sources([("t.yaml", dedent(text))], environment=env)
    assert topology is not None, diags
    return topology


PLAIN = topo("streams:\n  ORDERS:\n    subjects: [orders.>]\n")
COMPRESSED = topo("streams:\n  ORDERS:\n    subjects: [orders.>]\n    compression: s2\n")
STRICT = topo("streams:\n  ORDERS:\n    subjects: [orders.>]\n    jelmore: {durability: strict}\n")


@pytest.mark.parametrize(
    ("version", "topology", "sources"),
    [
        ("2.10.19", PLAIN, []),
        ("2.10.20", PLAIN, ["nats-server issue #6888"]),
        ("2.10.22", PLAIN, ["nats-server issue #6888"]),
        ("2.10.23", PLAIN, []),
        ("2.10.26", COMPRESSED, ["nats-server issue #8312"]),
        ("2.12.1", PLAIN, ["nats-server issue #7594", "Jepsen"]),
        ("2.12.3", PLAIN, []),
        ("2.12.11", COMPRESSED, ["nats-server issue #8312"]),
        ("2.12.12", COMPRESSED, []),
        ("2.14.2", COMPRESSED, ["nats-server issue #8312"]),
        ("2.14.2", PLAIN, []),
        ("2.14.3", COMPRESSED, []),
        ("2.15.1", COMPRESSED, []),
    ],
)
def test_versions_with_known_data_loss_defects_are_named_with_their_source(
    version: str, topology: Topology, sources: list[str]
) -> None:
    found = version_findings(version, topology)
    assert len(found) == len(sources)
    for finding, source in zip(found, sources, strict=True):
        assert source in finding.source
        assert finding.message.startswith(f"nats-server {version} has a known data-loss defect")


def test_the_compression_defect_names_the_compressed_streams() -> None:
    (finding,) = version_findings("2.14.1", COMPRESSED)
    assert "(compressed here: ORDERS)" in finding.message


def test_a_server_without_sync_always_is_a_finding_only_for_strict_streams() -> None:
    lazy = [{"server_name": "n1", "jetstream": {"config": {"sync_interval": 120_000_000_000}}}]
    always = [
        {
            "server_name": "n2",
            "jetstream": {"config": {"sync_interval": 120_000_000_000, "sync_always": True}},
        }
    ]
    (finding,) = fsync_findings(lazy, STRICT)
    assert finding.message == (
        "server n1 syncs to disk every 120s, not on every write (sync_interval is not always), "
        "and these streams are marked durability strict: ORDERS"
    )
    assert "#7564" in finding.source
    assert fsync_findings(always, STRICT) == []
    assert fsync_findings(lazy, PLAIN) == []
    (unread,) = fsync_findings(None, STRICT)
    assert unread.topic == "unread" and "system account" in unread.message


def test_single_replica_file_streams_are_named_where_the_policy_asks_for_replicas() -> None:
    base = "streams:\n  ORDERS:\n    subjects: [orders.>]\n  CACHE:\n    subjects: [c.>]\n"
    overlay = "policy:\n  min_replicas: 3\nstreams:\n  CACHE:\n    storage: memory\n"
    (finding,) = replica_findings(topo(base, overlay))
    assert finding.address == "stream.ORDERS"
    assert "min_replicas at environments/prod.yaml:2:17" in finding.message
    assert replica_findings(topo(base)) == []


def test_placement_no_server_can_satisfy_is_a_finding() -> None:
    placed = topo(
        "streams:\n  ORDERS:\n    subjects: [orders.>]\n"
        "    placement: {cluster: east, tags: [ssd, eu]}\n"
    )
    assert needs_varz(placed) and not needs_varz(PLAIN)
    varz = [{"cluster": {"name": "west"}, "tags": ["ssd"]}, {"cluster": {"name": "west"}}]
    messages = [f.message for f in placement_findings(varz, placed)]
    assert messages == [
        "stream.ORDERS is placed in cluster east, which no server reports (clusters: west)",
        "stream.ORDERS asks for servers tagged eu, ssd, and no server has all of them",
    ]
    fine = [{"cluster": {"name": "east"}, "tags": ["ssd", "eu", "fast"]}]
    assert placement_findings(fine, placed) == []
