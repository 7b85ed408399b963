"""Connection settings shared by every command that talks to a server.

Options follow the ``nats`` CLI (``--server``, ``--creds``, ``--nkey``, ``--user``/``--password``,
``--token``, ``--tls-*``, ``--context``, ``--js-domain``). The ``nats`` CLI's TLS variables
(``NATS_CA``, ``NATS_CERT``, ``NATS_KEY``) fill in what the command line leaves out, and a ``nats``
CLI context file what is still missing. Secrets are kept here and nowhere else: ``describe()`` and
``safe_url()`` never show them.

TLS is asked for by a ``tls://`` URL, any TLS file, or TLS-first; once asked for, a connection
without TLS is refused (``jelmore_infra.tls``), never made in plain text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jelmore_infra.errors import JelmoreError

DEFAULT_URL = "nats://127.0.0.1:4222"

#: The ``nats`` CLI's environment variables for the TLS files, by setting.
TLS_ENV = {"tls_ca": "NATS_CA", "tls_cert": "NATS_CERT", "tls_key": "NATS_KEY"}
#: The ``nats`` CLI context fields for TLS, by setting.
_TLS_CONTEXT = {"tls_ca": "ca", "tls_cert": "cert", "tls_key": "key", "tls_first": "tls_first"}
#: The command-line option of each TLS setting (named when TLS cannot be had).
_TLS_OPTION = {
    "tls_ca": "--tls-ca",
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
    "tls_first": "--tls-first",
}


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
    timeout: float = 5.0
    #: what asked for TLS (``--tls-ca``, ``NATS_CA``, ``nats context 'x' (ca)``), if known
    tls_origin: str | None = None
    #: the prefix of the reply subjects of requests (nats-py's default ``_INBOX`` when unset); a
    #: user whose permissions allow only its own inbox space connects with that prefix
    inbox_prefix: str | None = None

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


def context_path(name: str) -> Path:
    """Where the ``nats`` CLI keeps context NAME (``$XDG_CONFIG_HOME/nats/context/NAME.json``)."""
    if "/" in name or name.endswith(".json"):
        return Path(name).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "nats" / "context" / f"{name}.json"


def load_context(name: str) -> dict[str, Any]:
    path = context_path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JelmoreError(f"nats context {name!r} not found ({path})") from None
    except (OSError, ValueError) as exc:
        raise JelmoreError(f"cannot read nats context {name!r} ({path}): {exc}") from None
    if not isinstance(data, dict):
        raise JelmoreError(f"nats context {name!r} ({path}) is not a JSON object")
    return data


def tls_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The TLS files named by ``NATS_CA``, ``NATS_CERT`` and ``NATS_KEY`` (empty ones ignored),
    with ``tls_origin`` naming the first of these variables that is set."""
    environ = os.environ if env is None else env
    values: dict[str, Any] = {key: environ[var] for key, var in TLS_ENV.items() if environ.get(var)}
    if values:
        values["tls_origin"] = TLS_ENV[next(iter(values))]
    return values


def _tls_origin(
    given: Mapping[str, Any], env_origin: str | None, ctx: Mapping[str, Any], context: str | None
) -> str | None:
    """The first source that asks for TLS: an option, a ``NATS_*`` variable, or the context."""
    for key, option in _TLS_OPTION.items():
        if given.get(key):
            return option
    if env_origin:
        return env_origin
    for field_name in _TLS_CONTEXT.values():
        if ctx.get(field_name):
            return f"nats context {context!r} ({field_name})"
    return None


def _from_block(block: Mapping[str, str]) -> dict[str, Any]:
    """An environment file's ``connection:`` values as settings (``server`` and ``context`` are
    handled by the caller)."""
    out: dict[str, Any] = {}
    for key in ("creds", "nkey", "user", "password", "token", "tls_cert", "tls_key", "tls_ca"):
        if block.get(key):
            out[key] = block[key]
    if block.get("js_domain"):
        out["js_domain"] = block["js_domain"]
    if block.get("tls_first"):
        out["tls_first"] = block["tls_first"].strip().lower() == "true"
    if block.get("timeout"):
        try:
            out["timeout"] = float(block["timeout"])
        except ValueError:
            from jelmore_infra.errors import JelmoreError

            raise JelmoreError("connection timeout must be a number of seconds") from None
    return out


def resolve_settings(
    *,
    url: str | None,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
    environment: Mapping[str, str] | None = None,
    **given: Any,
) -> ConnectionSettings:
    """Combine command-line values (which win), an environment file's ``connection:`` block
    (``environment``, by ``nats`` CLI name: ``server``, ``creds``, ``tls_ca``, …),
    ``NATS_CA``/``NATS_CERT``/``NATS_KEY``, a ``nats`` context, ``NATS_URL`` and defaults.
    ``env`` stands in for ``os.environ``.

    The CLI and the runtime (``runtime.settings.from_env``) both resolve their settings here."""
    environ = os.environ if env is None else env
    block = dict(environment or {})
    if context is None and block.get("context"):
        context = block["context"]
    ctx: dict[str, Any] = load_context(context) if context else {}
    from_ctx: dict[str, Any] = {
        "url": ctx.get("url") or None,
        "creds": ctx.get("creds") or None,
        "nkey": ctx.get("nkey") or None,
        "user": ctx.get("user") or None,
        "password": ctx.get("password") or None,
        "token": ctx.get("token") or None,
        "tls_cert": ctx.get("cert") or None,
        "tls_key": ctx.get("key") or None,
        "tls_ca": ctx.get("ca") or None,
        "tls_first": ctx.get("tls_first") is True or None,
        "js_domain": ctx.get("jetstream_domain") or None,
        "inbox_prefix": ctx.get("inbox_prefix") or None,
    }
    from_env = tls_from_env(environ)
    env_origin = from_env.pop("tls_origin", None)
    settings = ConnectionSettings()
    values = {k: v for k, v in from_ctx.items() if v is not None}
    values.update(from_env)
    values.update(_from_block(block))
    values.update({k: v for k, v in given.items() if v is not None})
    chosen_url = (
        url
        or block.get("server")
        or values.pop("url", None)
        or environ.get("NATS_URL")
        or DEFAULT_URL
    )
    values.pop("url", None)
    origin = _tls_origin(given, env_origin, ctx, context)
    return replace(settings, url=chosen_url, tls_origin=origin, **values)
