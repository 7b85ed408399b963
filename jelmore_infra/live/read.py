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
from dataclasses import replace
from typing import Any

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ERR_STREAM_NOT_FOUND, JetStreamAPIError
from jelmore_infra.live.jsapi import JetStreamAPI, ListResult
from jelmore_infra.model import (
    CATALOGUE_STREAM,
    UNPLANNED_STREAMS,
    LiveConsumer,
    LiveEvent,
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
    catalogue = False
    async for page in api.iter_stream_pages(into=listing):
        for info in page:
            config = info["config"]
            name = config["name"]
            if name == CATALOGUE_STREAM:
                catalogue = wanted is None or name in wanted
                continue
            if name in UNPLANNED_STREAMS or (wanted is not None and name not in wanted):
                continue
            state = dict(info.get("state") or {})
            state["created"] = info.get("created")
            live_streams[name] = LiveStream(name, config, state)
            tasks.append(asyncio.create_task(consumers_of(name)))

    for name in listing.missing:
        if name not in UNPLANNED_STREAMS and (wanted is None or name in wanted):
            unavailable[stream_address(name)] = MISSING_REASON
    for name, reason in listing.offline.items():
        if name not in UNPLANNED_STREAMS and (wanted is None or name in wanted):
            unavailable[stream_address(name)] = f"offline: {reason}"

    live_consumers: dict[tuple[str, str], LiveConsumer] = {}
    events_task = asyncio.create_task(read_catalogue(api)) if catalogue else None
    everything: list[asyncio.Task[Any]] = [*tasks, *([events_task] if events_task else [])]
    try:
        results = await asyncio.gather(*tasks)
        events = await events_task if events_task is not None else {}
    except BaseException:
        for task in everything:
            task.cancel()
        await asyncio.gather(*everything, return_exceptions=True)
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
        events=events,
    )


async def read_catalogue(api: JetStreamAPI) -> dict[str, LiveEvent]:
    """The event types in the catalogue bucket (removed ones marked ``deleted``), each with how
    many messages the stream capturing its subject holds on that subject."""
    import base64

    from jelmore_infra.catalogue.entry import (
        KEY_PREFIX,
        KV_DELETED,
        KV_OPERATION,
        decode_entry,
        type_of_subject,
    )
    from jelmore_infra.transport import parse_headers

    messages = await api.last_per_subject(CATALOGUE_STREAM, KEY_PREFIX + ">")
    events: dict[str, LiveEvent] = {}
    for subject, message in messages.items():
        event_type = type_of_subject(subject)
        hdrs = message.get("hdrs")
        headers = parse_headers(base64.b64decode(hdrs)) if hdrs else {}
        entry = decode_entry(base64.b64decode(message.get("data") or ""))
        if event_type is None or entry is None or entry["type"] != event_type:
            continue  # not written by jelmore-infra: ignored
        deleted = headers.get(KV_OPERATION) in KV_DELETED
        events[event_type] = LiveEvent(event_type, entry, int(entry["version"]), None, deleted)

    async def count(event: LiveEvent) -> LiveEvent:
        stream, subject = str(event.config.get("stream") or ""), str(event.config["subject"])
        try:
            counts = await api.subject_counts(stream, subject) if stream else {}
        except JetStreamAPIError as exc:
            if exc.err_code != ERR_STREAM_NOT_FOUND:
                raise
            counts = {}
        return replace(event, messages=counts.get(subject, 0))

    counted = await asyncio.gather(*(count(e) for e in events.values() if not e.deleted))
    events.update((e.type, e) for e in counted)
    return events


def read_live_sync(settings: ConnectionSettings, **kw: Any) -> LiveState:
    """Connect, read the live state, close: for callers that are not async."""

    async def run() -> LiveState:
        async with await JetStreamAPI.connect(settings) as api:
            return await read_live(api, **kw)

    return asyncio.run(run())
