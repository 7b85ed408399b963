"""The provisioner's only client of the JetStream management API.

Everything goes through raw ``$JS.API.*`` JSON requests with plain dicts, never nats-py's
JetStream dataclasses (they drop fields and round durations). Replies are decoded straight from
bytes and returned as the server sent them.

Connecting, authentication, TLS, reply decoding and list paging are the shared
:mod:`jelmore_infra.transport`; this module adds what the provisioner needs on top: the server
identity, the management calls, and its error lines. Connection problems (nothing listening, bad
credentials, JetStream missing, timeouts) become :class:`~jelmore_infra.errors.ConnectionFailed`
with one line that never contains a secret; error envelopes become
:class:`~jelmore_infra.errors.JetStreamAPIError` carrying ``err_code``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jelmore_infra import jsontext, transport
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import (
    ERR_CONSUMER_ALREADY_EXISTS,
    ERR_CONSUMER_DOES_NOT_EXIST,
    ERR_CONSUMER_NOT_FOUND,
    ERR_JS_NOT_ENABLED,
    ERR_JS_NOT_ENABLED_FOR_ACCOUNT,
    ERR_MESSAGE_NOT_FOUND,
    ERR_PEDANTIC,
    ERR_STREAM_NAME_IN_USE,
    ERR_STREAM_NOT_FOUND,
    ConnectionFailed,
    JetStreamAPIError,
    NoResponders,
    NoStreamAnswers,
    TransportError,
    TransportTimeout,
)
from jelmore_infra.model import ServerIdentity, parse_version
from jelmore_infra.transport import ConnectionEvents, ListResult, entry_name

if TYPE_CHECKING:
    from nats.aio.client import Client

JSONDict = dict[str, Any]

__all__ = [
    "CLUSTER_LIST_WAIT",
    "ERR_CONSUMER_ALREADY_EXISTS",
    "ERR_CONSUMER_DOES_NOT_EXIST",
    "ERR_CONSUMER_NOT_FOUND",
    "ERR_JS_NOT_ENABLED",
    "ERR_JS_NOT_ENABLED_FOR_ACCOUNT",
    "ERR_PEDANTIC",
    "ERR_STREAM_NOT_FOUND",
    "PEDANTIC_SINCE",
    "JetStreamAPI",
    "ListResult",
    "entry_name",
]

#: How long a clustered server waits for peers before answering STREAM.LIST/CONSUMER.LIST.
CLUSTER_LIST_WAIT = 4.0

#: First server version that accepts ``"pedantic": true`` in create/update requests.
PEDANTIC_SINCE = (2, 11, 0)
#: How often a publish to a stream that has no leader yet is tried again (seconds).
NO_LEADER_RETRY = 0.1
#: Replicas of jelmore-infra's own streams on a cluster, and the errors of a cluster that
#: cannot place them ("insufficient resources", "no suitable peers for placement", and "replicas
#: > 1 not supported in non-clustered mode" from a leaf node, whose greeting names a cluster).
REPLICATED = 3
CANNOT_PLACE = frozenset({10005, 10023, 10074})
#: What a clustered server answers a consumer asking for more replicas than its stream has
#: servers yet: "consumer config replica count exceeds parent stream" (10126), "insufficient
#: resources" (10023), "no suitable peers for placement" (10005).
STREAM_STILL_SCALING = frozenset({10126, 10023, 10005})
#: How long a consumer change waits for its stream's scale-up to finish, and how often it asks.
STREAM_SCALE_WAIT = 60.0
STREAM_SCALE_POLL = 0.2

#: The provisioner's connection: one retry of a lost connection, then the command fails.
_RECONNECT = transport.Reconnect(attempts=1, wait=0.1)

#: Requests that only read (sending one twice changes nothing). A cluster whose meta or stream
#: leader died answers nobody until it has elected another (seconds), so a read left unanswered
#: (or answered "temporarily unavailable", 503) is sent again, up to ``READ_ATTEMPTS`` times in
#: all, ``READ_RETRY_PAUSE`` seconds apart and longer each time. A change is never repeated.
READS = ("STREAM.INFO.", "STREAM.LIST", "STREAM.NAMES", "STREAM.MSG.GET.", "CONSUMER.INFO.",
         "CONSUMER.LIST.", "CONSUMER.NAMES.")  # fmt: skip
READ_ATTEMPTS = 3
READ_RETRY_PAUSE = 0.25
#: What a change that timed out adds to its error: the server may have carried it out anyway.
UNKNOWN_OUTCOME = "; it may still have been carried out (plan again to see)"


def is_read(api: str) -> bool:
    """Whether ``$JS.API.<api>`` only reads (safe to send again)."""
    return api == "INFO" or api.startswith(READS)


class JetStreamAPI:
    """One NATS connection and the JetStream management requests made over it."""

    def __init__(
        self,
        nc: Client,
        settings: ConnectionSettings,
        events: ConnectionEvents,
        identity: ServerIdentity,
        user: str | None = None,
    ) -> None:
        self._nc = nc
        self._settings = settings
        self._events = events
        self._prefix = settings.api_prefix() + "."
        self._timeout = settings.timeout
        # Clustered servers wait up to 4 s for peers before answering a LIST (missing entries).
        self._list_timeout = settings.timeout + CLUSTER_LIST_WAIT
        self.identity = identity
        #: The user the server says this connection is (``$SYS.REQ.USER.INFO``): a user name,
        #: a public nkey, a JWT user's public key; ``None`` when unknown, anonymous, or when the
        #: server's answer could be a secret (token authentication, see :func:`_reported_user`).
        self.user = user
        self.version: tuple[int, int, int] = parse_version(identity.version)
        self.api_level: int = identity.api_level
        self.pedantic: bool = self.version >= PEDANTIC_SINCE
        #: Streams :meth:`ensure_stream` has seen exist (asked once per connection).
        self._ensured: set[str] = set()

    @property
    def nc(self) -> Client:
        """The underlying NATS connection (for non-``$JS.API`` requests such as KV writes)."""
        return self._nc

    @property
    def settings(self) -> ConnectionSettings:
        return self._settings

    # -- connection ------------------------------------------------------------------------

    @classmethod
    async def connect(cls, settings: ConnectionSettings, *, jetstream: bool = True) -> JetStreamAPI:
        """Connect, read the server identity once, and check that JetStream answers (with
        ``jetstream=False`` only the server's greeting is read: a system account connection,
        for ``doctor``)."""
        events = ConnectionEvents()
        nc = await transport.connect(
            settings,
            name="jelmore-infra",
            events=events,
            reconnect=_RECONNECT,
            connect_timeout=settings.timeout,
            limit=settings.timeout * 2 * max(1, len(settings.servers())) + 1.0,
        )
        try:
            if jetstream:
                identity, user = await _read_identity(nc, settings, events)
            else:
                identity, user = _greeting_identity(nc, settings), None
        except BaseException:
            await transport.close_quietly(nc)
            raise
        return cls(nc, settings, events, identity, user)

    async def close(self) -> None:
        await transport.close_quietly(self._nc)

    async def __aenter__(self) -> JetStreamAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- raw requests ----------------------------------------------------------------------

    async def request(
        self,
        api: str,
        body: JSONDict | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> JSONDict:
        """``$JS.API.<api>`` (or the domain's prefix) with ``body`` as JSON; the decoded reply.

        An empty or absent body sends an empty payload (DELETE requires it). A read left
        unanswered is sent again (``READS``); a change that timed out says that it may still
        have been carried out.
        """
        subject = self._prefix + api
        payload = jsontext.dumps(body) if body else b""
        wait = self._timeout if timeout is None else timeout
        read = is_read(api)
        attempt = 1
        while True:
            try:
                msg = await transport.request(self._nc, subject, payload, timeout=wait)
            except NoResponders:
                raise ConnectionFailed(transport.no_jetstream_line(self._settings)) from None
            except TransportTimeout:
                if self._events.denied(subject):
                    raise ConnectionFailed(transport.permission_line(subject)) from None
                if read and attempt < READ_ATTEMPTS:
                    await asyncio.sleep(READ_RETRY_PAUSE * attempt)
                    attempt += 1
                    continue
                raise ConnectionFailed(
                    f"timed out after {wait:g}s waiting for {subject} on "
                    f"{self._settings.safe_url()}" + ("" if read else UNKNOWN_OUTCOME)
                ) from None
            except TransportError as exc:
                raise ConnectionFailed(transport.scrub(str(exc), self._settings)) from None
            try:
                return transport.decode_reply(subject, msg.data)
            except JetStreamAPIError as exc:
                if not (read and exc.code == 503 and attempt < READ_ATTEMPTS):
                    raise
            await asyncio.sleep(READ_RETRY_PAUSE * attempt)
            attempt += 1

    # -- listing ---------------------------------------------------------------------------

    async def list_streams(self, *, subject: str | None = None) -> ListResult[JSONDict]:
        """Every stream (config, state, cluster info), all pages of ``STREAM.LIST``."""
        result: ListResult[JSONDict] = ListResult([])
        async for _page in self.iter_stream_pages(subject=subject, into=result):
            pass
        return result

    async def iter_stream_pages(
        self, *, subject: str | None = None, into: ListResult[JSONDict] | None = None
    ) -> AsyncIterator[list[JSONDict]]:
        """Async iterator over ``STREAM.LIST`` pages, each a list of new (deduplicated) items.

        When ``into`` is given, items, missing and offline names are collected there too.
        """
        result: ListResult[JSONDict] = into if into is not None else ListResult([])
        body: JSONDict = {"subject": subject} if subject else {}
        async for page in transport.pages(self._lister("STREAM.LIST"), body, "streams", result):
            yield page

    async def list_consumers(self, stream: str) -> ListResult[JSONDict]:
        """Every consumer of ``stream``, all pages of ``CONSUMER.LIST``."""
        send = self._lister(f"CONSUMER.LIST.{stream}")
        return await transport.collect(send, {}, "consumers")

    def _lister(self, api: str) -> Callable[[JSONDict | None], Awaitable[JSONDict]]:
        """One page request of a LIST: a clustered server waits up to 4 s for its peers."""

        async def send(body: JSONDict | None) -> JSONDict:
            return await self.request(api, body, timeout=self._list_timeout)

        return send

    # -- single resources ------------------------------------------------------------------

    async def stream_info(self, name: str) -> JSONDict | None:
        """``STREAM.INFO``; ``None`` when the stream does not exist."""
        try:
            return await self.request(f"STREAM.INFO.{name}")
        except JetStreamAPIError as exc:
            if exc.err_code == ERR_STREAM_NOT_FOUND:
                return None
            raise

    async def consumer_info(self, stream: str, name: str) -> JSONDict | None:
        """``CONSUMER.INFO``; ``None`` when the consumer (or its stream) does not exist."""
        try:
            return await self.request(f"CONSUMER.INFO.{stream}.{name}")
        except JetStreamAPIError as exc:
            if exc.err_code in (ERR_CONSUMER_NOT_FOUND, ERR_STREAM_NOT_FOUND):
                return None
            raise

    # -- changes ---------------------------------------------------------------------------

    async def create_stream(self, config: JSONDict) -> JSONDict:
        """``STREAM.CREATE.<name>``; pedantic on 2.11+. Returns the stream info."""
        return await self.request(f"STREAM.CREATE.{config['name']}", self._with_pedantic(config))

    async def update_stream(self, config: JSONDict) -> JSONDict:
        """``STREAM.UPDATE.<name>`` with the full config; pedantic on 2.11+."""
        return await self.request(f"STREAM.UPDATE.{config['name']}", self._with_pedantic(config))

    async def delete_stream(self, name: str) -> None:
        await self.request(f"STREAM.DELETE.{name}")

    async def create_consumer(
        self,
        stream: str,
        config: JSONDict,
        *,
        action: str = "create",
        wait_for_stream_scale: bool = False,
    ) -> JSONDict:
        """``CONSUMER.CREATE.<stream>.<durable>``; returns the consumer info.

        ``action`` is ``"create"`` (10148 if it exists with another config), ``"update"`` (10149
        if it does not exist) or ``""`` (create or update). ``durable_name`` is always set, so
        the consumer is never an ephemeral.

        ``wait_for_stream_scale``: a consumer's replicas come from its stream's servers, so one
        created or scaled up right after its stream was scaled up is refused for a moment
        (:data:`STREAM_STILL_SCALING`); the request is sent again while the stream reports its
        scale-up under way, for up to :data:`STREAM_SCALE_WAIT` seconds, and once more after.
        """
        if not wait_for_stream_scale:
            return await self._create_consumer(stream, config, action)
        give_up_at = time.monotonic() + STREAM_SCALE_WAIT
        settled_once = False
        while True:
            try:
                return await self._create_consumer(stream, config, action)
            except JetStreamAPIError as exc:
                if exc.err_code not in STREAM_STILL_SCALING or time.monotonic() > give_up_at:
                    raise
                if not await self.stream_scaling(stream):
                    if settled_once:
                        raise
                    settled_once = True
            await asyncio.sleep(STREAM_SCALE_POLL)

    async def stream_scaling(self, stream: str) -> bool:
        """Whether ``stream`` is still being given the servers its ``num_replicas`` asks for:
        fewer servers than that, or (2.15) a reconfiguration under way (``cluster.desired``)."""
        info = await self.stream_info(stream)
        if info is None:
            return False
        cluster = info.get("cluster") or {}
        servers = len(cluster.get("replicas") or ()) + (1 if cluster.get("leader") else 0)
        wanted = int((info.get("config") or {}).get("num_replicas") or 1)
        return "desired" in cluster or servers < wanted

    async def _create_consumer(self, stream: str, config: JSONDict, action: str) -> JSONDict:
        if action not in ("create", "update", ""):
            raise ValueError(f"unknown consumer action {action!r}")
        name = config.get("durable_name") or config.get("name")
        if not name:
            raise ValueError("a managed consumer needs durable_name")
        cfg = dict(config)
        cfg["durable_name"] = name
        request: JSONDict = {"stream_name": stream, "config": cfg}
        if action:
            request["action"] = action
        if self.pedantic:
            request["pedantic"] = True
        return await self.request(f"CONSUMER.CREATE.{stream}.{name}", request)

    async def delete_consumer(self, stream: str, name: str) -> None:
        await self.request(f"CONSUMER.DELETE.{stream}.{name}")

    def _with_pedantic(self, config: JSONDict) -> JSONDict:
        if not self.pedantic:
            return config
        body = dict(config)
        body["pedantic"] = True
        return body

    # -- messages (data-preserving migration) ------------------------------------------------

    async def get_message(
        self,
        stream: str,
        seq: int | None = None,
        *,
        next_by_subj: str | None = None,
        last_by_subj: str | None = None,
    ) -> JSONDict | None:
        """``STREAM.MSG.GET``: the raw ``message`` (base64 ``data``/``hdrs``, ``subject``, ``seq``).

        By sequence; with ``next_by_subj`` the first message at or after ``seq`` whose subject
        matches that filter (wildcards allowed); with ``last_by_subj`` the last message on that
        subject. ``None`` when there is no such message (deleted, or beyond the stream's end).
        """
        body: JSONDict = {}
        if seq is not None:
            body["seq"] = seq
        if next_by_subj is not None:
            body["next_by_subj"] = next_by_subj
        if last_by_subj is not None:
            body["last_by_subj"] = last_by_subj
        try:
            reply = await self.request(f"STREAM.MSG.GET.{stream}", body)
        except JetStreamAPIError as exc:
            if exc.err_code == ERR_MESSAGE_NOT_FOUND:
                return None
            raise
        message: JSONDict = reply.get("message") or {}
        return message

    async def subject_counts(self, stream: str, subjects_filter: str = ">") -> dict[str, int]:
        """How many messages ``stream`` holds per subject (``STREAM.INFO`` subjects, all pages)."""
        counts: dict[str, int] = {}
        while True:
            body: JSONDict = {"subjects_filter": subjects_filter}
            if counts:
                body["offset"] = len(counts)
            reply = await self.request(f"STREAM.INFO.{stream}", body, timeout=self._list_timeout)
            page: dict[str, int] = (reply.get("state") or {}).get("subjects") or {}
            before = len(counts)
            counts.update(page)
            total = int(reply.get("total") or 0)
            if len(counts) == before or len(counts) >= total:
                return counts

    # -- KV-style reads and writes (the event catalogue) ------------------------------------

    async def last_per_subject(
        self, stream: str, subjects_filter: str = ">", *, concurrency: int = 32
    ) -> dict[str, JSONDict]:
        """The last message on each subject of ``stream`` matching ``subjects_filter`` (raw
        ``STREAM.MSG.GET`` messages with base64 ``data``/``hdrs``), by subject."""
        counts = await self.subject_counts(stream, subjects_filter)
        gate = asyncio.Semaphore(concurrency)

        async def last(subject: str) -> tuple[str, JSONDict | None]:
            async with gate:
                try:
                    reply = await self.request(
                        f"STREAM.MSG.GET.{stream}", {"last_by_subj": subject}
                    )
                except JetStreamAPIError as exc:
                    if exc.err_code == 10037:  # no message found: removed meanwhile
                        return subject, None
                    raise
            message = reply.get("message")
            return subject, message if isinstance(message, dict) else None

        found = await asyncio.gather(*(last(s) for s in sorted(counts)))
        return {subject: message for subject, message in found if message is not None}

    async def publish_acked(
        self,
        subject: str,
        data: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        wait_for_leader: bool = False,
    ) -> JSONDict:
        """A JetStream publish; the stream's acknowledgement (``NoStreamAnswers`` when no stream
        answers, ``JetStreamAPIError`` when the stream refuses).

        ``wait_for_leader``: a stream created a moment ago on a cluster may have no leader yet,
        and nobody answers; the publish is tried again until the connection's timeout passed.
        """
        give_up_at = time.monotonic() + self._timeout
        while True:
            try:
                return await self._publish_acked(subject, data, headers)
            except NoStreamAnswers:
                if not wait_for_leader or time.monotonic() > give_up_at:
                    raise
                await asyncio.sleep(NO_LEADER_RETRY)

    async def _publish_acked(
        self, subject: str, data: bytes, headers: Mapping[str, str] | None
    ) -> JSONDict:
        try:
            msg = await transport.request(
                self._nc, subject, data, timeout=self._timeout, headers=headers
            )
        except NoResponders:
            raise NoStreamAnswers(f"no stream stores {subject}") from None
        except TransportTimeout:
            raise ConnectionFailed(
                f"timed out after {self._timeout:g}s waiting for {subject} to be stored on "
                f"{self._settings.safe_url()}"
            ) from None
        except TransportError as exc:
            raise ConnectionFailed(transport.scrub(str(exc), self._settings)) from None
        return transport.decode_reply(subject, msg.data)

    async def server_varz(self, wait: float = 0.5) -> list[JSONDict] | None:
        """Every server's ``VARZ`` (``$SYS.REQ.SERVER.PING.VARZ``): the replies that arrive within
        ``wait`` seconds of the last one; ``None`` when none answers (the connection is not in the
        system account, or may not ask)."""
        inbox = self._nc.new_inbox()
        replies: list[JSONDict] = []
        arrived = asyncio.Event()

        async def collect(msg: Any) -> None:
            try:
                data = json.loads(msg.data)
            except ValueError:
                return
            if isinstance(data, dict) and isinstance(data.get("data"), dict):
                replies.append(data["data"])
                arrived.set()

        try:
            sub = await self._nc.subscribe(inbox, cb=collect)
            await transport.publish(self._nc, "$SYS.REQ.SERVER.PING.VARZ", b"", reply=inbox)
        except (TransportError, OSError):
            return None
        except Exception:  # nats-py's own errors (a closed connection): no VARZ
            return None
        try:
            while True:
                arrived.clear()
                try:
                    first = min(self._timeout, 1.0)  # nobody answers outside the system account
                    await asyncio.wait_for(arrived.wait(), wait if replies else first)
                except TimeoutError:
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return replies or None

    async def ensure_stream(self, config: JSONDict, *, replicated: bool = False) -> None:
        """Create ``config``'s stream unless it exists (one created meanwhile is fine).

        ``replicated``: one of jelmore-infra's own streams (the apply lock, the catalogue) that
        must outlive a node: on a cluster it gets three replicas (one when the cluster cannot
        place three), and an existing one with fewer is raised to three in place.
        """
        name = str(config["name"])
        if name in self._ensured:
            return
        info = await self.stream_info(name)
        if info is None:
            await self._create_own(config, replicated)
        elif replicated and self.identity.cluster:
            await self._raise_replicas(info)
        self._ensured.add(name)

    async def _create_own(self, config: JSONDict, replicated: bool) -> None:
        wanted = [REPLICATED, 1] if replicated and self.identity.cluster else [1]
        for replicas in wanted:
            try:
                await self.create_stream({**config, "num_replicas": replicas})
                return
            except JetStreamAPIError as exc:
                if exc.err_code == ERR_STREAM_NAME_IN_USE:
                    return  # created meanwhile
                if exc.err_code not in CANNOT_PLACE or replicas == wanted[-1]:
                    raise

    async def _raise_replicas(self, info: JSONDict) -> None:
        config = dict(info["config"])
        if int(config.get("num_replicas") or 1) >= REPLICATED:
            return
        try:
            await self.update_stream({**config, "num_replicas": REPLICATED})
        except JetStreamAPIError as exc:
            if exc.err_code not in CANNOT_PLACE:
                raise

    async def ensure_replicated_stream(self, config_for: Callable[[int], JSONDict]) -> None:
        """:meth:`ensure_stream` of one of the tool's own streams built by ``config_for``:
        three replicas on a cluster, so it outlives a node (see ``replicated``)."""
        await self.ensure_stream(config_for(REPLICATED), replicated=True)


# -- the server identity -------------------------------------------------------------------------


def _greeting_identity(nc: Client, settings: ConnectionSettings) -> ServerIdentity:
    """The server identity its greeting (INFO) gives, without asking JetStream."""
    info: JSONDict = dict(getattr(nc, "_server_info", None) or {})
    return ServerIdentity(
        server_name=str(info.get("server_name") or info.get("server_id") or ""),
        server_id=str(info.get("server_id") or ""),
        version=str(info.get("version") or "0.0.0"),
        api_level=0,
        cluster=info.get("cluster") or None,
        domain=info.get("domain") or None,
        url=settings.safe_url(),
    )


async def _read_identity(
    nc: Client, settings: ConnectionSettings, events: ConnectionEvents
) -> tuple[ServerIdentity, str | None]:
    """Server INFO from the handshake, ``$JS.API.INFO`` and (best effort) the account name and
    the user the server reports (:func:`_reported_user`)."""
    info: JSONDict = dict(getattr(nc, "_server_info", None) or {})
    subject = f"{settings.api_prefix()}.INFO"
    attempt = 1
    while True:
        reply = await _probe(nc, subject, settings, events, attempts=READ_ATTEMPTS)
        if reply is None:
            raise ConnectionFailed(transport.no_jetstream_line(settings))
        try:
            data = transport.decode_reply(subject, reply)
            break
        except JetStreamAPIError as exc:
            if exc.err_code in (ERR_JS_NOT_ENABLED, ERR_JS_NOT_ENABLED_FOR_ACCOUNT):
                line = transport.no_jetstream_line(settings, exc.description)
                raise ConnectionFailed(line) from None
            if exc.code != 503 or attempt >= READ_ATTEMPTS:  # 503: a cluster electing a leader
                raise
        await asyncio.sleep(READ_RETRY_PAUSE * attempt)
        attempt += 1
    api = data.get("api") or {}
    account: str | None = None
    user: str | None = None
    try:
        user_reply = await _probe(nc, "$SYS.REQ.USER.INFO", settings, events, quiet=True)
        if user_reply:
            user_info = (json.loads(user_reply) or {}).get("data") or {}
            account = user_info.get("account") or None
            user = _reported_user(user_info, settings)
    except (ConnectionFailed, ValueError, AttributeError):
        account = user = None
    identity = ServerIdentity(
        server_name=str(info.get("server_name") or info.get("server_id") or ""),
        server_id=str(info.get("server_id") or ""),
        version=str(info.get("version") or "0.0.0"),
        api_level=int(api.get("level") or 0),
        cluster=info.get("cluster") or None,
        domain=data.get("domain") or info.get("domain") or None,
        account=account,
        url=settings.safe_url(),
    )
    return identity, user


#: What 2.11+ servers report as the user of a connection that authenticated with a token.
_REDACTED = "[REDACTED]"


def _reported_user(user_info: Mapping[str, Any], settings: ConnectionSettings) -> str | None:
    """The ``user`` of a ``$SYS.REQ.USER.INFO`` reply, unless it may be a secret.

    A server reports the user name (user/password), the public nkey (nkey, JWT user) or an empty
    string (no authentication). For a connection that authenticated with a token, 2.10 reports
    the token itself and newer servers ``[REDACTED]``: with a token in use (``--token``, a
    context's or environment's token, a ``nats://TOKEN@host`` URL) nothing is kept. A value equal
    to any password or token of the settings is never kept either.
    """
    user = user_info.get("user")
    if not isinstance(user, str) or not user or user == _REDACTED:
        return None
    secrets = {settings.token, settings.password}
    for url in settings.servers():
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        if parts.username is not None and parts.password is None:
            return None  # nats://TOKEN@host
        secrets.add(parts.password)
    if settings.token or user in secrets:
        return None
    return user


async def _probe(
    nc: Client,
    subject: str,
    settings: ConnectionSettings,
    events: ConnectionEvents,
    *,
    quiet: bool = False,
    attempts: int = 1,
) -> bytes | None:
    """A request that also stops at once on a permissions violation. ``None``: no responders.

    With ``quiet`` every failure returns ``None`` instead of raising. A request left unanswered
    is sent again, up to ``attempts`` times in all (a read: see ``READS``).
    """
    timeout = min(settings.timeout, 1.0) if quiet else settings.timeout
    attempt = 0
    while True:
        attempt += 1
        loop = asyncio.get_running_loop()
        denied: asyncio.Future[str] = loop.create_future()
        events.waiters.append(denied)
        task: asyncio.Future[Any] = asyncio.ensure_future(
            transport.request(nc, subject, timeout=timeout)
        )
        try:
            waiting: set[asyncio.Future[Any]] = {task, denied}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            events.waiters.remove(denied)
        if task not in done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if quiet:
                return None
            raise ConnectionFailed(transport.permission_line(subject))
        try:
            data: bytes = task.result().data
            return data
        except NoResponders:
            return None
        except TransportTimeout:
            if attempt < attempts:
                await asyncio.sleep(READ_RETRY_PAUSE * attempt)
                continue
            if quiet:
                return None
            raise ConnectionFailed(
                f"timed out after {timeout:g}s waiting for {subject} on {settings.safe_url()}"
            ) from None
        except TransportError as exc:
            if quiet:
                return None
            raise ConnectionFailed(transport.scrub(str(exc), settings)) from None
