"""Helpers for the JetStream API client tests: silent ports, TLS files, a Jelmore-like layout."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import nats

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.live.jsapi import JetStreamAPI

SECOND = 1_000_000_000
MANAGED = {"jelmore.managed-by": "jelmore-infra"}


async def connect(url: str, **kw: Any) -> JetStreamAPI:
    return await JetStreamAPI.connect(ConnectionSettings(url=url, **kw))


async def create_on_young_cluster(
    api: JetStreamAPI, config: dict[str, Any], within: float = 120.0
) -> dict[str, Any]:
    """Create a stream on a cluster that may still be settling; its info once it has a leader.

    On a loaded 2-core machine a young cluster was seen to take more than 15 s to place a
    replicated stream, so a create that times out is not an error here: the stream is looked up
    and waited for (and created again if it never arrived) until ``within`` seconds have passed.
    """
    import asyncio
    import time

    from jelmore_infra.errors import ConnectionFailed

    name = str(config["name"])
    deadline = time.monotonic() + within
    while True:
        try:
            info = await api.stream_info(name)
            if info is None:
                info = await api.create_stream(config)
            if (info.get("cluster") or {}).get("leader"):
                return info
        except ConnectionFailed:
            pass  # timed out while the cluster was busy: look again
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {name} had no leader within {within}s")
        await asyncio.sleep(0.2)


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """A TCP port that accepts connections (kernel backlog) but never says a word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"nats://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1/localhost (needs ``openssl``)."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.pem"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca"),
        *("-keyout", str(ca_key), "-out", str(ca_crt)),
    )
    run(
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"),
        *("-keyout", str(key), "-out", str(csr)),
    )
    run(
        *("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key)),
        *("-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt)),
    )
    return ca_crt, crt, key


async def create_jelmore_layout(api: JetStreamAPI) -> None:
    """Two streams and four durable pull consumers, like the Jelmore topology."""
    for name, subjects in (("EVENTS", ["events.>"]), ("DEAD_LETTERS", ["dlq.>"])):
        await api.create_stream(
            {
                "name": name,
                "subjects": subjects,
                "storage": "file",
                "max_age": 7 * 24 * 3600 * SECOND,
                "duplicate_window": 120 * SECOND,
                "metadata": dict(MANAGED),
            }
        )
    groups = {
        "billing": ("EVENTS", "events.orders.>"),
        "email": ("EVENTS", "events.users.>"),
        "audit": ("EVENTS", "events.>"),
        "dlq-router": ("DEAD_LETTERS", "dlq.>"),
    }
    for name, (stream, subject) in groups.items():
        await api.create_consumer(
            stream,
            {
                "durable_name": name,
                "ack_policy": "explicit",
                "ack_wait": 30 * SECOND,
                "max_deliver": 3,
                "filter_subject": subject,
                "max_ack_pending": 1000,
                "metadata": {**MANAGED, "jelmore.retry-delays": "2s,4s"},
            },
        )


async def plan_against(url: str, topology: Any, targets: tuple[str, ...] = ()) -> Any:
    """The plan of ``topology`` against the server at ``url``, as ``plan`` builds it."""
    from datetime import UTC, datetime

    from jelmore_infra.diff import build_plan
    from jelmore_infra.live.read import read_live

    api = await connect(url)
    try:
        live = await read_live(api)
        return build_plan(topology, live, targets=targets, now=datetime.now(UTC))
    finally:
        await api.close()


async def apply_and_check(url: str, plan: Any) -> None:
    """Apply ``plan`` to the server at ``url``; every step must succeed and converge."""
    from jelmore_infra.apply import apply_plan

    api = await connect(url)
    try:
        result = await apply_plan(api, plan)
        assert result.ok, (
            [(s.change.address, s.status, s.error) for s in result.steps],
            result.convergence_errors,
        )
    finally:
        await api.close()


def publish_requests(servers: str | Sequence[str], subject: str, count: int = 1) -> None:
    """Publish ``count`` messages ``m0``, ``m1``, … to ``subject`` as requests (a stream's
    acknowledgement or a KV put's answer awaited for each). ``servers``: URLs, or one string of
    comma-separated URLs."""

    async def go() -> None:
        urls = servers.split(",") if isinstance(servers, str) else list(servers)
        nc = await nats.connect(urls)
        try:
            for i in range(count):
                await nc.request(subject, f"m{i}".encode(), timeout=10)
        finally:
            await nc.close()

    asyncio.run(go())
