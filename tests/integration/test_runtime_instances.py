"""Two ``Runtime`` objects in one process, against two servers (the oldest and the newest supported
version): each keeps its own connection, metrics, dead-letter router and subscriptions, and the
default runtime behind the seed's functions is untouched by either."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from jelmore_infra import runtime
from jelmore_infra.runtime import Runtime, metrics
from tests.integration.conftest import RUNTIME_VERSIONS
from tests.support.natsserver import NatsServer, binary_for
from tests.support.runtime_topology import provision, stream_messages, wait_until


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[NatsServer, NatsServer]]:
    oldest, newest = RUNTIME_VERSIONS
    with (
        NatsServer(binary=binary_for(oldest)) as first,
        NatsServer(binary=binary_for(newest)) as second,
    ):
        provision(first.url)
        provision(second.url)
        yield first, second


async def stored_on(url: str, session: str) -> list[Any]:
    """The payloads of ``session``'s events stored on the server at ``url``."""
    found = []
    for message in await stream_messages(url, "JELMORE"):
        if message["headers"].get("Session-Id") == session:
            found.append(json.loads(message["data"])["payload"])
    return found


async def test_two_runtimes_against_two_servers_keep_connections_metrics_and_groups_apart(
    two_servers: tuple[NatsServer, NatsServer],
) -> None:
    first, second = two_servers
    metrics.reset()
    session = uuid.uuid4().hex
    seen: dict[str, list[Any]] = {"a": [], "b": []}

    def collect(name: str) -> Any:
        async def handler(event: dict[str, Any], msg: Any) -> None:
            if event["session_id"] == session:
                seen[name].append(event["payload"])

        return handler

    async with (
        Runtime(url=first.url, client_id="rt-a") as a,
        Runtime(url=second.url, client_id="rt-b") as b,
    ):
        sub_a = await a.subscribe_to_events(None, collect("a"), consumer_group="session_handlers")
        sub_b = await b.subscribe_to_events(None, collect("b"), consumer_group="session_handlers")
        assert await a.publish_event("session.created", session, {"on": "a"})
        for n in range(3):
            assert await b.publish_event("session.output", session, {"on": "b", "n": n})
        await wait_until(lambda: len(seen["a"]) == 1 and len(seen["b"]) == 3)

        # Each server stored only what its runtime published, and each group saw only its own.
        assert await stored_on(first.url, session) == [{"on": "a"}]
        assert [p["n"] for p in await stored_on(second.url, session)] == [0, 1, 2]
        assert seen["a"] == [{"on": "a"}]
        assert [p["on"] for p in seen["b"]] == ["b", "b", "b"]

        # Separate counters, separate routers, each on its own connection.
        assert (a.metrics.published, b.metrics.published) == (1, 3)
        assert (a.metrics.handled, b.metrics.handled) == (1, 3)
        assert a.router is not None and b.router is not None
        assert a.router is not b.router
        assert (a.router.bus, b.router.bus) == (a.bus, b.bus)
        assert a.subscriptions == [sub_a] and b.subscriptions == [sub_b]
        health_a, health_b = await a.get_health_status(), await b.get_health_status()
        assert (health_a["server"], health_b["server"]) == (first.url, second.url)
        perf_b = await b.get_performance_metrics()
        assert perf_b["process"]["publish"]["count"] == 3

        # Closing one leaves the other running.
        await a.close()
        assert not sub_a.running and a.router is None and not a.bus.is_connected
        assert sub_b.running and b.bus.is_connected
        assert await b.publish_event("session.output", session, {"on": "b", "n": 3})
        await wait_until(lambda: len(seen["b"]) == 4)
    assert not sub_b.running and not b.bus.is_connected

    # The default runtime (the seed's functions) counted nothing and opened no connection.
    assert metrics.METRICS.published == 0 and metrics.METRICS.handled == 0
    assert not runtime.default_runtime().bus.is_connected
