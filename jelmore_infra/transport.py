"""The one nats transport: how the provisioner (``live.jsapi``) and the runtime (``runtime.bus``)
connect, authenticate, send requests, decode ``$JS.API`` replies and page through lists.

Besides those two modules, nothing in the package imports nats-py; they build on this one:

* **Connecting** (:func:`connect`): the ``nats``-CLI-style :class:`ConnectionSettings` become
  nats-py options (:func:`auth_options`, TLS by :func:`open_client`); a failure is one
  :class:`~jelmore_infra.errors.ConnectionFailed` line that never contains a secret
  (:func:`connect_error_line`). The caller chooses the reconnect policy and the callbacks
  (:class:`ConnectionEvents`).
* **Requested TLS is TLS or no connection.** nats-py 2.x upgrades a connection to TLS only when the
  server's INFO says ``tls_required`` (or when ``tls_handshake_first`` is set). A ``tls://`` URL or
  an SSL context does not make it refuse a server that offers no TLS: it carries on in plain text
  and sends CONNECT, with the password, token or signed nonce in it, in clear. The ``nats`` CLI
  refuses instead, and upgrades a server that only *allows* TLS (``tls_available``).
  :class:`GuardedClient` does the same. When TLS was asked for (see
  :meth:`ConnectionSettings.tls_requested_by`), it upgrades a server that advertises
  ``tls_available``, and it checks the socket itself right before CONNECT is built: a connection
  that is not encrypted is refused before the client has written a single byte. A refusal on the
  first connection raises :class:`TLSRefused` (a ``ConnectionFailed``) at once; on a later
  reconnect it is a nats error like any other failed attempt, so the client tries the next server.
* **Requests** (:func:`request`): nats errors become :class:`~jelmore_infra.errors.NoResponders`,
  :class:`~jelmore_infra.errors.TransportTimeout` or :class:`~jelmore_infra.errors.TransportError`.
* **Replies** (:func:`decode_reply`): JSON straight from bytes (:mod:`jelmore_infra.jsontext`);
  an error envelope becomes :class:`~jelmore_infra.errors.JetStreamAPIError` carrying
  ``err_code`` (the codes are in ``jelmore_infra.errors``).
* **Lists** (:func:`pages`): ``offset`` paging of ``STREAM.LIST``, ``STREAM.NAMES`` and
  ``CONSUMER.LIST``, with the names a cluster could not report kept apart.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import json
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nats import errors as nats_errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from jelmore_infra import jsontext
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import (
    ConnectionFailed,
    JetStreamAPIError,
    NoResponders,
    TransportError,
    TransportTimeout,
)

JSONDict = dict[str, Any]
T = TypeVar("T")

#: Seconds to wait for an abandoned connection to close.
_ABANDON_WAIT = 2.0
#: nats-py methods the guard hooks into; a nats-py without them must not connect unguarded.
_HOOKS = ("_process_info", "_connect_command", "_close")
AUTH_HINT = "authorization violation: check --user/--password, --token or --creds"
_EMPTY = b""


class _QuietSSLShutdown(logging.Filter):
    """Drop asyncio's "returning true from eof_received()" warning after a refused TLS handshake."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("returning true from eof_received()")


logging.getLogger("asyncio").addFilter(_QuietSSLShutdown())


# -- TLS ---------------------------------------------------------------------------------------


class TLSRefused(ConnectionFailed):
    """TLS was asked for and the server did not offer it (nothing was sent)."""


class TLSNotOffered(nats_errors.SecureConnWantedError):
    """The nats-py error for a refused reconnect attempt (the client moves on to another server)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_readable(path: str, what: str, source: str = "") -> None:
    """A one-line ``ConnectionFailed`` unless ``path`` can be opened for reading; ``source`` is
    where the path came from, as `` (from NATS_CREDS)``."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConnectionFailed(f"cannot read {what} {path}{source}: {reason}") from None


def ssl_context(settings: ConnectionSettings) -> ssl.SSLContext | None:
    """The SSL context to connect with, or ``None`` when no TLS was asked for.

    The TLS files are checked first, each problem one line naming the file and where it was
    given: unreadable, not a certificate, a client certificate that has expired (or is not yet
    valid), a key that does not belong to the certificate.
    """
    if settings.tls_requested_by() is None:
        return None
    cert, key, ca = settings.tls_cert, settings.tls_key, settings.tls_ca
    if bool(cert) != bool(key):
        if not settings.sources:
            raise ConnectionFailed("--tls-cert and --tls-key must be given together")
        given, which = ("tls_cert", "certificate") if cert else ("tls_key", "key")
        raise ConnectionFailed(
            "a client certificate needs both --tls-cert and --tls-key (or NATS_CERT and "
            f"NATS_KEY): only the {which} is set{settings.from_where(given)}"
        )
    for path, what, setting in (
        (ca, "TLS CA file", "tls_ca"),
        (cert, "TLS certificate", "tls_cert"),
        (key, "TLS key", "tls_key"),
    ):
        if path:
            check_readable(path, what, settings.from_where(setting))
    if cert:
        check_validity(cert, settings.from_where("tls_cert"))
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConnectionFailed(
            f"the TLS CA file {ca}{settings.from_where('tls_ca')} holds no usable CA "
            f"certificate ({_ssl_reason(exc)})"
        ) from None
    if cert and key:
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            reason = _ssl_reason(exc)
            if "KEY_VALUES_MISMATCH" in reason or not key_matches(cert, key):
                raise ConnectionFailed(
                    f"the TLS key {key}{settings.from_where('tls_key')} does not belong to the "
                    f"TLS certificate {cert}{settings.from_where('tls_cert')}"
                ) from None
            raise ConnectionFailed(
                f"cannot load the TLS certificate {cert}{settings.from_where('tls_cert')} and "
                f"key {key}{settings.from_where('tls_key')}: {reason}"
            ) from None
    return context


def _ssl_reason(exc: BaseException) -> str:
    """An ``ssl``/``OSError`` as a short reason (OpenSSL's code name when it has one)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    return " ".join(str(exc).split()) or type(exc).__name__


def key_matches(cert: str, key: str) -> bool:
    """Whether the private key in ``key`` belongs to the certificate in ``cert`` (``True`` when
    either cannot be read: then that is the problem to report)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        with open(cert, "rb") as handle:
            public = x509.load_pem_x509_certificate(handle.read()).public_key()
        with open(key, "rb") as handle:
            private = serialization.load_pem_private_key(handle.read(), password=None)
    except (OSError, ValueError, TypeError):
        return True
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(public.public_bytes(der, spki) == private.public_key().public_bytes(der, spki))


def check_validity(path: str, source: str = "") -> None:
    """A one-line ``ConnectionFailed`` when the (first) certificate in ``path`` has expired or
    is not valid yet: the server would refuse it with a less clear TLS alert. A file that is not
    a PEM certificate is left to the TLS library to report."""
    from datetime import UTC, datetime

    from cryptography import x509

    try:
        with open(path, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError):
        return
    now = datetime.now(UTC)
    if certificate.not_valid_after_utc < now:
        when = certificate.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S UTC")
        raise ConnectionFailed(f"the TLS certificate {path}{source} expired on {when}")
    if certificate.not_valid_before_utc > now:
        when = certificate.not_valid_before_utc.strftime("%Y-%m-%d %H:%M:%S UTC")
        raise ConnectionFailed(f"the TLS certificate {path}{source} is not valid before {when}")


class GuardedClient(Client):
    """A nats-py client that never speaks in plain text once TLS was asked for."""

    def __init__(self, tls_reason: str | None) -> None:
        super().__init__()
        missing = [name for name in _HOOKS if not callable(getattr(Client, name, None))]
        if tls_reason is not None and missing:
            raise ConnectionFailed(
                f"this nats-py version cannot enforce TLS (no {', '.join(missing)}): "
                "install nats-py 2.x"
            )
        self._tls_reason = tls_reason
        self._connected_once = False

    async def connect(self, *args: Any, **kwargs: Any) -> None:
        await super().connect(*args, **kwargs)
        self._connected_once = True

    async def abandon(self) -> None:
        """Close a connection that never completed, without the disconnect/close callbacks."""
        try:
            # Bounded: after a failed TLS upgrade nats-py can wait forever for the socket to close.
            await asyncio.wait_for(self._close(Client.CLOSED, False), _ABANDON_WAIT)
        except Exception:
            pass

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        if (
            initial_connection
            and self._tls_reason is not None
            and info.get("tls_available")
            and not info.get("tls_required")
        ):
            # The server allows TLS without requiring it: make nats-py upgrade, as the nats CLI
            # does when TLS is wanted. ``info`` is the dict nats-py checks right after this call.
            info["tls_required"] = True
        await super()._process_info(info, initial_connection)

    def _connect_command(self) -> bytes:
        if self._tls_reason is not None and not self._encrypted():
            message = self._refusal()
            # nats-py replaces, but does not close, the socket of a failed reconnect attempt.
            if self._transport is not None:
                try:
                    self._transport.close()  # type: ignore[no-untyped-call]
                except Exception:
                    pass
            if self._connected_once:
                raise TLSNotOffered(message)
            raise TLSRefused(message)
        command: bytes = super()._connect_command()
        return command

    def _encrypted(self) -> bool:
        """Whether the socket CONNECT would go out on is a TLS connection."""
        server = self._current_server
        if server is not None and server.uri.scheme == "wss":
            return True
        writer = getattr(self._transport, "_io_writer", None)
        extra = getattr(writer, "get_extra_info", None)
        return extra is not None and extra("ssl_object") is not None

    def _refusal(self) -> str:
        server = self._current_server
        where = "the server"
        if server is not None:
            where = f"{server.uri.scheme}://{server.uri.netloc.rsplit('@', 1)[-1]}"
        info: dict[str, Any] = self._server_info or {}
        if info.get("tls_required") or info.get("tls_available"):
            what = "the connection is not encrypted"
        else:
            what = "the server does not offer TLS"
        return (
            f"{where}: {what} but TLS was requested ({self._tls_reason}); "
            "refusing to connect in plain text"
        )


async def open_client(settings: ConnectionSettings, options: dict[str, Any]) -> Client:
    """Connect with nats-py ``options`` plus the TLS the settings ask for.

    Raises :class:`TLSRefused` when TLS was asked for and the first server reached does not
    offer it; nats-py's own errors otherwise. On any failure (cancellation included) the client
    is closed without calling the disconnect/close callbacks: it never was connected.
    """
    reason = settings.tls_requested_by()
    context = ssl_context(settings)
    full = dict(options)
    if context is not None:
        full["tls"] = context
    if settings.tls_first:
        full["tls_handshake_first"] = True
    nc = GuardedClient(reason)
    try:
        await nc.connect(**full)
    except BaseException:
        await nc.abandon()
        raise
    return nc


def explain_failure(exc: BaseException, settings: ConnectionSettings) -> str | None:
    """One line for a failed connection that a TLS setting explains, else ``None``.

    A server configured with ``tls { handshake_first: true }`` waits for the client's TLS
    handshake and closes the connection without a greeting (INFO) when none comes; a server
    without it greets in plain text first, which a TLS-first handshake cannot parse.
    """
    url = settings.safe_url()
    if isinstance(exc, TLSNotOffered):
        return str(exc)
    if settings.tls_first and isinstance(exc, ssl.SSLError):
        if isinstance(exc, ssl.SSLCertVerificationError):
            return None
        reason = exc.reason or " ".join(str(exc).split())
        return (
            f"TLS handshake with {url} failed: {reason} (TLS-first was requested: is the server "
            "configured with tls handshake_first?)"
        )
    # nats-py's words for a connection closed before the server's INFO arrived.
    if not settings.tls_first and "expecting INFO" in str(exc):
        return (
            f"{url} closed the connection without a greeting (INFO): if the server wants the "
            "TLS handshake first (tls handshake_first), use --tls-first"
        )
    return None


# -- connecting ----------------------------------------------------------------------------------


def auth_options(settings: ConnectionSettings) -> dict[str, Any]:
    """nats-py's options for the user/password, token, creds file or nkey seed of ``settings``.

    A creds or nkey file that cannot be read or is malformed, or a missing ``nkeys`` package, is
    a one-line ``ConnectionFailed`` before anything is sent; the message names the file and
    where it was given, never its content.
    """
    options: dict[str, Any] = {}
    if settings.user:
        options["user"] = settings.user
    if settings.password:
        options["password"] = settings.password
    if settings.token:
        options["token"] = settings.token
    if settings.creds or settings.nkey:
        for path, what, key in (
            (settings.creds, "creds file", "creds"),
            (settings.nkey, "nkey file", "nkey"),
        ):
            if path:
                check_readable(path, what, settings.from_where(key))
        if importlib.util.find_spec("nkeys") is None:
            flag = "--creds" if settings.creds else "--nkey"
            raise ConnectionFailed(f"{flag} needs the nkeys package: pip install 'nats-py[nkeys]'")
        if settings.creds:
            check_creds_file(settings.creds, settings.from_where("creds"))
            options["user_credentials"] = settings.creds
        if settings.nkey:
            check_seed_file(settings.nkey, settings.from_where("nkey"))
            options["nkeys_seed"] = settings.nkey
    return options


#: The line before the user JWT, and the line before the user's nkey seed, in a creds file.
_JWT_MARK = b"BEGIN NATS USER JWT"
_SEED_MARK = b"BEGIN USER NKEY SEED"


def check_creds_file(path: str, source: str = "") -> None:
    """A one-line ``ConnectionFailed`` unless ``path`` is a creds file nats-py can use: a user
    JWT on the line after ``BEGIN NATS USER JWT`` and a valid user nkey seed on the line after
    ``BEGIN USER NKEY SEED``, read as nats-py reads them. (nats-py itself, given a file without
    the JWT line, loops forever.) Nothing of the file's content is ever shown."""
    lines = _read_lines(path, "creds file", source)
    problem = _creds_problem(lines)
    if problem:
        raise ConnectionFailed(f"the creds file {path}{source} is malformed: {problem}")


def _creds_problem(lines: list[bytes]) -> str | None:
    jwt = _line_after(lines, _JWT_MARK)
    if jwt is None:
        return "it has no user JWT (no line 'BEGIN NATS USER JWT' followed by the JWT)"
    parts = jwt.strip().split(b".")
    if len(parts) != 3 or not all(parts) or not _claims_of(parts[1]):
        return "the text after 'BEGIN NATS USER JWT' is not a JWT"
    seed = _line_after(lines, _SEED_MARK)
    if seed is None:
        return "it has no user nkey seed (no line 'BEGIN USER NKEY SEED' followed by the seed)"
    # nats-py takes the seed line without its last character (the newline).
    return _seed_problem(bytearray(seed[:-1]))


def check_seed_file(path: str, source: str = "") -> None:
    """A one-line ``ConnectionFailed`` unless ``path`` holds a user nkey seed (the whole file,
    stripped, as nats-py reads it). The seed is never shown."""
    try:
        with open(path, "rb") as handle:
            seed = bytearray(handle.read().strip())
    except OSError as exc:
        raise ConnectionFailed(
            f"cannot read nkey file {path}{source}: {exc.strerror or exc}"
        ) from None
    problem = _seed_problem(seed)
    if problem:
        raise ConnectionFailed(f"the nkey file {path}{source} is malformed: {problem}")


def _read_lines(path: str, what: str, source: str) -> list[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.readlines()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConnectionFailed(f"cannot read {what} {path}{source}: {reason}") from None


def _line_after(lines: list[bytes], mark: bytes) -> bytes | None:
    for index, line in enumerate(lines):
        if mark in line:
            following = lines[index + 1] if index + 1 < len(lines) else b""
            return following if following.strip() else None
    return None


def _claims_of(payload: bytes) -> dict[str, Any] | None:
    """The claims of a JWT's middle part, or ``None`` when it is not base64url JSON."""
    import base64
    import binascii

    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _seed_problem(seed: bytearray) -> str | None:
    """Why ``seed`` is not a user nkey seed, or ``None``. The seed is wiped afterwards."""
    import nkeys  # type: ignore[import-untyped]

    try:
        nkeys.from_seed(seed).wipe()
        prefix, _raw = nkeys.decode_seed(seed)
    except Exception:
        return "it does not hold a valid nkey seed"
    finally:
        seed[:] = b"\0" * len(seed)
    if prefix != nkeys.PREFIX_BYTE_USER:
        return "its nkey seed is not a user's seed (a user seed starts with SU)"
    return None


class ConnectionEvents:
    """What nats-py reported through its callbacks (instead of logging tracebacks).

    Subclasses add their own reactions (log lines, counters) and call ``super()``.
    """

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

    async def on_disconnect(self) -> None:
        return None

    async def on_reconnect(self) -> None:
        return None

    async def on_closed(self) -> None:
        return None

    def denied(self, subject: str) -> bool:
        """Whether the server refused us permission to publish to ``subject``."""
        needle = f'"{subject.lower()}"'
        return any(needle in text.lower() for text in self.permission_errors)


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How a connection reconnects: ``attempts`` per server (``-1``: forever), ``wait`` seconds
    apart."""

    attempts: int
    wait: float


async def connect(
    settings: ConnectionSettings,
    *,
    name: str,
    events: ConnectionEvents,
    reconnect: Reconnect,
    connect_timeout: float,
    limit: float,
) -> Client:
    """Open a connection (TLS and authentication from ``settings``), bounded by ``limit`` seconds.

    ``connect_timeout`` bounds each attempt; nats-py can otherwise wait forever on some failures
    (a TLS handshake the server drops). Any failure is one ``ConnectionFailed`` line. With one
    server URL, a refusal that another attempt would only repeat (see :func:`is_permanent`) ends
    the first connection at once, as the ``nats`` CLI's does, instead of after ``limit``.
    """
    single = len(settings.servers()) == 1
    refused: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def on_error(exc: Exception) -> None:
        await events.on_error(exc)
        if single and not refused.done() and is_permanent(exc):
            refused.set_result(exc)

    options: dict[str, Any] = {
        "servers": settings.servers(),
        "name": name,
        "error_cb": on_error,
        "disconnected_cb": events.on_disconnect,
        "reconnected_cb": events.on_reconnect,
        "closed_cb": events.on_closed,
        "connect_timeout": connect_timeout,
        "allow_reconnect": True,
        "max_reconnect_attempts": reconnect.attempts,
        "reconnect_time_wait": reconnect.wait,
    }
    options.update(auth_options(settings))
    if settings.inbox_prefix:
        options["inbox_prefix"] = settings.inbox_prefix
    attempt = asyncio.ensure_future(open_client(settings, options))
    handed_over = False
    try:
        either: set[asyncio.Future[Any]] = {attempt, refused}
        done, _ = await asyncio.wait(either, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        if attempt in done:
            client = attempt.result()
            handed_over = True
            return client
        if refused in done:
            raise ConnectionFailed(connect_error_line(refused.result(), events, settings))
        raise TimeoutError
    except ConnectionFailed:
        raise
    except TimeoutError as exc:
        cause = events.last_error or exc
        raise ConnectionFailed(connect_error_line(cause, events, settings)) from None
    except Exception as exc:
        raise ConnectionFailed(connect_error_line(exc, events, settings)) from None
    finally:
        if not attempt.done():
            attempt.cancel()
            await asyncio.wait({attempt}, timeout=_ABANDON_WAIT * 2)
        # An attempt given up on (refused, or too late): its error is nobody's, and a connection
        # it made after all is closed.
        given_up = attempt.done() and not attempt.cancelled() and not handed_over
        if given_up and attempt.exception() is None:
            await close_quietly(attempt.result())


def is_permanent(exc: BaseException) -> bool:
    """Whether another attempt at the same server would fail the same way: a server certificate
    we do not trust, a client certificate the server does not accept, or credentials it
    refuses."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return True
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        return "ALERT" in reason and ("CERTIFICATE" in reason or "_CA" in reason)
    return isinstance(exc, nats_errors.AuthorizationError) or (
        "authorization violation" in str(exc).lower()
    )


async def close_quietly(nc: Client, *, drain: bool = False) -> None:
    """Close ``nc`` (draining it first with ``drain``), ignoring errors of a dead connection."""
    if drain:
        try:
            await nc.drain()
        except (nats_errors.Error, OSError, RuntimeError):
            pass
    try:
        await nc.close()
    except Exception:
        pass


# -- one-line errors ------------------------------------------------------------------------------


def connect_error_line(
    exc: BaseException, events: ConnectionEvents, settings: ConnectionSettings
) -> str:
    """Why a connection could not be made, in one line without secrets."""
    url = settings.safe_url()
    cause: BaseException = exc
    if isinstance(exc, nats_errors.NoServersError) and events.last_error is not None:
        cause = events.last_error
    # A certificate either side refused explains the lost connections that came with it.
    refusals = [e for e in events.errors if isinstance(e, ssl.SSLError) and is_permanent(e)]
    if refusals and not isinstance(cause, ssl.SSLError):
        cause = refusals[-1]
    for seen in (*events.errors, exc):
        if isinstance(seen, nats_errors.AuthorizationError) or "authorization violation" in (
            str(seen).lower()
        ):
            return refused_line(settings)
    text = str(cause).lower()
    if isinstance(cause, nats_errors.AuthorizationError) or "authorization violation" in text:
        return refused_line(settings)
    if "authentication" in text or "user authentication" in text:
        return refused_line(settings)
    if isinstance(cause, ConnectionRefusedError) or (
        isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
    ):
        return f"cannot connect to {url}: connection refused"
    if isinstance(cause, (asyncio.TimeoutError, TimeoutError, nats_errors.TimeoutError)):
        return f"timed out after {settings.timeout:g}s waiting for {url} to answer"
    explained = explain_failure(cause, settings)
    if explained is not None:
        return scrub(explained, settings)
    if isinstance(cause, ssl.SSLError):
        return scrub(f"TLS handshake with {url} failed: {tls_failure(cause, settings)}", settings)
    if isinstance(cause, nats_errors.SecureConnRequiredError):
        return f"{url} requires TLS: use a tls:// URL or --tls-ca"
    if isinstance(cause, nats_errors.SecureConnWantedError):
        return f"{url} does not offer TLS but TLS was requested"
    if isinstance(cause, OSError):
        text = f"cannot connect to {url}: {cause.strerror or describe(cause)}"
        if settings.tls_requested_by() and not settings.tls_cert:
            # TLS 1.3: a server that wants a client certificate says so after the handshake,
            # and the alert can lose the race with the client's first write.
            text += " (if the server requires a client certificate, use --tls-cert and --tls-key)"
        return scrub(text, settings)
    return scrub(f"cannot connect to {url}: {describe(cause)}", settings)


#: OpenSSL's verification codes for a server certificate no trusted CA signed.
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})
#: OpenSSL's verification code for an expired certificate.
_EXPIRED = 10


def tls_failure(exc: ssl.SSLError, settings: ConnectionSettings) -> str:
    """Why a TLS handshake failed: the server's certificate (not signed by the given CA,
    expired) or ours (missing, refused by the server), else OpenSSL's words."""
    verify = getattr(exc, "verify_message", None)
    if isinstance(exc, ssl.SSLCertVerificationError) and verify:
        code = getattr(exc, "verify_code", None)
        if code == _EXPIRED:
            return "the server's certificate has expired"
        if code in _UNTRUSTED and settings.tls_ca:
            return (
                f"the server's certificate is not signed by the CA in {settings.tls_ca}"
                f"{settings.from_where('tls_ca')}: {verify}"
            )
        return str(verify)
    reason = exc.reason or describe(exc)
    if "CERTIFICATE_REQUIRED" in reason:
        return f"the server requires a client certificate ({reason}): use --tls-cert and --tls-key"
    if settings.tls_cert and "ALERT" in reason and ("CERTIFICATE" in reason or "_CA" in reason):
        return (
            f"the server refused the client certificate {settings.tls_cert}"
            f"{settings.from_where('tls_cert')}: {reason}"
        )
    return str(reason)


def refused_line(settings: ConnectionSettings) -> str:
    """The server refused to authenticate us: which credentials it refused and where they were
    given, without a secret."""
    if settings.creds:
        what = f"the credentials in {settings.creds}{settings.from_where('creds')}"
    elif settings.nkey:
        what = f"the nkey in {settings.nkey}{settings.from_where('nkey')}"
    elif settings.user and settings.password:
        what = f"user {settings.user!r} with the password{settings.from_where('password')}"
    elif settings.user:
        what = f"user {settings.user!r}{settings.from_where('user')} without a password"
    elif settings.token:
        what = f"the token{settings.from_where('token')}"
    elif settings.url_has_userinfo():
        what = "the user or token in the server URL"
    else:
        return (
            "authorization violation: the server wants credentials and none were given "
            "(--user/--password, --token, --creds or --nkey, or NATS_USER/NATS_PASSWORD, "
            "NATS_TOKEN, NATS_CREDS or NATS_NKEY)"
        )
    return f"authorization violation: the server refused {what}"


def no_jetstream_line(settings: ConnectionSettings, detail: str | None = None) -> str:
    where = settings.safe_url()
    reason = detail or f"no responders on {settings.api_prefix()}.INFO"
    if settings.js_domain:
        return (
            f"JetStream not enabled for domain {settings.js_domain!r} on {where} ({reason}): "
            "check --js-domain"
        )
    return f"JetStream not enabled on {where} ({reason})"


def permission_line(subject: str) -> str:
    return f"{AUTH_HINT} (no permission to publish to {subject})"


def describe(exc: BaseException) -> str:
    """An exception as text without nats-py's ``nats:`` prefix, on one line."""
    text = str(exc).strip() or type(exc).__name__
    return text.removeprefix("nats: ").replace("\n", " ")


def scrub(text: str, settings: ConnectionSettings) -> str:
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


# -- requests and replies -----------------------------------------------------------------------


async def request(
    nc: Client,
    subject: str,
    payload: bytes = _EMPTY,
    *,
    timeout: float,  # noqa: ASYNC109
    headers: Mapping[str, str] | None = None,
) -> Msg:
    """A request; nats errors become ``NoResponders``, ``TransportTimeout`` or
    ``TransportError``."""
    try:
        return await nc.request(
            subject, payload, timeout=timeout, headers=dict(headers or {}) or None
        )
    except nats_errors.NoRespondersError:
        raise NoResponders(f"no responders for {subject}") from None
    except (TimeoutError, nats_errors.TimeoutError):
        raise TransportTimeout(f"no answer for {subject} within {timeout:g}s") from None
    except (nats_errors.Error, OSError) as exc:
        raise TransportError(f"request {subject} failed: {describe(exc)}") from None


async def publish(
    nc: Client,
    subject: str,
    payload: bytes,
    *,
    reply: str = "",
    headers: Mapping[str, str] | None = None,
) -> None:
    """A core publish; a nats error becomes ``TransportError``."""
    try:
        await nc.publish(subject, payload, reply=reply, headers=dict(headers or {}) or None)
    except (nats_errors.Error, OSError) as exc:
        raise TransportError(f"publish to {subject} failed: {describe(exc)}") from None


def decode_reply(subject: str, data: bytes, *, default: str = "unknown error") -> JSONDict:
    """A JetStream reply as the server sent it; an error envelope raises ``JetStreamAPIError``,
    anything but a JSON object ``TransportError``. An empty reply is an empty object."""
    try:
        answer = jsontext.loads(data) if data else {}
    except ValueError:
        raise TransportError(f"{subject} answered with invalid JSON") from None
    if not isinstance(answer, dict):
        raise TransportError(f"{subject} answered with a non-object")
    error = answer.get("error")
    if error is not None:
        if not isinstance(error, dict):
            error = {"description": str(error)}
        raise JetStreamAPIError(
            subject,
            int(error.get("code") or 0),
            int(error.get("err_code") or 0),
            str(error.get("description") or default),
        )
    return answer


# -- lists -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListResult(Generic[T]):
    """All pages of a ``STREAM.LIST``, ``STREAM.NAMES`` or ``CONSUMER.LIST``.

    ``missing`` names the server could not report (a cluster's peers are offline or did not
    answer within its 4 s); ``offline`` maps names the server could not load to its reason (they
    are in ``missing`` too). Neither is ever in ``items``.
    """

    items: list[T]
    missing: list[str] = field(default_factory=list)
    offline: dict[str, str] = field(default_factory=dict)


def entry_name(info: Any) -> str:
    """The name of a list entry: a name itself (``STREAM.NAMES``), or a stream or consumer info.

    Stream infos carry it in ``config.name``; consumer infos in ``name``, except the bare
    entries a cluster lists for consumers whose peers are all offline (only ``config``).
    """
    if isinstance(info, str):
        return info
    config = info.get("config") or {}
    return str(info.get("name") or config.get("name") or config.get("durable_name") or "")


async def pages(
    send: Callable[[JSONDict | None], Awaitable[JSONDict]],
    body: JSONDict,
    key: str,
    result: ListResult[T],
) -> AsyncIterator[list[T]]:
    """Page through a list request (``send`` makes one request with the body it is given):
    ``offset`` advances by the names each reply accounts for. Yields each page's new items and
    collects items, missing and offline names into ``result``.

    A clustered server whose peers are all offline lists the resource twice: as a bare
    entry (config only, no state; consumers even without a name) *and* in ``missing``.
    Such entries are dropped from the items, and every name counts once for the offset
    (the plain ``len(items) + len(missing)`` would skip entries of the next page).
    """
    seen: set[str] = set()
    missing_seen: set[str] = set()
    offset = 0
    while True:
        page_body = dict(body)
        if offset:
            page_body["offset"] = offset
        data = await send(page_body or None)
        items: list[T] = data.get(key) or []
        missing: list[str] = data.get("missing") or []
        offline: dict[str, str] = data.get("offline") or {}
        unavailable = set(missing)
        unavailable.update(offline)
        names: set[str] = set()
        page: list[T] = []
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


async def collect(
    send: Callable[[JSONDict | None], Awaitable[JSONDict]], body: JSONDict, key: str
) -> ListResult[Any]:
    """Every page of a list request (see :func:`pages`)."""
    result: ListResult[Any] = ListResult([])
    async for _page in pages(send, body, key, result):
        pass
    return result


def parse_headers(raw: bytes) -> dict[str, str]:
    """``NATS/1.0\\r\\nName: value\\r\\n\\r\\n`` → ``{"Name": "value"}`` (last value wins): the
    header block of a message read through the API (``STREAM.MSG.GET``, base64-decoded)."""
    result: dict[str, str] = {}
    lines = raw.decode("utf-8", errors="replace").split("\r\n")
    for line in lines[1:]:
        if not line or ":" not in line:
            continue
        name, value = line.split(":", 1)
        result[name.strip()] = value.strip()
    return result
