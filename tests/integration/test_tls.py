"""Requested TLS is TLS or an error: never a plain-text connection that carries the password.

A ``tls://`` URL, a TLS option (``--tls-ca``…), ``NATS_CA``/``NATS_CERT``/``NATS_KEY`` or a ``nats``
context with TLS settings ask for TLS. Against a server that does not offer it, the CLI and the
runtime refuse with one line *before* CONNECT is sent: a raw listener that greets like a NATS
server without TLS records every byte the client sends, and a real plain server's protocol trace
shows no CONNECT. TLS-first (``--tls-first``) reaches servers with ``tls { handshake_first: true }``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from jelmore_infra import runtime
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ConnectionFailed
from jelmore_infra.live.jsapi import JetStreamAPI
from tests.support.cli import run_cli
from tests.support.jsapi_helpers import make_tls_files
from tests.support.natsserver import NatsServer, binary_for

USER = "bob"
PASSWORD = "pl4in-text-never"
AUTH = f'authorization {{ user: {USER}, password: "{PASSWORD}" }}'
REFUSED = "the server does not offer TLS but TLS was requested"


class PlainGreeter:
    """A TCP listener that greets like a NATS server without TLS and records what clients send."""

    def __init__(self, port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.received: list[bytes] = []
        self.accepted = 0
        self._open = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                self.accepted += 1
                self._open += 1
            worker = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _handle(self, conn: socket.socket) -> None:
        info = {
            "server_id": "NPLAINGREETER",
            "server_name": "plain",
            "version": "2.10.26",
            "proto": 1,
            "host": "127.0.0.1",
            "port": self.port,
            "headers": True,
            "auth_required": True,
            "max_payload": 1048576,
        }
        data = b""
        with conn:
            conn.sendall(b"INFO " + json.dumps(info).encode() + b"\r\n")
            conn.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
        with self._lock:
            self.received.append(data)
            self._open -= 1

    def wait_all_closed(self, at_least: int = 1, timeout: float = 30.0) -> None:
        """Until ``at_least`` clients came and every one of them hung up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.accepted >= at_least and self._open == 0:
                    return
            time.sleep(0.02)
        raise AssertionError(f"clients did not hang up: {self.accepted} came, {self._open} open")

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def greeter() -> Iterator[PlainGreeter]:
    listener = PlainGreeter()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def tls_block(tls_files: tuple[Path, Path, Path], extra: str = "") -> str:
    _, cert, key = tls_files
    more = f", {extra}" if extra else ""
    return f'tls {{ cert_file: "{cert}", key_file: "{key}"{more} }}'


@pytest.fixture
async def runtime_closed() -> AsyncIterator[None]:
    """Close the runtime's shared connection after the test."""
    yield
    await runtime.close()


def connections(server: NatsServer) -> list[dict[str, Any]]:
    """The server's client connections as its monitoring endpoint reports them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/connz", timeout=5) as resp:
        found: list[dict[str, Any]] = json.load(resp).get("connections") or []
        return found


def the_error(proc: Any) -> str:
    """The one line a failed command prints (and nothing else)."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    return str(lines[0])


# -- refusals: nothing is sent ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("tls-url", "tls:// URL"),
        ("tls-ca", "--tls-ca"),
        ("NATS_CA", "NATS_CA"),
        ("context", "nats context 'secure' (ca)"),
    ],
)
def test_plan_refuses_a_server_without_tls_before_sending_the_password(
    greeter: PlainGreeter, tls_files: tuple[Path, Path, Path], tmp_path: Path, how: str, reason: str
) -> None:
    ca = str(tls_files[0])
    url = greeter.url
    args = ["plan", "--user", USER, "--password", PASSWORD]
    env: dict[str, str] = {}
    if how == "tls-url":
        url = f"tls://127.0.0.1:{greeter.port}"
        args += ["-s", url]
    elif how == "tls-ca":
        args += ["-s", url, "--tls-ca", ca]
    elif how == "NATS_CA":
        args += ["-s", url]
        env["NATS_CA"] = ca
    else:
        contexts = tmp_path / "nats" / "context"
        contexts.mkdir(parents=True)
        (contexts / "secure.json").write_text(json.dumps({"url": url, "ca": ca}))
        args += ["--context", "secure"]
        env["XDG_CONFIG_HOME"] = str(tmp_path)
    proc = run_cli(*args, env=env)
    assert the_error(proc) == (
        f"Error: {url}: {REFUSED} ({reason}); refusing to connect in plain text"
    )
    greeter.wait_all_closed()
    assert greeter.received == [b""] * greeter.accepted


def test_a_plain_server_never_sees_a_connect_from_a_tls_url(tmp_path: Path) -> None:
    config = f"{AUTH}\ntrace: true"
    with NatsServer(config=config, server_name="plain-traced") as server:
        assert server.store_dir is not None
        log = server.store_dir / "plain-traced.log"
        tls_url = f"tls://127.0.0.1:{server.port}"
        proc = run_cli("plan", "-s", tls_url, "--user", USER, "--password", PASSWORD)
        assert the_error(proc) == (
            f"Error: {tls_url}: {REFUSED} (tls:// URL); refusing to connect in plain text"
        )
        assert "CONNECT" not in log.read_text()
        # The same server traces the CONNECT of a plain-text client, so its absence above counts.
        ok = run_cli("plan", "-s", server.url, "--user", USER, "--password", PASSWORD)
        assert ok.returncode == 0, ok.stderr
        deadline = time.monotonic() + 30
        while "CONNECT" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "CONNECT" in log.read_text()


@pytest.mark.parametrize("how", ["tls-url", "connection", "NATS_CA"])
async def test_the_runtime_refuses_a_server_without_tls_before_sending_the_password(
    greeter: PlainGreeter,
    tls_files: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    runtime_closed: None,
    how: str,
) -> None:
    url = greeter.url
    if how == "tls-url":
        url = f"tls://127.0.0.1:{greeter.port}"
        conn = ConnectionSettings(url=url, user=USER, password=PASSWORD)
        runtime.configure(connection=conn, connect_timeout=20)
        reason = "tls:// URL"
    elif how == "connection":
        conn = ConnectionSettings(url=url, user=USER, password=PASSWORD, tls_ca=str(tls_files[0]))
        runtime.configure(connection=conn, connect_timeout=20)
        reason = "TLS CA file"
    else:
        monkeypatch.setenv("NATS_CA", str(tls_files[0]))
        runtime.configure(url=url, connect_timeout=20)
        reason = "NATS_CA"
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as exc:
        await runtime.publish_event("session.created", "s-1", {"agent": "a"})
    assert str(exc.value) == f"{url}: {REFUSED} ({reason}); refusing to connect in plain text"
    # Refused on the spot, not after the 20 s the runtime would keep trying an unreachable server.
    assert time.monotonic() - started < 15
    await asyncio.to_thread(greeter.wait_all_closed)
    assert greeter.received == [b""] * greeter.accepted


async def test_the_runtime_refuses_to_reconnect_to_a_server_without_tls(
    tls_files: tuple[Path, Path, Path], runtime_closed: None
) -> None:
    with NatsServer(config=f"{tls_block(tls_files)}\n{AUTH}") as server:
        conn = ConnectionSettings(
            url=f"tls://127.0.0.1:{server.port}",
            tls_ca=str(tls_files[0]),
            user=USER,
            password=PASSWORD,
        )
        runtime.configure(connection=conn)
        nc = await runtime.default_runtime().bus.connect()
        assert nc.is_connected
        server.stop()
        # Something without TLS now answers on the server's address: every reconnect attempt
        # reads its greeting and hangs up without a word.
        impostor = PlainGreeter(port=server.port)
        try:
            await asyncio.to_thread(impostor.wait_all_closed, 2)
            assert impostor.received == [b""] * impostor.accepted
            assert not nc.is_connected
        finally:
            await runtime.close()
            impostor.close()


# -- TLS that works ------------------------------------------------------------------------------


def test_plan_reaches_a_tls_server_through_a_tls_url_with_the_ca(
    tls_files: tuple[Path, Path, Path],
) -> None:
    with NatsServer(config=f"{tls_block(tls_files)}\n{AUTH}") as server:
        url = f"tls://127.0.0.1:{server.port}"
        args = ("-s", url, "--tls-ca", str(tls_files[0]), "--user", USER, "--password", PASSWORD)
        proc = run_cli("plan", *args)
        assert proc.returncode == 0, proc.stderr
        assert "Plan:" in proc.stdout
        assert PASSWORD not in proc.stdout + proc.stderr


async def test_a_server_that_allows_tls_is_reached_over_tls_when_tls_is_asked_for(
    tls_files: tuple[Path, Path, Path],
) -> None:
    config = f"{tls_block(tls_files)}\nallow_non_tls: true"
    with NatsServer(config=config) as server:
        settings = ConnectionSettings(url=server.url, tls_ca=str(tls_files[0]))
        async with await JetStreamAPI.connect(settings):
            (ours,) = [c for c in connections(server) if c.get("name") == "jelmore-infra"]
            assert ours.get("tls_version")


@pytest.fixture(scope="module", params=["2.10.26", "2.15.1"])
def handshake_first_server(
    request: pytest.FixtureRequest, tls_files: tuple[Path, Path, Path]
) -> Iterator[NatsServer]:
    # A short TLS timeout: a client that waits for the greeting is dropped after half a second.
    config = tls_block(tls_files, "handshake_first: true, timeout: 0.5")
    with NatsServer(binary=binary_for(request.param), config=config) as server:
        yield server


def test_plan_reaches_a_handshake_first_server_with_tls_first(
    handshake_first_server: NatsServer, tls_files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    ca = str(tls_files[0])
    proc = run_cli("plan", "-s", handshake_first_server.url, "--tls-ca", ca, "--tls-first")
    assert proc.returncode == 0, proc.stderr
    assert "Plan:" in proc.stdout
    contexts = tmp_path / "nats" / "context"
    contexts.mkdir(parents=True)
    context = {"url": handshake_first_server.url, "ca": ca, "tls_first": True}
    (contexts / "first.json").write_text(json.dumps(context))
    via_context = run_cli("plan", "--context", "first", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert via_context.returncode == 0, via_context.stderr


def test_a_handshake_first_server_without_tls_first_is_a_clear_error(
    handshake_first_server: NatsServer, tls_files: tuple[Path, Path, Path]
) -> None:
    url = handshake_first_server.url
    for extra in ((), ("--tls-ca", str(tls_files[0]))):
        proc = run_cli("plan", "-s", url, *extra)
        assert the_error(proc) == (
            f"Error: {url} closed the connection without a greeting (INFO): if the server wants "
            "the TLS handshake first (tls handshake_first), use --tls-first"
        )


async def test_the_runtime_reaches_a_handshake_first_server_with_tls_first(
    handshake_first_server: NatsServer, tls_files: tuple[Path, Path, Path], runtime_closed: None
) -> None:
    conn = ConnectionSettings(
        url=handshake_first_server.url, tls_ca=str(tls_files[0]), tls_first=True
    )
    runtime.configure(connection=conn, client_id="tls-first-runtime")
    nc = await runtime.default_runtime().bus.connect()
    assert nc.is_connected
    (ours,) = [
        c for c in connections(handshake_first_server) if c.get("name") == "tls-first-runtime"
    ]
    assert ours.get("tls_version")
