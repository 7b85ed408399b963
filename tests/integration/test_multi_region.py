"""Multi-region on one machine: two 3-node clusters joined by gateways (C1 and C2, JetStream
domain ``hub``) and a leaf node with its own JetStream domain (``edge``), on the newest supported
server (tests/support/supercluster.py; docs/multi-region.md; the rules that differ by version are
tested on the oldest one too, in test_cluster_topologies.py).

The Jelmore topology lives in C1, a mirror of ``JELMORE`` in C2, and a stream in C1 sources the
leaf's stream through the leaf domain's API (``$JS.edge.API``); the leaf mirrors ``JELMORE``
through the hub's (``$JS.hub.API``). ``plan``, ``apply`` and ``import`` are clean across all of it;
moving a stream to the other region is an in-place update whose plan says what it copies; and a
region that loses two of its three servers leaves its streams as warnings, never as creates or
deletes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import raw
from tests.support.cli import copy_topology, run_cli
from tests.support.jsapi_helpers import publish_requests
from tests.support.natsserver import binary_for
from tests.support.supercluster import SuperCluster
from tests.support.waiting import wait_until

VERSION = "2.15.1"
#: Raft-replicated changes on seven servers sharing two busy cores can take longer than 5 s.
TIMEOUT = ("--timeout", "30")

REGIONS = """
streams:
  JELMORE_C2:
    description: JELMORE mirrored into region C2
    mirror: {name: JELMORE}
    num_replicas: 3
    placement: {cluster: C2}
    max_age: 7d
  EDGE_EVENTS:
    description: What the edge site records, gathered in region C1
    sources:
      - name: EDGE
        external: {api: $JS.edge.API}
        filter_subject: edge.>
    num_replicas: 3
    placement: {cluster: C1}
"""
LEAF = """
streams:
  EDGE:
    subjects: [edge.>]
    max_age: 1d
  JELMORE_EDGE:
    description: JELMORE mirrored to the edge site through the hub's domain
    mirror:
      name: JELMORE
      external: {api: $JS.hub.API}
"""


@pytest.fixture(scope="module")
def region() -> Iterator[SuperCluster]:
    with SuperCluster(binary=binary_for(VERSION)) as started:
        yield started


@pytest.fixture(autouse=True)
def _clean(region: SuperCluster) -> Iterator[None]:
    """Every stream of the hub and of the leaf is deleted after each test."""
    yield
    for url in (region.urls("C1")[0], region.leaf_url):
        for name in raw.stream_names(url):
            raw.js(url, f"STREAM.DELETE.{name}")


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args[0], "-s", url, *TIMEOUT, *args[1:])


def apply(url: str, topo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = cli(url, "apply", "--topology", str(topo), "--auto-approve", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def assert_clean(url: str, topo: Path) -> None:
    again = cli(url, "plan", "--topology", str(topo), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def hub_topology(tmp_path: Path, regions: str = REGIONS) -> Path:
    """The repository's Jelmore topology, R3 in region C1, with ``regions`` beside it."""
    topo = copy_topology(tmp_path)
    streams = topo / "streams.yaml"
    streams.write_text(
        streams.read_text().replace(
            "    num_replicas: 1", "    num_replicas: 3\n    placement: {cluster: C1}"
        )
    )
    (topo / "regions.yaml").write_text(regions)
    return topo


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "topology.yaml").write_text(text)
    return directory


def cluster_of(url: str, stream: str) -> tuple[str | None, int]:
    """The cluster holding ``stream`` and how many servers hold it (0 while it has no leader or
    is being moved or scaled)."""
    found = raw.js(first(url), f"STREAM.INFO.{stream}").get("cluster") or {}
    if not found.get("leader") or "desired" in found:  # 2.15: a move or scale under way
        return found.get("name"), 0
    return found.get("name"), 1 + len(found.get("replicas") or ())


def first(url: str) -> str:
    """One server of a comma-separated list (the raw helpers take one)."""
    return url.split(",")[0]


def wait_messages(url: str, stream: str, count: int) -> None:
    wait_until(
        lambda: raw.stream_state(first(url), stream)["messages"] == count,
        f"{count} messages in {stream}",
        within=90,
    )


def test_plan_apply_and_import_are_clean_across_two_regions_and_a_leaf_domain(
    region: SuperCluster, tmp_path: Path
) -> None:
    c1, c2, leaf = region.url("C1"), region.url("C2"), region.leaf_url
    # The leaf first (a standalone server whose greeting names a cluster: its lock stays R1).
    leaf_topo = write(tmp_path / "leaf", LEAF)
    apply(leaf, leaf_topo)
    hub = hub_topology(tmp_path)
    apply(c1, hub)
    for url, topo in ((c1, hub), (c2, hub), (leaf, leaf_topo)):
        assert_clean(url, topo)

    assert cluster_of(c1, "JELMORE") == ("C1", 3)
    assert cluster_of(c1, "EDGE_EVENTS") == ("C1", 3)
    wait_until(lambda: cluster_of(c1, "JELMORE_C2") == ("C2", 3), "JELMORE_C2 in C2")
    publish_requests(c1, "jelmore.session.created")
    publish_requests(leaf, "edge.door.opened", 2)
    wait_messages(c1, "JELMORE_C2", 1)
    wait_messages(c1, "EDGE_EVENTS", 2)

    # Import: the managed mirror and sourcing stream plan back as nothing.
    imported = tmp_path / "imported"
    done = cli(c1, "import", "JELMORE_C2", "EDGE_EVENTS", "-o", str(imported))
    assert done.returncode == 0, done.stdout + done.stderr
    mixed = tmp_path / "mixed"
    shutil.copytree(hub, mixed)
    (mixed / "regions.yaml").unlink()
    for found in imported.glob("*.yaml"):
        shutil.copy(found, mixed / found.name)
    assert_clean(c1, mixed)
    edge_import = tmp_path / "edge-imported"
    done = cli(leaf, "import", "-o", str(edge_import))
    assert done.returncode == 0, done.stdout + done.stderr
    assert_clean(leaf, edge_import)

    # Made by hand (unmanaged), they import as their adoption and nothing else.
    raw.create_stream(
        region.urls("C2")[0],
        {"name": "HAND_MIRROR", "mirror": {"name": "JELMORE"}, "num_replicas": 3,
         "placement": {"cluster": "C2"}},
    )  # fmt: skip
    raw.create_stream(
        region.urls("C1")[0],
        {"name": "HAND_SOURCED", "num_replicas": 3, "placement": {"cluster": "C1"},
         "sources": [{"name": "EDGE", "external": {"api": "$JS.edge.API"},
                      "filter_subject": "edge.door.>"}]},
    )  # fmt: skip
    by_hand = tmp_path / "by-hand"
    done = cli(c1, "import", "HAND_MIRROR", "HAND_SOURCED", "-o", str(by_hand))
    assert done.returncode == 0, done.stdout + done.stderr
    for found in by_hand.glob("*.yaml"):
        shutil.copy(found, mixed / found.name)
    adopted = cli(c1, "plan", "--topology", str(mixed), "--json")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    changes = _changes(adopted.stdout)
    assert sorted(changes) == ["stream.HAND_MIRROR", "stream.HAND_SOURCED"]
    assert all(paths == ["metadata.jelmore.managed-by"] for paths in changes.values()), changes
    apply(c1, mixed)
    assert_clean(c2, mixed)


def _changes(plan_json: str) -> dict[str, list[str]]:
    import json

    doc: dict[str, Any] = json.loads(plan_json)
    return {
        c["address"]: [f["path"] for f in c.get("fields") or ()]
        for c in doc["changes"]
        if c["action"] != "no-op"
    }


def test_moving_a_stream_and_a_bucket_to_the_other_region_is_in_place_and_notes_the_copy(
    region: SuperCluster, tmp_path: Path
) -> None:
    c1 = region.url("C1")

    def topology(where: str) -> Path:
        return write(
            tmp_path / "topology",
            f"""
streams:
  ARCHIVE: {{subjects: [archive.>], num_replicas: 3, placement: {{cluster: {where}}}}}
kv_buckets:
  sessions: {{replicas: 3, placement: {{cluster: {where}}}}}
""",
        )

    apply(c1, topology("C1"))
    publish_requests(c1, "archive.x", 25)
    wait_until(lambda: cluster_of(c1, "ARCHIVE") == ("C1", 3), "ARCHIVE in C1")

    moved = apply(c1, topology("C2")).stdout  # apply prints the plan it carries out
    assert '~ placement.cluster = "C1" → "C2"' in moved
    assert "Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy." in moved
    assert (
        "moving stream ARCHIVE from cluster C1 to cluster C2: the server copies its 25 stored "
        "messages" in moved
    )
    assert "moving KV bucket sessions from cluster C1 to cluster C2" in moved
    for stream in ("ARCHIVE", "KV_sessions"):
        wait_until(lambda s=stream: cluster_of(c1, s) == ("C2", 3), f"{stream} in C2", within=90)
    wait_messages(c1, "ARCHIVE", 25)
    assert_clean(c1, topology("C2"))


def test_a_region_that_lost_two_of_three_servers_gets_warnings_never_creates_or_deletes(
    region: SuperCluster, tmp_path: Path
) -> None:
    c1 = region.url("C1")
    everything = """
streams:
  HOME: {subjects: [home.>], num_replicas: 3, placement: {cluster: C1}, max_age: 1d}
  REGIONAL: {subjects: [regional.>], num_replicas: 3, placement: {cluster: C2}}
  LONE: {subjects: [lone.>], placement: {cluster: C2}}
  STALE: {subjects: [stale.>], placement: {cluster: C2}}
"""
    topo = write(tmp_path / "topology", everything)
    apply(c1, topo)
    holders = {
        s: raw.js(first(c1), f"STREAM.INFO.{s}")["cluster"]["leader"] for s in ("LONE", "STALE")
    }
    doomed = list(dict.fromkeys(holders.values()))
    doomed += [n.server_name for n in region.nodes["C2"] if n.server_name not in doomed]
    victims = [n for n in region.nodes["C2"] if n.server_name in doomed[:2]]
    # STALE leaves the topology (a managed stream: a delete, were it listed); HOME changes.
    write(topo, everything.replace("max_age: 1d", "max_age: 2d").split("  STALE:")[0])
    try:
        for node in victims:
            node.kill()

        def degraded() -> bool:
            try:
                listing = raw.js(first(c1), "STREAM.LIST", {})
            except Exception:  # asked during the meta leader's election: no answer
                return False
            names = {s["config"]["name"] for s in listing.get("streams") or ()}
            missing = set(listing.get("missing") or ())
            return "HOME" in names and {"LONE", "STALE"} <= missing

        wait_until(degraded, "C2's R1 streams listed as missing", within=90)
        shown = apply(c1, topo).stdout  # apply prints the plan it carries out
        for stream in ("LONE", "STALE"):
            assert f"stream.{stream} is unavailable on the server" in shown, shown
        # REGIONAL lost its quorum: listed as missing at first, later by its one replica left
        # (with its config, without a leader). Either way nothing is created or deleted.
        assert "stream.REGIONAL will be" not in shown, shown
        assert "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy." in shown
        assert "# stream.HOME will be updated in place" in shown
        assert "1 changed" in shown
    finally:
        for node in victims:
            if node.proc is None:
                node.start(90)
        region.wait_meta_settled(120)
        region.wait_placeable("C2", 120)

    # Back to full strength: everything is listed again, and only STALE would go.
    def complete() -> bool:
        try:
            listing = raw.js(first(c1), "STREAM.LIST", {})
        except Exception:  # asked during an election: no answer
            return False
        return "error" not in listing and not listing.get("missing")

    wait_until(complete, "every stream listed", within=90)
    after = cli(c1, "plan", "--topology", str(topo), "--json")
    assert after.returncode == 0, after.stdout + after.stderr
    assert sorted(_changes(after.stdout)) == ["stream.STALE"]
