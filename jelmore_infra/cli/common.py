"""Pieces shared by the commands: the output console and the connection options."""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from jelmore_infra.connection import ConnectionSettings, resolve_settings

F = TypeVar("F", bound=Callable[..., Any])


def short_lived() -> None:
    """Turn off Python's cyclic garbage collector for a command that runs and exits.

    Loading thousands of resources builds many small objects; the collector's repeated passes
    over them cost more than half of a large ``plan`` and free nothing that matters before the
    process ends. Long-running commands (``server``, ``events``) do not call this.
    """
    gc.disable()


def make_console(ctx: click.Context | None = None, *, stderr: bool = False) -> Any:
    """A rich Console: colour only on a terminal, never with ``NO_COLOR`` or ``--no-color``."""
    from rich.console import Console

    root = ctx.find_root() if ctx is not None else None
    no_color = bool(root and root.obj and root.obj.get("no_color")) or bool(
        os.environ.get("NO_COLOR")
    )
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        file=stream,
        no_color=no_color,
        color_system=None if no_color else "auto",
        highlight=False,
        soft_wrap=True,
    )


def connection_options(func: F) -> F:
    """Add the ``nats`` CLI connection options; the command receives ``settings``."""
    options = [
        click.option("-s", "--server", "url", metavar="URL", help="NATS URL (env NATS_URL)."),
        click.option("--creds", metavar="FILE", help="User credentials file (JWT + nkey)."),
        click.option("--nkey", metavar="FILE", help="NKey seed file."),
        click.option("--user", metavar="USER", help="Username."),
        click.option("--password", metavar="PASSWORD", help="Password."),
        click.option("--token", metavar="TOKEN", help="Authentication token."),
        click.option("--tls-cert", metavar="FILE", help="Client TLS certificate."),
        click.option("--tls-key", metavar="FILE", help="Client TLS private key."),
        click.option("--tls-ca", metavar="FILE", help="CA certificate to verify the server."),
        click.option(
            "--tls-first",
            is_flag=True,
            default=None,
            help="TLS handshake before the server's greeting (server handshake_first).",
        ),
        click.option("--context", "context_name", metavar="NAME", help="nats CLI context."),
        click.option("--js-domain", metavar="DOMAIN", help="JetStream domain."),
        click.option(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Request timeout in seconds (default 5).",
        ),
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        names = [
            "url",
            "creds",
            "nkey",
            "user",
            "password",
            "token",
            "tls_cert",
            "tls_key",
            "tls_ca",
            "tls_first",
            "context_name",
            "js_domain",
            "timeout",
        ]
        raw = {n: kwargs.pop(n) for n in names}
        context = raw.pop("context_name")
        url = raw.pop("url")
        kwargs["settings"] = resolve_settings(url=url, context=context, **raw)
        return func(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


__all__ = ["ConnectionSettings", "connection_options", "make_console"]
