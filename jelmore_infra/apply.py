"""Carrying a plan out: gates, confirmation, execution in plan order, partial failures, convergence.

:func:`run_apply` is the library entry point: it refuses plans with errors, asks for
confirmation through the caller's hooks (:class:`ApplyHooks`), checks the gates, executes the
changes (:func:`apply_plan`) and returns an :class:`ApplyResult`; the caller renders it.

Apply is driven by the plan alone: every step sends the config the plan recorded
(``ResourceChange.after``, the full config, because the server's update replaces the whole
config) with the API calls of the change's kind (:mod:`jelmore_infra.kinds`). Before anything is
sent, :func:`check_gates` refuses plans with errors, unannounced data loss and unapproved deletes.
Execution runs phase by phase in the order the plan was built in (:mod:`jelmore_infra.diff.order`),
stops at the first failed step and reports what was done, what failed (with the server's error)
and what was not attempted. After the last step every changed resource is compared with what the
plan intended: as the server's create or update reply reports it (the reply carries the resulting
config), or, for deletes and anything without such a reply, as a fresh read shows it.

A ``migrate`` runs (or resumes) :func:`jelmore_infra.migration.executor.migrate_stream` in the
stream phase, reports each of its steps through ``ApplyHooks.on_progress`` and confirms the apply
lock before every step; a consumer update in the same plan keeps the start position the
migration gave the consumer.

A saved plan is re-checked against the live server first (:func:`recheck_plan`): staleness,
ownership, the action of every change, and the gates' errors and data loss all come from the live
state, never from what the file claims. With the apply lock (:class:`Lease`), every phase starts
only once the server confirmed the lease and every request goes out only while it is held.

All server traffic goes through :class:`jelmore_infra.live.jsapi.JetStreamAPI`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from jelmore_infra.address import Address, try_parse
from jelmore_infra.errors import ApplyError, JelmoreError, JetStreamAPIError, LockError
from jelmore_infra.migration.steps import is_resumed_position, keep_resumed_position, temp_name
from jelmore_infra.model import (
    MANAGED_BY_KEY,
    LiveState,
    Topology,
    is_managed,
    parse_version,
)
from jelmore_infra.plan import Action, Plan, ResourceChange

if TYPE_CHECKING:
    from datetime import datetime

    from jelmore_infra.kinds.base import ResourceKind
    from jelmore_infra.live.jsapi import JetStreamAPI

StepStatus = Literal["done", "failed", "not attempted"]


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
        migrated = self.count(Action.MIGRATE)
        return (
            f"Resources: {self.count(Action.CREATE)} added, {self.count(Action.UPDATE)} changed, "
            f"{self.count(Action.REPLACE)} replaced, "
            + (f"{migrated} migrated, " if migrated else "")
            + f"{self.count(Action.DELETE)} destroyed."
        )


def _ignore(*_: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ApplyHooks:
    """What the caller of an apply is told, and asked (every hook is optional).

    ``confirm`` is awaited once, after the plan was shown and only when it has changes: it
    returns whether to go ahead (``None``: no confirmation is needed, e.g. ``--auto-approve``).
    ``on_step_done`` gets the server's error for a failed step (``None``: done). ``on_result``
    sees the result as soon as execution ends, before the apply lock is released.
    """

    on_plan: Callable[[Plan], None] = _ignore
    confirm: Callable[[Plan], Awaitable[bool]] | None = None
    on_step_start: Callable[[ResourceChange], None] = _ignore
    on_step_done: Callable[[ResourceChange, str | None], None] = _ignore
    on_lock_takeover: Callable[[str], None] = _ignore
    #: One line per step of a long change (a migration's steps), as it starts and ends.
    on_progress: Callable[[ResourceChange, str], None] = _ignore
    on_result: Callable[[ApplyResult], None] = _ignore


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


def _kind(change: ResourceChange) -> ResourceKind:
    return _kind_of()(change)


@functools.cache
def _kind_of() -> Callable[[ResourceChange], ResourceKind]:
    """``jelmore_infra.kinds.kind_of``, imported once when first needed."""
    from jelmore_infra.kinds import kind_of

    return kind_of


#: "error creating store for stream": the server can report this for a moment right after the
#: account's last stream was deleted (seen on busy machines); the create succeeds when repeated.
_TRANSIENT_CREATE = 10049
_CREATE_ATTEMPTS = 4


async def _create(api: JetStreamAPI, change: ResourceChange, lease: Lease | None = None) -> None:
    kind = _kind(change)
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        if lease is not None and attempt > 1:
            await lease.ensure_held()
        try:
            await kind.create(api, change)
            return
        except JetStreamAPIError as exc:
            if exc.err_code != _TRANSIENT_CREATE or attempt == _CREATE_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)


async def _migrate(
    api: JetStreamAPI,
    change: ResourceChange,
    lease: Lease | None,
    progress: Callable[[str], None],
) -> None:
    """Run (or resume) the migration of a stream or bucket (its stream); the lease is confirmed
    before every step.

    A failure names the last step done and says that every message is still kept (the
    executor never deletes a stream before the other copy is verified complete).
    """
    from jelmore_infra.migration.executor import StepEvent, migrate_stream

    assert change.after is not None
    done: list[str] = []

    def on_progress(event: StepEvent) -> None:
        if event.phase == "done":
            done.append(event.step.value)
            progress(f"{event.step.value}: {event.detail}")
        else:
            progress(f"{event.step.value}: {event.detail} ...")

    async def before_step(_: Any) -> None:
        if lease is not None:
            await lease.confirm()

    try:
        target = _kind(change).migration_config(change.name, change.after, api.version)
        await migrate_stream(api, target, on_progress=on_progress, before_step=before_step)
    except LockError:
        raise
    except (JelmoreError, OSError, TimeoutError) as exc:
        where = f"after step {done[-1]}" if done else "before its first step"
        raise ApplyError(
            f"migration of {change.name} stopped {where}: {_describe(exc)}; no message was "
            "lost (nothing is deleted before its copy is verified); run apply again to resume"
        ) from exc


async def _update_after_migration(api: JetStreamAPI, change: ResourceChange) -> None:
    """Update a consumer its stream's migration re-created, keeping the position it was given."""
    assert change.after is not None
    info = await api.consumer_info(change.stream, change.name)
    live = (info or {}).get("config") or {}
    await _kind(change).update(
        api, replace(change, after=keep_resumed_position(change.after, live), expected=None)
    )


async def execute_step(
    api: JetStreamAPI,
    change: ResourceChange,
    lease: Lease | None = None,
    *,
    progress: Callable[[str], None] = _ignore,
    migrated: frozenset[str] = frozenset(),
) -> None:
    """Send one change to the server (``lease`` is checked again before any further request).

    ``migrated``: streams this apply migrates; a consumer update of one of them keeps the start
    position the migration gave the consumer.
    """
    if change.action is Action.MIGRATE:
        await _migrate(api, change, lease, progress)
    elif (
        change.action is Action.UPDATE
        and change.kind.value == "consumer"
        and change.stream in migrated
    ):
        await _update_after_migration(api, change)
    elif change.action is Action.CREATE:
        await _create(api, change, lease)
    elif change.action is Action.UPDATE:
        await _kind(change).update(api, change)
    elif change.action is Action.REPLACE:
        await _kind(change).delete(api, change)
        if lease is not None:
            await lease.ensure_held()
        await _create(api, change, lease)
    elif change.action is Action.DELETE:
        await _kind(change).delete(api, change)


class _ReplyRecorder:
    """The API as one step sees it: every call passes through, and the config that each create
    or update reply carries (the server's resulting config) is recorded for the convergence
    check, which then needs no re-read of that resource."""

    _RECORDED = frozenset({"create_stream", "update_stream", "create_consumer"})

    def __init__(self, api: JetStreamAPI) -> None:
        self._api = api
        self.configs: list[dict[str, Any] | None] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if name not in self._RECORDED:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            reply = await attr(*args, **kwargs)
            config = reply.get("config") if isinstance(reply, Mapping) else None
            self.configs.append(config if isinstance(config, dict) else None)
            return reply

        return call

    def result_config(self) -> dict[str, Any] | None:
        """The resulting config, when the step made exactly one create or update call."""
        return self.configs[0] if len(self.configs) == 1 else None


#: Steps sent to the server at once within one phase of the plan. Each step checks the lease
#: before it sends (cheap while the renewals keep up), so this is also the most requests that can
#: be under way when the lease is lost. 256 (the raw baseline's window): a 5,000-resource apply
#: from empty spends ~1.10 s in its steps at 64, ~1.04 s at 128, ~1.00 s at 256.
CONCURRENCY = 256


async def apply_plan(
    api: JetStreamAPI,
    plan: Plan,
    *,
    hooks: ApplyHooks | None = None,
    concurrency: int = CONCURRENCY,
    lease: Lease | None = None,
) -> ApplyResult:
    """Execute the plan's changes phase by phase; stop at the first failure; check convergence.

    The phases are those the plan was ordered by (:func:`jelmore_infra.diff.order.phases`);
    within a phase up to ``concurrency`` steps are in flight, and ``hooks`` hear each start and
    end. After a failure no new step starts;
    steps already in flight finish and are reported. Gates are the caller's job
    (:func:`check_gates`), so nothing reaches the server when one refuses.

    With a ``lease`` (the apply lock), each phase starts only after the server confirmed the lease
    and each request is sent only while it is held; once it is lost nothing more is sent, the
    result says why (``lock_lost``) and convergence is not checked (another apply is at work).
    """
    from jelmore_infra.diff.order import phases

    hooks = hooks or ApplyHooks()
    outcome: dict[int, StepResult] = {}
    failed = False
    lock_lost: str | None = None
    changes = list(plan.changes)
    migrated = frozenset(c.name for c in changes if c.action is Action.MIGRATE)
    position = {id(c): n for n, c in enumerate(changes)}
    #: Position of a created or updated resource's change → the config the server replied with.
    replies: dict[int, dict[str, Any]] = {}
    #: The replied configs by resource address, and the convergence problems of each change
    #: already compared with its reply (while the server still works on other steps).
    replied_at: dict[Address, dict[str, Any]] = {}
    compared: dict[str, list[str]] = {}
    version = parse_version(api.identity.version)
    same_server = plan.server.version == api.identity.version

    def compare_reply(change: ResourceChange, config: dict[str, Any]) -> None:
        """Check a change against its reply now when its parent (if any) has replied; what
        is not compared here (or fails) :func:`check_convergence` compares at the end."""
        try:
            kind = _kind(change)
            address = kind.address_of(change)
            replied_at[address] = config
            parent = kind.parent_of(address)
            if parent is not None and parent not in replied_at:
                return
            parent_config = dict(replied_at[parent]) if parent is not None else None
            # The diff's normalised config holds when the plan was made on this server and the
            # parent (whose consumer limits a consumer inherits) replied as planned.
            expected = (
                change.expected
                if same_server and (parent is None or compared.get(str(parent)) == [])
                else None
            )
            compared[change.address] = _reply_problems(
                kind, change, config, parent_config, version, expected
            )
        except Exception:
            compared.pop(change.address, None)

    async def run(change: ResourceChange) -> None:
        nonlocal failed, lock_lost
        if failed:
            return
        if lease is not None:
            try:
                await lease.ensure_held()
            except LockError as exc:
                failed, lock_lost = True, lock_lost or str(exc)
                return
        hooks.on_step_start(change)
        recorder = _ReplyRecorder(api)
        try:
            await execute_step(
                cast("JetStreamAPI", recorder),
                change,
                lease,
                progress=lambda line: hooks.on_progress(change, line),
                migrated=migrated,
            )
        except (JelmoreError, OSError, TimeoutError) as exc:
            failed = True
            if isinstance(exc, LockError):
                lock_lost = lock_lost or str(exc)
            message = _describe(exc)
            outcome[position[id(change)]] = StepResult(change, "failed", message)
            hooks.on_step_done(change, message)
            return
        outcome[position[id(change)]] = StepResult(change, "done")
        config = recorder.result_config()
        if config is not None and change.action is not Action.DELETE:
            replies[position[id(change)]] = config
            compare_reply(change, config)
        hooks.on_step_done(change, None)

    async def worker(steps: Iterator[ResourceChange]) -> None:
        for change in steps:  # shared by the workers: each step is taken once, in plan order
            await run(change)

    for phase in phases(changes):
        if failed:
            break
        if lease is not None:
            try:
                await lease.confirm()
            except LockError as exc:
                failed, lock_lost = True, str(exc)
                break
        # ``concurrency`` workers take the phase's steps in turn: its first requests go out at
        # once, instead of after a task was made for each of its thousands of steps.
        steps = iter(phase)
        await asyncio.gather(*(worker(steps) for _ in range(min(max(1, concurrency), len(phase)))))
    result = ApplyResult(
        steps=[outcome.get(n) or StepResult(c, "not attempted") for n, c in enumerate(changes)],
        lock_lost=lock_lost,
    )
    if not failed:
        replied = {changes[n].address: config for n, config in replies.items()}
        result.convergence_errors = await check_convergence(api, plan, replied, compared)
    return result


class _LiveIndex:
    """The live resources of every kind by address, and each one's normalised config."""

    def __init__(self, live: LiveState) -> None:
        from jelmore_infra.kinds import KINDS

        self.version = parse_version(live.server.version)
        self.by_kind: dict[str, Mapping[Address, Any]] = {
            k.name: k.live_resources(live) for k in KINDS
        }

    def resource(self, address: Address) -> Any:
        return self.by_kind.get(address.kind, {}).get(address)

    def config(self, address: Address) -> dict[str, Any] | None:
        found = self.resource(address)
        return dict(found.config) if found is not None else None

    def normalize(self, kind: ResourceKind, address: Address, config: Any) -> dict[str, Any]:
        """``config`` normalised the way the plan does for ``address`` (with its parent's)."""
        parent = kind.parent_of(address)
        parent_config = self.config(parent) if parent is not None else None
        return kind.normalize_config(config, self.version, parent_config)

    def fingerprint(self, address: Address | None) -> str | None:
        from jelmore_infra.kinds import kind_at
        from jelmore_infra.normalize import fingerprint

        kind = kind_at(address) if address is not None else None
        if address is None or kind is None:
            return None
        config = self.config(address)
        if config is None:
            return None
        return fingerprint(self.normalize(kind, address, config))


def read_streams(addresses: Sequence[str]) -> set[str]:
    """The stream names a live read needs to see the resources at ``addresses``.

    A stream's migration copy is included, so a targeted plan still sees a half-done migration.
    """
    from jelmore_infra.kinds import kind_at

    names: set[str] = set()
    for text in addresses:
        address = try_parse(text)
        kind = kind_at(address) if address is not None else None
        if address is not None and kind is not None:
            names.add(kind.change_identity(address)[0])
    return names | {temp_name(n) for n in names}


def _keep_resumed_position(
    kind: ResourceKind, planned: Mapping[str, Any], got: Mapping[str, Any]
) -> Mapping[str, Any]:
    """A consumer a migration re-created keeps the start position it was given (not drift);
    ``planned`` itself when there is none to keep."""
    if kind.name != "consumer":
        return planned
    if not is_resumed_position(got, planned):
        return planned
    return keep_resumed_position(planned, got)


def _reply_problems(
    kind: ResourceKind,
    change: ResourceChange,
    replied: Mapping[str, Any],
    parent_config: dict[str, Any] | None,
    version: tuple[int, int, int],
    expected: Mapping[str, Any] | None = None,
) -> list[str]:
    """Each field of ``change`` its create or update reply (``replied``, the resulting config)
    does not have as planned; ``parent_config``: its parent's reply (a consumer's stream's).

    ``expected``: the normalised config of ``change.after`` when already known (the diff's),
    taken as it is unless the start position of a re-created consumer is kept.
    """
    assert change.after is not None
    planned = _keep_resumed_position(kind, change.after, replied)
    if expected is not None and planned is change.after:
        want: Mapping[str, Any] = expected
    else:
        want = kind.normalize_config(planned, version, parent_config)
    got = kind.normalize_config(replied, version, parent_config)
    return _differences(change, want, got)


def _differences(
    change: ResourceChange, want: Mapping[str, Any], got: Mapping[str, Any]
) -> list[str]:
    if want == got:
        return []
    return [
        f"server did not apply {change.address} {key}: "
        f"planned {want.get(key)!r}, server has {got.get(key)!r}"
        for key in sorted(set(want) | set(got))
        if want.get(key) != got.get(key)
    ]


async def check_convergence(
    api: JetStreamAPI,
    plan: Plan,
    replies: Mapping[str, Mapping[str, Any]] | None = None,
    compared: Mapping[str, list[str]] | None = None,
) -> list[str]:
    """Name each field of the plan's changes the server did not apply.

    ``replies``: change address → the config the server's create or update reply carried (the
    resulting config). Such a change is checked against its reply, with its parent's reply when
    it has a parent (a consumer's stream); every other change (deletes, changes without a reply,
    children of resources this apply did not touch) is read back from the server.
    ``compared``: change address → its problems, for changes :func:`apply_plan` already checked
    against their replies (and their parents' replies) while other steps were under way.
    """
    from jelmore_infra.live.read import read_live

    if not plan.changes:
        return []
    replies = replies or {}
    compared = compared or {}
    version = parse_version(api.identity.version)
    # Each change with its kind, its address and its parent's address (looked up once).
    located = []
    for change in plan.changes:
        kind = _kind(change)
        address = kind.address_of(change)
        located.append((change, kind, address, kind.parent_of(address)))
    by_address: dict[Address, Mapping[str, Any]] = {
        address: replies[change.address]
        for change, _, address, _ in located
        if change.address in replies
    }

    def from_reply(change: ResourceChange, parent: Address | None) -> bool:
        return change.address in replies and (parent is None or parent in by_address)

    unreplied = [c for c, _, _, parent in located if not from_reply(c, parent)]
    index: _LiveIndex | None = None
    if unreplied:
        live = await read_live(api, streams={c.stream for c in unreplied})
        index = _LiveIndex(replace(live, server=api.identity))
    problems: list[str] = []
    for change, kind, address, parent in located:
        if index is None or from_reply(change, parent):
            done = compared.get(change.address)
            if done is None:
                parent_config = dict(by_address[parent]) if parent is not None else None
                done = _reply_problems(
                    kind, change, replies[change.address], parent_config, version
                )
            problems.extend(done)
            continue
        got_config = index.config(address)
        if change.action is Action.DELETE:
            if got_config is not None:
                problems.append(f"server did not apply {change.address}: it still exists")
            continue
        if got_config is None:
            problems.append(f"server did not apply {change.address}: it does not exist")
            continue
        assert change.after is not None
        planned = _keep_resumed_position(kind, change.after, got_config)
        want = index.normalize(kind, address, planned)
        got = index.normalize(kind, address, got_config)
        problems.extend(_differences(change, want, got))
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

    names = read_streams(list(plan.fingerprints)) | {c.stream for c in plan.changes}
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
    from jelmore_infra.kinds import KINDS

    index = _LiveIndex(live)
    stale = tuple(_stale(plan, index))
    if not plan.changes:
        return SavedPlanCheck(stale, (), replace(plan, messages=()))
    refusals: list[GateRefusal] = []
    refused: set[str] = set()
    for change in plan.changes:
        config = index.config(_kind(change).address_of(change))
        if config is None or is_managed(config):
            continue
        if change.action in (Action.DELETE, Action.REPLACE, Action.MIGRATE):
            verb = {Action.DELETE: "deletes", Action.REPLACE: "replaces"}.get(
                change.action, "migrates"
            )
            reason = (
                f"the plan {verb} {change.address}, which is not managed by jelmore-infra "
                f"(no {MANAGED_BY_KEY} metadata); apply never deletes, replaces or migrates it"
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
    specs: dict[str, dict[Any, Any]] = {k.topology_field: {} for k in KINDS}
    for c in plan.changes:
        if c.after is not None:
            kind = _kind(c)
            key, spec = kind.spec_from_change(c)
            specs[kind.topology_field][key] = spec
    desired = Topology(**specs)  # type: ignore[arg-type]  # the kinds' own fields only
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
    lost = {
        _kind(c).address_of(c) for c in plan.changes if c.action in (Action.DELETE, Action.REPLACE)
    }

    def concerns(text: str | None) -> bool:
        if text is None:
            return False
        if text in changed:
            return True
        from jelmore_infra.kinds import kind_at

        address = try_parse(text)
        kind = kind_at(address) if address is not None else None
        return address is not None and kind is not None and kind.parent_of(address) in lost

    messages = tuple(
        m
        for m in fresh.messages
        if concerns(m.address) and (m.severity == "error" or m.kind == "data-loss")
    )
    return SavedPlanCheck(stale, tuple(refusals), replace(plan, messages=messages))


def _stale(plan: Plan, index: _LiveIndex) -> list[str]:
    """Each resource whose live config no longer matches a fingerprint the plan recorded."""
    recorded = [*plan.fingerprints.items(), *((c.address, c.fingerprint) for c in plan.changes)]
    stale: dict[str, str] = {}
    for address, expected in sorted(set(recorded), key=lambda item: item[0]):
        if address in stale:
            continue
        current = index.fingerprint(try_parse(address))
        if current != expected:
            if expected is None:
                what = "was created since the plan was made"
            elif current is None:
                what = "was deleted since the plan was made"
            else:
                what = "was changed since the plan was made"
            stale[address] = f"{address} {what}"
    return [stale[a] for a in sorted(stale)]


async def run_apply(
    api: JetStreamAPI,
    plan: Plan,
    gates: Gates,
    hooks: ApplyHooks | None = None,
    *,
    lease: Lease | None = None,
    checked: SavedPlanCheck | None = None,
) -> ApplyResult:
    """Apply ``plan``: refuse errors, confirm, gate, execute, check convergence.

    ``checked``: the re-check of a saved plan (:func:`recheck_saved_plan`); its refusals and the
    messages of its fresh diff are gated instead of what the file says. Raises
    :class:`~jelmore_infra.errors.ApplyError` when the plan has errors, the confirmation is
    declined or a gate refuses; nothing is sent then. Otherwise returns the result of
    :func:`apply_plan` (also given to ``hooks.on_result``); an empty result for a plan without
    changes.
    """
    hooks = hooks or ApplyHooks()
    if plan.errors:
        raise ApplyError(
            f"the plan has {len(plan.errors)} error(s) and cannot be applied; nothing was changed"
        )
    if not plan.has_changes:
        result = ApplyResult()
        hooks.on_result(result)
        return result
    if hooks.confirm is not None and not await hooks.confirm(plan):
        raise ApplyError("Apply cancelled: nothing was changed.")
    refused = list(checked.refusals) if checked is not None else []
    gated = checked.plan if checked is not None else plan
    refusals = refused + check_gates(gated, gates)
    if refusals:
        raise ApplyError(
            "apply refused, nothing was changed: " + "; ".join(r.reason for r in refusals)
        )
    result = await apply_plan(api, plan, hooks=hooks, lease=lease)
    hooks.on_result(result)
    return result
