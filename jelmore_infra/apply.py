"""Carrying a plan out: gates, execution in plan order, partial-failure reporting, convergence.

Apply is driven by the plan alone (DESIGN §2): every step sends the config the plan recorded
(``ResourceChange.after``, the full config, because the server's update replaces the whole
config). Before anything is sent, :func:`check_gates` refuses plans with errors, unannounced data
loss and unapproved deletes. Execution stops at the first failed step and reports what was done,
what failed (with the server's error) and what was not attempted. After the last step every
changed resource is read back and compared with what the plan intended.

A saved plan is re-checked against the live server first (:func:`recheck_plan`): staleness,
ownership, the action of every change, and the gates' errors and data loss all come from the live
state, never from what the file claims. With the apply lock (:class:`Lease`), every phase starts
only once the server confirmed the lease and every request goes out only while it is held.

All server traffic goes through :class:`jelmore_infra.live.jsapi.JetStreamAPI`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from jelmore_infra.errors import JelmoreError, JetStreamAPIError, LockError
from jelmore_infra.model import (
    MANAGED_BY_KEY,
    ConsumerSpec,
    LiveState,
    StreamSpec,
    Topology,
    is_managed,
    parse_version,
)
from jelmore_infra.plan import Action, Kind, Plan, ResourceChange

if TYPE_CHECKING:
    from datetime import datetime

    from jelmore_infra.live.jsapi import JetStreamAPI

StepStatus = Literal["done", "failed", "not attempted"]

#: "stream not found" / "consumer not found": a delete of something already gone is done.
_NOT_FOUND = {10059, 10014}


@dataclass(frozen=True, slots=True)
class Gates:
    """What the user allowed for this apply."""

    allow_data_loss: bool = False
    allow_destroy: bool = False
    interactive: bool = False


@dataclass(frozen=True, slots=True)
class GateRefusal:
    reason: str
    addresses: tuple[str, ...] = ()


def check_gates(plan: Plan, gates: Gates) -> list[GateRefusal]:
    """Every reason apply must refuse this plan (empty list: go ahead). Pure."""
    refusals: list[GateRefusal] = []
    if plan.errors:
        refusals.append(
            GateRefusal(
                "the plan has errors and cannot be applied: "
                + "; ".join(m.message for m in plan.errors),
                tuple(sorted({m.address for m in plan.errors if m.address})),
            )
        )
    loss = plan.data_loss()
    if loss and not gates.allow_data_loss:
        addresses = tuple(sorted({m.address for m in loss if m.address}))
        refusals.append(
            GateRefusal(
                "the plan loses data ("
                + "; ".join(f"{m.address}: {m.message}" if m.address else m.message for m in loss)
                + "): re-run with --allow-data-loss to accept",
                addresses,
            )
        )
    deletes = tuple(c.address for c in plan.changes if c.action is Action.DELETE)
    if deletes and not gates.interactive and not gates.allow_destroy:
        refusals.append(
            GateRefusal(
                f"the plan destroys {', '.join(deletes)}: "
                "re-run with --allow-destroy to accept deletes without a terminal",
                deletes,
            )
        )
    return refusals


@dataclass(slots=True)
class StepResult:
    change: ResourceChange
    status: StepStatus
    error: str | None = None


@dataclass(slots=True)
class ApplyResult:
    steps: list[StepResult] = field(default_factory=list)
    #: Differences between what the plan intended and what the server holds after apply.
    convergence_errors: list[str] = field(default_factory=list)
    #: Why apply stopped without the apply lock (None: it held the lock to the end, or used none).
    lock_lost: str | None = None

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def ok(self) -> bool:
        return self.failed is None and not self.convergence_errors and self.lock_lost is None

    def count(self, action: Action) -> int:
        return sum(1 for s in self.steps if s.status == "done" and s.change.action is action)

    def summary_line(self) -> str:
        return (
            f"Resources: {self.count(Action.CREATE)} added, {self.count(Action.UPDATE)} changed, "
            f"{self.count(Action.REPLACE)} replaced, {self.count(Action.DELETE)} destroyed."
        )


#: Progress callback: (change, "start" | "done" | "failed", error or None).
Progress = Callable[[ResourceChange, str, str | None], None]


class Lease(Protocol):
    """The apply lock as apply sees it (:class:`jelmore_infra.live.lock.ApplyLock`)."""

    async def ensure_held(self) -> None:
        """Return only while the lock is surely held; raise LockError otherwise (cheap)."""

    async def confirm(self) -> None:
        """Check with the server that the lock is still held; raise LockError otherwise."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, JetStreamAPIError):
        return f"{exc.description} (error {exc.err_code})"
    return str(exc) or type(exc).__name__


async def _delete(api: JetStreamAPI, change: ResourceChange) -> None:
    try:
        if change.kind is Kind.STREAM:
            await api.delete_stream(change.name)
        else:
            await api.delete_consumer(change.stream, change.name)
    except JetStreamAPIError as exc:
        if exc.err_code not in _NOT_FOUND:
            raise


#: "error creating store for stream": the server can report this for a moment right after the
#: account's last stream was deleted (seen on busy machines); the create succeeds when repeated.
_TRANSIENT_CREATE = 10049
_CREATE_ATTEMPTS = 4


async def _create(api: JetStreamAPI, change: ResourceChange, lease: Lease | None = None) -> None:
    assert change.after is not None
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        if lease is not None and attempt > 1:
            await lease.ensure_held()
        try:
            if change.kind is Kind.STREAM:
                await api.create_stream(change.after)
            else:
                await api.create_consumer(change.stream, change.after, action="create")
            return
        except JetStreamAPIError as exc:
            if exc.err_code != _TRANSIENT_CREATE or attempt == _CREATE_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)


async def _update(api: JetStreamAPI, change: ResourceChange) -> None:
    assert change.after is not None
    if change.kind is Kind.STREAM:
        await api.update_stream(change.after)
    else:
        await api.create_consumer(change.stream, change.after, action="update")


async def execute_step(
    api: JetStreamAPI, change: ResourceChange, lease: Lease | None = None
) -> None:
    """Send one change to the server (``lease`` is checked again before any further request)."""
    if change.action is Action.CREATE:
        await _create(api, change, lease)
    elif change.action is Action.UPDATE:
        await _update(api, change)
    elif change.action is Action.REPLACE:
        await _delete(api, change)
        if lease is not None:
            await lease.ensure_held()
        await _create(api, change, lease)
    elif change.action is Action.DELETE:
        await _delete(api, change)


#: Steps sent to the server at once within one phase of the plan.
CONCURRENCY = 64


def _phase(change: ResourceChange) -> int:
    """Apply phases: consumer deletes, stream deletes, stream changes, consumer changes.

    Changes within one phase touch different resources and do not depend on each other, so they
    run concurrently; a phase starts only when the one before it has finished.
    """
    deleting = change.action is Action.DELETE
    if change.kind is Kind.CONSUMER:
        return 0 if deleting else 3
    return 1 if deleting else 2


def _phases(changes: Sequence[ResourceChange]) -> list[list[ResourceChange]]:
    """Consecutive runs of changes in the same phase, in plan order."""
    runs: list[list[ResourceChange]] = []
    for change in changes:
        if runs and _phase(runs[-1][-1]) == _phase(change):
            runs[-1].append(change)
        else:
            runs.append([change])
    return runs


async def apply_plan(
    api: JetStreamAPI,
    plan: Plan,
    *,
    progress: Progress | None = None,
    concurrency: int = CONCURRENCY,
    lease: Lease | None = None,
) -> ApplyResult:
    """Execute the plan's changes phase by phase; stop at the first failure; check convergence.

    Within a phase up to ``concurrency`` steps are in flight. After a failure no new step starts;
    steps already in flight finish and are reported. Gates are the caller's job
    (:func:`check_gates`), so nothing reaches the server when one refuses.

    With a ``lease`` (the apply lock), each phase starts only after the server confirmed the lease
    and each request is sent only while it is held; once it is lost nothing more is sent, the
    result says why (``lock_lost``) and convergence is not checked (another apply is at work).
    """
    outcome: dict[int, StepResult] = {}
    failed = False
    lock_lost: str | None = None
    changes = list(plan.changes)
    position = {id(c): n for n, c in enumerate(changes)}
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run(change: ResourceChange) -> None:
        nonlocal failed, lock_lost
        async with gate:
            if failed:
                return
            if lease is not None:
                try:
                    await lease.ensure_held()
                except LockError as exc:
                    failed, lock_lost = True, lock_lost or str(exc)
                    return
            if progress:
                progress(change, "start", None)
            try:
                await execute_step(api, change, lease)
            except (JelmoreError, OSError, TimeoutError) as exc:
                failed = True
                if isinstance(exc, LockError):
                    lock_lost = lock_lost or str(exc)
                message = _describe(exc)
                outcome[position[id(change)]] = StepResult(change, "failed", message)
                if progress:
                    progress(change, "failed", message)
                return
            outcome[position[id(change)]] = StepResult(change, "done")
            if progress:
                progress(change, "done", None)

    for phase in _phases(changes):
        if failed:
            break
        if lease is not None:
            try:
                await lease.confirm()
            except LockError as exc:
                failed, lock_lost = True, str(exc)
                break
        await asyncio.gather(*(run(c) for c in phase))
    result = ApplyResult(
        steps=[outcome.get(n) or StepResult(c, "not attempted") for n, c in enumerate(changes)],
        lock_lost=lock_lost,
    )
    if not failed:
        result.convergence_errors = await check_convergence(api, plan)
    return result


async def _live_configs(
    api: JetStreamAPI, streams: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """Current configs of ``streams`` and their consumers, in one paged live read."""
    from jelmore_infra.live.read import read_live

    live = await read_live(api, streams=streams)
    stream_configs = {n: dict(s.config) for n, s in live.streams.items() if n in streams}
    consumer_configs = {k: dict(c.config) for k, c in live.consumers.items() if k[0] in streams}
    return stream_configs, consumer_configs


async def check_convergence(api: JetStreamAPI, plan: Plan) -> list[str]:
    """Re-read every resource the plan changed and name each field the server did not apply."""
    from jelmore_infra.normalize import normalize_consumer, normalize_stream

    if not plan.changes:
        return []
    version = parse_version(api.identity.version)
    streams, consumers = await _live_configs(api, {c.stream for c in plan.changes})
    problems: list[str] = []
    for change in plan.changes:
        if change.kind is Kind.STREAM:
            live = streams.get(change.name)
        else:
            live = consumers.get((change.stream, change.name))
        if change.action is Action.DELETE:
            if live is not None:
                problems.append(f"server did not apply {change.address}: it still exists")
            continue
        if live is None:
            problems.append(f"server did not apply {change.address}: it does not exist")
            continue
        assert change.after is not None
        if change.kind is Kind.STREAM:
            want = normalize_stream(change.after, version)
            got = normalize_stream(live, version)
        else:
            stream_cfg = streams.get(change.stream)
            want = normalize_consumer(change.after, version, stream_config=stream_cfg)
            got = normalize_consumer(live, version, stream_config=stream_cfg)
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                problems.append(
                    f"server did not apply {change.address} {key}: "
                    f"planned {want.get(key)!r}, server has {got.get(key)!r}"
                )
    return problems


def identity_mismatch(plan: Plan, api: JetStreamAPI) -> str | None:
    """Why a saved plan was made against another server, account or domain (None: same)."""
    made, now = plan.server, api.identity
    if (made.domain or None) != (now.domain or None):
        return (
            f"the plan was made for JetStream domain {made.domain!r}, connected to {now.domain!r}"
        )
    if made.account and now.account and made.account != now.account:
        return f"the plan was made for account {made.account!r}, connected to {now.account!r}"
    if made.cluster or now.cluster:
        if made.cluster != now.cluster:
            return f"the plan was made for cluster {made.cluster!r}, connected to {now.cluster!r}"
    elif made.server_name != now.server_name:
        return (
            f"the plan was made for server {made.server_name!r}, connected to {now.server_name!r}"
        )
    return None


@dataclass(frozen=True, slots=True)
class SavedPlanCheck:
    """What applying a saved plan found when it re-read the live server."""

    #: Each resource that changed on the server since the plan was made.
    stale: tuple[str, ...]
    #: Reasons apply refuses whatever the flags: changes to resources jelmore-infra does not
    #: manage, and actions the plan's own configs against the live server do not give.
    refusals: tuple[GateRefusal, ...]
    #: The saved changes with the errors and data loss that a fresh diff against the live state
    #: reports: gate this, never the messages stored in the file.
    plan: Plan


async def recheck_saved_plan(api: JetStreamAPI, plan: Plan) -> SavedPlanCheck:
    """Re-read the live server and check a saved plan against it (see :func:`recheck_plan`)."""
    from datetime import UTC, datetime

    from jelmore_infra.live.read import read_live

    names = {address.split(".", 2)[1] for address in plan.fingerprints}
    names |= {c.stream for c in plan.changes}
    live = await read_live(api, streams=names)
    return recheck_plan(plan, live, now=datetime.now(UTC))


def recheck_plan(plan: Plan, live: LiveState, *, now: datetime) -> SavedPlanCheck:
    """Check a saved plan against the live state; trust nothing in it but its configs. Pure.

    A plan file is only as trustworthy as its checksum, and a plain checksum can be recomputed
    by anyone who edits the file. So apply re-derives what matters from the live state:

    - staleness: every fingerprint the plan recorded, and every change's, must match the server;
    - ownership: a live resource without the ``jelmore.managed-by`` metadata is never deleted or
      replaced, and is updated only when the update adopts it (its config carries the key);
    - actions: the plan's configs (``after``) are diffed against the live state again, and every
      change must get the action the plan states;
    - gates: the errors and data loss of that fresh diff replace the messages stored in the file.
    """
    from jelmore_infra.diff import build_plan

    stale = tuple(_stale(plan, live))
    if not plan.changes:
        return SavedPlanCheck(stale, (), replace(plan, messages=()))
    refusals: list[GateRefusal] = []
    refused: set[str] = set()
    for change in plan.changes:
        config = _config_of(live, change)
        if config is None or is_managed(config):
            continue
        if change.action in (Action.DELETE, Action.REPLACE):
            verb = "deletes" if change.action is Action.DELETE else "replaces"
            reason = (
                f"the plan {verb} {change.address}, which is not managed by jelmore-infra "
                f"(no {MANAGED_BY_KEY} metadata); apply never deletes or replaces it"
            )
        elif not is_managed(change.after or {}):
            reason = (
                f"the plan changes {change.address}, which is not managed by jelmore-infra, "
                "without adopting it"
            )
        else:
            continue
        refusals.append(GateRefusal(reason, (change.address,)))
        refused.add(change.address)
    desired = Topology(
        streams={
            c.name: StreamSpec(c.name, dict(c.after))
            for c in plan.changes
            if c.kind is Kind.STREAM and c.after is not None
        },
        consumers={
            (c.stream, c.name): ConsumerSpec(c.stream, c.name, dict(c.after))
            for c in plan.changes
            if c.kind is Kind.CONSUMER and c.after is not None
        },
    )
    fresh = build_plan(desired, live, targets=[c.address for c in plan.changes], now=now)
    actions = {c.address: c.action for c in fresh.changes}
    for change in plan.changes:
        got = actions.get(change.address, Action.NOOP)
        if change.address in refused or got is change.action:
            continue
        refusals.append(
            GateRefusal(
                f"the plan says {change.action.value} {change.address}, but its own config "
                f"against the live server gives {got.value}: the plan file was edited or made "
                "by another jelmore-infra; plan again",
                (change.address,),
            )
        )
    changed = {c.address for c in plan.changes}
    lost_streams = {
        c.name
        for c in plan.changes
        if c.kind is Kind.STREAM and c.action in (Action.DELETE, Action.REPLACE)
    }

    def concerns(address: str | None) -> bool:
        if address is None:
            return False
        parts = address.split(".", 2)
        return address in changed or (parts[0] == "consumer" and parts[1] in lost_streams)

    messages = tuple(
        m
        for m in fresh.messages
        if concerns(m.address) and (m.severity == "error" or m.kind == "data-loss")
    )
    return SavedPlanCheck(stale, tuple(refusals), replace(plan, messages=messages))


def _config_of(live: LiveState, change: ResourceChange) -> dict[str, Any] | None:
    if change.kind is Kind.STREAM:
        stream = live.streams.get(change.name)
        return stream.config if stream else None
    consumer = live.consumers.get((change.stream, change.name))
    return consumer.config if consumer else None


def _stale(plan: Plan, live: LiveState) -> list[str]:
    """Each resource whose live config no longer matches a fingerprint the plan recorded."""
    from jelmore_infra.normalize import fingerprint, normalize_consumer, normalize_stream

    version = parse_version(live.server.version)
    recorded = [*plan.fingerprints.items(), *((c.address, c.fingerprint) for c in plan.changes)]
    stale: dict[str, str] = {}
    for address, expected in sorted(set(recorded), key=lambda item: item[0]):
        if address in stale:
            continue
        parts = address.split(".", 2)
        stream = live.streams.get(parts[1]) if len(parts) > 1 else None
        if parts[0] == "stream":
            current = fingerprint(normalize_stream(stream.config, version)) if stream else None
        else:
            consumer = live.consumers.get((parts[1], parts[2])) if len(parts) == 3 else None
            current = (
                fingerprint(
                    normalize_consumer(
                        consumer.config,
                        version,
                        stream_config=stream.config if stream else None,
                    )
                )
                if consumer
                else None
            )
        if current != expected:
            if expected is None:
                what = "was created since the plan was made"
            elif current is None:
                what = "was deleted since the plan was made"
            else:
                what = "was changed since the plan was made"
            stale[address] = f"{address} {what}"
    return [stale[a] for a in sorted(stale)]
