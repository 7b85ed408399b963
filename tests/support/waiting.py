"""Waiting on real servers by condition, never by fixed sleeps, and unique names for test resources."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any


async def wait_for(
    check: Callable[[], Any],
    what: str = "the condition",
    within: float = 30.0,
    interval: float = 0.02,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, and return that.

    Fails with ``timed out waiting for WHAT`` after ``within`` seconds: the deadline is generous,
    the poll is short, so a fast machine does not wait and a loaded one does not fail.
    """
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} ({within}s)")
        await asyncio.sleep(interval)


def wait_until(
    check: Callable[[], Any],
    what: str = "the condition",
    within: float = 30.0,
    interval: float = 0.1,
) -> Any:
    """:func:`wait_for` for synchronous code (a check that runs its own event loop)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} ({within}s)")
        time.sleep(interval)


def unique(prefix: str, sep: str = "") -> str:
    """``prefix`` plus a random suffix: a fresh stream, consumer or subject name per test."""
    return f"{prefix}{sep}{uuid.uuid4().hex[:8]}"


async def kv_key_history(kv: Any, key: str) -> list[Any]:
    """A KV key's history as nats-py's ``KeyValue.history()`` shows it, for a key that exists.

    nats-py's history watcher was seen to report "no keys found" now and then on a loaded machine
    for a key that exists (its end-of-history marker came first), so that answer is asked again
    until the deadline.
    """
    from nats.js.errors import NoKeysError

    async def history() -> list[Any] | None:
        try:
            return list(await kv.history(key))
        except NoKeysError:
            return None

    entries: list[Any] = await wait_for(history, f"the history of {key}")
    return entries
