"""Connection settings shared by every command that talks to a server.

Options follow the ``nats`` CLI (``--server``, ``--creds``, ``--nkey``, ``--user``/``--password``,
``--token``, ``--tls-*``, ``--context``, ``--js-domain``). A ``nats`` CLI context file fills in
whatever the command line leaves out. Secrets are kept here and nowhere else: ``describe()`` and
``safe_url()`` never show them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jelmore_infra.errors import JelmoreError

DEFAULT_URL = "nats://127.0.0.1:4222"


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
    js_domain: str | None = None
    timeout: float = 5.0

    def safe_url(self) -> str:
        """The server URL(s) with any user, password or token removed."""
        return ",".join(_strip_userinfo(u.strip()) for u in self.url.split(","))

    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

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


def resolve_settings(
    *,
    url: str | None,
    context: str | None = None,
    **given: Any,
) -> ConnectionSettings:
    """Combine command-line values (which win), a ``nats`` context, ``NATS_URL`` and defaults."""
    ctx: dict[str, Any] = load_context(context) if context else {}
    from_ctx = {
        "url": ctx.get("url") or None,
        "creds": ctx.get("creds") or None,
        "nkey": ctx.get("nkey") or None,
        "user": ctx.get("user") or None,
        "password": ctx.get("password") or None,
        "token": ctx.get("token") or None,
        "tls_cert": ctx.get("cert") or None,
        "tls_key": ctx.get("key") or None,
        "tls_ca": ctx.get("ca") or None,
        "js_domain": ctx.get("jetstream_domain") or None,
    }
    settings = ConnectionSettings()
    values = {k: v for k, v in from_ctx.items() if v is not None}
    values.update({k: v for k, v in given.items() if v is not None})
    chosen_url = url or values.pop("url", None) or os.environ.get("NATS_URL") or DEFAULT_URL
    values.pop("url", None)
    return replace(settings, url=chosen_url, **values)
