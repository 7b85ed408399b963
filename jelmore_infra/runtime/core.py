"""What one runtime owns: its settings, its metrics, its connection (``Bus``), the dead-letter
router its consumer-group subscriptions share, and those subscriptions.

Nothing here is per process: two ``RuntimeCore`` objects (in practice two ``Runtime`` objects, see
``jelmore_infra.runtime.instance``) against two servers share nothing. The functions of the
runtime's modules that act for a runtime (``publish_event``, ``subscribe_to_events``,
``replay_events``, the health and DLQ functions) take the ``RuntimeCore`` as their first argument;
``Runtime`` makes them its methods.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from jelmore_infra.runtime.bus import Bus
from jelmore_infra.runtime.metrics import Metrics
from jelmore_infra.runtime.router import DeadLetterRouter
from jelmore_infra.runtime.settings import RuntimeSettings


class Stoppable(Protocol):
    """A running subscription, as far as its runtime needs to know."""

    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop it runs in (``None`` before it started)."""
        ...

    async def stop(self) -> None: ...


class RuntimeCore:
    """The state of one runtime: connection, metrics, shared router and subscriptions."""

    def __init__(self, settings: RuntimeSettings, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.bus = Bus(settings, self.metrics)
        self._router: DeadLetterRouter | None = None
        self._router_users = 0
        self._subscriptions: set[Stoppable] = set()

    def __repr__(self) -> str:
        where, client = self.settings.safe_url(), self.settings.client_id
        return f"{type(self).__name__}({where}, client_id={client!r})"

    # -- subscriptions ---------------------------------------------------------------------------

    def track(self, sub: Stoppable) -> None:
        """A subscription started (``close()`` stops it)."""
        self._subscriptions.add(sub)

    def untrack(self, sub: Stoppable) -> None:
        self._subscriptions.discard(sub)

    @property
    def subscriptions(self) -> list[Stoppable]:
        """The subscriptions running now."""
        return list(self._subscriptions)

    # -- the shared dead-letter router -----------------------------------------------------------

    @property
    def router(self) -> DeadLetterRouter | None:
        """The dead-letter router this runtime's consumer groups share (``None`` when none runs)."""
        return self._router

    async def acquire_router(self) -> DeadLetterRouter | None:
        """Start (once per runtime) the router that consumer-group subscriptions share; ``None``
        when the topology has no safety net."""
        router = self._router
        if router is not None and router._loop is not asyncio.get_running_loop():
            self._router, self._router_users = None, 0  # left over from an ended event loop
        if self._router is None:
            router = DeadLetterRouter(self.bus)
            if not await router.start():
                return None
            self._router = router
        self._router_users += 1
        return self._router

    async def release_router(self) -> None:
        """One user less; the router stops with its last user."""
        self._router_users = max(0, self._router_users - 1)
        if self._router_users == 0 and self._router is not None:
            router, self._router = self._router, None
            await router.stop()

    # -- closing ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the subscriptions (gracefully) and the shared router, then close the connection
        (it reopens on next use)."""
        loop = asyncio.get_running_loop()
        for sub in list(self._subscriptions):
            if sub.loop() is loop:
                await sub.stop()
            self._subscriptions.discard(sub)
        router, self._router, self._router_users = self._router, None, 0
        if router is not None and router._loop is loop:
            await router.stop()  # one of an ended event loop cannot be stopped from this one
        await self.bus.close()
