"""Replication on a real 3-node JetStream cluster: R3 streams and consumers plan and apply
cleanly, and scaling replicas is an in-place update that converges."""

from __future__ import annotations

from pathlib import Path

from tests.support import raw
from tests.support.cli import copy_topology, run_cli
from tests.support.natsserver import NatsCluster
from tests.support.waiting import wait_until

#: Raft-replicated creates on a young cluster sharing 2 busy cores can take longer than the
#: default 5 s request timeout; a slow cluster is what --timeout is for.
TIMEOUT = ("--timeout", "30")


def _plan(cluster: NatsCluster, topo: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("plan", "-s", cluster.url, "--topology", str(topo), *TIMEOUT, *extra)


def test_r3_topology_applies_and_scaling_replicas_is_an_in_place_update(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    streams = topo / "streams.yaml"
    streams.write_text(streams.read_text().replace("num_replicas: 1", "num_replicas: 3"))
    url = nats_cluster.url
    done = run_cli("apply", "-s", url, "--topology", str(topo), "--auto-approve", *TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    config = raw.stream_config(nats_cluster.urls[0], "JELMORE")
    assert config is not None and config["num_replicas"] == 3
    again = _plan(nats_cluster, topo, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "cluster" in again.stdout  # the plan names the cluster it was made against

    streams.write_text(streams.read_text().replace("num_replicas: 3", "num_replicas: 1", 1))
    scaled = _plan(nats_cluster, topo)
    assert "~ num_replicas = 3 → 1" in scaled.stdout, scaled.stdout
    assert "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy." in scaled.stdout
    applied = run_cli("apply", "-s", url, "--topology", str(topo), "--auto-approve", *TIMEOUT)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    config = raw.stream_config(nats_cluster.urls[0], "JELMORE")
    assert config is not None and config["num_replicas"] == 1
    assert _plan(nats_cluster, topo, "--detailed-exitcode").returncode == 0
    for name in ("JELMORE", "JELMORE_DLQ", "JELMORE_ADVISORIES"):  # leave the shared cluster clean
        raw.js(nats_cluster.urls[0], f"STREAM.DELETE.{name}")


def test_with_one_node_of_three_down_plan_works_and_an_in_place_apply_succeeds(
    tmp_path: Path,
) -> None:
    """The apply lock and the event catalogue are R3 on a cluster, so losing any one node (the
    one that led them included) leaves apply working: quorum holds."""
    topo = copy_topology(tmp_path)
    streams = topo / "streams.yaml"
    streams.write_text(streams.read_text().replace("num_replicas: 1", "num_replicas: 3"))
    with NatsCluster(name="one-down") as cluster:
        done = run_cli(
            "apply", "-s", cluster.url, "--topology", str(topo), "--auto-approve", *TIMEOUT
        )
        assert done.returncode == 0, done.stdout + done.stderr
        for own in ("KV_jelmore-infra-locks", "KV_jelmore-catalogue"):
            config = raw.stream_config(cluster.urls[0], own)
            assert config is not None and config["num_replicas"] == 3, own
        info = raw.js(cluster.urls[0], "STREAM.INFO.KV_jelmore-infra-locks")
        leader = info["cluster"]["leader"]
        down = next(n for n in cluster.nodes if n.server_name == leader)
        down.kill()  # the node leading the lock's stream
        alive = ",".join(n.url for n in cluster.nodes if n is not down)
        survivor = next(n for n in cluster.nodes if n is not down).url

        def new_leader() -> bool:  # one node down, not an election under way: the steady state
            for name in ("KV_jelmore-infra-locks", "KV_jelmore-catalogue", "JELMORE"):
                try:
                    found = raw.js(survivor, f"STREAM.INFO.{name}")
                except Exception:  # the request timed out during the election
                    return False
                if (found.get("cluster") or {}).get("leader") in (None, "", leader):
                    return False
            return True

        wait_until(new_leader, "new leaders of the lock, the catalogue and JELMORE", within=90)
        plan = run_cli("plan", "-s", alive, "--topology", str(topo), *TIMEOUT)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        streams.write_text(streams.read_text().replace("max_age: 7d", "max_age: 8d", 1))
        applied = run_cli("apply", "-s", alive, "--topology", str(topo), "--auto-approve", *TIMEOUT)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "1 changed" in applied.stdout
        config = raw.stream_config(alive.split(",")[0], "JELMORE")
        assert config is not None and config["max_age"] == 8 * 86_400 * 10**9
