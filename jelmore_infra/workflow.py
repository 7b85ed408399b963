"""The use cases behind the commands, composed from the pure stages and the one API client.

:func:`make_plan` is live read → diff of a loaded topology (the CLI loads the topology before
it connects, so a broken file needs no server); :func:`run_apply` is lock → fresh plan, or
identity and stale check of a saved plan → show → confirm → gates → execute → convergence, with
:class:`~jelmore_infra.apply.ApplyHooks` telling the caller what happens and asking it to
confirm. The CLI modules only parse options, call these, and render.

:func:`run` turns SIGINT and SIGTERM into one cancellation of the command's coroutine, so its
``finally`` blocks (closing the connection, releasing the apply lock) always run to the end; more
signals while that clean-up runs are ignored, and the command then ends as interrupted.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from jelmore_infra.model import LiveState, Topology
from jelmore_infra.plan import Plan

if TYPE_CHECKING:
    from concurrent.futures import Future

    from jelmore_infra.apply import ApplyHooks, ApplyResult, Gates
    from jelmore_infra.audit import ApplyObserver
    from jelmore_infra.connection import ConnectionSettings
    from jelmore_infra.live.jsapi import JetStreamAPI

T = TypeVar("T")


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine from synchronous CLI code; KeyboardInterrupt after SIGINT or SIGTERM.

    The first signal cancels the coroutine and its clean-up runs to the end (further signals are
    ignored meanwhile); only then, outside the event loop, is the interruption raised.
    """
    import asyncio  # here: `plan` runs no event loop of its own (see live/ahead.py)

    received: list[int] = []
    try:
        boxed = asyncio.run(_wrap(coro, received))
    finally:
        if received:
            # The command ends because of a signal: more of them must not cut its last words.
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
    if received or boxed is None:
        raise KeyboardInterrupt
    return boxed[0]


async def _wrap(coro: Awaitable[T], received: list[int]) -> tuple[T] | None:
    import asyncio

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            main.cancel()

    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        return (await coro,)
    except asyncio.CancelledError:
        if not received:
            raise
        return None  # run() raises KeyboardInterrupt


def target_streams(targets: Sequence[str]) -> set[str] | None:
    """Stream names a set of ``--target`` addresses needs read (None: read everything)."""
    if not targets:
        return None
    from jelmore_infra.apply import read_streams

    return read_streams(targets)


def plan_from(topology: Topology, live: LiveState, targets: Sequence[str] = ()) -> Plan:
    """Diff ``topology`` against ``live``, read for ``targets`` (see :func:`target_streams`)."""
    from jelmore_infra.diff import build_plan

    return build_plan(topology, live, targets=tuple(targets), now=datetime.now(UTC))


async def make_plan(api: JetStreamAPI, topology: Topology, targets: Sequence[str] = ()) -> Plan:
    """Read the live server through ``api`` (only what ``targets`` need) and diff ``topology``;
    with the preflight warnings (:mod:`jelmore_infra.preflight`)."""
    from jelmore_infra.live.read import read_live

    plan = plan_from(topology, await read_live(api, streams=target_streams(targets)), targets)
    return await with_preflight(api, plan, topology)


async def with_preflight(api: JetStreamAPI, plan: Plan, topology: Topology) -> Plan:
    """``plan`` with the preflight warnings; the servers' VARZ is read only when a check needs
    it (streams marked durability strict, or placement)."""
    from jelmore_infra import preflight

    varz = await api.server_varz() if preflight.needs_varz(topology) else None
    return preflight.with_findings(plan, preflight.findings(api.identity.version, varz, topology))


def preflight_after_read(plan: Plan, topology: Topology, settings: ConnectionSettings) -> Plan:
    """``plan`` (made from a live read elsewhere) with the preflight warnings; connects to read
    the servers' VARZ only when a check needs it."""
    from jelmore_infra import preflight

    varz = None
    if preflight.needs_varz(topology):
        varz = run(with_api(settings, lambda api: api.server_varz()))
    return preflight.with_findings(plan, preflight.findings(plan.server.version, varz, topology))


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """What to apply: a fresh plan of ``topology`` (``targets``), or a ``saved`` plan."""

    gates: Gates
    topology: Topology | None = None
    targets: tuple[str, ...] = ()
    saved: Plan | None = None
    #: Take the apply lock, waiting up to ``lock_timeout`` seconds for another apply's.
    use_lock: bool = True
    lock_timeout: float = 0.0
    #: The environment applied to (``--env``): a saved plan made for another one is refused,
    #: and with a saved plan ``topology`` (when given) supplies the environment's policy.
    environment: str | None = None
    #: Told, in one line, when the audit record of an apply that did not complete could not be
    #: written (for a complete apply that raises :class:`~jelmore_infra.audit.AuditError`).
    on_audit_failure: Callable[[str], None] | None = None


async def run_apply(api: JetStreamAPI, request: ApplyRequest, hooks: ApplyHooks) -> ApplyResult:
    """Lock, plan (or re-check the saved plan), show, confirm, gate, execute; always unlock.

    Raises :class:`~jelmore_infra.errors.StalePlanError` for a saved plan made against another
    server or outdated by the server's changes, :class:`~jelmore_infra.errors.ApplyError` when
    apply refuses (nothing sent), :class:`~jelmore_infra.errors.LockError` when the lock is
    held by another apply.

    Every apply, however it ends, appends its record to the audit trail before the lock is
    released (:mod:`jelmore_infra.live.audit`); :class:`~jelmore_infra.audit.AuditError` when
    the apply is complete but its record could not be written.
    """
    from jelmore_infra.apply import identity_mismatch, recheck_saved_plan
    from jelmore_infra.apply import run_apply as execute
    from jelmore_infra.audit import ApplyObserver
    from jelmore_infra.errors import StalePlanError
    from jelmore_infra.live.lock import ApplyLock

    started = datetime.now(UTC)
    ahead = ChecksumAhead()
    if request.saved is not None:
        ahead.start(request.saved)
    observer = ApplyObserver(request.saved, checksum=ahead.checksum)
    hooks = observer.watch(hooks)
    hooks = replace(hooks, on_plan=ahead.starting(hooks.on_plan))
    lock = None
    try:
        lock = ApplyLock(api) if request.use_lock else None
        if lock is not None:
            await lock.acquire(timeout=request.lock_timeout)
            if lock.took_over_from:
                hooks.on_lock_takeover(lock.took_over_from)
        checked = None
        if request.saved is not None:
            plan = request.saved
            if plan.environment != request.environment:
                raise StalePlanError(
                    f"the plan was made for {_env_words(plan.environment)}, and this apply is "
                    f"for {_env_words(request.environment)}: plan again for this environment"
                )
            mismatch = identity_mismatch(plan, api)
            if mismatch:
                raise StalePlanError(f"plan was made against another server: {mismatch}")
            checked = await recheck_saved_plan(api, plan)
            if checked.stale:
                raise StalePlanError("plan is stale: " + "; ".join(checked.stale))
            if request.topology is not None:
                from jelmore_infra.diff.policy import policy_errors

                # the environment's policy as it is now, not as the plan file says
                refused = policy_errors(checked.plan, request.topology)
                plan = replace(plan, messages=(*plan.messages, *refused))
        else:
            assert request.topology is not None
            plan = await make_plan(api, request.topology, request.targets)
        hooks.on_plan(plan)
        return await execute(api, plan, request.gates, hooks, lease=lock, checked=checked)
    except BaseException as exc:
        observer.ended_by = exc
        raise
    finally:
        try:
            await _record(api, request, observer, started)
        finally:
            if lock is not None:
                await lock.release()


class ChecksumAhead:
    """Plan checksums computed in a worker thread from the moment each plan is known.

    The audit record of an apply carries the checksum of its plan, which takes about 60 ms at
    5,000 changes (the canonical JSON of the whole plan). Started once the plan is shown, it is
    computed while the steps wait on the server, instead of after the last step; the plan is
    frozen, so the thread reads it safely. :meth:`checksum` waits for it (or computes it, for a
    plan never started).
    """

    def __init__(self) -> None:
        self._pending: dict[int, tuple[Plan, Future[str]]] = {}

    def start(self, plan: Plan) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from jelmore_infra.audit import plan_checksum

        if id(plan) in self._pending:
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jelmore-checksum")
        # The plan is kept with its future, so its id cannot be reused while it is pending.
        self._pending[id(plan)] = (plan, pool.submit(plan_checksum, plan))
        pool.shutdown(wait=False)

    def starting(self, on_plan: Callable[[Plan], None]) -> Callable[[Plan], None]:
        """``on_plan`` that then starts the plan's checksum (after the plan is shown: showing
        it is work of this process too, which the thread would only slow down)."""

        def show_then_start(plan: Plan) -> None:
            on_plan(plan)
            self.start(plan)

        return show_then_start

    def checksum(self, plan: Plan) -> str:
        from jelmore_infra.audit import plan_checksum

        pending = self._pending.get(id(plan))
        return pending[1].result() if pending is not None else plan_checksum(plan)


async def _record(
    api: JetStreamAPI, request: ApplyRequest, observer: ApplyObserver, started: datetime
) -> None:
    """Append the apply's audit record; a record that cannot be written is an error when the
    apply is complete (the changes are made, the trail lacks them), else a warning."""
    from jelmore_infra.audit import COMPLETE, AuditError, not_written
    from jelmore_infra.live.audit import record_apply

    why = await record_apply(api, observer, request.environment, started)
    if why is None:
        return
    if observer.ended_by is None and observer.outcome()[0] == COMPLETE:
        raise AuditError("the apply is complete, but " + not_written("this apply", why))
    if request.on_audit_failure is not None:
        request.on_audit_failure(not_written("this apply", why))


def _env_words(environment: str | None) -> str:
    return f"environment {environment}" if environment else "no environment (--env not given)"


async def with_api(
    settings: object, body: Callable[[JetStreamAPI], Awaitable[T]], *, jetstream: bool = True
) -> T:
    """Connect once, run ``body`` with the API client, always close."""
    from jelmore_infra.connection import ConnectionSettings
    from jelmore_infra.live.jsapi import JetStreamAPI

    assert isinstance(settings, ConnectionSettings)
    api = await JetStreamAPI.connect(settings, jetstream=jetstream)
    try:
        return await body(api)
    finally:
        await api.close()
