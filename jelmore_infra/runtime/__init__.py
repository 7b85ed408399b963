"""The Jelmore runtime shim: publish, consume, replay and monitor session events on JetStream.

The public API (the seed document's names)::

    from jelmore_infra.runtime import publish_event, subscribe_to_events, replay_events
    from jelmore_infra.runtime import get_stream_info, get_health_status, get_performance_metrics

These functions act on the *default runtime* (``default_runtime()``): one connection, opened on
first use and reconnecting on its own; settings come from ``NATS_URL``, ``NATS_SUBJECT_PREFIX``,
``NATS_CLIENT_ID`` (and the ``nats`` CLI's ``NATS_CA``/``NATS_CERT``/``NATS_KEY``) or
``configure(...)``; ``close()`` closes it. A ``Runtime`` object has the same functions as methods
and owns its own connection, metrics, dead-letter router and subscriptions, so several can work
side by side (two servers in one process). Stream names, consumer groups, retry schedules and
dead-letter targets are read from the server (as provisioned by ``jelmore-infra apply``), never
from constants.
"""

from __future__ import annotations

from jelmore_infra.runtime import health as _health
from jelmore_infra.runtime import replay as _replay
from jelmore_infra.runtime import subscribe as _subscribe
from jelmore_infra.runtime.catalogue import CatalogueMissing
from jelmore_infra.runtime.discovery import TopologyMissing
from jelmore_infra.runtime.envelope import EventError
from jelmore_infra.runtime.instance import (
    Publisher,
    Runtime,
    close,
    configure,
    current_settings,
    default_runtime,
    facade,
)
from jelmore_infra.runtime.publish import Outcome, PublishResult
from jelmore_infra.runtime.retry import PermanentError
from jelmore_infra.runtime.router import DeadLetterRouter
from jelmore_infra.runtime.settings import RuntimeSettings
from jelmore_infra.runtime.subscribe import HandlerTimeout, Subscription, SubscriptionError

publish_event = facade(Runtime.publish_event)
publish_events = facade(Runtime.publish_events)
subscribe_to_events = facade(_subscribe.subscribe_to_events)
replay_events = facade(_replay.replay_events)
get_stream_info = facade(_health.get_stream_info)
get_health_status = facade(_health.get_health_status)
get_performance_metrics = facade(_health.get_performance_metrics)

__all__ = [
    "CatalogueMissing",
    "DeadLetterRouter",
    "EventError",
    "HandlerTimeout",
    "Outcome",
    "PermanentError",
    "PublishResult",
    "Publisher",
    "Runtime",
    "RuntimeSettings",
    "Subscription",
    "SubscriptionError",
    "TopologyMissing",
    "close",
    "configure",
    "current_settings",
    "default_runtime",
    "get_health_status",
    "get_performance_metrics",
    "get_stream_info",
    "publish_event",
    "publish_events",
    "replay_events",
    "subscribe_to_events",
]
