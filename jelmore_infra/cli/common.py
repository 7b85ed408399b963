"""Pieces shared by the commands: the output console, ``--quiet``, the connection options, strict
option values, and shell completion of addresses and environments."""

from __future__ import annotations

import errno
import functools
import gc
import ipaddress
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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
    return _quiet_on_broken_pipe(Console)(
        file=stream,
        no_color=no_color,
        color_system=None if no_color else "auto",
        highlight=False,
        soft_wrap=True,
    )


@functools.cache
def _quiet_on_broken_pipe(base: type[Any]) -> type[Any]:
    """``base`` (rich's Console) raising ``BrokenPipeError`` when its reader has gone.

    rich's own reaction is ``SystemExit`` from inside ``print``, which escapes event-loop tasks
    as a traceback; a ``BrokenPipeError`` instead reaches ``main``, which ends quietly
    (``handle_broken_pipe``), or a streaming command's handler, which stops the stream.
    """

    class QuietConsole(base):  # type: ignore[misc]
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "the reader of the output has gone")

    return QuietConsole


def is_quiet(ctx: click.Context | None = None) -> bool:
    """Whether the global ``--quiet`` (``-q``) was given (``ctx``: the current command's context,
    by default the one click is running)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return False
    obj = ctx.find_root().obj
    return bool(isinstance(obj, dict) and obj.get("quiet"))


def note(message: str, *, err: bool = True) -> None:
    """Print informational output (progress, a summary, where a file went) unless ``--quiet``.

    Errors, warnings and what a command is asked to print never go through here: ``--quiet``
    leaves them, and every exit code, alone.
    """
    if not is_quiet():
        click.echo(message, err=err)


def handle_broken_pipe() -> None:
    """Point stdout at /dev/null after its reader went away (``… | head``), so the interpreter's
    final flush of already buffered output neither fails nor prints a warning."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def connection_options(func: F) -> F:
    """Add the ``nats`` CLI connection options; the command receives ``settings``.

    Options win over an environment's ``connection:`` block, which wins over the ``NATS_*``
    variables, which win over the ``nats`` context (``--context`` or ``NATS_CONTEXT``); see
    ``connection.resolve_settings``. The ``nats`` CLI's spellings of the TLS options
    (``--tlscert``, ``--tlskey``, ``--tlsca``, ``--tlsfirst``) are accepted too.
    """
    options = [
        click.option(
            "-s", "--server", "url", type=SERVER_URL, metavar="URL", help="NATS URL (env NATS_URL)."
        ),
        click.option(
            "--creds", metavar="FILE", help="User credentials file (JWT + nkey; env NATS_CREDS)."
        ),
        click.option("--nkey", metavar="FILE", help="NKey seed file (env NATS_NKEY)."),
        click.option(
            "--user", metavar="USER", help="Username, or a token without password (env NATS_USER)."
        ),
        click.option("--password", metavar="PASSWORD", help="Password (env NATS_PASSWORD)."),
        click.option("--token", metavar="TOKEN", help="Authentication token (env NATS_TOKEN)."),
        click.option(
            "--tls-cert",
            "--tlscert",
            "tls_cert",
            metavar="FILE",
            help="Client TLS certificate (env NATS_CERT).",
        ),
        click.option(
            "--tls-key",
            "--tlskey",
            "tls_key",
            metavar="FILE",
            help="Client TLS private key (env NATS_KEY).",
        ),
        click.option(
            "--tls-ca",
            "--tlsca",
            "tls_ca",
            metavar="FILE",
            help="CA to verify the server with (env NATS_CA).",
        ),
        click.option(
            "--tls-first",
            "--tlsfirst",
            "tls_first",
            is_flag=True,
            default=None,
            help="TLS handshake before the server's greeting (server handshake_first).",
        ),
        click.option(
            "--context", "context_name", metavar="NAME", help="nats CLI context (env NATS_CONTEXT)."
        ),
        click.option("--js-domain", metavar="DOMAIN", help="JetStream domain."),
        click.option(
            "--timeout",
            callback=_connection_timeout,
            default=None,
            metavar="DURATION",
            help="Request timeout: 5s, 500ms or seconds (env NATS_TIMEOUT; default 5s).",
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
        environment = None
        env_name = kwargs.get("env_name")
        if env_name:  # the environment file's connection: block
            from jelmore_infra.topology.load import environment_connection

            directory = kwargs.get("topology_dir") or "topology"
            environment = environment_connection(directory, env_name)
        kwargs["settings"] = resolve_settings(
            url=url,
            context=context,
            environment=environment,
            environment_name=env_name,
            **raw,
        )
        check_resolved_url(kwargs["settings"], url, context)
        return func(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def _connection_timeout(ctx: click.Context, param: click.Parameter, value: Any) -> float | None:
    """``--timeout``: a duration (``5s``, ``500ms``, as the ``nats`` CLI takes it) or seconds."""
    if value is None:
        return None
    from jelmore_infra.connection import parse_timeout
    from jelmore_infra.errors import JelmoreError

    try:
        return parse_timeout(str(value), "--timeout")
    except JelmoreError as exc:
        raise click.BadParameter(str(exc).removeprefix("--timeout: "), ctx, param) from None


__all__ = [
    "DURATION",
    "ENVIRONMENT_NAME",
    "HOURS",
    "PORT",
    "SEQUENCE",
    "SERVER_URL",
    "STRICT_BOOL",
    "TIMEOUT",
    "WAIT",
    "ConnectionSettings",
    "EnvironmentName",
    "Number",
    "complete_address",
    "connection_options",
    "environment_names",
    "handle_broken_pipe",
    "is_quiet",
    "make_console",
    "mask_url",
    "note",
    "topology_addresses",
]


# --- strict option values -----------------------------------------------------------------------
# Every number, flag value and server URL a command accepts goes through one of these types, so a
# bad value is a usage error (one line, exit code 1) before any work starts: never NaN, infinity,
# a negative duration, a number too large for the code that uses it, an empty boolean, or a URL
# the NATS client cannot parse.

if TYPE_CHECKING:  # click 8.5 made ParamType generic; older click (>= 8.2 is supported) is not
    _FloatParam = click.ParamType[float]
    _BoolParam = click.ParamType[bool]
    _StrParam = click.ParamType[str]
else:
    _FloatParam = _BoolParam = _StrParam = click.ParamType

#: The longest duration any option accepts (``--duration``, ``--hours``): one year.
MAX_DURATION_SECONDS = 365 * 24 * 3600.0
#: The longest timeout any option accepts (``--timeout``, ``--ready-timeout``): one day.
MAX_TIMEOUT_SECONDS = 24 * 3600.0
#: The largest stream sequence (JetStream sequences are unsigned 64-bit numbers).
MAX_SEQUENCE = 2**64 - 1


class Number(_FloatParam):
    """A finite real number within ``[low, high]`` (``low`` excluded when ``low_open``).

    Unlike click's ``float``/``FloatRange``, NaN and infinities are refused, and every value has
    an upper bound, so later arithmetic (timedelta, sleeps, rates) can neither overflow nor hang.
    """

    name = "number"

    def __init__(self, low: float, high: float, *, low_open: bool = False, unit: str = "") -> None:
        self.low = low
        self.high = high
        self.low_open = low_open
        self.unit = unit
        self.name = unit.upper() if unit else "NUMBER"

    def describe(self) -> str:
        """The accepted range in words, e.g. ``more than 0 and at most 86400 seconds``."""
        low, high = f"{self.low:.12g}", f"{self.high:.12g}"
        lower = f"more than {low}" if self.low_open else f"at least {low}"
        unit = f" {self.unit}" if self.unit else ""
        return f"{lower} and at most {high}{unit}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number", param, ctx)
        if isinstance(value, int | float):
            number = float(value)
        else:
            text = str(value).strip()
            try:
                number = float(text)
            except ValueError:
                self.fail(f"{text!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number ({self.describe()})", param, ctx)
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or number > self.high:
            self.fail(f"{number:g} is out of range: must be {self.describe()}", param, ctx)
        return number

    def __repr__(self) -> str:
        return f"Number({self.describe()})"


class StrictBool(_BoolParam):
    """``true``/``false`` (also ``yes``/``no``, ``1``/``0``), any letter case; nothing else.

    click's ``BOOL`` reads an empty value (``--lock=``) as false, which silently turned a safety
    feature off; here an empty or unknown value is a usage error.
    """

    name = "boolean"
    TRUE = frozenset({"true", "yes", "1"})
    FALSE = frozenset({"false", "no", "0"})

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        shown = "an empty value" if not text else repr(str(value))
        self.fail(f"{shown} is not a boolean: use true or false", param, ctx)

    def __repr__(self) -> str:
        return "StrictBool"


#: URL schemes the NATS client connects with.
URL_SCHEMES = ("nats", "tls", "ws", "wss")
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")


def mask_url(url: str) -> str:
    """``url`` (one or a comma-separated list) with every password or token replaced by ``***``.

    Works on any text, also on URLs that do not parse: everything before the last ``@`` of an
    entry's authority is user information (a user name followed by ``:`` keeps the name), and a
    port that is not a valid port number is masked too, since ``nats://user:password`` without
    ``@host`` reads as host ``user`` with port ``password``.
    """
    return ",".join(_mask_one(part) for part in url.split(","))


def _mask_one(entry: str) -> str:
    scheme, sep, rest = entry.partition("://")
    if not sep:
        scheme, rest = "", entry
    userinfo, at, after = rest.rpartition("@")
    if at:
        user, colon, _secret = userinfo.partition(":")
        userinfo = f"{user}:***" if colon else "***"
    hostport, tail = _split_authority(after)
    if hostport.startswith("["):
        head, bracket, port = hostport.partition("]")
        if bracket and port and not (port.startswith(":") and _valid_port(port[1:])):
            hostport = f"{head}]:***"
    else:
        head, colon, port = hostport.partition(":")
        if colon and not _valid_port(port):
            hostport = f"{head}:***"
    return f"{scheme}{sep}{userinfo}{at}{hostport}{tail}"


def _split_authority(text: str) -> tuple[str, str]:
    """``host:port/path?query`` → (``host:port``, ``/path?query``)."""
    match = re.search(r"[/?#]", text)
    return (text, "") if match is None else (text[: match.start()], text[match.start() :])


def _valid_port(port: str) -> bool:
    return port.isascii() and port.isdigit() and 1 <= int(port) <= 65535


def server_url_problem(url: str) -> str | None:
    """Why the NATS client could not use ``url`` (a comma-separated list), or ``None``.

    Each entry is ``[scheme://][user[:password]@]host[:port][/path]`` with a scheme from
    ``URL_SCHEMES``, a host name or IP address (IPv6 in brackets) and a port from 1 to 65535;
    websocket and plain URLs cannot be mixed. The message never contains a password.
    """
    entries = [e.strip() for e in url.split(",")]
    if not any(entries):
        return "the URL is empty"
    schemes: set[str] = set()
    for entry in entries:
        if not entry:
            return "it has an empty entry between commas"
        problem, scheme = _entry_problem(entry)
        if problem:
            return problem if len(entries) == 1 else f"{mask_url(entry)!r}: {problem}"
        schemes.add(scheme)
    if schemes & {"ws", "wss"} and schemes - {"ws", "wss"}:
        return "websocket (ws, wss) and plain (nats, tls) URLs cannot be mixed"
    return None


def _entry_problem(entry: str) -> tuple[str | None, str]:
    scheme, sep, rest = entry.partition("://")
    if sep:
        if scheme not in URL_SCHEMES:  # the NATS client knows them in lower case only
            return f"the scheme {scheme!r} is not one of {', '.join(URL_SCHEMES)}", scheme
    else:
        scheme, rest = "nats", entry
    _userinfo, _at, after = rest.rpartition("@")
    hostport, _tail = _split_authority(after)
    if hostport.startswith("["):
        host, bracket, port_part = hostport[1:].partition("]")
        if not bracket:
            return "the IPv6 address has no closing ']'", scheme
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address", scheme
        if port_part and not port_part.startswith(":"):
            return "unexpected text after the IPv6 address", scheme
        has_port, port = bool(port_part), port_part[1:]
    else:
        host, colon, port = hostport.partition(":")
        has_port = bool(colon)
        if ":" in port:
            return "an IPv6 address must be written in brackets, e.g. [::1]:4222", scheme
        if not host:
            return "it names no host", scheme
        if not _HOST_NAME.fullmatch(host):
            return f"{host!r} is not a host name or IP address", scheme
    if has_port and not _valid_port(port):
        return "the port is not a number from 1 to 65535", scheme
    return None, scheme


class ServerURL(_StrParam):
    """A NATS server URL (or comma-separated list) the client can use; see ``server_url_problem``.
    Errors show the URL with passwords and tokens masked."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        problem = server_url_problem(text)
        if problem:
            self.fail(f"{mask_url(text)!r} is not a usable server URL: {problem}", param, ctx)
        return text.strip()

    def __repr__(self) -> str:
        return "ServerURL"


def check_resolved_url(
    settings: ConnectionSettings, given: str | None, context: str | None
) -> None:
    """A URL that came from ``NATS_URL`` or a nats context gets the same check as ``--server``."""
    if given is not None:
        return  # checked by the option's type
    problem = server_url_problem(settings.url)
    if problem:
        where = settings.source_of("url") or (
            f"the nats context {context!r} or NATS_URL" if context else "NATS_URL"
        )
        raise click.UsageError(
            f"{mask_url(settings.url)!r} (from {where}) is not a usable server URL: {problem}"
        )


class DurationText(_StrParam):
    """A duration written with units (``0s``, ``500ms``, ``2m``, ``1h30m``) up to ``high``
    seconds. The text is checked here and passed on as it is, for the command to convert."""

    name = "duration"

    def __init__(self, high: float) -> None:
        self.high = high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from jelmore_infra.units import UnitError, parse_duration

        text = str(value)
        try:
            seconds = parse_duration(text) / 1e9
        except UnitError as exc:
            self.fail(str(exc), param, ctx)
        if seconds > self.high:
            self.fail(f"{text!r} is longer than {self.high:.12g} seconds", param, ctx)
        return text

    def __repr__(self) -> str:
        return f"DurationText(at most {self.high:.12g}s)"


#: Request timeouts: more than 0, at most one day.
TIMEOUT = Number(0, MAX_TIMEOUT_SECONDS, low_open=True, unit="seconds")
#: How long a command runs (``--duration``): more than 0, at most one year.
DURATION = Number(0, MAX_DURATION_SECONDS, low_open=True, unit="seconds")
#: How far back (``--hours``): more than 0, at most one year.
HOURS = Number(0, MAX_DURATION_SECONDS / 3600, low_open=True, unit="hours")
#: TCP ports.
PORT = click.IntRange(1, 65535)
#: Stream sequence numbers.
SEQUENCE = click.IntRange(1, MAX_SEQUENCE)
#: How long to wait for something, written with units (``--lock-timeout``): at most one day.
WAIT = DurationText(MAX_TIMEOUT_SECONDS)
STRICT_BOOL = StrictBool()
SERVER_URL = ServerURL()


# --- shell completion: addresses and environments -----------------------------------------------
# Completion runs on every Tab press: it reads only local files, never the server, and a problem
# (a missing directory, a topology with errors) gives no suggestions instead of an error.

#: An environment name: a plain word, since it names the file ``environments/NAME.yaml``.
_ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _topology_dir(ctx: click.Context) -> str:
    """The ``--topology`` directory given so far on the command line (default ``topology``)."""
    value = ctx.params.get("topology_dir")
    return value if isinstance(value, str) and value else "topology"


def topology_addresses(directory: str | Path) -> list[str]:
    """Every address the topology in ``directory`` declares (``stream.JELMORE``,
    ``consumer.JELMORE.workers``, ``kv.NAME``, ``objectstore.NAME``, ``event.TYPE``), sorted;
    none when the topology does not load."""
    from jelmore_infra.kinds import KINDS
    from jelmore_infra.topology import check_topology

    topology, _ = check_topology(directory)
    if topology is None:
        return []
    return sorted({str(address) for kind in KINDS for address in kind.desired_specs(topology)})


def complete_address(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """``--target`` completion: the topology's addresses that start with ``incomplete``; before
    a keyword is complete, and when the topology does not load, the address keywords
    (``stream.``, ``consumer.``, …) from :data:`jelmore_infra.address.FORMS`."""
    from click.shell_completion import CompletionItem

    from jelmore_infra.address import FORMS

    try:
        addresses = topology_addresses(_topology_dir(ctx))
    except Exception:  # completion must never fail loudly
        addresses = []
    found = [CompletionItem(a) for a in addresses if a.startswith(incomplete)]
    if found or "." in incomplete:
        return found
    return [
        CompletionItem(f"{keyword}.", help=form.usage)
        for keyword, form in FORMS.items()
        if keyword.startswith(incomplete)
    ]


def environment_names(directory: str | Path) -> list[str]:
    """The environments of the topology in ``directory``: the ``environments/*.yaml`` files."""
    folder = Path(directory) / "environments"
    try:
        files = sorted(folder.glob("*.yaml"))
    except OSError:
        return []
    return [f.stem for f in files if _ENV_NAME.fullmatch(f.stem) and f.is_file()]


class EnvironmentName(_StrParam):
    """The name of an environment (``--env``): a plain word (letters, digits, ``.``, ``_``,
    ``-``), since it names the file ``<topology>/environments/NAME.yaml``. Whether that file
    exists is for the topology loader to say. Completes the environments of the ``--topology``
    directory given so far (default ``topology``)."""

    name = "environment"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        if not _ENV_NAME.fullmatch(text):
            shown = "an empty value" if not text else repr(text)
            self.fail(
                f"{shown} is not an environment name: use letters, digits, '.', '_' and '-' "
                "(the file environments/NAME.yaml)",
                param,
                ctx,
            )
        return text

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        names = environment_names(_topology_dir(ctx))
        return [CompletionItem(n) for n in names if n.startswith(incomplete)]

    def __repr__(self) -> str:
        return "EnvironmentName"


ENVIRONMENT_NAME = EnvironmentName()
