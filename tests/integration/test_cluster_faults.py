"""Apply and plan through faults on a real 3-node cluster (issue 14 §2).

One cluster for the module. The topology is 100 R3 streams with four consumer groups each (500
resources), so an apply is under way long enough to be interrupted:

* the meta leader is SIGKILLed once the server holds some of the new streams: the apply stops
  with its report (done / failed / not attempted), which matches what the server holds: nothing
  exists that the report calls not attempted, everything it calls done exists, and a create left
  unanswered says it may still have been carried out. Once the node is back, a re-run converges
  and a plan shows no changes;
* a plan made right after the meta leader died waits out the election: its reads, left
  unanswered while no leader exists, are sent again.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from bench.topogen import write_topology
from tests.support.cli import REPO, run_cli
from tests.support.natsserver import NatsCluster, NatsServer
from tests.support.waiting import wait_until

RESOURCES = 500
#: streams the server must hold before the meta leader is killed
KILL_AT = 20
#: the interrupted apply's request timeout: shorter than an election, so that the requests the
#: dead leader took are reported unanswered rather than waited out (a longer one rides it out)
SHORT = ("--timeout", "3")
#: the re-run's: creates on a cluster that has just been through an election can be slow
LONG = ("--timeout", "30")


pytestmark = pytest.mark.slow  # a cluster, a dead node and its return: tens of seconds


@pytest.fixture(scope="module")
def cluster() -> Iterator[NatsCluster]:
    with NatsCluster(name="apply-faults") as nodes:
        yield nodes


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Path:
    topo = write_topology(tmp_path_factory.mktemp("faults") / "topology", RESOURCES)
    streams = topo / "streams.yaml"
    streams.write_text(streams.read_text().replace("num_replicas: 1", "num_replicas: 3"))
    return topo


def meta_leader(cluster: NatsCluster) -> NatsServer:
    """The node leading the meta group, as the first live node sees it."""
    for node in cluster.nodes:
        if node.proc is None:
            continue
        url = f"http://127.0.0.1:{node.http_port}/jsz"
        with urllib.request.urlopen(url, timeout=5) as reply:
            name = json.load(reply).get("meta_cluster", {}).get("leader")
        found = next((n for n in cluster.nodes if n.server_name == name), None)
        if found is not None:
            return found
    raise AssertionError(f"no meta leader: {cluster.describe()}")


def held(urls: list[str]) -> set[str] | None:
    """The addresses of the streams and consumers the server holds (``None``: no answer)."""

    async def read() -> set[str] | None:
        nc = await nats.connect(urls, connect_timeout=5, max_reconnect_attempts=1)
        try:

            async def names(subject: str, key: str) -> list[str]:
                found: list[str] = []
                while True:
                    body = json.dumps({"offset": len(found)}).encode()
                    reply = json.loads((await nc.request(subject, body, timeout=10)).data)
                    page = reply.get(key) or []
                    found += page
                    if not page or len(found) >= int(reply.get("total") or 0):
                        return found

            addresses: set[str] = set()
            for stream in await names("$JS.API.STREAM.NAMES", "streams"):
                addresses.add(f"stream.{stream}")
                for consumer in await names(f"$JS.API.CONSUMER.NAMES.{stream}", "consumers"):
                    addresses.add(f"consumer.{stream}.{consumer}")
            return addresses
        except (TimeoutError, nats.errors.Error):
            return None
        finally:
            await nc.close()

    return asyncio.run(read())


def report(stderr: str) -> tuple[set[str], set[str], set[str]]:
    """``(done, failed, not attempted)`` addresses from an apply's failure report."""

    def listed(label: str) -> set[str]:
        line = next(x for x in stderr.splitlines() if x.startswith(f"  {label}: "))
        text = line.removeprefix(f"  {label}: ")
        return set() if text == "nothing" else set(text.split(", "))

    failed = set(re.findall(r"^apply stopped: (\S+) \(\w+\) failed: ", stderr, re.M))
    return listed("done"), failed, listed("not attempted")


def test_the_meta_leader_killed_mid_apply_stops_it_with_a_true_report_and_a_rerun_converges(
    cluster: NatsCluster, topology: Path
) -> None:
    args = ["apply", "-s", cluster.url, "--topology", str(topology), "--auto-approve", *SHORT]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jelmore_infra", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    leader = meta_leader(cluster)
    try:

        def some_created() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"apply ended before the kill: {proc.communicate()}")
            now = held(cluster.urls)
            return now is not None and sum(a.startswith("stream.") for a in now) >= KILL_AT

        wait_until(some_created, f"{KILL_AT} streams on the server", within=120, interval=0.05)
        leader.kill()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    alive = [n.url for n in cluster.nodes if n is not leader]
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    assert "Apply incomplete." in err and "Error: apply stopped at " in err
    done, failed, skipped = report(err)
    planned = {a for a in re.findall(r"^\s+\+ (\w+) \"([^\"]+)\"", out, re.M)}
    assert len(planned) == RESOURCES
    assert len(done | failed | skipped) == RESOURCES  # each step reported, and once
    assert not (done & failed or done & skipped or failed & skipped)
    assert failed, err
    for line in (x for x in err.splitlines() if x.startswith("apply stopped: ")):
        assert "timed out" not in line or "may still have been carried out" in line, line
    server = wait_until(lambda: held(alive), "the survivors to list what they hold", within=120)
    server = {a for a in server if a.startswith(("stream.BENCH_", "consumer.BENCH_"))}
    print(
        f"\nmeta leader {leader.server_name} SIGKILLed at {KILL_AT}+ streams: done {len(done)},"
        f" failed {len(failed)} (of which on the server {len(failed & server)}), not attempted"
        f" {len(skipped)} (on the server {len(skipped & server)}); the server holds"
        f" {len(server)} of {RESOURCES}"
    )
    assert done <= server  # what the report calls done exists
    assert server <= done | failed  # nothing exists that the report does not name as tried
    assert not skipped & server

    leader.start(60)
    cluster.wait_meta_settled(90)
    again = run_cli(
        "apply", "-s", cluster.url, "--topology", str(topology), "--auto-approve", *LONG
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Apply complete!" in again.stdout
    clean = run_cli(
        "plan", "-s", cluster.url, "--topology", str(topology), "--detailed-exitcode", *LONG
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_a_plan_made_as_the_meta_leader_dies_waits_out_the_election(
    cluster: NatsCluster, topology: Path
) -> None:
    """Run after the apply above: the server holds the whole topology."""
    leader = meta_leader(cluster)
    alive = ",".join(n.url for n in cluster.nodes if n is not leader)
    leader.kill()
    try:
        plan = run_cli("plan", "-s", alive, "--topology", str(topology), "--detailed-exitcode")
    finally:
        leader.start(60)
        cluster.wait_meta_settled(90)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes." in plan.stdout
