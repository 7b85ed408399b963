"""Connection settings shared by every command that talks to a server, and by the runtime.

Options follow the ``nats`` CLI (``--server``, ``--creds``, ``--nkey``, ``--user``/``--password``,
``--token``, ``--tls-*``, ``--context``, ``--js-domain``, ``--timeout``), and so do the
environment variables (``NATS_URL``, ``NATS_USER``, ``NATS_PASSWORD``, ``NATS_TOKEN``,
``NATS_CREDS``, ``NATS_NKEY``, ``NATS_CERT``, ``NATS_KEY``, ``NATS_CA``, ``NATS_TIMEOUT`` and
``NATS_CONTEXT``) and the context files (``$XDG_CONFIG_HOME/nats/context/NAME.json``).
:func:`resolve_settings` combines them, highest first: command-line options (or the runtime's
explicit arguments), an environment file's ``connection:`` block, the ``NATS_*`` variables, the
``nats`` context, defaults. docs/connection.md describes the rules.

Secrets are kept here and nowhere else: ``repr()`` and ``safe_url()`` never show them. Every
resolved setting remembers where it came from (``source_of``), so errors can name the option,
variable or context field to fix without showing a value.

TLS is asked for by a ``tls://`` URL, any TLS file, or TLS-first; once asked for, a connection
without TLS is refused (``jelmore_infra.transport``), never made in plain text.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jelmore_infra.errors import JelmoreError

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_TIMEOUT = 5.0
#: The longest timeout accepted from any source: one day.
MAX_TIMEOUT = 24 * 3600.0

#: The ``nats`` CLI's environment variables, by setting.
ENV_VARS: dict[str, str] = {
    "url": "NATS_URL",
    "user": "NATS_USER",
    "password": "NATS_PASSWORD",
    "token": "NATS_TOKEN",
    "creds": "NATS_CREDS",
    "nkey": "NATS_NKEY",
    "tls_cert": "NATS_CERT",
    "tls_key": "NATS_KEY",
    "tls_ca": "NATS_CA",
    "timeout": "NATS_TIMEOUT",
}
#: The variable naming the ``nats`` context to use (like ``--context``).
CONTEXT_VAR = "NATS_CONTEXT"
#: The fields of a ``nats`` CLI context file, by setting.
CONTEXT_FIELDS: dict[str, str] = {
    "url": "url",
    "user": "user",
    "password": "password",
    "token": "token",
    "creds": "creds",
    "nkey": "nkey",
    "tls_cert": "cert",
    "tls_key": "key",
    "tls_ca": "ca",
    "tls_first": "tls_first",
    "js_domain": "jetstream_domain",
    "inbox_prefix": "inbox_prefix",
}
#: Context fields naming files: ``~`` and ``$VAR`` in them are expanded (as the ``nats`` CLI does).
_CONTEXT_PATHS = ("creds", "nkey", "tls_cert", "tls_key", "tls_ca")
#: The command-line option of each setting.
OPTIONS: dict[str, str] = {
    "url": "--server",
    "user": "--user",
    "password": "--password",
    "token": "--token",
    "creds": "--creds",
    "nkey": "--nkey",
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
    "tls_ca": "--tls-ca",
    "tls_first": "--tls-first",
    "js_domain": "--js-domain",
    "timeout": "--timeout",
}
#: An environment file's ``connection:`` keys (the ``nats`` CLI's names), by setting.
_BLOCK_KEYS = {key: key for key in OPTIONS} | {"url": "server"}
#: Settings that each choose a way to authenticate (a password only completes a user).
AUTH_METHODS = ("user", "token", "creds", "nkey")
_TLS_KEYS = ("tls_ca", "tls_cert", "tls_key", "tls_first")


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How to reach and authenticate to a NATS server."""

    url: str = DEFAULT_URL
    creds: str | None = None
    nkey: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    #: TLS handshake before the server's INFO (a server with ``tls { handshake_first: true }``)
    tls_first: bool = False
    js_domain: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    #: what asked for TLS (``--tls-ca``, ``NATS_CA``, ``nats context 'x' (ca)``), if known
    tls_origin: str | None = None
    #: the prefix of the reply subjects of requests (nats-py's default ``_INBOX`` when unset); a
    #: user whose permissions allow only its own inbox space connects with that prefix
    inbox_prefix: str | None = None
    #: (setting, where it came from) for each setting :func:`resolve_settings` resolved
    sources: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        """Every setting but the secrets: the URL without user info, and secrets as ``<set>``."""
        shown = {
            "url": self.safe_url(),
            "creds": self.creds,
            "nkey": self.nkey,
            "user": self.user,
            "password": "<set>" if self.password else None,
            "token": "<set>" if self.token else None,
            "tls_cert": self.tls_cert,
            "tls_key": self.tls_key,
            "tls_ca": self.tls_ca,
            "tls_first": self.tls_first,
            "js_domain": self.js_domain,
            "timeout": self.timeout,
        }
        return "ConnectionSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def safe_url(self) -> str:
        """The server URL(s) with any user, password or token removed."""
        return ",".join(_strip_userinfo(u.strip()) for u in self.url.split(","))

    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    def source_of(self, setting: str) -> str | None:
        """Where ``setting`` came from (``--creds``, ``NATS_CREDS``, ``nats context 'x'
        (creds)``…), or ``None`` when unknown (settings built directly)."""
        return dict(self.sources).get(setting)

    def from_where(self, setting: str) -> str:
        """`` (from SOURCE)`` for messages, or nothing when the source is unknown."""
        source = self.source_of(setting)
        return f" (from {source})" if source else ""

    def url_has_userinfo(self) -> bool:
        """Whether a server URL carries a user, password or token."""
        return any("@" in u.split("://", 1)[-1].split("/", 1)[0] for u in self.servers())

    def tls_requested_by(self) -> str | None:
        """What asks for TLS (named in errors), or ``None`` when plain text is acceptable.

        Like the ``nats`` CLI: a ``tls://`` URL, any TLS file, or TLS-first.
        """
        if any(u.lower().startswith("tls://") for u in self.servers()):
            return "tls:// URL"
        if not (self.tls_ca or self.tls_cert or self.tls_key or self.tls_first):
            return None
        if self.tls_origin:
            return self.tls_origin
        if self.tls_first:
            return "TLS-first"
        return "TLS CA file" if self.tls_ca else "TLS certificate"

    def api_prefix(self) -> str:
        """``$JS.API`` or, with a JetStream domain, ``$JS.<domain>.API``."""
        return f"$JS.{self.js_domain}.API" if self.js_domain else "$JS.API"


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


# -- values ----------------------------------------------------------------------------------------


def parse_timeout(value: str, source: str) -> float:
    """A timeout in seconds from a duration (``5s``, ``500ms``, ``1m30s``: what the ``nats`` CLI
    takes) or a number of seconds (``2.5``); more than 0 and at most a day. ``source`` names
    where the value came from in the error."""
    from jelmore_infra.units import UnitError, parse_duration

    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_duration(text) / 1e9
        except UnitError:
            raise JelmoreError(
                f"{source}: {value!r} is not a timeout: write a duration such as 5s or 500ms, "
                "or a number of seconds"
            ) from None
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_TIMEOUT:
        raise JelmoreError(
            f"{source}: {value!r} is not a timeout: it must be more than 0 and at most "
            f"{MAX_TIMEOUT:g} seconds"
        )
    return seconds


# -- nats contexts ---------------------------------------------------------------------------------


def context_path(name: str, env: Mapping[str, str] | None = None) -> Path:
    """Where the ``nats`` CLI keeps context NAME (``$XDG_CONFIG_HOME/nats/context/NAME.json``,
    else ``~/.config/nats/context/NAME.json``); a name with a ``/`` or ending in ``.json`` is a
    path to the file itself. ``env`` stands in for ``os.environ``."""
    environ = os.environ if env is None else env
    if "/" in name or name.endswith(".json"):
        return Path(name).expanduser()
    home = environ.get("HOME")
    base = environ.get("XDG_CONFIG_HOME") or Path(home or Path.home()) / ".config"
    return Path(base) / "nats" / "context" / f"{name}.json"


def load_context(
    name: str, source: str | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The JSON object of context ``name``; ``source`` (``NATS_CONTEXT``…) is named in errors.
    ``env`` stands in for ``os.environ``."""
    path = context_path(name, env)
    via = f" (from {source})" if source else ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JelmoreError(f"nats context {name!r}{via} not found ({path})") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise JelmoreError(f"cannot read nats context {name!r}{via} ({path}): {reason}") from None
    if not isinstance(data, dict):
        raise JelmoreError(f"nats context {name!r}{via} ({path}) is not a JSON object")
    return data


_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def expand_path(path: str, environ: Mapping[str, str]) -> str:
    """``$VAR``/``${VAR}`` (unset: empty) and a leading ``~`` expanded, as the ``nats`` CLI
    expands the file names in a context."""
    path = _VAR.sub(lambda m: environ.get(m.group(1) or m.group(2), ""), path)
    if path == "~" or path.startswith("~/"):
        home = environ.get("HOME") or str(Path.home())
        path = home + path[1:]
    return path


def _from_context(name: str, data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """A context's settings: empty fields are unset, file names are expanded."""
    out: dict[str, Any] = {}
    for key, field_name in CONTEXT_FIELDS.items():
        value = data.get(field_name)
        if value in (None, "", False):
            continue
        if key == "tls_first":
            if value is not True:
                raise JelmoreError(f"nats context {name!r}: tls_first must be true or false")
            out[key] = True
            continue
        if not isinstance(value, str):
            raise JelmoreError(f"nats context {name!r}: {field_name} must be a string")
        if key in _CONTEXT_PATHS:
            value = expand_path(value, environ)
        out[key] = value
    return out


# -- the sources, highest first --------------------------------------------------------------------


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the ``NATS_*`` variables hold (empty ones are unset)."""
    out: dict[str, Any] = {}
    for key, var in ENV_VARS.items():
        text = environ.get(var)
        if text:
            out[key] = parse_timeout(text, var) if key == "timeout" else text
    return out


def _from_block(block: Mapping[str, str], label: str) -> dict[str, Any]:
    """An environment file's ``connection:`` values as settings (``context`` is handled by the
    caller)."""
    out: dict[str, Any] = {}
    for key, block_key in _BLOCK_KEYS.items():
        text = block.get(block_key)
        if not text:
            continue
        if key == "tls_first":
            if text.strip().lower() == "true":
                out[key] = True
        elif key == "timeout":
            out[key] = parse_timeout(text, f"connection timeout {label}")
        else:
            out[key] = text
    return out


@dataclass(frozen=True, slots=True)
class _Source:
    values: dict[str, Any]
    label: Callable[[str], str]
    #: a user without a password is a token here (the ``nats`` CLI's ``--user``/``NATS_USER``)
    user_may_be_token: bool = False


def resolve_settings(
    *,
    url: str | None = None,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
    environment: Mapping[str, str] | None = None,
    environment_name: str | None = None,
    **given: Any,
) -> ConnectionSettings:
    """Combine, highest first: ``url`` and ``given`` settings (command-line options, or the
    runtime's arguments), an environment file's ``connection:`` block (``environment``, by
    ``nats`` CLI name: ``server``, ``creds``, ``tls_ca``…, of environment ``environment_name``),
    the ``NATS_*`` variables, a ``nats`` context, and defaults. ``env`` stands in for
    ``os.environ``.

    The context is ``context`` (``--context``), else the block's ``context``, else
    ``NATS_CONTEXT``. Each setting comes from the highest source that has it, except
    authentication: the highest source naming a user, token, creds file or nkey chooses the
    method(s), and lower sources' other methods are dropped (a password from anywhere completes
    a user). As in the ``nats`` CLI, ``--user``/``NATS_USER`` without any password is a token.

    The CLI and the runtime (``runtime.settings.from_env``) both resolve their settings here; a
    program can call it with the few settings it wants to fix and hand the result to
    ``runtime.configure(connection=...)``.
    """
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown connection settings: {', '.join(unknown)}")
    environ = os.environ if env is None else env
    block = dict(environment or {})
    where = f"of environment {environment_name!r}" if environment_name else "of the environment"
    ctx_name, ctx_source = context, "--context"
    if ctx_name is None and block.get("context"):
        ctx_name, ctx_source = block["context"], f"connection context {where}"
    if ctx_name is None and environ.get(CONTEXT_VAR):
        ctx_name, ctx_source = environ[CONTEXT_VAR], CONTEXT_VAR
    ctx: dict[str, Any] = {}
    if ctx_name:
        ctx = _from_context(ctx_name, load_context(ctx_name, ctx_source, environ), environ)
    top = {k: v for k, v in given.items() if v is not None}
    if url:
        top["url"] = url
    sources = [
        _Source(top, OPTIONS.__getitem__, user_may_be_token=True),
        _Source(_from_block(block, where), lambda k: f"connection {_BLOCK_KEYS[k]} {where}"),
        _Source(_from_env(environ), ENV_VARS.__getitem__, user_may_be_token=True),
        _Source(ctx, lambda k: f"nats context {ctx_name!r} ({CONTEXT_FIELDS[k]})"),
    ]
    values, origin = _merge(sources)
    return ConnectionSettings(
        **{k: v for k, (v, _) in values.items()},
        tls_origin=origin,
        sources=tuple((k, label) for k, (_, label) in values.items()),
    )


def _merge(sources: list[_Source]) -> tuple[dict[str, tuple[Any, str]], str | None]:
    """Each setting's (value, source label), and the label of what asked for TLS first."""
    chosen: dict[str, tuple[Any, str]] = {}
    user_is_token = False
    for source in sources:
        for key, value in source.values.items():
            if key not in chosen:
                chosen[key] = (value, source.label(key))
                if key == "user":
                    user_is_token = source.user_may_be_token
    # Authentication comes from one source: the highest that names a method.
    methods: set[str] = set()
    for source in sources:
        methods = {key for key in AUTH_METHODS if key in source.values}
        if methods:
            break
    for key in AUTH_METHODS:
        if key not in methods:
            chosen.pop(key, None)
    if "user" not in methods:
        chosen.pop("password", None)
    elif user_is_token and "password" not in chosen and "token" not in chosen:
        chosen["token"] = chosen.pop("user")
    for source in sources:
        for key in _TLS_KEYS:
            if source.values.get(key):
                return chosen, source.label(key)
    return chosen, None
