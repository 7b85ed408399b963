"""The Jelmore runtime shim: publish, consume, replay and monitor session events on JetStream.

The public API (the seed document's names)::

    from jelmore_infra.runtime import publish_event, subscribe_to_events, replay_events
    from jelmore_infra.runtime import get_stream_info, get_health_status, get_performance_metrics

One shared connection per process, opened on first use and reconnecting on its own; settings come
from ``NATS_URL``, ``NATS_SUBJECT_PREFIX``, ``NATS_CLIENT_ID`` or ``configure(...)``. Stream names,
consumer groups, retry schedules and dead-letter targets are read from the server (as provisioned
by ``jelmore-infra apply``), never from constants. ``close()`` closes the connection.
"""

from __future__ import annotations

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.runtime import bus as _bus
from jelmore_infra.runtime.discovery import TopologyMissing
from jelmore_infra.runtime.envelope import EVENT_TYPES, EventError
from jelmore_infra.runtime.health import (
    get_health_status,
    get_performance_metrics,
    get_stream_info,
)
from jelmore_infra.runtime.publish import (
    Outcome,
    Publisher,
    PublishResult,
    publish_event,
    publish_events,
)
from jelmore_infra.runtime.replay import replay_events
from jelmore_infra.runtime.retry import PermanentError
from jelmore_infra.runtime.router import DeadLetterRouter
from jelmore_infra.runtime.settings import RuntimeSettings, from_env
from jelmore_infra.runtime.subscribe import (
    HandlerTimeout,
    Subscription,
    SubscriptionError,
    subscribe_to_events,
)


def configure(
    url: str | None = None,
    prefix: str | None = None,
    client_id: str | None = None,
    *,
    connection: ConnectionSettings | None = None,
    connect_timeout: float | None = None,
) -> RuntimeSettings:
    """Set where the shared connection goes (explicit values win over ``NATS_*`` variables).

    ``connection`` carries authentication/TLS (as built by the CLI); ``connect_timeout`` is how
    long the first connection may take before ``ConnectionFailed`` (default 10 s). Call before the
    first use, or after ``await close()`` to switch servers.
    """
    settings = from_env(
        url=url,
        prefix=prefix,
        client_id=client_id,
        connection=connection,
        connect_timeout=connect_timeout,
    )
    _bus.configure(settings)
    return settings


def current_settings() -> RuntimeSettings:
    """The settings the shared connection uses."""
    return _bus.get_bus().settings


async def close() -> None:
    """Stop this process's subscriptions (gracefully) and the shared dead-letter router, then close
    the shared connection (it reopens on next use)."""
    from jelmore_infra.runtime.router import release_all_routers
    from jelmore_infra.runtime.subscribe import stop_all

    await stop_all()
    await release_all_routers()
    bus = _bus.current_bus()
    if bus is not None:
        await bus.close()


__all__ = [
    "EVENT_TYPES",
    "DeadLetterRouter",
    "EventError",
    "HandlerTimeout",
    "Outcome",
    "PermanentError",
    "PublishResult",
    "Publisher",
    "RuntimeSettings",
    "Subscription",
    "SubscriptionError",
    "TopologyMissing",
    "close",
    "configure",
    "current_settings",
    "get_health_status",
    "get_performance_metrics",
    "get_stream_info",
    "publish_event",
    "publish_events",
    "replay_events",
    "subscribe_to_events",
]
