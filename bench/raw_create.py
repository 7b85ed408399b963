"""Baseline for `apply` (and the fast way to populate benchmark servers): raw concurrent
``$JS.API.STREAM.CREATE`` then ``$JS.API.CONSUMER.CREATE`` requests, run as its own process.

Usage: ``raw_create.py NATS_URL CONFIGS.json``. The JSON file holds ``{"streams": [config…],
"consumers": [[stream, config]…], "pedantic": bool}`` — exactly the configs `apply` would send
(bench/run.py takes them from `plan --json` against an empty server). At most 256 requests are
in flight; every reply is checked; exit 1 on the first error.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import nats

WINDOW = 256


async def create(url: str, spec: dict[str, Any]) -> int:
    nc = await nats.connect(url, max_reconnect_attempts=0)
    gate = asyncio.Semaphore(WINDOW)
    pedantic = bool(spec.get("pedantic"))

    async def send(subject: str, body: dict[str, Any]) -> None:
        async with gate:
            msg = await nc.request(subject, json.dumps(body).encode(), timeout=30)
        answer = json.loads(msg.data)
        if "error" in answer:
            raise RuntimeError(f"{subject}: {answer['error']}")

    streams = []
    for config in spec["streams"]:
        body = dict(config, pedantic=True) if pedantic else config
        streams.append(send(f"$JS.API.STREAM.CREATE.{config['name']}", body))
    await asyncio.gather(*streams)
    consumers = []
    for stream, config in spec["consumers"]:
        name = config["durable_name"]
        body = {"stream_name": stream, "config": config, "action": "create"}
        if pedantic:
            body["pedantic"] = True
        consumers.append(send(f"$JS.API.CONSUMER.CREATE.{stream}.{name}", body))
    await asyncio.gather(*consumers)
    await nc.close()
    return len(streams) + len(consumers)


def main() -> None:
    with open(sys.argv[2], encoding="utf-8") as fh:
        spec = json.load(fh)
    count = asyncio.run(create(sys.argv[1], spec))
    print(f"created {count} resources")


if __name__ == "__main__":
    main()
