"""Out-of-band changes for tests: raw ``$JS.API`` requests and publishes with nats-py.

Tests use these to change the server behind jelmore-infra's back (drift, stale plans, data).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats


async def _request(url: str, subject: str, body: Any = None) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        payload = b"" if body is None else json.dumps(body).encode()
        msg = await nc.request(subject, payload, timeout=10)
        return dict(json.loads(msg.data))
    finally:
        await nc.close()


def js(url: str, api: str, body: Any = None) -> dict[str, Any]:
    """One ``$JS.API.<api>`` request; returns the reply (errors included, not raised)."""
    return asyncio.run(_request(url, f"$JS.API.{api}", body))


def stream_config(url: str, name: str) -> dict[str, Any] | None:
    reply = js(url, f"STREAM.INFO.{name}")
    return None if "error" in reply else dict(reply["config"])


def stream_state(url: str, name: str) -> dict[str, Any]:
    return dict(js(url, f"STREAM.INFO.{name}")["state"])


def consumer_config(url: str, stream: str, name: str) -> dict[str, Any] | None:
    reply = js(url, f"CONSUMER.INFO.{stream}.{name}")
    return None if "error" in reply else dict(reply["config"])


def stream_names(url: str) -> list[str]:
    return sorted(js(url, "STREAM.NAMES").get("streams") or [])


def update_stream(url: str, name: str, **changes: Any) -> dict[str, Any]:
    config = stream_config(url, name)
    assert config is not None, f"stream {name} missing"
    config.update(changes)
    reply = js(url, f"STREAM.UPDATE.{name}", config)
    assert "error" not in reply, reply
    return reply


def create_stream(url: str, config: dict[str, Any]) -> dict[str, Any]:
    reply = js(url, f"STREAM.CREATE.{config['name']}", config)
    assert "error" not in reply, reply
    return reply


def publish(url: str, subject: str, count: int, size: int = 100) -> None:
    async def go() -> None:
        nc = await nats.connect(url)
        jsctx = nc.jetstream()
        try:
            for i in range(count):
                await jsctx.publish(
                    subject, (b"x" * size), headers={"Nats-Msg-Id": f"{subject}-{i}"}
                )
        finally:
            await nc.close()

    asyncio.run(go())
