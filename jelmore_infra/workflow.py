"""The use cases behind the commands, composed from the pure stages and the one API client.

``make_plan`` is load → live read → diff; ``run_apply`` is lock → (re)plan or stale check → gates
→ execute → convergence. The CLI modules only parse options, call these, and render.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from jelmore_infra.model import Topology
from jelmore_infra.plan import Plan

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine from synchronous CLI code."""
    return asyncio.run(_wrap(coro))


async def _wrap(coro: Awaitable[T]) -> T:
    return await coro


def target_streams(targets: Sequence[str]) -> set[str] | None:
    """Stream names a set of ``--target`` addresses needs read (None: read everything)."""
    if not targets:
        return None
    names: set[str] = set()
    for t in targets:
        parts = t.split(".")
        if len(parts) >= 2 and parts[0] in ("stream", "consumer"):
            names.add(parts[1])
    return names


async def plan_with(api: JetStreamAPI, topology: Topology, targets: Sequence[str] = ()) -> Plan:
    """Read the live server through ``api`` and diff it against ``topology``."""
    from jelmore_infra.diff import build_plan
    from jelmore_infra.live.read import read_live

    live = await read_live(api, streams=target_streams(targets))
    return build_plan(topology, live, targets=tuple(targets), now=datetime.now(UTC))


async def with_api(settings: object, body: Callable[[JetStreamAPI], Awaitable[T]]) -> T:
    """Connect once, run ``body`` with the API client, always close."""
    from jelmore_infra.connection import ConnectionSettings
    from jelmore_infra.live.jsapi import JetStreamAPI

    assert isinstance(settings, ConnectionSettings)
    api = await JetStreamAPI.connect(settings)
    try:
        return await body(api)
    finally:
        await api.close()
