"""The live read against real servers: raw configs and states of the Jelmore-like layout on every
supported version, stream filtering, the apply-lock stream, paging and concurrency, and resources a
cluster cannot reach landing in ``unavailable``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import JelmoreError, JetStreamAPIError
from jelmore_infra.live.jsapi import JetStreamAPI, ListResult
from jelmore_infra.live.read import (
    CONSUMER_STATE_KEYS,
    MISSING_REASON,
    read_live,
    read_live_sync,
)
from jelmore_infra.model import (
    LOCK_STREAM,
    MANAGED_BY_KEY,
    consumer_address,
    parse_version,
    stream_address,
)
from tests.support.jsapi_helpers import (
    SECOND,
    connect,
    create_jelmore_layout,
    create_on_young_cluster,
)
from tests.support.natsserver import SUPPORTED_VERSIONS, NatsCluster, NatsServer, binary_for

LAYOUT_CONSUMERS = {
    ("EVENTS", "billing"),
    ("EVENTS", "email"),
    ("EVENTS", "audit"),
    ("DEAD_LETTERS", "dlq-router"),
}


def without_dynamic_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """INFO replies add ``_nats.ver``/``_nats.level`` (2.11+); LIST replies do not carry them."""
    if "metadata" not in config:
        return config
    meta = {k: v for k, v in config["metadata"].items() if k not in ("_nats.ver", "_nats.level")}
    return {**config, "metadata": meta}


@pytest.fixture(scope="module", params=SUPPORTED_VERSIONS)
def layout_server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as server:

        async def setup() -> None:
            async with await connect(server.url) as api:
                await create_jelmore_layout(api)

        asyncio.run(setup())
        yield server


async def test_read_live_returns_the_layout_with_the_configs_the_server_sent(
    layout_server: NatsServer,
) -> None:
    async with await connect(layout_server.url) as api:
        live = await read_live(api)
        assert live.server == api.identity
        assert set(live.streams) == {"EVENTS", "DEAD_LETTERS"}
        assert set(live.consumers) == LAYOUT_CONSUMERS
        assert live.unavailable == {}
        for name, stream in live.streams.items():
            info = await api.stream_info(name)
            assert info is not None
            assert stream.config == without_dynamic_metadata(info["config"])
            assert stream.config["metadata"][MANAGED_BY_KEY] == "jelmore-infra"
            assert stream.state["messages"] == 0
            assert stream.state["created"] == info["created"]
            assert {"bytes", "first_seq", "last_seq", "consumer_count"} <= set(stream.state)
        for (stream_name, name), consumer in live.consumers.items():
            info = await api.consumer_info(stream_name, name)
            assert info is not None
            assert consumer.config == without_dynamic_metadata(info["config"])
            assert consumer.config["durable_name"] == name
            assert consumer.config["metadata"]["jelmore.retry-delays"] == "2s,4s"
            assert set(consumer.state) == set(CONSUMER_STATE_KEYS)
            assert consumer.state["num_pending"] == 0
            assert consumer.state["created"] == info["created"]
        server_keys = {
            key
            for config in (
                *(s.config for s in live.streams.values()),
                *(c.config for c in live.consumers.values()),
            )
            for key in config.get("metadata", {})
            if key.startswith("_nats.")
        }
        if api.version >= (2, 11, 0):
            assert "_nats.req.level" in server_keys  # kept raw: normalising is not the read's job
        else:
            assert server_keys == set()


async def test_read_live_counts_messages_and_pending_in_the_states() -> None:
    with NatsServer() as server:
        async with await connect(server.url) as api:
            await create_jelmore_layout(api)
            for i in range(3):
                await api.nc.request(f"events.orders.{i}", b"{}", timeout=5)
            live = await read_live(api)
        assert live.streams["EVENTS"].state["messages"] == 3
        assert live.streams["EVENTS"].state["consumer_count"] == 3
        assert live.consumers[("EVENTS", "billing")].state["num_pending"] == 3
        assert live.consumers[("EVENTS", "email")].state["num_pending"] == 0


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as server:
        yield server


async def test_read_live_limits_streams_and_consumers_to_the_named_streams(
    server: NatsServer,
) -> None:
    async with await connect(server.url) as api:
        await create_jelmore_layout(api)
        try:
            live = await read_live(api, streams=["DEAD_LETTERS", "NOT_THERE"])
            assert set(live.streams) == {"DEAD_LETTERS"}
            assert set(live.consumers) == {("DEAD_LETTERS", "dlq-router")}
            assert live.unavailable == {}
        finally:
            await api.delete_stream("EVENTS")
            await api.delete_stream("DEAD_LETTERS")


async def test_read_live_never_shows_the_apply_lock_stream(server: NatsServer) -> None:
    async with await connect(server.url) as api:
        bucket = LOCK_STREAM.removeprefix("KV_")
        await api.create_stream(
            {"name": LOCK_STREAM, "subjects": [f"$KV.{bucket}.>"], "max_msgs_per_subject": 1}
        )
        await api.create_consumer(LOCK_STREAM, {"durable_name": "watch", "ack_policy": "none"})
        await api.create_stream({"name": "VISIBLE", "subjects": ["visible.>"]})
        try:
            live = await read_live(api)
            assert set(live.streams) == {"VISIBLE"}
            assert live.consumers == {}
            assert live.unavailable == {}
            assert await read_live(api, streams=[LOCK_STREAM]) == type(live)(server=api.identity)
        finally:
            await api.delete_stream(LOCK_STREAM)
            await api.delete_stream("VISIBLE")


async def test_read_live_pages_streams_and_reads_their_consumers_concurrently(
    server: NatsServer,
) -> None:
    async with await connect(server.url) as api:
        names = [f"MANY_{i:03d}" for i in range(300)]
        gate = asyncio.Semaphore(32)

        async def make(i: int, name: str) -> None:
            async with gate:
                await api.create_stream(
                    {"name": name, "subjects": [f"many.{i}.>"], "storage": "memory"}
                )
                for c in ("a", "b"):
                    await api.create_consumer(name, {"durable_name": c, "ack_policy": "none"})

        async def drop(name: str) -> None:
            async with gate:
                await api.delete_stream(name)

        await asyncio.gather(*(make(i, n) for i, n in enumerate(names)))
        try:
            wide = await read_live(api, concurrency=64)
            narrow = await read_live(api, concurrency=1)
            assert sorted(wide.streams) == names
            expected = {(n, c) for n in names for c in ("a", "b")}
            assert set(wide.consumers) == expected
            assert set(narrow.consumers) == expected
            assert wide.streams["MANY_299"].config == narrow.streams["MANY_299"].config
        finally:
            await asyncio.gather(*(drop(n) for n in names))


async def test_read_live_reads_more_than_256_consumers_of_one_stream(server: NatsServer) -> None:
    async with await connect(server.url) as api:
        await api.create_stream({"name": "WIDE", "subjects": ["wide.>"], "storage": "memory"})
        gate = asyncio.Semaphore(32)

        async def make(i: int) -> None:
            async with gate:
                await api.create_consumer("WIDE", {"durable_name": f"c{i}", "ack_policy": "none"})

        await asyncio.gather(*(make(i) for i in range(280)))
        try:
            live = await read_live(api, streams=["WIDE"])
            assert {name for _, name in live.consumers} == {f"c{i}" for i in range(280)}
        finally:
            await api.delete_stream("WIDE")


class _DeletesBeforeListingConsumers(JetStreamAPI):
    """Deletes stream DOOMED between the stream listing and its consumer listing."""

    async def list_consumers(self, stream: str) -> ListResult:
        if stream == "DOOMED":
            await self.delete_stream(stream)
        return await super().list_consumers(stream)


async def test_a_stream_deleted_during_the_read_is_left_out(server: NatsServer) -> None:
    async with await _DeletesBeforeListingConsumers.connect(
        ConnectionSettings(url=server.url)
    ) as api:
        await api.create_stream({"name": "DOOMED", "subjects": ["doomed"]})
        await api.create_stream({"name": "STAYS", "subjects": ["stays"]})
        await api.create_consumer("STAYS", {"durable_name": "c", "ack_policy": "none"})
        try:
            live = await read_live(api)
            assert set(live.streams) == {"STAYS"}
            assert set(live.consumers) == {("STAYS", "c")}
            assert live.unavailable == {}
        finally:
            await api.delete_stream("STAYS")


def test_read_live_sync_connects_reads_and_closes(server: NatsServer) -> None:
    async def setup() -> None:
        async with await connect(server.url) as api:
            await api.create_stream({"name": "SYNC", "subjects": ["sync.>"]})

    asyncio.run(setup())
    live = read_live_sync(ConnectionSettings(url=server.url), streams=["SYNC"])
    assert set(live.streams) == {"SYNC"}
    assert live.server.url == server.url


@pytest.mark.parametrize("how", ["stopped", "killed"])
async def test_resources_on_a_dead_cluster_node_are_unavailable_not_absent(how: str) -> None:
    with NatsCluster() as cluster:
        meta_leader = _meta_leader(cluster.nodes[0])
        follower = next(n for n in cluster.nodes if n.server_name != meta_leader)
        # A generous timeout: on a busy machine a young cluster can take seconds to place streams.
        api = await connect(follower.url, timeout=15)
        try:
            # R1 streams; prefer one away from the meta leader, so the API keeps answering
            # at once after its node dies.
            leaders: dict[str, str] = {}
            for i in range(3):
                info = await create_on_young_cluster(
                    api, {"name": f"LONELY{i}", "subjects": [f"lonely{i}"]}
                )
                leaders[f"LONELY{i}"] = info["cluster"]["leader"]
            victim = next((s for s, node in leaders.items() if node != meta_leader), "LONELY0")
            dead = leaders[victim]
            await api.create_consumer(victim, {"durable_name": "c", "ack_policy": "explicit"})
            # An R3 stream that survives, with an R1 consumer on the node that will die.
            await create_on_young_cluster(
                api, {"name": "SHARED", "subjects": ["shared"], "num_replicas": 3}
            )
            on_dead: str | None = None
            for i in range(12):
                config = {"durable_name": f"w{i}", "ack_policy": "explicit", "num_replicas": 1}
                created = await api.create_consumer("SHARED", config)
                if created["cluster"].get("leader") == dead:
                    on_dead = f"w{i}"
                    break
            # Keep the R3 stream's leader off the dying node: no election in the way.
            for _ in range(10):
                shared = await api.stream_info("SHARED")
                assert shared is not None
                if shared["cluster"].get("leader") not in (None, dead):
                    break
                with contextlib.suppress(JetStreamAPIError):
                    await api.request("STREAM.LEADER.STEPDOWN.SHARED")
                await asyncio.sleep(0.5)
        finally:
            await api.close()
        node = next(n for n in cluster.nodes if n.server_name == dead)
        if how == "stopped":
            node.stop()  # peers learn at once that it is gone: listed bare and as missing
        else:
            node.kill()  # peers wait 4 s for its answer, then list it as missing
        survivor = next(n for n in cluster.nodes if n.server_name != dead)
        _meta_leader(survivor, not_=dead)
        async with await connect(survivor.url) as api:
            await _wait_for_stream_leader(api, "SHARED", not_=dead)
            live = await read_live(api)
        assert victim not in live.streams
        assert live.unavailable[stream_address(victim)] == MISSING_REASON
        assert consumer_address(victim, "c") not in live.unavailable
        r1_streams = set(leaders)
        listed = set(live.streams) | {a.removeprefix("stream.") for a in live.unavailable}
        assert r1_streams <= listed
        assert "SHARED" in live.streams
        assert all(name for _, name in live.consumers)
        assert on_dead is not None, "no R1 consumer was placed on the dying node"
        assert ("SHARED", on_dead) not in live.consumers
        assert live.unavailable[consumer_address("SHARED", on_dead)] == MISSING_REASON


async def _wait_for_stream_leader(api: JetStreamAPI, stream: str, *, not_: str) -> None:
    for _ in range(150):
        with contextlib.suppress(JelmoreError):
            info = await api.request(f"STREAM.INFO.{stream}", timeout=1)
            if info.get("cluster", {}).get("leader") not in (None, not_):
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"stream {stream} elected no new leader")


def _meta_leader(node: NatsServer, *, not_: str | None = None) -> str:
    """The meta leader as ``node`` sees it, waiting (up to 15 s) for one other than ``not_``."""
    url = f"http://127.0.0.1:{node.http_port}/jsz"
    for _ in range(150):
        with urllib.request.urlopen(url, timeout=5) as resp:
            leader = (json.load(resp).get("meta_cluster") or {}).get("leader")
        if leader and leader != not_:
            return str(leader)
        time.sleep(0.1)
    raise AssertionError("the cluster elected no meta leader")


@pytest.mark.parametrize(
    "version", [v for v in SUPPORTED_VERSIONS if parse_version(v) >= (2, 14, 0)]
)
async def test_read_live_leaves_out_durable_sourcing_consumers(version: str) -> None:
    with NatsServer(binary=binary_for(version)) as server:
        async with await connect(server.url) as api:
            await api.create_stream({"name": "ORIGIN", "subjects": ["origin.>"]})
            await api.create_consumer(
                "ORIGIN",
                {
                    "durable_name": "feed",
                    "deliver_subject": "feed.copy",
                    "ack_policy": "flow_control",
                    "flow_control": True,
                    "idle_heartbeat": SECOND,
                    "sourcing": True,
                },
            )
            await api.create_consumer("ORIGIN", {"durable_name": "mine", "ack_policy": "explicit"})
            await api.create_stream(
                {
                    "name": "COPY",
                    "sources": [
                        {
                            "name": "ORIGIN",
                            "consumer": {"name": "feed", "deliver_subject": "feed.copy"},
                        }
                    ],
                }
            )
            listed = await api.list_consumers("ORIGIN")
            assert {c["name"] for c in listed.items} == {"feed", "mine"}
            live = await read_live(api)
        assert set(live.consumers) == {("ORIGIN", "mine")}
        assert live.unavailable == {}
