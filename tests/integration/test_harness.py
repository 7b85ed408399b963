"""The real-server test harness (``tests/support/natsserver.py``, ``tests/conftest.py``) does what
every other test relies on: single servers and a 3-node cluster that really serve JetStream,
servers that keep their data across a kill and restart, and no nats-server process left behind,
whether the test body raises, a test fails, or a test forgets to stop a server.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import natsserver
from tests.support.natsserver import NatsCluster, NatsServer, nats_server, running_processes
from tests.support.processes import nats_server_pids, pid_alive

ROOT = Path(__file__).resolve().parents[2]
GUARD = 30.0  # seconds: only a guard against hangs, never an assertion on speed


async def js_request(url: str | list[str], subject: str, body: dict[str, Any] | None = None) -> Any:
    """One ``$JS.API`` request; the decoded JSON answer."""
    import nats

    servers = url if isinstance(url, list) else [url]
    nc = await nats.connect(servers=servers, connect_timeout=5)
    try:
        payload = json.dumps(body).encode() if body is not None else b""
        msg = await nc.request(subject, payload, timeout=10)
        return json.loads(msg.data)
    finally:
        await nc.close()


# --- servers serve JetStream ----------------------------------------------------------------


async def test_single_server_fixture_serves_jetstream(nats_server: NatsServer) -> None:
    info = await js_request(nats_server.url, "$JS.API.INFO")
    assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"
    assert "error" not in info
    assert nats_server.proc in running_processes()


async def test_cluster_fixture_holds_an_r3_stream_on_three_nodes(nats_cluster: NatsCluster) -> None:
    name = f"HARNESS_R3_{uuid.uuid4().hex[:8].upper()}"
    config = {"name": name, "subjects": [f"harness.{name}.>"], "num_replicas": 3}
    created = await js_request(nats_cluster.urls, f"$JS.API.STREAM.CREATE.{name}", config)
    try:
        assert "error" not in created, created
        assert created["config"]["num_replicas"] == 3
        assert created["cluster"]["name"] == nats_cluster.name
        nodes = {node.server_name for node in nats_cluster.nodes}
        assert len(nodes) == 3
        deadline = time.monotonic() + GUARD
        while True:  # replicas are reported once they have caught up with the leader
            info = await js_request(nats_cluster.urls, f"$JS.API.STREAM.INFO.{name}")
            replicas = info["cluster"].get("replicas", [])
            if len(replicas) == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert info["cluster"]["leader"] in nodes
        assert {r["name"] for r in replicas} | {info["cluster"]["leader"]} == nodes
    finally:
        await js_request(nats_cluster.urls, f"$JS.API.STREAM.DELETE.{name}")


def test_standalone_server_refuses_replicas_so_the_cluster_check_can_fail(
    nats_server: NatsServer,
) -> None:
    config = {"name": "R3", "subjects": ["r3.>"], "num_replicas": 3}
    answer = asyncio.run(js_request(nats_server.url, "$JS.API.STREAM.CREATE.R3", config))
    assert answer["error"]["err_code"] == 10074


# --- servers are stopped ----------------------------------------------------------------------


def test_server_is_stopped_when_the_test_body_raises() -> None:
    server = NatsServer()
    seen: list[subprocess.Popen[bytes]] = []

    def failing_body() -> None:
        with server:
            assert server.proc is not None
            seen.append(server.proc)
            assert nats_server_pids(str(server.store_dir)) == [server.proc.pid]
            raise RuntimeError("body failed")

    with pytest.raises(RuntimeError, match="body failed"):
        failing_body()
    (proc,) = seen
    assert proc.poll() is not None
    assert proc not in running_processes()
    assert not pid_alive(proc.pid)
    assert server.store_dir is not None
    store = str(server.store_dir)
    assert nats_server_pids(store) == []
    assert not Path(store).exists()  # the temporary store is removed too


def test_server_helper_context_manager_stops_on_error() -> None:
    seen: list[subprocess.Popen[bytes]] = []

    def failing_body() -> None:
        with nats_server() as server:
            assert server.proc is not None
            seen.append(server.proc)
            raise KeyError("x")

    with pytest.raises(KeyError):
        failing_body()
    (proc,) = seen
    assert not pid_alive(proc.pid)
    assert proc not in running_processes()


def test_cluster_is_stopped_when_the_test_body_raises() -> None:
    cluster = NatsCluster(name="harness-raise")
    seen: list[subprocess.Popen[bytes]] = []

    def failing_body() -> None:
        with cluster:
            for node in cluster.nodes:
                assert node.proc is not None
                assert node.proc.poll() is None
                seen.append(node.proc)
            raise RuntimeError("cluster body failed")

    with pytest.raises(RuntimeError, match="cluster body failed"):
        failing_body()
    assert len(seen) == 3
    for proc in seen:
        assert proc.poll() is not None
        assert proc not in running_processes()
        assert not pid_alive(proc.pid)
    assert nats_server_pids("harness-raise") == []


def test_a_cluster_whose_port_another_process_took_starts_again_on_fresh_ports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Test processes run side by side: a port chosen free can be bound by another one before
    # the server starts. The first route port handed out is one this test holds open.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = int(taken.getsockname()[1])
        chosen = natsserver.free_port
        first = iter([held])
        monkeypatch.setattr(natsserver, "free_port", lambda: next(first, None) or chosen())
        with NatsCluster(name="harness-port") as cluster:
            assert cluster.healthy()
            assert all(f":{held}" not in (node.config or "") for node in cluster.nodes)
    said = capsys.readouterr().err
    assert "starting the cluster again" in said and natsserver.PORT_TAKEN in said
    assert nats_server_pids("harness-port") == []


def test_a_cluster_with_a_dead_node_is_not_healthy_and_says_which() -> None:
    with NatsCluster(name="harness-health") as cluster:
        assert cluster.healthy()
        cluster.nodes[2].kill()
        assert not cluster.healthy()
        assert "harness-health-n2: down" in cluster.describe()


async def test_killed_and_restarted_server_keeps_its_jetstream_data() -> None:
    import nats

    with NatsServer() as server:
        nc = await nats.connect(server.url, connect_timeout=5)
        try:
            js = nc.jetstream()
            await js.add_stream(name="KEEP", subjects=["keep.>"])
            for i in range(5):
                await js.publish(f"keep.{i}", f"event {i}".encode())
        finally:
            await nc.close()
        old = server.proc
        assert old is not None
        server.kill()  # SIGKILL: no orderly shutdown
        assert old.poll() is not None
        server.start()
        assert server.proc is not old
        info = await js_request(server.url, "$JS.API.STREAM.INFO.KEEP")
        assert info["state"]["messages"] == 5
        assert info["state"]["last_seq"] == 5
        server.restart()  # orderly stop and start keeps it too
        info = await js_request(server.url, "$JS.API.STREAM.INFO.KEEP")
        assert info["state"]["messages"] == 5


INNER_TESTS = '''
"""Inner test run: tests fail while servers run; the harness must stop them all."""
import os
from pathlib import Path

from tests.support.natsserver import NatsServer

RECORD = Path(os.environ["HARNESS_RECORD"])


def record(*procs):
    with RECORD.open("a") as fh:
        for proc in procs:
            fh.write(f"{proc.pid}\\n")


def test_a_fails_with_the_server_fixture(nats_server):
    record(nats_server.proc)
    assert False, "inner failure with a fixture server"


def test_b_fails_inside_the_context_manager():
    with NatsServer() as server:
        record(server.proc)
        raise RuntimeError("inner failure inside the context manager")


def test_c_fails_with_the_cluster_fixture(nats_cluster):
    record(*(node.proc for node in nats_cluster.nodes))
    assert False, "inner failure with the cluster"


def test_d_errors_in_a_fixture_using_a_server(broken):
    pass


import pytest


@pytest.fixture
def broken(nats_server):
    record(nats_server.proc)
    raise RuntimeError("inner fixture set-up failure")


def test_e_function_scoped_servers_are_already_gone(nats_cluster):
    pids = [int(p) for p in RECORD.read_text().split()]
    alive = [p for p in pids if Path(f"/proc/{p}").exists()
             and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"]
    cluster = {node.proc.pid for node in nats_cluster.nodes}
    assert set(alive) <= cluster, (alive, cluster)
'''

LEAKY_TEST = """
from tests.support.natsserver import NatsServer


def test_forgets_to_stop_a_server():
    server = NatsServer()
    server.start()  # never stopped: the session safety net must kill it and say so
    assert False, "inner failure with a forgotten server"
"""


def run_inner_pytest(
    tmp_path: Path, source: str, *options: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``source`` as a test file in a fresh pytest (with ``options``), with the project's
    fixtures loaded as a plugin and every temporary directory (hence every server's store) under
    ``tmp_path/tmp``."""
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(source)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    record = tmp_path / "pids.txt"
    record.touch()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "TMPDIR": str(tmpdir),
        "PYTHONPATH": str(ROOT),
        "HARNESS_RECORD": str(record),
    }
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q",
            "-p", "tests.conftest", "-p", "no:cacheprovider",
            "-o", "addopts=", "-o", "asyncio_default_fixture_loop_scope=function",
            "--rootdir", str(tmp_path), *options, str(test_file),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=GUARD * 6,
        check=False,
    )  # fmt: skip
    return result, record


def test_fixtures_stop_every_server_when_tests_fail(tmp_path: Path) -> None:
    result, record = run_inner_pytest(tmp_path, INNER_TESTS)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # tests failed; no internal error
    assert "3 failed, 1 passed, 1 error" in output, output
    assert "were left running" not in output, output
    pids = [int(p) for p in record.read_text().split()]
    assert len(pids) == 6, output  # 1 + 1 + 3 + 1 servers really ran
    assert [p for p in pids if pid_alive(p)] == []
    assert nats_server_pids(str(tmp_path)) == []


@pytest.mark.parametrize("options", [(), ("-n", "1")], ids=["one-process", "xdist-worker"])
def test_session_safety_net_kills_and_reports_a_forgotten_server(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    result, _ = run_inner_pytest(tmp_path, LEAKY_TEST, *options)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "1 nats-server process(es) were left running" in output, output
    assert nats_server_pids(str(tmp_path)) == []


def test_a_missing_server_binary_fails_instead_of_skipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JELMORE_SERVER_CACHE", str(tmp_path))
    monkeypatch.setattr(natsserver, "_CHECKED_BINARIES", {})
    with pytest.raises(RuntimeError, match=r"nats-server 2\.15\.1 is not in"):
        natsserver.binary_for("2.15.1")


def test_a_cached_binary_of_another_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oldest, newest = natsserver.SUPPORTED_VERSIONS[0], natsserver.SUPPORTED_VERSIONS[-1]
    real = Path(natsserver.binary_for(oldest))
    (tmp_path / newest).mkdir()
    os.symlink(real, tmp_path / newest / "nats-server")
    monkeypatch.setenv("JELMORE_SERVER_CACHE", str(tmp_path))
    monkeypatch.setattr(natsserver, "_CHECKED_BINARIES", {})
    with pytest.raises(
        RuntimeError, match=f"reports 'nats-server: v{oldest}', not nats-server {newest}"
    ):
        natsserver.binary_for(newest)
