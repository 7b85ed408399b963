"""The use cases behind the commands, composed from the pure stages and the one API client.

``make_plan`` is load → live read → diff; ``run_apply`` is lock → (re)plan or stale check → gates
→ execute → convergence. The CLI modules only parse options, call these, and render.

:func:`run` turns SIGINT and SIGTERM into one cancellation of the command's coroutine, so its
``finally`` blocks (closing the connection, releasing the apply lock) always run to the end; more
signals while that clean-up runs are ignored, and the command then ends as interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from jelmore_infra.model import Topology
from jelmore_infra.plan import Plan

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI

T = TypeVar("T")


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine from synchronous CLI code; KeyboardInterrupt after SIGINT or SIGTERM.

    The first signal cancels the coroutine and its clean-up runs to the end (further signals are
    ignored meanwhile); only then, outside the event loop, is the interruption raised.
    """
    received: list[int] = []
    try:
        boxed = asyncio.run(_wrap(coro, received))
    finally:
        if received:
            # The command ends because of a signal: more of them must not cut its last words.
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
    if received or boxed is None:
        raise KeyboardInterrupt
    return boxed[0]


async def _wrap(coro: Awaitable[T], received: list[int]) -> tuple[T] | None:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            main.cancel()

    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        return (await coro,)
    except asyncio.CancelledError:
        if not received:
            raise
        return None  # run() raises KeyboardInterrupt


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
