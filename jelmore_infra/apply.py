"""Carrying a plan out: gates, execution in plan order, partial-failure reporting, convergence.

Apply is driven by the plan alone (DESIGN §2): every step sends the config the plan recorded
(``ResourceChange.after``, the full config, because the server's update replaces the whole
config). Before anything is sent, :func:`check_gates` refuses plans with errors, unannounced data
loss and unapproved deletes. Execution stops at the first failed step and reports what was done,
what failed (with the server's error) and what was not attempted. After the last step every
changed resource is read back and compared with what the plan intended.

All server traffic goes through :class:`jelmore_infra.live.jsapi.JetStreamAPI`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jelmore_infra.errors import JelmoreError, JetStreamAPIError
from jelmore_infra.model import parse_version
from jelmore_infra.plan import Action, Kind, Plan, ResourceChange

if TYPE_CHECKING:
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

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def ok(self) -> bool:
        return self.failed is None and not self.convergence_errors

    def count(self, action: Action) -> int:
        return sum(1 for s in self.steps if s.status == "done" and s.change.action is action)

    def summary_line(self) -> str:
        return (
            f"Resources: {self.count(Action.CREATE)} added, {self.count(Action.UPDATE)} changed, "
            f"{self.count(Action.REPLACE)} replaced, {self.count(Action.DELETE)} destroyed."
        )


#: Progress callback: (change, "start" | "done" | "failed", error or None).
Progress = Callable[[ResourceChange, str, str | None], None]


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


async def _create(api: JetStreamAPI, change: ResourceChange) -> None:
    assert change.after is not None
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
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


async def execute_step(api: JetStreamAPI, change: ResourceChange) -> None:
    """Send one change to the server."""
    if change.action is Action.CREATE:
        await _create(api, change)
    elif change.action is Action.UPDATE:
        await _update(api, change)
    elif change.action is Action.REPLACE:
        await _delete(api, change)
        await _create(api, change)
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
) -> ApplyResult:
    """Execute the plan's changes phase by phase; stop at the first failure; check convergence.

    Within a phase up to ``concurrency`` steps are in flight. After a failure no new step starts;
    steps already in flight finish and are reported. Gates are the caller's job
    (:func:`check_gates`), so nothing reaches the server when one refuses.
    """
    outcome: dict[int, StepResult] = {}
    failed = False
    changes = list(plan.changes)
    position = {id(c): n for n, c in enumerate(changes)}
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run(change: ResourceChange) -> None:
        nonlocal failed
        async with gate:
            if failed:
                return
            if progress:
                progress(change, "start", None)
            try:
                await execute_step(api, change)
            except (JelmoreError, OSError, TimeoutError) as exc:
                failed = True
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
        await asyncio.gather(*(run(c) for c in phase))
    result = ApplyResult(
        steps=[outcome.get(n) or StepResult(c, "not attempted") for n, c in enumerate(changes)]
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


async def find_stale(api: JetStreamAPI, plan: Plan) -> list[str]:
    """Each resource whose live config no longer matches the fingerprint the plan recorded."""
    from jelmore_infra.normalize import fingerprint, normalize_consumer, normalize_stream

    version = parse_version(api.identity.version)
    names = {address.split(".", 2)[1] for address in plan.fingerprints}
    streams, consumers = await _live_configs(api, names)
    stale: list[str] = []
    for address, recorded in sorted(plan.fingerprints.items()):
        parts = address.split(".", 2)
        if parts[0] == "stream":
            live = streams.get(parts[1])
            current = fingerprint(normalize_stream(live, version)) if live else None
        else:
            config = consumers.get((parts[1], parts[2]))
            current = (
                fingerprint(
                    normalize_consumer(config, version, stream_config=streams.get(parts[1]))
                )
                if config
                else None
            )
        if current != recorded:
            if recorded is None:
                what = "was created since the plan was made"
            elif current is None:
                what = "was deleted since the plan was made"
            else:
                what = "was changed since the plan was made"
            stale.append(f"{address} {what}")
    return stale
