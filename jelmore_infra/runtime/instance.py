"""``Runtime``: one connection to one server, with its own metrics, dead-letter router and
subscriptions, and the event API as methods. Several can run side by side in one process::

    async with Runtime(url="nats://a:4222") as a, Runtime(url="nats://b:4222") as b:
        await a.publish_event("session.created", sid, {...})
        sub = await b.subscribe_to_events(None, handler, consumer_group="session_handlers")

The seed's functions (``jelmore_infra.runtime.publish_event`` …) are a thin facade over the
*default* runtime (:func:`default_runtime`): created from the environment on first use, replaced
by :func:`configure`, closed by :func:`close`. It counts into ``metrics.METRICS``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import jelmore_infra.runtime.publish as publish
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.runtime.core import RuntimeCore
from jelmore_infra.runtime.crypto import KeyRing
from jelmore_infra.runtime.dlqtools import list_dead_letters, replay_dead_letters, show_dead_letter
from jelmore_infra.runtime.health import (
    get_health_status,
    get_performance_metrics,
    get_stream_info,
)
from jelmore_infra.runtime.metrics import METRICS, Metrics
from jelmore_infra.runtime.replay import replay_events
from jelmore_infra.runtime.router import DeadLetterRouter
from jelmore_infra.runtime.settings import RuntimeSettings, from_env
from jelmore_infra.runtime.subscribe import subscribe_to_events

P = ParamSpec("P")
T = TypeVar("T")


class Runtime(RuntimeCore):
    """One runtime: settings, connection, metrics, shared dead-letter router, subscriptions.

    Explicit arguments win over the ``NATS_*`` environment variables (see
    ``runtime.settings.from_env``); ``settings`` replaces them all. ``sensitive_event_types``
    (names, or a predicate on the event type) says which events are encrypted with
    ``encryption_keys`` (default: ``JELMORE_ENCRYPTION_KEYS``); see ``runtime.crypto``. The
    connection opens on first use; ``close()`` (or leaving ``async with``) stops the
    subscriptions and closes it.
    """

    def __init__(
        self,
        url: str | None = None,
        prefix: str | None = None,
        client_id: str | None = None,
        *,
        connection: ConnectionSettings | None = None,
        connect_timeout: float | None = None,
        encryption_keys: KeyRing | str | None = None,
        sensitive_event_types: Iterable[str] | Callable[[str], bool] | None = None,
        settings: RuntimeSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if settings is None:
            settings = from_env(
                url=url,
                prefix=prefix,
                client_id=client_id,
                connection=connection,
                connect_timeout=connect_timeout,
                encryption_keys=encryption_keys,
                sensitive_event_types=sensitive_event_types,
            )
        super().__init__(settings, metrics=metrics)

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection now (``ConnectionFailed`` when the server cannot be reached)."""
        await self.bus.connect()

    async def publish_event(
        self,
        event_type: str,
        session_id: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        message_id: str | None = None,
        timeout: float = publish.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        attempts: int | None = None,
        retry_for: float | None = None,
    ) -> bool:
        """Publish one event and wait until the stream has stored it.

        Returns ``True`` when stored (or already stored: same message id within the duplicate
        window), ``False`` when it is not: refused by the server, or *not confirmed* (no
        acknowledgement before the retry deadline, ``retry_for`` seconds, 30 by default, enough
        to ride out a stream leader's election, or after ``attempts`` sends of ``timeout``
        seconds each); the log line says which. A not-confirmed event may be stored: publish it
        again only with the same ``message_id``.
        Raises ``EventError`` for an unknown event type, an unserialisable payload (including
        strings UTF-8 cannot encode), a bad header, a message larger than the server's
        ``max_payload`` or a sensitive event without an encryption key, and ``ConnectionFailed``
        when the first connection to the server cannot be made (later disconnections are
        retried).
        """
        event = await publish.new_event(
            self.bus, event_type, session_id, payload, headers, message_id
        )
        await publish.prepare(self.bus, event)  # raises EventError for an event over max_payload
        result = await publish.send(
            self.bus, event, timeout=timeout, attempts=attempts, retry_for=retry_for
        )
        return result.ok

    async def publish_events(
        self,
        events: Iterable[Mapping[str, Any]],
        *,
        window: int = 256,
        timeout: float = publish.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        attempts: int | None = None,
        retry_for: float | None = None,
    ) -> list[publish.PublishResult]:
        """Publish many events through a ``Publisher``; each event is a mapping with
        ``event_type``, ``session_id``, ``payload`` and optionally ``headers`` and
        ``message_id``. Returns one result per event, in completion order."""
        pub = publish.Publisher(
            window=window, timeout=timeout, attempts=attempts, retry_for=retry_for, bus=self.bus
        )
        async with pub:
            for item in events:
                await pub.publish(
                    item["event_type"],
                    item["session_id"],
                    item.get("payload"),
                    item.get("headers"),
                    message_id=item.get("message_id"),
                )
        return pub.results

    # The rest of the event API: each is the module function of the same name, with this
    # runtime as its first argument.
    subscribe_to_events = subscribe_to_events
    replay_events = replay_events
    get_stream_info = get_stream_info
    get_health_status = get_health_status
    get_performance_metrics = get_performance_metrics
    list_dead_letters = list_dead_letters
    show_dead_letter = show_dead_letter
    replay_dead_letters = replay_dead_letters

    def publisher(self, **options: Any) -> publish.Publisher:
        """A ``Publisher`` pipeline on this runtime (``options``: its fields, e.g. ``window``)."""
        return publish.Publisher(bus=self.bus, **options)

    def dead_letter_router(self, **options: Any) -> DeadLetterRouter:
        """A ``DeadLetterRouter`` of its own on this runtime (``events dlq route``)."""
        return DeadLetterRouter(self.bus, **options)


# -- the default runtime behind the seed's functions ----------------------------------------------

_default: Runtime | None = None
#: Default runtimes replaced by ``configure`` before they were closed (``close()`` closes them).
_retired: list[Runtime] = []


def default_runtime() -> Runtime:
    """The runtime the module-level functions use, created from the environment on first use."""
    global _default
    if _default is None:
        _default = Runtime(metrics=METRICS)
    return _default


def configure(
    url: str | None = None,
    prefix: str | None = None,
    client_id: str | None = None,
    *,
    connection: ConnectionSettings | None = None,
    connect_timeout: float | None = None,
    encryption_keys: KeyRing | str | None = None,
    sensitive_event_types: Iterable[str] | Callable[[str], bool] | None = None,
) -> RuntimeSettings:
    """Set where the default runtime's connection goes (explicit values win over ``NATS_*``
    variables).

    ``connection`` carries authentication/TLS (as built by the CLI); ``connect_timeout`` is how
    long the first connection may take before ``ConnectionFailed`` (default 10 s). Call before the
    first use, or after ``await close()`` to switch servers. ``sensitive_event_types`` and
    ``encryption_keys`` (default: ``JELMORE_ENCRYPTION_KEYS``): see ``runtime.crypto``.
    """
    global _default
    fresh = Runtime(
        url,
        prefix,
        client_id,
        connection=connection,
        connect_timeout=connect_timeout,
        encryption_keys=encryption_keys,
        sensitive_event_types=sensitive_event_types,
        metrics=METRICS,
    )
    if _default is not None:
        _retired.append(_default)
    _default = fresh
    return fresh.settings


def current_settings() -> RuntimeSettings:
    """The settings of the default runtime."""
    return default_runtime().settings


async def close() -> None:
    """Stop the default runtime's subscriptions (gracefully) and its dead-letter router, then close
    its connection (it reopens on next use)."""
    while _retired:
        await _retired.pop().close()
    if _default is not None:
        await _default.close()


def facade(
    method: Callable[Concatenate[Runtime, P], Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """``method`` of the default runtime, as a module-level function."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return await method(default_runtime(), *args, **kwargs)

    return call


class Publisher(publish.Publisher):
    """A ``Publisher`` on the default runtime (unless given a ``bus``)."""

    def __post_init__(self) -> None:
        if self.bus is None:
            self.bus = default_runtime().bus
        super().__post_init__()
