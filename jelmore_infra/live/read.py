"""The live read: every stream and consumer on the server, in one pass, as a ``LiveState``.

One paged ``STREAM.LIST`` (configs and states of every stream), then one paged ``CONSUMER.LIST``
per stream, fetched concurrently (bounded) and started as soon as each stream page arrives.
Configs are kept exactly as the server returned them; normalisation happens elsewhere.
Streams or consumers the server reports as missing or offline go to ``unavailable`` with the
reason, never into ``streams`` or ``consumers``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ERR_STREAM_NOT_FOUND, JetStreamAPIError
from jelmore_infra.live.jsapi import JetStreamAPI, ListResult
from jelmore_infra.model import (
    LOCK_STREAM,
    LiveConsumer,
    LiveState,
    LiveStream,
    consumer_address,
    stream_address,
)

JSONDict = dict[str, Any]

#: Consumer info fields copied into ``LiveConsumer.state``.
CONSUMER_STATE_KEYS = (
    "num_pending",
    "num_ack_pending",
    "num_redelivered",
    "num_waiting",
    "delivered",
    "ack_floor",
    "created",
)

MISSING_REASON = "listed as missing by the server (its peers are offline or did not answer)"


async def read_live(
    api: JetStreamAPI,
    *,
    streams: Collection[str] | None = None,
    concurrency: int = 32,
) -> LiveState:
    """Read every stream and consumer (or only those of ``streams``) from the server."""
    wanted = None if streams is None else frozenset(streams)
    gate = asyncio.Semaphore(max(1, concurrency))
    live_streams: dict[str, LiveStream] = {}
    unavailable: dict[str, str] = {}
    tasks: list[asyncio.Task[tuple[str, ListResult[JSONDict] | None]]] = []

    async def consumers_of(name: str) -> tuple[str, ListResult[JSONDict] | None]:
        async with gate:
            try:
                return name, await api.list_consumers(name)
            except JetStreamAPIError as exc:
                if exc.err_code == ERR_STREAM_NOT_FOUND:
                    return name, None  # deleted since the stream listing: it is gone
                raise

    listing: ListResult[JSONDict] = ListResult([])
    async for page in api.iter_stream_pages(into=listing):
        for info in page:
            config = info["config"]
            name = config["name"]
            if name == LOCK_STREAM or (wanted is not None and name not in wanted):
                continue
            state = dict(info.get("state") or {})
            state["created"] = info.get("created")
            live_streams[name] = LiveStream(name, config, state)
            tasks.append(asyncio.create_task(consumers_of(name)))

    for name in listing.missing:
        if name != LOCK_STREAM and (wanted is None or name in wanted):
            unavailable[stream_address(name)] = MISSING_REASON
    for name, reason in listing.offline.items():
        if name != LOCK_STREAM and (wanted is None or name in wanted):
            unavailable[stream_address(name)] = f"offline: {reason}"

    live_consumers: dict[tuple[str, str], LiveConsumer] = {}
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for stream, result in results:
        if result is None:
            del live_streams[stream]
            continue
        for info in result.items:
            config = info["config"]
            if config.get("sourcing"):
                continue  # 2.14+ internal consumer of a sourcing stream; not ours to manage
            name = info["name"]
            state = {key: info.get(key) for key in CONSUMER_STATE_KEYS}
            live_consumers[(stream, name)] = LiveConsumer(stream, name, config, state)
        for name in result.missing:
            unavailable[consumer_address(stream, name)] = MISSING_REASON
        for name, reason in result.offline.items():
            unavailable[consumer_address(stream, name)] = f"offline: {reason}"

    return LiveState(
        server=api.identity,
        streams=live_streams,
        consumers=live_consumers,
        unavailable=unavailable,
    )


def read_live_sync(settings: ConnectionSettings, **kw: Any) -> LiveState:
    """Connect, read the live state, close: for callers that are not async."""

    async def run() -> LiveState:
        async with await JetStreamAPI.connect(settings) as api:
            return await read_live(api, **kw)

    return asyncio.run(run())
