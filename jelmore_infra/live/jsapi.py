"""The provisioner's only client of the JetStream management API.

Everything goes through raw ``$JS.API.*`` JSON requests with plain dicts, never nats-py's
JetStream dataclasses (they drop fields and round durations; jetstream-semantics.md §5). Replies
are decoded with ``json.loads`` straight from bytes and returned as the server sent them.

Connection problems (nothing listening, bad credentials, JetStream missing, timeouts) become
:class:`~jelmore_infra.errors.ConnectionFailed` with one line that never contains a secret; error
envelopes become :class:`~jelmore_infra.errors.JetStreamAPIError` carrying ``err_code``.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import json
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nats import errors as nats_errors
from nats.aio.client import Client

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ConnectionFailed, JetStreamAPIError
from jelmore_infra.model import ServerIdentity, parse_version
from jelmore_infra.tls import check_readable, explain_failure, open_client

JSONDict = dict[str, Any]

#: Error codes this module branches on (server/errors.json).
ERR_CONSUMER_NOT_FOUND = 10014
ERR_STREAM_NOT_FOUND = 10059
ERR_JS_NOT_ENABLED_FOR_ACCOUNT = 10039
ERR_JS_NOT_ENABLED = 10076
ERR_CONSUMER_ALREADY_EXISTS = 10148
ERR_CONSUMER_DOES_NOT_EXIST = 10149
ERR_PEDANTIC = 10157

#: How long a clustered server waits for peers before answering STREAM.LIST/CONSUMER.LIST.
CLUSTER_LIST_WAIT = 4.0

#: First server version that accepts ``"pedantic": true`` in create/update requests.
PEDANTIC_SINCE = (2, 11, 0)


class _QuietSSLShutdown(logging.Filter):
    """Drop asyncio's "returning true from eof_received()" warning after a refused TLS handshake."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("returning true from eof_received()")


logging.getLogger("asyncio").addFilter(_QuietSSLShutdown())

_AUTH_HINT = "authorization violation: check --user/--password, --token or --creds"
_EMPTY = b""


@dataclass(frozen=True, slots=True)
class ListResult:
    """All pages of a ``STREAM.LIST`` or ``CONSUMER.LIST``.

    ``missing`` names the server could not report (a cluster's peers are offline or did not
    answer within its 4 s); ``offline`` maps names the server could not load to its reason (they
    are in ``missing`` too). Neither is ever in ``items``.
    """

    items: list[JSONDict]
    missing: list[str] = field(default_factory=list)
    offline: dict[str, str] = field(default_factory=dict)


def entry_name(info: JSONDict) -> str:
    """The name of a stream or consumer info entry of a LIST reply.

    Stream infos carry it in ``config.name``; consumer infos in ``name``, except the bare
    entries a cluster lists for consumers whose peers are all offline (only ``config``).
    """
    config = info.get("config") or {}
    return str(info.get("name") or config.get("name") or config.get("durable_name") or "")


class _Events:
    """What nats-py reported through its callbacks (instead of logging tracebacks)."""

    def __init__(self) -> None:
        self.last_error: BaseException | None = None
        self.errors: deque[BaseException] = deque(maxlen=32)
        self.permission_errors: deque[str] = deque(maxlen=32)
        self.waiters: list[asyncio.Future[str]] = []

    async def on_error(self, exc: Exception) -> None:
        self.last_error = exc
        self.errors.append(exc)
        text = str(exc)
        if "permissions violation" in text.lower():
            self.permission_errors.append(text)
            for waiter in self.waiters:
                if not waiter.done():
                    waiter.set_result(text)

    async def on_event(self) -> None:
        return None

    def denied(self, subject: str) -> bool:
        """Whether the server refused us permission to publish to ``subject``."""
        needle = f'"{subject.lower()}"'
        return any(needle in text.lower() for text in self.permission_errors)


class JetStreamAPI:
    """One NATS connection and the JetStream management requests made over it."""

    def __init__(
        self,
        nc: Client,
        settings: ConnectionSettings,
        events: _Events,
        identity: ServerIdentity,
    ) -> None:
        self._nc = nc
        self._settings = settings
        self._events = events
        self._prefix = settings.api_prefix() + "."
        self._timeout = settings.timeout
        # Clustered servers wait up to 4 s for peers before answering a LIST (missing entries).
        self._list_timeout = settings.timeout + CLUSTER_LIST_WAIT
        self.identity = identity
        self.version: tuple[int, int, int] = parse_version(identity.version)
        self.api_level: int = identity.api_level
        self.pedantic: bool = self.version >= PEDANTIC_SINCE

    @property
    def nc(self) -> Client:
        """The underlying NATS connection (for non-``$JS.API`` requests such as KV writes)."""
        return self._nc

    @property
    def settings(self) -> ConnectionSettings:
        return self._settings

    # -- connection ------------------------------------------------------------------------

    @classmethod
    async def connect(cls, settings: ConnectionSettings) -> JetStreamAPI:
        """Connect, read the server identity once, and check that JetStream answers."""
        events = _Events()
        options: dict[str, Any] = {
            "servers": settings.servers(),
            "name": "jelmore-infra",
            "error_cb": events.on_error,
            "disconnected_cb": events.on_event,
            "reconnected_cb": events.on_event,
            "closed_cb": events.on_event,
            "connect_timeout": settings.timeout,
            "allow_reconnect": True,
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.1,
        }
        options.update(_auth_options(settings))
        # nats-py can wait forever on some failures (a TLS handshake the server drops): bound it.
        limit = settings.timeout * 2 * max(1, len(settings.servers())) + 1.0
        try:
            nc = await asyncio.wait_for(open_client(settings, options), limit)
        except ConnectionFailed:
            raise
        except TimeoutError as exc:
            cause = events.last_error or exc
            raise ConnectionFailed(_connect_error_line(cause, events, settings)) from None
        except Exception as exc:
            raise ConnectionFailed(_connect_error_line(exc, events, settings)) from None
        try:
            identity = await _read_identity(nc, settings, events)
        except BaseException:
            await _close_quietly(nc)
            raise
        return cls(nc, settings, events, identity)

    async def close(self) -> None:
        await _close_quietly(self._nc)

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

        An empty or absent body sends an empty payload (DELETE requires it).
        """
        subject = self._prefix + api
        payload = json.dumps(body, separators=(",", ":")).encode() if body else _EMPTY
        wait = self._timeout if timeout is None else timeout
        try:
            msg = await self._nc.request(subject, payload, timeout=wait)
        except nats_errors.NoRespondersError:
            raise ConnectionFailed(_no_jetstream_line(self._settings)) from None
        except (TimeoutError, nats_errors.TimeoutError):
            if self._events.denied(subject):
                raise ConnectionFailed(_permission_line(subject)) from None
            raise ConnectionFailed(
                f"timed out after {wait:g}s waiting for {subject} on {self._settings.safe_url()}"
            ) from None
        except nats_errors.Error as exc:
            raise ConnectionFailed(
                _scrub(f"request {subject} failed: {_describe(exc)}", self._settings)
            ) from None
        data: JSONDict = json.loads(msg.data) if msg.data else {}
        error = data.get("error")
        if error is not None:
            raise JetStreamAPIError(
                subject,
                int(error.get("code") or 0),
                int(error.get("err_code") or 0),
                str(error.get("description") or "unknown error"),
            )
        return data

    # -- listing ---------------------------------------------------------------------------

    async def list_streams(self, *, subject: str | None = None) -> ListResult:
        """Every stream (config, state, cluster info), all pages of ``STREAM.LIST``."""
        result = ListResult([])
        async for _page in self.iter_stream_pages(subject=subject, into=result):
            pass
        return result

    async def iter_stream_pages(
        self, *, subject: str | None = None, into: ListResult | None = None
    ) -> AsyncIterator[list[JSONDict]]:
        """Async iterator over ``STREAM.LIST`` pages, each a list of new (deduplicated) items.

        When ``into`` is given, items, missing and offline names are collected there too.
        """
        result = into if into is not None else ListResult([])
        body: JSONDict = {"subject": subject} if subject else {}
        async for page in self._pages("STREAM.LIST", body, "streams", result):
            yield page

    async def list_consumers(self, stream: str) -> ListResult:
        """Every consumer of ``stream``, all pages of ``CONSUMER.LIST``."""
        result = ListResult([])
        async for _page in self._pages(f"CONSUMER.LIST.{stream}", {}, "consumers", result):
            pass
        return result

    async def _pages(
        self, api: str, body: JSONDict, key: str, result: ListResult
    ) -> AsyncIterator[list[JSONDict]]:
        """Page through a LIST: ``offset`` advances by the names each reply accounts for.

        A clustered server whose peers are all offline lists the resource twice: as a bare
        entry (config only, no state; consumers even without a name) *and* in ``missing``.
        Such entries are dropped from the items, and every name counts once for the offset
        (the plain ``len(items) + len(missing)`` would skip entries of the next page).
        """
        seen: set[str] = set()
        missing_seen: set[str] = set()
        offset = 0
        while True:
            request = dict(body)
            if offset:
                request["offset"] = offset
            data = await self.request(api, request or None, timeout=self._list_timeout)
            items = data.get(key) or []
            missing: list[str] = data.get("missing") or []
            offline: dict[str, str] = data.get("offline") or {}
            unavailable = set(missing)
            unavailable.update(offline)
            names: set[str] = set()
            page: list[JSONDict] = []
            for item in items:
                name = entry_name(item)
                names.add(name)
                if name not in seen and name not in unavailable:
                    seen.add(name)
                    page.append(item)
            for name in missing:
                if name not in missing_seen:
                    missing_seen.add(name)
                    result.missing.append(name)
            result.offline.update(offline)
            result.items.extend(page)
            yield page
            total = int(data.get("total") or 0)
            names.update(missing)
            offset += len(names)
            if not names or offset >= total:
                return

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
        self, stream: str, config: JSONDict, *, action: str = "create"
    ) -> JSONDict:
        """``CONSUMER.CREATE.<stream>.<durable>``; returns the consumer info.

        ``action`` is ``"create"`` (10148 if it exists with another config), ``"update"`` (10149
        if it does not exist) or ``""`` (create or update). ``durable_name`` is always set, so
        the consumer is never an ephemeral.
        """
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

    async def get_message(self, stream: str, seq: int) -> JSONDict | None:
        """``STREAM.MSG.GET`` by sequence: the raw ``message`` (base64 ``data``/``hdrs``).

        ``None`` when there is no message at ``seq`` (deleted, or beyond the stream's end).
        """
        try:
            reply = await self.request(f"STREAM.MSG.GET.{stream}", {"seq": seq})
        except JetStreamAPIError as exc:
            if exc.err_code == 10037:  # no message found
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


# -- helpers ---------------------------------------------------------------------------------


def _auth_options(settings: ConnectionSettings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.user:
        options["user"] = settings.user
    if settings.password:
        options["password"] = settings.password
    if settings.token:
        options["token"] = settings.token
    if settings.creds or settings.nkey:
        for path, flag in ((settings.creds, "--creds"), (settings.nkey, "--nkey")):
            if path:
                check_readable(path, f"{flag} file")
        if importlib.util.find_spec("nkeys") is None:
            flag = "--creds" if settings.creds else "--nkey"
            raise ConnectionFailed(f"{flag} needs the nkeys package: pip install 'nats-py[nkeys]'")
        if settings.creds:
            options["user_credentials"] = settings.creds
        if settings.nkey:
            options["nkeys_seed"] = settings.nkey
    return options


async def _read_identity(
    nc: Client, settings: ConnectionSettings, events: _Events
) -> ServerIdentity:
    """Server INFO from the handshake, ``$JS.API.INFO`` and (best effort) the account name."""
    info: JSONDict = dict(getattr(nc, "_server_info", None) or {})
    subject = f"{settings.api_prefix()}.INFO"
    reply = await _probe(nc, subject, settings, events)
    if reply is None:
        raise ConnectionFailed(_no_jetstream_line(settings))
    data: JSONDict = json.loads(reply) if reply else {}
    error = data.get("error")
    if error is not None:
        err_code = int(error.get("err_code") or 0)
        if err_code in (ERR_JS_NOT_ENABLED, ERR_JS_NOT_ENABLED_FOR_ACCOUNT):
            raise ConnectionFailed(_no_jetstream_line(settings, str(error.get("description"))))
        raise JetStreamAPIError(
            subject,
            int(error.get("code") or 0),
            err_code,
            str(error.get("description") or "unknown error"),
        )
    api = data.get("api") or {}
    account: str | None = None
    try:
        user_reply = await _probe(nc, "$SYS.REQ.USER.INFO", settings, events, quiet=True)
        if user_reply:
            user_info = json.loads(user_reply)
            account = (user_info.get("data") or {}).get("account") or None
    except (ConnectionFailed, ValueError):
        account = None
    return ServerIdentity(
        server_name=str(info.get("server_name") or info.get("server_id") or ""),
        server_id=str(info.get("server_id") or ""),
        version=str(info.get("version") or "0.0.0"),
        api_level=int(api.get("level") or 0),
        cluster=info.get("cluster") or None,
        domain=data.get("domain") or info.get("domain") or None,
        account=account,
        url=settings.safe_url(),
    )


async def _probe(
    nc: Client,
    subject: str,
    settings: ConnectionSettings,
    events: _Events,
    *,
    quiet: bool = False,
) -> bytes | None:
    """A request that also stops at once on a permissions violation. ``None``: no responders.

    With ``quiet`` every failure returns ``None`` instead of raising.
    """
    loop = asyncio.get_running_loop()
    denied: asyncio.Future[str] = loop.create_future()
    events.waiters.append(denied)
    timeout = min(settings.timeout, 1.0) if quiet else settings.timeout
    task: asyncio.Future[Any] = asyncio.ensure_future(nc.request(subject, _EMPTY, timeout=timeout))
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
        raise ConnectionFailed(_permission_line(subject))
    try:
        data: bytes = task.result().data
        return data
    except nats_errors.NoRespondersError:
        return None
    except (TimeoutError, nats_errors.TimeoutError):
        if quiet:
            return None
        raise ConnectionFailed(
            f"timed out after {timeout:g}s waiting for {subject} on {settings.safe_url()}"
        ) from None
    except nats_errors.Error as exc:
        if quiet:
            return None
        raise ConnectionFailed(
            _scrub(f"request {subject} failed: {_describe(exc)}", settings)
        ) from None


def _no_jetstream_line(settings: ConnectionSettings, detail: str | None = None) -> str:
    where = settings.safe_url()
    reason = detail or f"no responders on {settings.api_prefix()}.INFO"
    if settings.js_domain:
        return (
            f"JetStream not enabled for domain {settings.js_domain!r} on {where} ({reason}): "
            "check --js-domain"
        )
    return f"JetStream not enabled on {where} ({reason})"


def _permission_line(subject: str) -> str:
    return f"{_AUTH_HINT} (no permission to publish to {subject})"


def _connect_error_line(exc: BaseException, events: _Events, settings: ConnectionSettings) -> str:
    url = settings.safe_url()
    cause: BaseException = exc
    if isinstance(exc, nats_errors.NoServersError) and events.last_error is not None:
        cause = events.last_error
    for seen in (*events.errors, exc):
        if isinstance(seen, nats_errors.AuthorizationError) or "authorization violation" in (
            str(seen).lower()
        ):
            return _AUTH_HINT
    text = str(cause).lower()
    if isinstance(cause, nats_errors.AuthorizationError) or "authorization violation" in text:
        return _AUTH_HINT
    if "authentication" in text or "user authentication" in text:
        return _AUTH_HINT
    if isinstance(cause, ConnectionRefusedError) or (
        isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
    ):
        return f"cannot connect to {url}: connection refused"
    if isinstance(cause, (asyncio.TimeoutError, TimeoutError, nats_errors.TimeoutError)):
        return f"timed out after {settings.timeout:g}s waiting for {url} to answer"
    explained = explain_failure(cause, settings)
    if explained is not None:
        return _scrub(explained, settings)
    if isinstance(cause, ssl.SSLError):
        reason = getattr(cause, "verify_message", None) or cause.reason or _describe(cause)
        return _scrub(f"TLS handshake with {url} failed: {reason}", settings)
    if isinstance(cause, nats_errors.SecureConnRequiredError):
        return f"{url} requires TLS: use a tls:// URL or --tls-ca"
    if isinstance(cause, nats_errors.SecureConnWantedError):
        return f"{url} does not offer TLS but TLS was requested"
    if isinstance(cause, OSError):
        return _scrub(f"cannot connect to {url}: {cause.strerror or _describe(cause)}", settings)
    return _scrub(f"cannot connect to {url}: {_describe(cause)}", settings)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.removeprefix("nats: ").replace("\n", " ")


def _scrub(text: str, settings: ConnectionSettings) -> str:
    """Remove every secret the settings hold (and URL user-info) from ``text``."""
    secrets = [settings.password, settings.token]
    for url in settings.servers():
        authority = url.split("://", 1)[-1].split("/", 1)[0]
        if "@" in authority:
            userinfo = authority.rsplit("@", 1)[0]
            secrets.append(userinfo.split(":", 1)[1] if ":" in userinfo else userinfo)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return " ".join(text.split())


async def _close_quietly(nc: Client) -> None:
    try:
        await nc.close()
    except Exception:
        pass
