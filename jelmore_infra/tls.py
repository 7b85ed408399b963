"""Requested TLS is TLS or no connection: the nats-py client the CLI and the runtime both use.

nats-py 2.x upgrades a connection to TLS only when the server's INFO says ``tls_required`` (or
when ``tls_handshake_first`` is set). A ``tls://`` URL or an SSL context does not make it refuse a
server that offers no TLS: it carries on in plain text and sends CONNECT, with the password,
token or signed nonce in it, in clear. The ``nats`` CLI refuses instead, and upgrades a server
that only *allows* TLS (``tls_available``).

:class:`GuardedClient` does the same. When TLS was asked for (see
:meth:`ConnectionSettings.tls_requested_by`), it upgrades a server that advertises
``tls_available``, and it checks the socket itself right before CONNECT is built: a connection
that is not encrypted is refused before the client has written a single byte, so no credential
ever leaves in clear. A refusal on the first connection raises :class:`TLSRefused` (a
``ConnectionFailed``) at once; on a later reconnect it is a nats error like any other failed
attempt, so the client tries the next server.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from nats import errors as nats_errors
from nats.aio.client import Client

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ConnectionFailed

#: Seconds to wait for an abandoned connection to close.
_ABANDON_WAIT = 2.0
#: nats-py methods the guard hooks into; a nats-py without them must not connect unguarded.
_HOOKS = ("_process_info", "_connect_command", "_close")


class TLSRefused(ConnectionFailed):
    """TLS was asked for and the server did not offer it (nothing was sent)."""


class TLSNotOffered(nats_errors.SecureConnWantedError):
    """The nats-py error for a refused reconnect attempt (the client moves on to another server)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_readable(path: str, what: str) -> None:
    """A one-line ``ConnectionFailed`` unless ``path`` can be opened for reading."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConnectionFailed(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def ssl_context(settings: ConnectionSettings) -> ssl.SSLContext | None:
    """The SSL context to connect with, or ``None`` when no TLS was asked for."""
    if settings.tls_requested_by() is None:
        return None
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConnectionFailed("--tls-cert and --tls-key must be given together")
    for path, what in (
        (settings.tls_ca, "TLS CA file"),
        (settings.tls_cert, "TLS certificate"),
        (settings.tls_key, "TLS key"),
    ):
        if path:
            check_readable(path, what)
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.tls_ca)
        if settings.tls_cert and settings.tls_key:
            context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (ssl.SSLError, OSError, ValueError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise ConnectionFailed(f"cannot load TLS files: {text}") from None
    return context


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
