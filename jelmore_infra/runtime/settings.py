"""Runtime settings: where the shared connection goes and which subject prefix events use.

Values come from ``configure(...)`` / ``Runtime(...)`` arguments first, then the environment
(``NATS_URL``, ``NATS_SUBJECT_PREFIX``, ``NATS_CLIENT_ID``), then defaults. Authentication and TLS
come from a ``ConnectionSettings`` (the same object the CLI builds from its ``nats``-style options,
TLS-first included); without one, it is resolved from the environment exactly as the CLI resolves
it (``connection.resolve_settings``: ``NATS_URL`` and the ``nats`` CLI's ``NATS_CA``,
``NATS_CERT`` and ``NATS_KEY``; no other variable is read).
A ``tls://`` URL or any TLS setting makes TLS mandatory: the connection is refused, never made in
plain text. Secrets stay inside that object and are never logged.

Pure apart from reading the environment in ``from_env``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from jelmore_infra.connection import ConnectionSettings, resolve_settings
from jelmore_infra.errors import JelmoreError

DEFAULT_PREFIX = "jelmore"
DEFAULT_CLIENT_ID = "jelmore-runtime"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


class SettingsError(JelmoreError):
    """A runtime setting has an unusable value."""


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """Everything the shared connection and the event API need to know."""

    connection: ConnectionSettings = field(default_factory=ConnectionSettings)
    prefix: str = DEFAULT_PREFIX
    client_id: str = DEFAULT_CLIENT_ID
    #: seconds to wait for the first connection before reporting that the server is unreachable
    connect_timeout: float = 10.0
    #: seconds between reconnect attempts (reconnecting never stops)
    reconnect_wait: float = 0.5

    @property
    def url(self) -> str:
        return self.connection.url

    def safe_url(self) -> str:
        return self.connection.safe_url()

    def main_subjects(self) -> str:
        """The wildcard every session event subject falls under: ``<prefix>.session.>``."""
        return f"{self.prefix}.session.>"

    def dlq_subjects(self) -> str:
        """The wildcard dead-lettered events are published under: ``<prefix>.dlq.>``."""
        return f"{self.prefix}.dlq.>"


def from_env(
    env: Mapping[str, str] | None = None,
    *,
    url: str | None = None,
    prefix: str | None = None,
    client_id: str | None = None,
    connection: ConnectionSettings | None = None,
    connect_timeout: float | None = None,
) -> RuntimeSettings:
    """Build settings: explicit values win over ``NATS_*`` environment variables and defaults."""
    environ = os.environ if env is None else env
    if connection is None:
        conn = resolve_settings(url=url, env=environ)
    else:
        conn = replace(connection, url=url) if url else connection
    chosen_prefix = (prefix or environ.get("NATS_SUBJECT_PREFIX") or DEFAULT_PREFIX).strip()
    if not _PREFIX_RE.match(chosen_prefix):
        raise SettingsError(
            f"subject prefix {chosen_prefix!r} is not a valid subject (letters, digits, - and _,"
            " separated by dots)"
        )
    chosen_id = client_id or environ.get("NATS_CLIENT_ID") or DEFAULT_CLIENT_ID
    result = RuntimeSettings(connection=conn, prefix=chosen_prefix, client_id=chosen_id)
    if connect_timeout is not None:
        if connect_timeout <= 0:
            raise SettingsError(f"connect_timeout must be positive, got {connect_timeout}")
        result = replace(result, connect_timeout=connect_timeout)
    return result
