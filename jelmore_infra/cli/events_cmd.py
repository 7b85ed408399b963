"""``jelmore-infra events …``: publish, subscribe, replay, health, load tests and the dead-letter
queue, on top of the runtime shim (the seed's ``nats_subscriber.py`` and ``nats_test_utils.py``).

The runtime (and so nats-py) is imported inside the command functions only, to keep the CLI fast.

Encrypted events (``JELMORE_ENCRYPTION_KEYS``, see ``runtime.crypto``) are printed decrypted when
a key matches, and with ``<encrypted: key KID>`` as their payload when none does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from jelmore_infra.cli.common import (
    DURATION,
    HOURS,
    SEQUENCE,
    ConnectionSettings,
    _StrParam,
    connection_options,
    is_quiet,
    make_console,
    note,
)
from jelmore_infra.errors import JelmoreError

T = TypeVar("T")

#: Upper bounds of the load generator's options: a rate no server reaches, the largest payload a
#: nats-server accepts (its max_payload cannot exceed 64 MiB), and publishes in flight.
MAX_RATE = 1_000_000
MAX_SIZE = 64 * 1024 * 1024
MAX_WINDOW = 65_536
MAX_LIMIT = 1_000_000


class EventTypeParam(_StrParam):
    """An event type: any name the topology can declare (whether it is declared is the
    catalogue's to say, when the event is published); completion offers the catalogue's."""

    name = "event type"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from jelmore_infra.topology.events import EVENT_TYPE

        text = str(value)
        if not EVENT_TYPE.match(text):
            self.fail(f"{text!r} is not an event type (like session.created)", param, ctx)
        return text

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        """The catalogue's event types (read with the NATS_* environment; none when that fails)."""
        from click.shell_completion import CompletionItem

        try:
            types = asyncio.run(_catalogue_types(None))
        except Exception:  # completion must never fail loudly
            return []
        return [
            CompletionItem(t, help=k.description)
            for t, k in sorted(types.items())
            if t.startswith(incomplete)
        ]


EVENT_TYPE_PARAM = EventTypeParam()
#: ``--event-type T`` (repeatable) on the reading commands: T's subject in the catalogue.
EVENT_TYPES_OPTION = click.option(
    "--event-type",
    "-t",
    "event_types",
    multiple=True,
    type=EVENT_TYPE_PARAM,
    help="Event type (repeatable): its subject in the event catalogue.",
)


async def _catalogue_types(settings: ConnectionSettings | None) -> dict[str, Any]:
    """The event catalogue's types (on a runtime of their own, closed afterwards)."""
    from jelmore_infra.runtime import Runtime

    async with Runtime(connection=settings) as rt:
        return await rt.bus.catalogue.types()


def _subjects_of(types: tuple[str, ...]) -> Callable[[], Awaitable[list[str]]]:
    """The catalogue subjects of ``types`` (``EventError`` for a type it does not declare)."""

    async def resolve() -> list[str]:
        from jelmore_infra.runtime import default_runtime

        catalogue = default_runtime().bus.catalogue
        return [(await catalogue.kind(t)).subject for t in types]

    return resolve


def _prefix_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--prefix",
        envvar="NATS_SUBJECT_PREFIX",
        default=None,
        metavar="PREFIX",
        help="Subject prefix (env NATS_SUBJECT_PREFIX, default jelmore).",
    )(func)


def _run(settings: ConnectionSettings, prefix: str | None, main: Callable[[], Awaitable[T]]) -> T:
    """Configure the runtime, run ``main`` in a fresh event loop, always close the connection."""
    from jelmore_infra import runtime

    runtime.configure(
        connection=settings,
        prefix=prefix,
        client_id=os.environ.get("NATS_CLIENT_ID") or "jelmore-infra-cli",
        connect_timeout=settings.timeout,
    )

    async def wrapper() -> T:
        try:
            return await main()
        finally:
            await runtime.close()

    return asyncio.run(wrapper())


class _Output:
    """The output of a streaming command (``events subscribe``).

    A write to a closed stdout (``… | head -1``) raises ``BrokenPipeError`` inside a handler task,
    where it would only be logged; ``write`` catches it, marks the output closed and sets ``stop``,
    so the command ends and then re-raises it for ``main`` to end quietly (as ``plan | head``).
    """

    def __init__(self) -> None:
        self.closed = False
        self.stop = asyncio.Event()

    def write(self, emit: Callable[[], None]) -> bool:
        """Run ``emit`` (one print); ``False`` when stdout is (or just turned out) closed."""
        if self.closed:
            return False
        try:
            emit()
        except BrokenPipeError:
            self.closed = True
            self.stop.set()
            return False
        return True

    def raise_if_closed(self) -> None:
        if self.closed:
            raise BrokenPipeError("stdout closed")


async def _until_stopped(duration: float | None, stop: asyncio.Event | None = None) -> None:
    """Wait for ``duration`` seconds, until SIGINT/SIGTERM, or until ``stop`` is set."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        if duration is None:
            await stop.wait()
        else:
            try:
                await asyncio.wait_for(stop.wait(), duration)
            except TimeoutError:
                pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass


def _compact(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@click.group()
def events() -> None:
    """Publish, consume and inspect Jelmore events (needs the topology: `jelmore-infra apply`)."""


# -- publish -------------------------------------------------------------------------------------


@events.command()
@click.option(
    "--event-type",
    "-t",
    required=True,
    type=EVENT_TYPE_PARAM,
    help="Event type, as the event catalogue declares it.",
)
@click.option("--session-id", default=None, help="Session id (default: a new UUID).")
@click.option("--payload", default="{}", metavar="JSON", help="Payload as JSON (default {}).")
@click.option("--header", "headers", multiple=True, metavar="NAME=VALUE", help="Extra header.")
@click.option("--message-id", default=None, help="Message id (Nats-Msg-Id; default: new).")
@_prefix_option
@connection_options
@click.pass_context
def publish(
    ctx: click.Context,
    event_type: str,
    session_id: str | None,
    payload: str,
    headers: tuple[str, ...],
    message_id: str | None,
    prefix: str | None,
    settings: ConnectionSettings,
) -> None:
    """Publish one event and wait for the stream's acknowledgement."""
    import uuid

    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    extra: dict[str, str] = {}
    for item in headers:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--header")
        extra[name] = value
    sid = session_id or str(uuid.uuid4())
    mid = message_id or uuid.uuid4().hex

    async def main() -> bool:
        from jelmore_infra.runtime import publish_event

        return await publish_event(event_type, sid, data, extra or None, message_id=mid)

    ok = _run(settings, prefix, main)
    console = make_console(ctx)
    if not ok:
        raise JelmoreError(f"event {mid} was not acknowledged by the stream (see the log above)")
    console.print(f"published {event_type} session={sid} message_id={mid}", markup=False)


# -- subscribe -----------------------------------------------------------------------------------


@events.command()
@click.argument("mode", type=click.Choice(["all", "specific", "dlq"]))
@click.option("--subjects", default=None, metavar="A,B", help="Subjects (mode specific).")
@EVENT_TYPES_OPTION
@click.option("--consumer-group", "-g", default=None, help="Consume as this consumer group.")
@click.option("--duration", type=DURATION, default=None, metavar="S", help="Stop after S seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print each event as one JSON line.")
@_prefix_option
@connection_options
@click.pass_context
def subscribe(
    ctx: click.Context,
    mode: str,
    subjects: str | None,
    event_types: tuple[str, ...],
    consumer_group: str | None,
    duration: float | None,
    as_json: bool,
    prefix: str | None,
    settings: ConnectionSettings,
) -> None:
    """Print events as they arrive: `all`, `specific --subjects A,B`, or `dlq`.

    Without --consumer-group a private, temporary consumer reads new events (nothing is left on
    the server). With one, this process joins the group and acknowledges what it prints.
    """
    console = make_console(ctx)
    if mode == "specific" and not subjects and not event_types:
        raise click.UsageError("mode specific needs --subjects A,B or --event-type T")
    if mode != "specific" and (subjects or event_types):
        raise click.UsageError("--subjects and --event-type are only for mode specific")
    if mode == "dlq" and consumer_group:
        raise click.UsageError(
            "the dead-letter queue has no consumer groups; drop --consumer-group"
        )
    count = 0
    out = _Output()
    # A consumer group member gets events decrypted by the runtime (one it cannot decrypt is
    # dead-lettered, as in any worker); a private tail shows what it cannot decrypt as such.
    reveal = consumer_group is None

    def line(event: dict[str, Any], msg: Any) -> str:
        if as_json:
            return json.dumps({"subject": msg.subject, **event}, ensure_ascii=False)
        if mode == "dlq":
            return (
                f"{event.get('dlq_timestamp', '')}  {event.get('consumer_group', '')}  "
                f"{event.get('event_type', '')}  session={event.get('session_id', '')}  "
                f"attempts={event.get('retry_count', '')}  "
                f"reason={event.get('failure_reason', '')}"
            )
        return (
            f"{event.get('timestamp', '')}  {event.get('event_type', msg.subject)}  "
            f"session={event.get('session_id', '')}  {_compact(event.get('payload'))}"
        )

    async def handler(event: dict[str, Any], msg: Any) -> None:
        nonlocal count
        if reveal:
            from jelmore_infra.runtime import current_settings
            from jelmore_infra.runtime.crypto import reveal_event

            event = reveal_event(event, msg.headers, current_settings().encryption_keys)
        text = line(event, msg)
        emit = (
            (lambda: click.echo(text)) if as_json else (lambda: console.print(text, markup=False))
        )
        if not out.write(emit):
            # Not printed: hand it back unacknowledged (another worker of a group gets it now).
            with contextlib.suppress(Exception):
                await msg.nak()
            return
        count += 1

    async def main() -> None:
        from jelmore_infra.runtime import current_settings as current
        from jelmore_infra.runtime import subscribe_to_events

        prefix_now = current().prefix
        wanted: list[str] | None
        deliver = "new"
        if mode == "all":
            wanted = None if consumer_group else [f"{prefix_now}.session.>"]
        elif mode == "specific":
            wanted = [s.strip() for s in (subjects or "").split(",") if s.strip()]
            wanted += await _subjects_of(event_types)()
        else:
            wanted = [f"{prefix_now}.dlq.>"]
            deliver = "all"
        sub = await subscribe_to_events(
            wanted, handler, consumer_group, deliver=deliver, decrypt=not reveal
        )
        where = f"group {consumer_group}" if consumer_group else ", ".join(wanted or [])
        note(f"listening on {where} (Ctrl-C to stop)")
        try:
            await _until_stopped(duration, out.stop)
        finally:
            await sub.stop()

    _run(settings, prefix, main)
    out.raise_if_closed()
    note(f"{count} event(s) received")


# -- replay --------------------------------------------------------------------------------------


@events.command()
@click.option("--hours", type=HOURS, default=1.0, show_default=True, help="How far back.")
@click.option("--subjects", default=None, metavar="A,B", help="Subjects (default: all events).")
@EVENT_TYPES_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print each event as one JSON line.")
@_prefix_option
@connection_options
@click.pass_context
def replay(
    ctx: click.Context,
    hours: float,
    subjects: str | None,
    event_types: tuple[str, ...],
    as_json: bool,
    prefix: str | None,
    settings: ConnectionSettings,
) -> None:
    """Print the events stored in the last H hours, oldest first."""
    console = make_console(ctx)
    start = datetime.now(UTC) - timedelta(hours=hours)
    wanted = [s.strip() for s in subjects.split(",") if s.strip()] if subjects else None

    async def main() -> list[dict[str, Any]]:
        from jelmore_infra.runtime import current_settings, replay_events
        from jelmore_infra.runtime.crypto import reveal_event

        keys = current_settings().encryption_keys
        shown: list[dict[str, Any]] = []

        async def collect(event: dict[str, Any], msg: Any) -> None:
            shown.append(reveal_event(event, msg.headers, keys))

        chosen = wanted
        if event_types:
            chosen = [*(wanted or []), *await _subjects_of(event_types)()]
        await replay_events(chosen, start, handler=collect, decrypt=False)
        return shown

    found = _run(settings, prefix, main)
    for event in found:
        if as_json:
            click.echo(json.dumps(event, ensure_ascii=False))
        else:
            console.print(
                f"{event.get('timestamp', '')}  {event.get('event_type', '')}  "
                f"session={event.get('session_id', '')}  {_compact(event.get('payload'))}",
                markup=False,
            )
    note(f"{len(found)} event(s) in the last {hours:g} hour(s)")


# -- types ---------------------------------------------------------------------------------------


@events.command()
@click.option("--json", "as_json", is_flag=True, help="Print each type as one JSON line.")
@connection_options
@click.pass_context
def types(ctx: click.Context, as_json: bool, settings: ConnectionSettings) -> None:
    """List the event types of the event catalogue on the server (what `apply` stored)."""
    found = _run(settings, None, lambda: _catalogue_types(settings))
    console = make_console(ctx)
    for kind in found.values():
        if as_json:
            record = {
                "type": kind.type,
                "subject": kind.subject,
                "stream": kind.stream,
                "version": kind.version,
                "compatibility": kind.compatibility,
                "sensitive": kind.sensitive,
                "description": kind.description,
            }
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            flags = "  sensitive" if kind.sensitive else ""
            console.print(
                f"{kind.type}  {kind.subject}  v{kind.version}{flags}  {kind.description}",
                markup=False,
            )


# -- health --------------------------------------------------------------------------------------


@events.command()
@click.option("--group", "groups", multiple=True, help="Expected consumer group (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@_prefix_option
@connection_options
@click.pass_context
def health(
    ctx: click.Context,
    groups: tuple[str, ...],
    as_json: bool,
    prefix: str | None,
    settings: ConnectionSettings,
) -> None:
    """Stream health, consumer lag per group and DLQ size; exit code 1 when critical."""

    async def main() -> dict[str, Any]:
        from jelmore_infra.runtime import get_health_status

        return await get_health_status(list(groups) or None)

    status = _run(settings, prefix, main)
    if as_json:
        click.echo(json.dumps(status, indent=2))
    else:
        _print_health(ctx, status)
    if status["stream_health"] == "critical":
        ctx.exit(1)


def _print_health(ctx: click.Context, status: dict[str, Any]) -> None:
    from rich.table import Table

    console = make_console(ctx)
    colour = {"ok": "green", "degraded": "yellow", "critical": "red"}[status["stream_health"]]
    console.print(f"[{colour}]{status['stream_health'].upper()}[/]  {status.get('server', '')}")
    for reason in status.get("reasons", []):
        console.print(f"  - {reason}", markup=False)
    table = Table(title="consumer lag")
    for column in ("group", "pending", "unacknowledged", "redelivered", "waiting pulls"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group, lag in sorted(status.get("consumer_lag", {}).items()):
        table.add_row(
            group,
            str(lag["pending"]),
            str(lag["ack_pending"]),
            str(lag["redelivered"]),
            str(lag["waiting"]),
        )
    if status.get("consumer_lag"):
        console.print(table)
    dlq = status.get("dlq_size")
    console.print(
        "dead-letter queue: unknown" if dlq is None else f"dead-letter queue: {dlq} event(s)"
    )
    _print_replicas(console, status.get("replicas") or {})


def _print_replicas(console: Any, replicas: dict[str, Any]) -> None:
    """One line per stream: its replication, its leader and each other peer's state."""
    if not replicas:
        return
    console.print("replicas:")
    for stream, state in sorted(replicas.items()):
        size = f"R{state['replicas']}" if state.get("replicas") else "no answer"
        leader = state.get("leader") or "NO LEADER"
        peers = []
        for peer in state.get("peers") or []:
            detail = peer["state"]
            if peer["state"] != "current" and peer.get("lag"):
                detail += f", {peer['lag']} behind"
            if peer["state"] != "current" and peer.get("seen_ago") is not None:
                detail += f", seen {peer['seen_ago']:.1f}s ago"
            peers.append(f"{peer['name']} ({detail})")
        line = f"  {stream}  {size}  leader {leader}"
        console.print(line + (f"  peers: {', '.join(peers)}" if peers else ""), markup=False)


# -- load ----------------------------------------------------------------------------------------


@events.command()
@click.option(
    "--rate", type=click.IntRange(1, MAX_RATE), default=100, show_default=True, help="ev/s."
)
@click.option("--duration", type=DURATION, default=10.0, show_default=True, help="Seconds.")
@click.option(
    "--event-type",
    default="session.output",
    type=EVENT_TYPE_PARAM,
    show_default=True,
    help="Event type, as the event catalogue declares it.",
)
@click.option(
    "--size",
    type=click.IntRange(0, MAX_SIZE),
    default=256,
    show_default=True,
    help="Payload padding in bytes.",
)
@click.option(
    "--window",
    type=click.IntRange(1, MAX_WINDOW),
    default=512,
    show_default=True,
    help="Publishes in flight at most.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_prefix_option
@connection_options
@click.pass_context
def load(
    ctx: click.Context,
    rate: int,
    duration: float,
    event_type: str,
    size: int,
    window: int,
    as_json: bool,
    prefix: str | None,
    settings: ConnectionSettings,
) -> None:
    """Publish at a target rate; report achieved rate, ack latency p50/p99 and errors."""
    console = make_console(ctx)
    err_console = make_console(ctx, stderr=True)

    async def main() -> dict[str, Any]:
        from jelmore_infra.runtime import default_runtime
        from jelmore_infra.runtime.loadtest import run_load

        return await run_load(
            default_runtime().bus,
            rate=rate,
            duration=duration,
            event_type=event_type,
            size=size,
            window=window,
            console=None if as_json or is_quiet(ctx) else err_console,
        )

    result = _run(settings, prefix, main)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        lat = result["ack_latency"]
        console.print(
            f"target {rate}/s for {duration:g}s: sent {result['sent']}, acknowledged "
            f"{result['acknowledged']}, errors {result['errors']}, achieved "
            f"{result['achieved_rate']:.0f}/s, ack latency p50 {lat['p50_ms']} ms, "
            f"p99 {lat['p99_ms']} ms"
        )
    missing = _not_acknowledged(result)
    if missing:
        raise JelmoreError(missing)
    if result["achieved_rate"] < 0.95 * rate:
        err_console.print(
            f"[yellow]warning:[/] achieved {result['achieved_rate']:.0f}/s is below the target "
            f"{rate}/s"
        )


def _not_acknowledged(result: dict[str, Any]) -> str | None:
    """The error of a load run in which some events were not stored, or ``None``.

    Every event sent and not acknowledged counts: those whose publish failed (``errors``) and
    those never confirmed either way (the rest).
    """
    sent = int(result["sent"])
    missing = sent - int(result["acknowledged"])
    if missing <= 0:
        return None
    failed = min(missing, int(result.get("errors") or 0))
    text = (
        f"{missing} of {sent} event(s) were not acknowledged by the stream "
        f"({failed} failed, {missing - failed} not confirmed)"
    )
    if missing == sent:
        subject = result.get("subject", "the subject")
        text += f": does a stream capture {subject}? (run `jelmore-infra apply`)"
    return text


# -- dead-letter queue -----------------------------------------------------------------------------


@events.group()
def dlq() -> None:
    """Inspect, re-publish and route dead-lettered events."""


@dlq.command("list")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=50,
    show_default=True,
    help="Show the newest N.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_prefix_option
@connection_options
@click.pass_context
def dlq_list(
    ctx: click.Context, limit: int, as_json: bool, prefix: str | None, settings: ConnectionSettings
) -> None:
    """List dead-lettered events (newest last)."""

    async def main() -> list[tuple[int, dict[str, Any]]]:
        from jelmore_infra.runtime import default_runtime

        return await default_runtime().list_dead_letters(limit)

    rows = _run(settings, prefix, main)
    if as_json:
        for seq, record in rows:
            click.echo(json.dumps({"dlq_seq": seq, **record}, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table()
    for column in ("seq", "dead-lettered", "group", "event", "session", "attempts", "reason"):
        table.add_column(column)
    from rich.text import Text

    for seq, record in rows:
        table.add_row(
            *(
                Text(value)
                for value in (
                    str(seq),
                    str(record.get("dlq_timestamp", "")),
                    str(record.get("consumer_group", "")),
                    str(record.get("event_type", "")),
                    str(record.get("session_id", "")),
                    str(record.get("retry_count", "")),
                    _compact(record.get("failure_reason", ""), 60).strip('"'),
                )
            )
        )
    console = make_console(ctx)
    console.print(table)
    console.print(f"{len(rows)} dead-lettered event(s) shown")


@dlq.command("show")
@click.argument("seq", type=SEQUENCE)
@_prefix_option
@connection_options
def dlq_show(seq: int, prefix: str | None, settings: ConnectionSettings) -> None:
    """Show one dead-lettered event (by its DLQ sequence) in full."""

    async def main() -> dict[str, Any]:
        from jelmore_infra.runtime import default_runtime

        return await default_runtime().show_dead_letter(seq)

    click.echo(json.dumps(_run(settings, prefix, main), indent=2, ensure_ascii=False))


@dlq.command("replay")
@click.option(
    "--seq",
    "seqs",
    multiple=True,
    type=SEQUENCE,
    help="DLQ sequence to re-publish (repeatable).",
)
@click.option("--all", "replay_all", is_flag=True, help="Re-publish every dead-lettered event.")
@click.option("--group", default=None, help="Only events dead-lettered by this consumer group.")
@click.option(
    "--keep", is_flag=True, help="Keep the DLQ copies (a later replay would re-publish them again)."
)
@_prefix_option
@connection_options
@click.pass_context
def dlq_replay(
    ctx: click.Context,
    seqs: tuple[int, ...],
    replay_all: bool,
    group: str | None,
    keep: bool,
    prefix: str | None,
    settings: ConnectionSettings,
) -> None:
    """Re-publish dead-lettered events to their original subjects, once each.

    Each re-published event is removed from the DLQ (unless --keep); a re-run within the stream's
    duplicate window is stored once thanks to its Nats-Msg-Id.
    """
    if not seqs and not replay_all:
        raise click.UsageError("give --seq N (repeatable) or --all")

    async def main() -> dict[str, Any]:
        from jelmore_infra.runtime import default_runtime

        return await default_runtime().replay_dead_letters(
            list(seqs) or None, group=group, delete=not keep
        )

    result = _run(settings, prefix, main)
    console = make_console(ctx)
    console.print(
        f"re-published {result['republished']} event(s), {result['failed']} failed, "
        f"{result['skipped']} skipped"
    )
    for line in result["errors"]:
        make_console(ctx, stderr=True).print(f"  - {line}")
    if result["failed"]:
        ctx.exit(1)


@dlq.command("route")
@click.option("--duration", type=DURATION, default=None, metavar="S", help="Stop after S seconds.")
@_prefix_option
@connection_options
@click.pass_context
def dlq_route(
    ctx: click.Context, duration: float | None, prefix: str | None, settings: ConnectionSettings
) -> None:
    """Run the dead-letter router (workers of consumer groups already run one)."""

    async def main() -> int:
        from jelmore_infra.runtime import default_runtime

        router = default_runtime().dead_letter_router()
        if not await router.start():
            raise JelmoreError(
                "the topology has no dead-letter safety net (advisory stream and dlq_router "
                "consumer): run `jelmore-infra apply`"
            )
        note("routing max-deliveries advisories (Ctrl-C to stop)")
        try:
            await _until_stopped(duration)
        finally:
            await router.stop()
        return router.routed

    routed = _run(settings, prefix, main)
    make_console(ctx).print(f"{routed} event(s) routed to the dead-letter queue")
