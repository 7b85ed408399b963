"""The one runtime module that talks to nats-py: the connection and thin JetStream calls.

Everything else in ``jelmore_infra.runtime`` goes through a ``Bus``: management requests are raw
``$JS.API`` JSON (wire form, honouring a JetStream domain), publishes are requests whose PubAck is
parsed here, and pull consumers are bound (never created) through ``pull_subscribe_bind``.
Connecting, authentication, TLS, reply decoding, list paging and the error types are the shared
:mod:`jelmore_infra.transport`, the same the provisioner uses.

Each ``Runtime`` owns one ``Bus``: the connection opens lazily on first use, reconnects forever
(``max_reconnect_attempts=-1``) and logs one line per connection problem instead of nats-py's
tracebacks. nats exceptions never leave this module; callers see ``BusError`` subclasses
(``BusTimeout``, ``BusUnavailable``) or ``JetStreamAPIError``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from jelmore_infra import jsontext, transport
from jelmore_infra.errors import (
    ERR_CONSUMER_NOT_FOUND,
    ERR_MESSAGE_NOT_FOUND,
    ERR_STREAM_NOT_FOUND,
    JelmoreError,
    JetStreamAPIError,
    NoResponders,
    TransportError,
    TransportTimeout,
)
from jelmore_infra.runtime.catalogue import Catalogue
from jelmore_infra.runtime.envelope import parse_timestamp
from jelmore_infra.runtime.metrics import Metrics
from jelmore_infra.runtime.settings import RuntimeSettings

log = logging.getLogger("jelmore_infra.runtime")

#: A request could not be completed (the server did not answer in time or is unavailable).
BusError = TransportError
#: No answer within the timeout (the request may still have been carried out).
BusTimeout = TransportTimeout
#: Nobody answered (no responders: JetStream or the stream is not available right now).
BusUnavailable = NoResponders


class BusDenied(TransportError):
    """The server refused a request or a publish: the connection's user may not publish to its
    subject (nothing was sent on)."""


def denied_line(subject: str) -> str:
    return f"the server refused {subject}: no permission to publish to it"


#: How nats-py reports the server's refusal of a publish (in lower case).
_REFUSED_PUBLISH = re.compile(r'permissions violation for publish to "([^"]*)"')


@dataclass(frozen=True, slots=True)
class PubAck:
    stream: str
    seq: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message read directly from a stream by sequence."""

    stream: str
    subject: str
    seq: int
    data: bytes
    headers: dict[str, str]
    time: datetime | None


class PullHandle:
    """A bound pull subscription on an existing consumer."""

    def __init__(self, bus: Bus, stream: str, consumer: str, sub: Any) -> None:
        self.bus = bus
        self.stream = stream
        self.consumer = consumer
        self._sub = sub

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:  # noqa: ASYNC109
        """Up to ``batch`` messages; an empty list when none arrived within ``timeout``."""
        try:
            msgs: list[Msg] = await self._sub.fetch(batch=batch, timeout=timeout)
            return msgs
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        except nats.js.errors.NotFoundError as exc:
            raise BusUnavailable(
                f"consumer {self.consumer} on stream {self.stream} is gone: {exc}"
            ) from None
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"fetch from {self.stream}/{self.consumer} failed: {exc!r}") from None

    async def unsubscribe(self) -> None:
        try:
            await self._sub.unsubscribe()
        except (nats.errors.Error, OSError):
            pass


class AckInbox:
    """Pipelined JetStream publishes: one wildcard reply subscription, a future per publish, a
    timer per future (no ``wait_for`` task per request), and server errors delivered to the future
    (unlike nats-py's ``publish_async``, nats.py #985)."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self._pending: dict[str, tuple[asyncio.Future[PubAck], asyncio.TimerHandle, str]] = {}
        self._counter = 0
        self._sub: Any = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(f"{self.prefix}.*", cb=self._on_reply)

    async def publish(
        self, subject: str, data: bytes, headers: Mapping[str, str], wait: float
    ) -> asyncio.Future[PubAck]:
        loop = asyncio.get_running_loop()
        self._counter += 1
        token = str(self._counter)
        fut: asyncio.Future[PubAck] = loop.create_future()
        timer = loop.call_later(wait, self._expire, token)
        self._pending[token] = (fut, timer, subject)
        try:
            await transport.publish(
                self.nc, subject, data, reply=f"{self.prefix}.{token}", headers=headers
            )
        except TransportError:
            self._pending.pop(token, None)
            timer.cancel()
            raise
        return fut

    def _expire(self, token: str) -> None:
        entry = self._pending.pop(token, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(BusTimeout(f"no acknowledgement for {entry[2]}"))

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject.rsplit(".", 1)[-1]
        entry = self._pending.pop(token, None)
        if entry is None:
            return
        fut, timer, subject = entry
        timer.cancel()
        if fut.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            fut.set_exception(BusUnavailable(f"no stream answered for {subject}"))
            return
        try:
            fut.set_result(parse_pub_ack(subject, msg.data))
        except JelmoreError as exc:
            fut.set_exception(exc)

    def refuse(self, subject: str) -> None:
        """The server refused permission to publish to ``subject`` (in lower case, as nats-py
        reports it): its publishes waiting for an acknowledgement fail at once with
        ``BusDenied``, none of them was stored."""
        for token, (fut, timer, target) in list(self._pending.items()):
            if target.lower() == subject:
                del self._pending[token]
                timer.cancel()
                if not fut.done():
                    fut.set_exception(BusDenied(denied_line(target)))

    def fail_all(self, reason: str) -> None:
        for token in list(self._pending):
            fut, timer, subject = self._pending.pop(token)
            timer.cancel()
            if not fut.done():
                fut.set_exception(BusError(f"publish to {subject}: {reason}"))


def parse_pub_ack(subject: str, data: bytes) -> PubAck:
    """A PubAck (or a ``JetStreamAPIError`` for an error answer)."""
    answer = transport.decode_reply(subject, data, default="publish failed")
    if "seq" not in answer:
        raise BusError(f"publish to {subject}: unexpected answer {answer!r}")
    return PubAck(str(answer.get("stream", "")), int(answer["seq"]), bool(answer.get("duplicate")))


class _BusEvents(transport.ConnectionEvents):
    """The bus's reactions to nats-py's callbacks: one log line per problem, and the counters."""

    def __init__(self, bus: Bus) -> None:
        super().__init__()
        self.bus = bus
        self.last_text = ""
        #: requests waiting for their answer, by subject in lower case (nats-py reports the
        #: server's errors so), each told when the server refuses its subject
        self.refusals: dict[str, set[asyncio.Future[str]]] = {}

    def watch(self, subject: str) -> asyncio.Future[str]:
        """A future set when the server refuses permission to publish to ``subject``."""
        refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.refusals.setdefault(subject.lower(), set()).add(refused)
        return refused

    def unwatch(self, subject: str, refused: asyncio.Future[str]) -> None:
        waiting = self.refusals.get(subject.lower())
        if waiting is not None:
            waiting.discard(refused)
            if not waiting:
                del self.refusals[subject.lower()]

    async def on_error(self, exc: Exception) -> None:
        await super().on_error(exc)
        found = _REFUSED_PUBLISH.search(str(exc).lower())
        if found is not None:
            subject = found.group(1)
            for refused in self.refusals.get(subject, ()):
                if not refused.done():
                    refused.set_result(str(exc))
            if self.bus._inbox is not None:
                self.bus._inbox.refuse(subject)
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if text != self.last_text:
            self.last_text = text
            if self.bus._connected_once and not self.bus._closing:
                log.warning("nats connection problem (%s): %s", self.bus.settings.safe_url(), text)

    async def on_disconnect(self) -> None:
        if self.bus._closing:
            return
        self.bus.metrics.disconnects += 1
        log.warning("nats disconnected from %s; reconnecting", self.bus.settings.safe_url())

    async def on_reconnect(self) -> None:
        self.bus.metrics.reconnects += 1
        self.last_text = ""
        log.warning("nats reconnected to %s", self.bus.settings.safe_url())


class Bus:
    """A lazily opened, forever-reconnecting connection and the JetStream calls the runtime uses."""

    def __init__(self, settings: RuntimeSettings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        #: the counters of the runtime owning this bus
        self.metrics = metrics if metrics is not None else Metrics()
        #: duplicate windows by subject, with their expiry (see ``publish.duplicate_window``)
        self.windows: dict[str, tuple[float | None, float]] = {}
        #: the look-up of a subject's window under way, shared by everyone waiting for it
        self.window_lookups: dict[str, asyncio.Task[float | None]] = {}
        self._nc: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._connected_once = False
        self._closing = False
        self._inbox: AckInbox | None = None
        self._events: _BusEvents | None = None
        #: the event catalogue as this connection reads it (loaded on first use)
        self.catalogue = Catalogue(self)

    # -- connection -------------------------------------------------------------------------

    @property
    def api_prefix(self) -> str:
        return self.settings.connection.api_prefix()

    @property
    def is_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def max_payload(self) -> int | None:
        """The largest message (headers and body, bytes) the connected server accepts, from its
        INFO; ``None`` before the first connection."""
        return self._nc.max_payload if self._nc is not None else None

    async def connect(self) -> Client:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new event loop (e.g. a second asyncio.run): the old connection cannot be used.
            self._nc = None
            self._lock = asyncio.Lock()
            self._loop = loop
        assert self._lock is not None
        if self._nc is not None and not self._nc.is_closed:
            return self._nc
        async with self._lock:
            if self._nc is not None and not self._nc.is_closed:
                return self._nc
            self._nc = await self._open()
            return self._nc

    async def _open(self) -> Client:
        conn = self.settings.connection
        self._events = _BusEvents(self)
        nc = await transport.connect(
            conn,
            name=self.settings.client_id,
            events=self._events,
            reconnect=transport.Reconnect(attempts=-1, wait=self.settings.reconnect_wait),
            connect_timeout=max(1, int(min(conn.timeout, self.settings.connect_timeout))),
            limit=self.settings.connect_timeout,
        )
        self._connected_once = True
        return nc

    async def close(self) -> None:
        await self.catalogue.close()
        lookups, self.window_lookups = self.window_lookups, {}
        for lookup in lookups.values():
            if not lookup.done() and lookup.get_loop() is asyncio.get_running_loop():
                lookup.cancel()
        nc, self._nc = self._nc, None
        if self._inbox is not None:
            self._inbox.fail_all("connection closed")
            self._inbox = None
        if nc is None or nc.is_closed:
            return
        self._closing = True
        try:
            await transport.close_quietly(nc, drain=self._loop is asyncio.get_running_loop())
        finally:
            self._closing = False

    async def flush(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        nc = await self.connect()
        try:
            await nc.flush(timeout=max(1, int(timeout)))
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"flush failed: {exc!r}") from None

    # -- requests ---------------------------------------------------------------------------

    async def request(
        self,
        subject: str,
        data: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Msg:
        """A request; ``BusDenied`` at once when the server refuses permission for ``subject``
        (instead of waiting out the timeout for an answer that cannot come)."""
        nc = await self.connect()
        wait = timeout if timeout is not None else self.settings.connection.timeout
        events = self._events
        if events is None:
            return await transport.request(nc, subject, data, timeout=wait, headers=headers)
        refused = events.watch(subject)
        task = asyncio.ensure_future(
            transport.request(nc, subject, data, timeout=wait, headers=headers)
        )
        waiting: set[asyncio.Future[Any]] = {task, refused}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            events.unwatch(subject, refused)
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise BusDenied(denied_line(subject))

    async def api(
        self,
        suffix: str,
        body: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """A ``$JS.API.<suffix>`` request; an error answer raises ``JetStreamAPIError``."""
        subject = f"{self.api_prefix}.{suffix}"
        payload = jsontext.dumps(body) if body is not None else b""
        msg = await self.request(subject, payload, timeout=timeout)
        return transport.decode_reply(subject, msg.data)

    async def publish(
        self,
        subject: str,
        data: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> PubAck:
        """A JetStream publish, waiting for its PubAck; raises ``BusTimeout``/``BusUnavailable``
        (both retryable with the same ``Nats-Msg-Id``) or ``JetStreamAPIError``."""
        fut = await self.publish_start(subject, data, headers, timeout=timeout)
        return await fut

    async def publish_start(
        self,
        subject: str,
        data: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> asyncio.Future[PubAck]:
        """Send a JetStream publish; the returned future resolves to its PubAck or an error
        (after ``timeout`` seconds at the latest)."""
        nc = await self.connect()
        inbox = self._inbox
        if inbox is None or inbox.nc is not nc:
            inbox = AckInbox(nc)
            try:
                await inbox.start()
            except (nats.errors.Error, OSError) as exc:
                raise BusError(f"cannot subscribe for acknowledgements: {exc!r}") from None
            self._inbox = inbox
        return await inbox.publish(subject, data, headers, timeout)

    async def core_publish(self, subject: str, data: bytes, *, reply: str = "") -> None:
        nc = await self.connect()
        await transport.publish(nc, subject, data, reply=reply)

    # -- acknowledgements ---------------------------------------------------------------------

    async def term(self, msg: Msg, reason: str) -> None:
        """``+TERM <reason>``: stop redelivering; the reason goes into the server's advisory."""
        if not msg.reply:
            return
        text = reason.replace("\r", " ").replace("\n", " ")[:500]
        await self.core_publish(msg.reply, b"+TERM " + text.encode("utf-8"))
        msg._ackd = True

    # -- streams and consumers --------------------------------------------------------------

    async def stream_info(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.api(f"STREAM.INFO.{name}")
        except JetStreamAPIError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                return None
            raise

    async def stream_names(self, subject: str | None = None) -> list[str]:
        body: dict[str, Any] = {"subject": subject} if subject else {}
        listing = await transport.collect(self._lister("STREAM.NAMES"), body, "streams")
        return [str(name) for name in listing.items]

    async def consumer_info(self, stream: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.api(f"CONSUMER.INFO.{stream}.{name}")
        except JetStreamAPIError as exc:
            if exc.err_code in (ERR_CONSUMER_NOT_FOUND, ERR_STREAM_NOT_FOUND):
                return None
            raise

    async def consumer_infos(self, stream: str) -> list[dict[str, Any]]:
        listing = await transport.collect(self._lister(f"CONSUMER.LIST.{stream}"), {}, "consumers")
        return list(listing.items)

    def _lister(self, suffix: str) -> Callable[[dict[str, Any] | None], Awaitable[dict[str, Any]]]:
        async def send(body: dict[str, Any] | None) -> dict[str, Any]:
            return await self.api(suffix, body)

        return send

    async def create_consumer(self, stream: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Create a consumer (used only for the runtime's own ephemeral and replay consumers)."""
        name = config.get("name") or config.get("durable_name")
        suffix = f"CONSUMER.CREATE.{stream}.{name}" if name else f"CONSUMER.CREATE.{stream}"
        return await self.api(suffix, {"stream_name": stream, "config": dict(config)})

    async def delete_consumer(self, stream: str, name: str) -> bool:
        try:
            await self.api(f"CONSUMER.DELETE.{stream}.{name}")
            return True
        except JetStreamAPIError as exc:
            if exc.err_code in (ERR_CONSUMER_NOT_FOUND, ERR_STREAM_NOT_FOUND):
                return False
            raise

    async def get_message(
        self, stream: str, seq: int = 0, *, next_by: str | None = None, last_by: str | None = None
    ) -> StoredMessage | None:
        """The message ``seq`` of ``stream`` (with ``next_by``: the first at or after ``seq`` on
        a subject matching it; with ``last_by``: the last on that subject); ``None`` when there
        is none."""
        body: dict[str, Any] = {"last_by_subj": last_by} if last_by else {"seq": seq}
        if next_by and not last_by:
            body["next_by_subj"] = next_by
        try:
            answer = await self.api(f"STREAM.MSG.GET.{stream}", body)
        except JetStreamAPIError as exc:
            if exc.err_code in (ERR_MESSAGE_NOT_FOUND, ERR_STREAM_NOT_FOUND):
                return None
            raise
        raw = answer.get("message") or {}
        data = base64.b64decode(raw.get("data") or b"")
        hdrs = transport.parse_headers(base64.b64decode(raw["hdrs"])) if raw.get("hdrs") else {}
        when = parse_timestamp(raw["time"]) if raw.get("time") else None
        return StoredMessage(
            stream, str(raw.get("subject", "")), int(raw.get("seq", seq)), data, hdrs, when
        )

    async def delete_message(self, stream: str, seq: int) -> bool:
        try:
            await self.api(f"STREAM.MSG.DELETE.{stream}", {"seq": seq, "no_erase": True})
            return True
        except JetStreamAPIError as exc:
            if exc.err_code in (ERR_MESSAGE_NOT_FOUND, ERR_STREAM_NOT_FOUND):
                return False
            raise

    async def listen(
        self, subject: str, callback: Callable[[str, bytes, dict[str, str]], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        """A core subscription: ``callback(subject, data, headers)`` for each message; returns
        the function that ends it."""
        nc = await self.connect()

        async def on_message(msg: Msg) -> None:
            await callback(msg.subject, msg.data, dict(msg.headers or {}))

        try:
            sub = await nc.subscribe(subject, cb=on_message)
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"cannot subscribe to {subject}: {exc!r}") from None

        async def stop() -> None:
            try:
                await sub.unsubscribe()
            except (nats.errors.Error, OSError):
                pass

        return stop

    async def bind(self, stream: str, consumer: str) -> PullHandle:
        """Bind to an existing pull consumer (nothing is created or changed on the server)."""
        nc = await self.connect()
        js = nc.jetstream(domain=self.settings.connection.js_domain)
        try:
            sub = await js.pull_subscribe_bind(durable=consumer, stream=stream)
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"cannot bind to {stream}/{consumer}: {exc!r}") from None
        return PullHandle(self, stream, consumer, sub)
