"""Runs a data-preserving stream migration against a server, resumably.

:func:`migrate_stream` reads where a previous run stopped from the server alone (the original
stream and the temporary copy, whose metadata carries a marker: see
:func:`jelmore_infra.migration.steps.resume_point`), then runs the remaining steps in order. Each
step is one server action or one wait, reported to an optional progress hook before and after.
Before each delete it checks that the other copy is complete, so a message is never only in the
stream being deleted. The server facts behind each step are in docs/migration-facts.md.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jelmore_infra.errors import ApplyError, JelmoreError
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.migration.steps import (
    STEP_ORDER,
    Marker,
    MigrationStateError,
    Step,
    copy_back_config,
    detached_config,
    frozen_config,
    is_frozen,
    open_config,
    read_marker,
    refusals,
    resume_point,
    resumed_consumer_config,
    step_text,
    streams_sourcing,
    temp_config,
    temp_name,
    version_refusal,
)

JSONDict = dict[str, Any]
SOURCE_HEADER = "Nats-Stream-Source"


class MigrationError(ApplyError):
    """A migration stopped; the message says where and that no message was lost."""


@dataclass(frozen=True, slots=True)
class StepEvent:
    """A step starting or finished (``detail`` says what it found or did)."""

    step: Step
    phase: Literal["start", "done"]
    detail: str


ProgressHook = Callable[[StepEvent], None]


@dataclass(slots=True)
class MigrationResult:
    stream: str
    #: The first step this run executed (``CREATE_TEMP`` for a fresh start).
    resumed_from: Step
    messages: int = 0
    #: Seconds per step this run executed, plus ``copy`` (first copy) and ``switch-over``
    #: (freeze until open: publishes refused) when this run covered them.
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Run:
    api: JetStreamAPI
    desired: JSONDict
    stall_timeout: float
    poll: float
    name: str = ""
    temp: str = ""
    original: JSONDict = field(default_factory=dict)
    messages: int = 0

    async def info(self, stream: str) -> JSONDict:
        info = await self.api.stream_info(stream)
        if info is None:
            raise MigrationError(f"migrating {self.name}: stream {stream} disappeared")
        return info

    async def marker(self) -> Marker:
        marker = read_marker(await self.info(self.temp))
        if marker is None:
            raise MigrationError(f"migrating {self.name}: {self.temp} lost its marker")
        return marker


async def migrate_stream(
    api: JetStreamAPI,
    desired: Mapping[str, Any],
    *,
    on_progress: ProgressHook | None = None,
    before_step: Callable[[Step], Awaitable[None]] | None = None,
    stall_timeout: float = 30.0,
    poll: float = 0.02,
) -> MigrationResult:
    """Migrate stream ``desired["name"]`` to the config ``desired`` (the full wire config).

    Starts or resumes from what the server holds. ``before_step`` is awaited before each step
    (apply checks its lock there: raising stops the run between steps). ``stall_timeout``:
    seconds a copy may make no progress before the run stops (before 2.12 a repeated
    Nats-Msg-Id pauses it about 2 s).
    Raises :class:`MigrationError` (refused, or stopped with every message still kept).
    """
    run = _Run(api, dict(desired), stall_timeout, poll)
    run.name = str(desired["name"])
    run.temp = temp_name(run.name)
    original = await api.stream_info(run.name)
    temp = await api.stream_info(run.temp)
    try:
        start = resume_point(run.name, original, temp)
    except MigrationStateError as exc:
        raise MigrationError(str(exc)) from None
    marker = read_marker(temp) if temp is not None else None
    live_config = original.get("config") if original is not None else None
    run.original = dict(marker.original if marker is not None else live_config or {})
    sourced_by: list[str] = []
    if start is Step.CREATE_TEMP:
        listed = await api.list_streams()
        sourced_by = streams_sourcing(run.name, (s.get("config") or {} for s in listed.items))
    if start is Step.CREATE_TEMP:
        refused = refusals(run.name, live_config, run.desired, api.version, sourced_by)
    else:  # resuming: the stream's own config was checked when the run began
        refused = [r for r in [version_refusal(run.name, api.version)] if r is not None]
    if refused:
        raise MigrationError(refused[0].message)

    result = MigrationResult(run.name, start)
    actions: dict[Step, Callable[[_Run], Awaitable[str]]] = {
        Step.CREATE_TEMP: _create_temp,
        Step.WAIT_COPY: _wait_copy,
        Step.FREEZE: _freeze,
        Step.VERIFY_COPY: _verify_copy,
        Step.DETACH: _detach,
        Step.DELETE_ORIGINAL: _delete_original,
        Step.CREATE_NEW: _create_new,
        Step.VERIFY_COPY_BACK: _verify_copy_back,
        Step.RECREATE_CONSUMERS: _recreate_consumers,
        Step.OPEN: _open,
        Step.DELETE_TEMP: _delete_temp,
    }
    began: dict[Step, float] = {}
    for step in STEP_ORDER[STEP_ORDER.index(start) :]:
        if step is Step.DONE:
            break
        if before_step is not None:
            await before_step(step)
        if on_progress is not None:
            on_progress(StepEvent(step, "start", step_text(step, run.name)))
        began[step] = time.monotonic()
        detail = await actions[step](run)
        result.timings[step.value] = time.monotonic() - began[step]
        if on_progress is not None:
            on_progress(StepEvent(step, "done", detail))
    ended = time.monotonic()
    if Step.CREATE_TEMP in began and Step.FREEZE in began:
        result.timings["copy"] = began[Step.FREEZE] - began[Step.CREATE_TEMP]
    if Step.FREEZE in began:
        result.timings["switch-over"] = began.get(Step.DELETE_TEMP, ended) - began[Step.FREEZE]
    result.messages = run.messages
    return result


# -- steps -----------------------------------------------------------------------------------


async def _create_temp(run: _Run) -> str:
    info = await run.info(run.name)
    run.original = dict(info["config"])
    await run.api.create_stream(temp_config(run.original, run.api.version))
    return f"{run.temp} created, copying {info['state']['messages']:,} messages"


async def _wait_copy(run: _Run) -> str:
    target = int((await run.info(run.name))["state"]["messages"])
    await _wait_messages(run, run.temp, lambda n: n >= target, f"{target:,} messages")
    return f"{run.temp} holds at least {target:,} messages"


async def _freeze(run: _Run) -> str:
    info = await run.info(run.name)
    if not is_frozen(info):
        await run.api.update_stream(frozen_config(info["config"]))
    return f"{run.name} frozen"


async def _verify_copy(run: _Run) -> str:
    count = int((await run.info(run.name))["state"]["messages"])
    await _wait_messages(run, run.temp, lambda n: n >= count, f"{count:,} messages")
    run.messages = await _verify_same(run, copy=run.temp, origin=run.name)
    return f"{run.temp} holds all {run.messages:,} messages of {run.name}"


async def _detach(run: _Run) -> str:
    # Verified again here: a resumed run may come straight to this step.
    messages = await _verify_same(run, copy=run.temp, origin=run.name)
    consumers: list[JSONDict] = []
    listed = await run.api.list_consumers(run.name)
    for info in listed.items:
        config = dict(info.get("config") or {})
        if not config.get("durable_name"):
            continue  # an ephemeral consumer ends with its stream
        floor = int((info.get("ack_floor") or {}).get("stream_seq") or 0)
        pending = await _pending_after(run.api, run.name, floor)
        consumers.append(
            {"name": info.get("name"), "config": config, "ack_floor": floor, "pending": pending}
        )
    temp = await run.info(run.temp)
    await run.api.update_stream(detached_config(temp["config"], messages, consumers))
    run.messages = messages
    return (
        f"{len(consumers)} consumer position(s) recorded; {run.temp} no longer sources {run.name}"
    )


async def _delete_original(run: _Run) -> str:
    marker = await run.marker()
    temp = await run.info(run.temp)
    if temp["config"].get("sources"):
        raise MigrationError(f"migrating {run.name}: {run.temp} still sources it; not deleting")
    original = await run.info(run.name)
    if not is_frozen(original):
        raise MigrationError(f"migrating {run.name}: it is no longer frozen; not deleting it")
    messages = await _verify_same(run, copy=run.temp, origin=run.name)
    if marker.messages is not None and messages != marker.messages:
        raise MigrationError(
            f"migrating {run.name}: {run.temp} holds {messages:,} messages but "
            f"{marker.messages:,} were recorded; not deleting {run.name}"
        )
    await run.api.delete_stream(run.name)
    run.messages = messages
    return f"{run.name} deleted; its {messages:,} messages are in {run.temp}"


async def _create_new(run: _Run) -> str:
    marker = await run.marker()
    config = copy_back_config(run.desired, marker.original, run.api.version)
    await run.api.create_stream(config)
    return f"{run.name} created, copying back from {run.temp}"


async def _verify_copy_back(run: _Run) -> str:
    count = int((await run.info(run.temp))["state"]["messages"])
    await _wait_messages(run, run.name, lambda n: n >= count, f"{count:,} messages")
    run.messages = await _verify_same(run, copy=run.name, origin=run.temp)
    return f"{run.name} holds all {run.messages:,} messages of {run.temp}"


async def _recreate_consumers(run: _Run) -> str:
    marker = await run.marker()
    last = int((await run.info(run.name))["state"]["last_seq"])
    made: list[str] = []
    for entry in marker.consumers:
        cname = str(entry["name"])
        if await run.api.consumer_info(run.name, cname) is not None:
            continue
        start = last - int(entry["pending"]) + 1
        config = resumed_consumer_config(entry["config"], start)
        await run.api.create_consumer(run.name, config, action="create")
        made.append(f"{cname} at {start}")
    return "re-created " + (", ".join(made) if made else "none")


async def _open(run: _Run) -> str:
    await run.api.update_stream(open_config(run.desired))
    return f"{run.name} accepts publishes again"


async def _delete_temp(run: _Run) -> str:
    temp = await run.info(run.temp)
    held = int(temp["state"]["messages"])
    new = await run.info(run.name)
    if new["config"].get("sources"):
        raise MigrationError(f"migrating {run.name}: it still has sources; {run.temp} kept")
    first = int(run.desired.get("first_seq") or 1)
    received = int(new["state"]["last_seq"]) - first + 1
    if received < held:
        raise MigrationError(
            f"migrating {run.name}: it received {received:,} messages but {run.temp} holds "
            f"{held:,}; {run.temp} kept"
        )
    await run.api.delete_stream(run.temp)
    run.messages = run.messages or held
    return f"{run.temp} deleted"


# -- checks ----------------------------------------------------------------------------------


async def _wait_messages(run: _Run, stream: str, done: Callable[[int], bool], what: str) -> int:
    """Poll ``stream``'s message count until ``done``; stop after ``stall_timeout`` idle."""
    last = -1
    changed = time.monotonic()
    while True:
        count = int((await run.info(stream))["state"]["messages"])
        if done(count):
            return count
        now = time.monotonic()
        if count != last:
            last, changed = count, now
        elif now - changed > run.stall_timeout:
            raise MigrationError(
                f"migrating {run.name}: {stream} stopped at {count:,} messages, waiting for "
                f"{what} (no progress for {run.stall_timeout:g} s); nothing was deleted, re-run "
                "to resume"
            )
        await asyncio.sleep(run.poll)


async def _verify_same(run: _Run, *, copy: str, origin: str) -> int:
    """Check that ``copy`` holds exactly ``origin``'s messages; return the count.

    Count and per-subject counts must be equal, and the newest copy must name ``origin`` and
    the origin message it came from must have the same subject, payload and headers.
    """
    copy_state = (await run.info(copy))["state"]
    origin_state = (await run.info(origin))["state"]
    count = int(copy_state["messages"])
    if count != int(origin_state["messages"]):
        raise MigrationError(
            f"migrating {run.name}: {copy} holds {count:,} messages but {origin} holds "
            f"{int(origin_state['messages']):,}; nothing was deleted"
        )
    if count == 0:
        return 0
    copy_subjects = await run.api.subject_counts(copy)
    origin_subjects = await run.api.subject_counts(origin)
    if copy_subjects != origin_subjects:
        differ = sorted(set(copy_subjects.items()) ^ set(origin_subjects.items()))[:3]
        raise MigrationError(
            f"migrating {run.name}: {copy} and {origin} hold different subjects "
            f"(for example {differ}); nothing was deleted"
        )
    newest = await run.api.get_message(copy, int(copy_state["last_seq"]))
    copied = _decode(newest)
    source = dict(copied["headers"]).get(SOURCE_HEADER, "").split(" ")
    if len(source) < 2 or source[0] != origin or not source[1].isdigit():
        raise MigrationError(
            f"migrating {run.name}: the newest message of {copy} did not come from {origin} "
            f"({SOURCE_HEADER}: {' '.join(source)!r}); nothing was deleted"
        )
    from_origin = _decode(await run.api.get_message(origin, int(source[1])))
    if _content(copied) != _content(from_origin):
        raise MigrationError(
            f"migrating {run.name}: the newest message of {copy} differs from {origin}'s "
            f"message {source[1]}; nothing was deleted"
        )
    return count


def _decode(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    if raw is None:
        return {"subject": None, "data": b"", "headers": []}
    headers: list[tuple[str, str]] = []
    if raw.get("hdrs"):
        lines = base64.b64decode(raw["hdrs"]).decode(errors="replace").split("\r\n")[1:]
        for line in lines:
            if line and ":" in line:
                key, _, value = line.partition(":")
                headers.append((key.strip(), value.strip()))
    return {
        "subject": raw.get("subject"),
        "data": base64.b64decode(raw.get("data") or ""),
        "headers": headers,
    }


def _content(msg: Mapping[str, Any]) -> tuple[Any, ...]:
    headers = tuple(h for h in msg["headers"] if h[0] != SOURCE_HEADER)
    return msg["subject"], msg["data"], headers


async def _pending_after(api: JetStreamAPI, stream: str, floor: int) -> int:
    """How many messages of ``stream`` lie after ``floor`` (a throw-away consumer; facts §5)."""
    info = await api.stream_info(stream)
    if info is None or floor >= int(info["state"]["last_seq"]):
        return 0
    probe: JSONDict = {
        "deliver_policy": "by_start_sequence",
        "opt_start_seq": floor + 1,
        "ack_policy": "none",
        "inactive_threshold": 5_000_000_000,
        "mem_storage": True,
        "num_replicas": 1,
    }
    reply = await api.request(f"CONSUMER.CREATE.{stream}", {"stream_name": stream, "config": probe})
    pending = int(reply.get("num_pending") or 0)
    try:
        await api.delete_consumer(stream, str(reply["name"]))
    except JelmoreError:
        pass  # it goes away by itself after its inactive threshold
    return pending
