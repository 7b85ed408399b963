"""Clustered topologies on a real 5-node JetStream cluster, on the oldest and the newest supported
server: every cluster setting (``num_replicas`` 1, 3 and 5, placement by tags, mirrors and
sources with filters and transforms, ``subject_transform``, ``republish``, for streams, consumer
groups and buckets) applies, plans clean afterwards and imports clean; scaling and moving are
in-place updates whose plan notes say what the server copies; promoting a mirror is in place from
2.12 and a replace before; streams on a dead server are warnings, never creates or deletes.

The nodes carry placement tags: ``site:a`` on n0–n2, ``site:b`` on n3–n4, and ``node:nX`` each.
The cluster is shared by the module; every test removes what it created.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import raw
from tests.support.cli import run_cli
from tests.support.jsapi_helpers import publish_requests
from tests.support.natsserver import NatsCluster, binary_for
from tests.support.supercluster import TaggedCluster
from tests.support.waiting import wait_until

VERSIONS = ("2.10.26", "2.15.1")
TAGS = tuple(
    (f"site:{'a' if i < 3 else 'b'}", f"node:n{i}") for i in range(5)
)  # fmt: skip
#: Raft-replicated changes on five nodes sharing two busy cores can take longer than 5 s.
TIMEOUT = ("--timeout", "30")


@pytest.fixture(scope="module", params=VERSIONS)
def cluster(request: pytest.FixtureRequest) -> Iterator[NatsCluster]:
    with TaggedCluster(
        binary=binary_for(request.param), size=5, name="topo", node_tags=TAGS
    ) as started:
        yield started


@pytest.fixture(autouse=True)
def _clean(cluster: NatsCluster) -> Iterator[None]:
    """Every stream (buckets and the tool's own included) is deleted after each test, so one
    test's apply never sees, or deletes, another's resources."""
    yield
    url = cluster.urls[0]
    for name in raw.stream_names(url):
        raw.js(url, f"STREAM.DELETE.{name}")


def version_of(cluster: NatsCluster) -> tuple[int, ...]:
    return tuple(int(p) for p in cluster.nodes[0].version.split("."))


def cli(cluster: NatsCluster, *args: str) -> subprocess.CompletedProcess[str]:
    command, rest = args[0], args[1:]
    return run_cli(command, "-s", cluster.url, *TIMEOUT, *rest)


def apply(cluster: NatsCluster, topo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = cli(cluster, "apply", "--topology", str(topo), "--auto-approve", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def plan(cluster: NatsCluster, topo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(cluster, "plan", "--topology", str(topo), *extra)


def assert_clean(cluster: NatsCluster, topo: Path) -> None:
    """A no-change plan that saw every resource: a stream or group the cluster lists as missing
    for a moment (peers still answering after a scale) is planned as nothing, so the plan is
    asked again until the server lists everything, and only then judged."""

    def complete() -> subprocess.CompletedProcess[str] | None:
        done = plan(cluster, topo, "--detailed-exitcode")
        return None if "is unavailable on the server" in done.stdout + done.stderr else done

    again: subprocess.CompletedProcess[str] = wait_until(
        complete, "a plan that sees every resource", within=90
    )
    assert again.returncode == 0, again.stdout + again.stderr


def write(topo: Path, text: str) -> Path:
    topo.mkdir(exist_ok=True)
    (topo / "topology.yaml").write_text(text)
    return topo


def info(cluster: NatsCluster, stream: str) -> dict[str, Any]:
    reply = raw.js(cluster.urls[0], f"STREAM.INFO.{stream}")
    assert "error" not in reply, reply
    return reply


def peers(cluster: NatsCluster, stream: str) -> set[str]:
    """The servers holding ``stream`` (its leader and replicas)."""
    found = info(cluster, stream).get("cluster") or {}
    names = {r["name"] for r in found.get("replicas") or ()}
    return names | ({found["leader"]} if found.get("leader") else set())


def settled_peers(
    cluster: NatsCluster, stream: str, count: int, among: set[str] | None = None
) -> set[str]:
    """``stream``'s servers once it has a leader and exactly ``count`` of them, all ``among``
    the given ones, and no reconfiguration is under way (a move or a scale has finished)."""

    def done() -> set[str] | None:
        try:
            found = info(cluster, stream).get("cluster") or {}
        except Exception:  # a request during an election times out
            return None
        if not found.get("leader") or "desired" in found:  # 2.15: a move or scale under way
            return None
        names = peers(cluster, stream)
        if len(names) != count or (among is not None and not names <= among):
            return None
        return names

    result: set[str] = wait_until(done, f"{stream} on {count} servers", within=90)
    return result


def tagged(site: str) -> set[str]:
    return {f"topo-n{i}" for i, tags in enumerate(TAGS) if f"site:{site}" in tags}


def wait_messages(cluster: NatsCluster, stream: str, count: int) -> None:
    """Until ``stream`` holds ``count`` messages (its mirror or sources have caught up)."""
    try:
        wait_until(
            lambda: raw.stream_state(cluster.urls[0], stream)["messages"] == count,
            f"{count} messages in {stream}",
            within=60,
        )
    except AssertionError as exc:
        found = info(cluster, stream)
        detail = {k: found.get(k) for k in ("state", "mirror", "sources", "cluster")}
        raise AssertionError(f"{exc}: {detail}") from None


EVERYTHING = """
streams:
  ORDERS:
    subjects: [orders.in.>]
    num_replicas: 5
    subject_transform: {src: orders.in.>, dest: orders.stored.>}
    republish: {src: orders.stored.>, dest: orders.seen.>, headers_only: true}
  BILLING:
    subjects: [billing.>]
    num_replicas: 1
    placement: {tags: [site:b]}
  AUDIT:
    num_replicas: 3
    placement: {tags: [site:a]}
    sources:
      - name: ORDERS
        subject_transforms:
          - {src: "orders.stored.*.>", dest: "audit.orders.{{wildcard(1)}}.>"}
      - name: BILLING
        filter_subject: billing.paid.>
  ORDERS_EU:
    mirror: {name: ORDERS, filter_subject: orders.stored.eu.>}
    num_replicas: 1
    placement: {tags: [site:b]}
consumer_groups:
  shippers:
    stream: ORDERS
    num_replicas: 3
    ack_policy: explicit
    filter_subjects: [orders.stored.eu.>, orders.stored.us.>]
  auditors:
    stream: AUDIT
    ack_policy: explicit
kv_buckets:
  settings:
    replicas: 3
    history: 5
    placement: {tags: [site:a]}
    republish: {src: ">", dest: "settings.changed.>"}
  settings_copy:
    mirror: {name: settings}
    placement: {tags: [site:b]}
  merged:
    replicas: 3
    sources: [{name: settings}]
object_stores:
  blobs:
    replicas: 3
    placement: {tags: [site:a]}
"""


def test_every_cluster_setting_applies_plans_clean_and_imports_clean(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    topo = write(tmp_path / "topology", EVERYTHING)
    apply(cluster, topo)
    assert_clean(cluster, topo)

    assert len(settled_peers(cluster, "ORDERS", 5)) == 5
    assert settled_peers(cluster, "AUDIT", 3) == tagged("a")
    settled_peers(cluster, "BILLING", 1, among=tagged("b"))
    settled_peers(cluster, "ORDERS_EU", 1, among=tagged("b"))
    assert settled_peers(cluster, "KV_settings", 3) == tagged("a")
    assert settled_peers(cluster, "OBJ_blobs", 3) == tagged("a")
    shippers = raw.js(cluster.urls[0], "CONSUMER.INFO.ORDERS.shippers")
    assert shippers["config"]["num_replicas"] == 3
    assert len(shippers["cluster"]["replicas"]) == 2

    # The settings do what they say: a message is transformed, republished, sourced, mirrored.
    publish_requests(cluster.urls, "orders.in.eu.1", 1)
    publish_requests(cluster.urls, "billing.paid.1", 1)
    wait_messages(cluster, "AUDIT", 2)
    wait_messages(cluster, "ORDERS_EU", 1)
    audit = raw.js(cluster.urls[0], "STREAM.MSG.GET.AUDIT", {"last_by_subj": "audit.orders.eu.>"})
    assert audit["message"]["subject"] == "audit.orders.eu.1"

    imported = tmp_path / "imported"
    done = cli(cluster, "import", "-o", str(imported))
    assert done.returncode == 0, done.stdout + done.stderr
    assert_clean(cluster, imported)


def test_scaling_between_1_3_and_5_replicas_is_in_place_and_notes_the_copy(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    def topology(replicas: int, group: int, bucket: int) -> Path:
        return write(
            tmp_path / "topology",
            f"""
streams:
  SCALE: {{subjects: [scale.>], num_replicas: {replicas}}}
consumer_groups:
  scaled: {{stream: SCALE, ack_policy: explicit, num_replicas: {group}}}
kv_buckets:
  scaled: {{replicas: {bucket}}}
""",
        )

    apply(cluster, topology(1, 1, 1))
    publish_requests(cluster.urls, "scale.x", 20)
    publish_requests(cluster.urls, "$KV.scaled.key", 1)  # a KV put

    # apply prints the plan it carries out
    up = apply(cluster, topology(3, 3, 3)).stdout
    assert "~ num_replicas = 1 → 3" in up
    assert "~ replicas = 1 → 3" in up
    assert "Plan: 0 to add, 3 to change, 0 to replace, 0 to destroy." in up
    assert (
        "raising num_replicas of stream SCALE from 1 to 3: the server copies its 20 stored "
        "messages" in up
    )
    assert "raising replicas of KV bucket scaled from 1 to 3" in up
    assert len(settled_peers(cluster, "SCALE", 3)) == 3
    assert len(settled_peers(cluster, "KV_scaled", 3)) == 3
    assert_clean(cluster, topology(3, 3, 3))

    five = apply(cluster, topology(5, 3, 3)).stdout
    assert "raising num_replicas of stream SCALE from 3 to 5" in five
    assert "to each of the 2 new replicas" in five
    assert len(settled_peers(cluster, "SCALE", 5)) == 5

    # Down again: the group first (never more replicas than its stream), then the rest.
    apply(cluster, topology(5, 1, 3))
    down = apply(cluster, topology(1, 1, 1)).stdout
    assert "raising" not in down
    assert "Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy." in down
    assert len(settled_peers(cluster, "SCALE", 1)) == 1
    assert len(settled_peers(cluster, "KV_scaled", 1)) == 1
    assert raw.stream_state(cluster.urls[0], "SCALE")["messages"] == 20
    assert_clean(cluster, topology(1, 1, 1))


def test_a_move_by_placement_tags_is_in_place_keeps_the_data_and_notes_the_copy(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    def topology(stream: str, bucket: str, replicas: int = 1) -> Path:
        return write(
            tmp_path / "topology",
            f"""
streams:
  MOVER: {{subjects: [mover.>], num_replicas: {replicas}{stream}}}
kv_buckets:
  moving: {{history: 1{bucket}}}
""",
        )

    on_a = ", placement: {tags: [site:a]}"
    on_b = ", placement: {tags: [site:b]}"
    apply(cluster, topology(on_a, on_a))
    publish_requests(cluster.urls, "mover.x", 20)
    settled_peers(cluster, "MOVER", 1, among=tagged("a"))

    moved = apply(cluster, topology(on_b, on_b)).stdout
    assert "Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy." in moved
    assert (
        "moving stream MOVER from tags site:a to tags site:b: the server copies its 20 stored "
        "messages" in moved
    )
    assert "moving KV bucket moving from tags site:a to tags site:b" in moved
    settled_peers(cluster, "MOVER", 1, among=tagged("b"))
    settled_peers(cluster, "KV_moving", 1, among=tagged("b"))
    wait_messages(cluster, "MOVER", 20)

    # Removing the placement is no move: the stream stays where it is.
    where = peers(cluster, "MOVER")
    dropped = apply(cluster, topology("", on_b)).stdout
    assert "removing the placement of stream MOVER (tags site:b) moves nothing" in dropped
    assert peers(cluster, "MOVER") == where
    assert_clean(cluster, topology("", on_b))

    # Moving and scaling at once is refused by the server: a plan error, never a failed apply.
    both = plan(cluster, topology(on_a, on_b, replicas=3))
    assert both.returncode == 1
    assert "can not move and scale a stream in a single update" in both.stdout + both.stderr


def test_promoting_a_mirror_is_in_place_from_2_12_and_a_replace_before(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    mirrored = """
streams:
  ORIGIN: {subjects: [origin.>], num_replicas: 3}
  COPY: {mirror: {name: ORIGIN}, num_replicas: 3, placement: {tags: [site:a]}}
"""
    promoted = """
streams:
  ORIGIN: {subjects: [origin.>], num_replicas: 3}
  COPY: {subjects: [copy.>], num_replicas: 3, placement: {tags: [site:a]}}
"""
    topo = write(tmp_path / "topology", mirrored)
    apply(cluster, topo)
    publish_requests(cluster.urls, "origin.x", 5)
    wait_messages(cluster, "COPY", 5)

    write(topo, promoted)
    if version_of(cluster) >= (2, 12):
        shown = apply(cluster, topo).stdout  # no --allow-data-loss: nothing is lost
        assert "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy." in shown
        assert "stops mirroring ORIGIN and becomes a normal stream" in shown
        assert raw.stream_state(cluster.urls[0], "COPY")["messages"] == 5
    else:
        refused = cli(cluster, "apply", "--topology", str(topo), "--auto-approve")
        assert refused.returncode == 1
        assert "Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy." in refused.stdout
        assert "a mirror cannot be removed from a live stream before nats-server 2.12.0" in (
            refused.stdout
        )
        assert raw.stream_config(cluster.urls[0], "COPY")["mirror"]["name"] == "ORIGIN"  # type: ignore[index]
        apply(cluster, topo, "--allow-data-loss")
        assert raw.stream_state(cluster.urls[0], "COPY")["messages"] == 0
    publish_requests(cluster.urls, "copy.x", 1)
    assert "mirror" not in (raw.stream_config(cluster.urls[0], "COPY") or {})
    assert_clean(cluster, topo)


def test_streams_on_a_dead_server_are_warnings_never_creates_or_deletes(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    everything = """
streams:
  HOME: {subjects: [home.>], num_replicas: 3, placement: {tags: [site:a]}, max_age: 1d}
  LONE: {subjects: [lone.>], placement: {tags: [node:n4]}}
  STALE: {subjects: [stale.>], placement: {tags: [node:n4]}}
"""
    topo = write(tmp_path / "topology", everything)
    apply(cluster, topo)
    # STALE leaves the topology (a managed stream: a delete, were it listed); HOME changes.
    write(topo, everything.replace("max_age: 1d", "max_age: 2d").split("  STALE:")[0])
    dead = cluster.nodes[4]
    url = cluster.urls[0]
    own = [n for n in raw.stream_names(url) if n not in ("HOME", "LONE", "STALE")]
    try:
        dead.kill()

        def degraded() -> bool:
            try:
                listing = raw.js(url, "STREAM.LIST", {})
                leaders = [
                    (raw.js(url, f"STREAM.INFO.{n}").get("cluster") or {}).get("leader")
                    for n in own
                ]
            except Exception:  # asked during an election: no answer
                return False
            names = {s["config"]["name"] for s in listing.get("streams") or ()}
            missing = set(listing.get("missing") or ())
            settled = all(leader not in (None, "", dead.server_name) for leader in leaders)
            return settled and "HOME" in names and {"LONE", "STALE"} <= missing

        # The tool's own streams (the apply lock) keep a leader; LONE and STALE are missing.
        wait_until(degraded, "the streams of the dead server listed as missing", within=90)
        shown = apply(cluster, topo).stdout
        for stream in ("LONE", "STALE"):
            assert f"stream.{stream} is unavailable on the server" in shown, shown
        assert "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy." in shown
        assert "# stream.HOME will be updated in place" in shown
    finally:
        if dead.proc is None:
            dead.start(90)
        cluster.wait_meta_settled(120)
        cluster.wait_placeable(120)
    after = cli(cluster, "plan", "--topology", str(topo), "--json")
    assert after.returncode == 0, after.stdout + after.stderr
    changes = [(c["address"], c["action"]) for c in json.loads(after.stdout)["changes"]]
    assert changes == [("stream.STALE", "delete")]
