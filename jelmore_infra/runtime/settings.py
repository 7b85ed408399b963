"""Runtime settings: where the shared connection goes and which subject prefix events use.

Values come from ``configure(...)`` / ``Runtime(...)`` arguments first, then the environment
(``NATS_URL``, ``NATS_SUBJECT_PREFIX``, ``NATS_CLIENT_ID``), then defaults. Authentication, TLS
and the request timeout come from a ``ConnectionSettings`` (the same object the CLI builds from
its ``nats``-style options, TLS-first included): given as ``connection=``, it replaces what the
environment says; without one, it is resolved from the environment exactly as the CLI resolves it
(``connection.resolve_settings``): the ``nats`` CLI's variables ``NATS_URL``, ``NATS_USER``,
``NATS_PASSWORD``, ``NATS_TOKEN``, ``NATS_CREDS``, ``NATS_NKEY``, ``NATS_CERT``, ``NATS_KEY``,
``NATS_CA`` and ``NATS_TIMEOUT`` over the ``nats`` context named by ``NATS_CONTEXT``, with a
``url=`` argument over all of them. To override only some of them, build the settings with
``resolve_settings(creds=..., ...)`` (it reads the rest from the environment) and pass them as
``connection=``.
A ``tls://`` URL or any TLS setting makes TLS mandatory: the connection is refused, never made in
plain text. Secrets stay inside that object and are never logged.

Sensitive events: ``encryption_keys`` (a ``KeyRing``, or a ``JELMORE_ENCRYPTION_KEYS``-style
string) and ``sensitive_event_types`` (event types to encrypt besides those the event catalogue
marks ``sensitive``: a set of event types, or a predicate on the event type);
without explicit keys they come from ``JELMORE_ENCRYPTION_KEYS`` (see ``runtime.crypto``). A
malformed value is an error here, at configuration, naming the variable but never its value.

Pure apart from reading the environment in ``from_env``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from jelmore_infra.connection import ConnectionSettings, resolve_settings
from jelmore_infra.errors import JelmoreError
from jelmore_infra.runtime.crypto import KeyRing, keys_from_env, load_keys

DEFAULT_PREFIX = "jelmore"
DEFAULT_CLIENT_ID = "jelmore-runtime"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

#: Which event types are sensitive: a set of names, or a predicate asked per published event.
SensitiveTypes = frozenset[str] | Callable[[str], bool]


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
    #: keys for sensitive events: the first encrypts, all decrypt (``None``: no keys)
    encryption_keys: KeyRing | None = None
    #: event types whose payload is encrypted on publish (see ``runtime.crypto``)
    sensitive_event_types: SensitiveTypes = frozenset()

    def is_sensitive(self, event_type: str) -> bool:
        """Whether ``event_type``'s payload must be encrypted on publish."""
        spec = self.sensitive_event_types
        if isinstance(spec, frozenset):
            return event_type in spec
        return bool(spec(event_type))

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
    encryption_keys: KeyRing | str | None = None,
    sensitive_event_types: Iterable[str] | Callable[[str], bool] | None = None,
) -> RuntimeSettings:
    """Build settings: explicit values win over ``NATS_*`` (and ``JELMORE_ENCRYPTION_KEYS``)
    environment variables, the ``nats`` context (``NATS_CONTEXT``) and defaults; ``connection``
    replaces every connection setting of the environment. ``encryption_keys`` as a string is read
    like that variable; ``KeyConfigError`` when malformed."""
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
    if isinstance(encryption_keys, str):
        keys = load_keys(encryption_keys, source="encryption_keys")
    else:
        keys = encryption_keys if encryption_keys is not None else keys_from_env(environ)
    result = RuntimeSettings(
        connection=conn,
        prefix=chosen_prefix,
        client_id=chosen_id,
        encryption_keys=keys,
        sensitive_event_types=_sensitive(sensitive_event_types),
    )
    if connect_timeout is not None:
        if connect_timeout <= 0:
            raise SettingsError(f"connect_timeout must be positive, got {connect_timeout}")
        result = replace(result, connect_timeout=connect_timeout)
    return result


def _sensitive(value: Iterable[str] | Callable[[str], bool] | None) -> SensitiveTypes:
    """A predicate as given; names checked to be event type names. These types are encrypted
    besides those the event catalogue marks ``sensitive``."""
    if value is None:
        return frozenset()
    if callable(value):
        return value
    if isinstance(value, str):
        raise SettingsError("sensitive_event_types must be a collection of event types, not a str")
    names = frozenset(value)
    from jelmore_infra.topology.events import EVENT_TYPE

    for name in sorted(names, key=str):
        if not isinstance(name, str) or not EVENT_TYPE.match(name):
            raise SettingsError(f"sensitive_event_types: {name!r} is not an event type name")
    return names
