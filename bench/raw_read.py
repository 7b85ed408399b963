"""Baseline for `plan`: the minimal raw nats-py live read, run as its own process.

Connects, pages through ``$JS.API.STREAM.LIST`` and, for every stream as soon as its page arrives,
pages through ``$JS.API.CONSUMER.LIST.<stream>`` (at most 32 requests in flight), decodes every
config with ``json.loads`` and prints the counts. Usage: ``raw_read.py NATS_URL``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import nats


async def read(url: str) -> tuple[int, int]:
    nc = await nats.connect(url, max_reconnect_attempts=0)
    gate = asyncio.Semaphore(32)

    async def pages(subject: str, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = json.dumps({"offset": offset}).encode() if offset else b""
            msg = await nc.request(subject, body, timeout=10)
            data = json.loads(msg.data)
            items = data.get(key) or []
            out.extend(items)
            offset += len(items)
            if not items or offset >= int(data.get("total") or 0):
                return out

    async def consumers(name: str) -> list[dict[str, Any]]:
        async with gate:
            return await pages(f"$JS.API.CONSUMER.LIST.{name}", "consumers")

    tasks = []
    streams = 0
    offset = 0
    while True:
        body = json.dumps({"offset": offset}).encode() if offset else b""
        msg = await nc.request("$JS.API.STREAM.LIST", body, timeout=10)
        data = json.loads(msg.data)
        items = data.get("streams") or []
        for info in items:
            tasks.append(asyncio.create_task(consumers(info["config"]["name"])))
        streams += len(items)
        offset += len(items)
        if not items or offset >= int(data.get("total") or 0):
            break
    found = await asyncio.gather(*tasks)
    await nc.close()
    return streams, sum(len(c) for c in found)


def main() -> None:
    streams, consumers = asyncio.run(read(sys.argv[1]))
    print(f"{streams} streams, {consumers} consumers")


if __name__ == "__main__":
    main()
