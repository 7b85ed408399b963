"""The audit trail's records: what one ``apply`` or ``force-unlock`` did, who did it, and how it
ended (docs/audit.md).

A record is a JSON object (format :data:`RECORD_FORMAT`) written by
:mod:`jelmore_infra.live.audit` to the subject ``jelmore-infra.audit.<environment>``
(``default`` without ``--env``) of the tool's own stream :data:`~jelmore_infra.model.AUDIT_STREAM`.
This module builds records, encodes them within the server's message size, decodes them again
and words them for ``history``; :class:`ApplyObserver` watches one apply through its hooks to
learn the plan, each step's end and the result, and tells how the apply ended
(:data:`OUTCOMES`).

A record never holds a secret: the server URL without credentials, the user the server reports
only when it cannot be a token (:func:`jelmore_infra.live.jsapi._reported_user`), the
authentication *method* (never its material), and for each change only the names of the fields
it changes, never their values.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jelmore_infra.errors import ApplyError, JelmoreError, LockError, StalePlanError
from jelmore_infra.model import AUDIT_STREAM, AUDIT_SUBJECT_PREFIX, ServerIdentity

if TYPE_CHECKING:
    from jelmore_infra.apply import ApplyHooks, ApplyResult
    from jelmore_infra.connection import ConnectionSettings
    from jelmore_infra.plan import Plan, ResourceChange

JSONDict = dict[str, Any]

#: The version of the record layout; a reader shows records of other formats as they are.
RECORD_FORMAT = 1
#: The environment of an apply without ``--env`` (its records' subject ends in it).
DEFAULT_ENVIRONMENT = "default"

#: How an apply or force-unlock ended.
COMPLETE = "complete"  #: every step done and the server holds what the plan intended
STOPPED = "stopped"  #: a step failed or the lock was lost: later steps were not attempted
INCOMPLETE = "incomplete"  #: every step done, but the server does not hold all the plan intended
REFUSED = "refused"  #: nothing was sent: plan errors, a gate, a stale plan, a held lock
CANCELLED = "cancelled"  #: the person at the terminal did not answer ``yes``
INTERRUPTED = "interrupted"  #: SIGINT or SIGTERM ended it
FAILED = "failed"  #: another error ended it (the connection, the server)
OUTCOMES = (COMPLETE, STOPPED, INCOMPLETE, REFUSED, CANCELLED, INTERRUPTED, FAILED)

#: A step's status: :data:`jelmore_infra.apply.StepStatus`, or ``interrupted`` for a step that
#: was under way when the apply ended (the server may or may not have carried it out).
STEP_INTERRUPTED = "interrupted"

#: The longest reason or error line kept in a record (a gate may list thousands of addresses).
MAX_LINE = 2000
#: The most convergence problems kept in a record.
MAX_PROBLEMS = 100


class AuditError(JelmoreError):
    """The audit record of an apply or force-unlock could not be written."""


def audit_subject(environment: str | None) -> str:
    """``jelmore-infra.audit.<environment>`` (``default`` when there is none)."""
    return f"{AUDIT_SUBJECT_PREFIX}.{environment or DEFAULT_ENVIRONMENT}"


def not_written(what: str, why: str) -> str:
    """The one line saying the record of ``what`` (``this apply``) was not written, and why."""
    return f"the audit record of {what} could not be written to stream {AUDIT_STREAM}: {why}"


def timestamp(moment: datetime) -> str:
    """``2026-01-31T12:00:00.123Z``: UTC with milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plan_checksum(plan: Plan) -> str:
    """The plan's ``sha256:`` checksum, as ``plan --json`` and a saved plan carry it."""
    from jelmore_infra.render.json import CHECKSUM_KEY, plan_document

    return str(plan_document(plan)[CHECKSUM_KEY])


def auth_method(settings: ConnectionSettings) -> str:
    """How the connection authenticates, in words; never the secret itself."""
    if settings.creds:
        return "creds"
    if settings.nkey:
        return "nkey"
    if settings.token:
        return "token"
    for url in settings.servers():
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        if parts.username is not None:
            return "token" if parts.password is None else "user/password"
    if settings.user:
        return "user/password"
    if settings.tls_cert:
        return "tls certificate"
    return "none"


@dataclass(frozen=True, slots=True)
class Who:
    """Who ran the command: as the server knows the connection, and as the machine knows it."""

    #: The user the server reports (a user name, a public nkey); None when unknown or anonymous.
    user: str | None
    account: str | None
    #: :func:`auth_method`
    auth: str
    host: str
    process_user: str
    pid: int
    tool_version: str

    def to_dict(self) -> JSONDict:
        return {
            "user": self.user,
            "account": self.account,
            "auth": self.auth,
            "host": self.host,
            "process_user": self.process_user,
            "pid": self.pid,
            "tool_version": self.tool_version,
        }


def _line(text: str) -> str:
    """One line, at most :data:`MAX_LINE` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_LINE else flat[: MAX_LINE - 1] + "…"


def _server(identity: ServerIdentity) -> JSONDict:
    return {
        "name": identity.server_name,
        "cluster": identity.cluster,
        "domain": identity.domain,
        "version": identity.version,
        "url": identity.url,
    }


def _base(
    command: str,
    record_id: str,
    who: Who,
    server: ServerIdentity,
    environment: str | None,
    started: datetime,
    ended: datetime,
) -> JSONDict:
    return {
        "format": RECORD_FORMAT,
        "id": record_id,
        "command": command,
        "time": timestamp(ended),
        "started": timestamp(started),
        "environment": environment or DEFAULT_ENVIRONMENT,
        "who": who.to_dict(),
        "server": _server(server),
    }


@dataclass(frozen=True, slots=True)
class StepEnd:
    """How one change of the plan ended: ``done``, ``failed`` (with the server's error line),
    ``not attempted`` or :data:`STEP_INTERRUPTED`."""

    status: str
    error: str | None = None


def change_entry(change: ResourceChange, end: StepEnd) -> JSONDict:
    """One change of a record: address, action, the paths of the fields it changes, its end."""
    return {
        "address": change.address,
        "action": change.action.value,
        "fields": [f.path for f in change.fields],
        "status": end.status,
        "error": _line(end.error) if end.error is not None else None,
    }


def apply_record(
    *,
    record_id: str,
    who: Who,
    server: ServerIdentity,
    environment: str | None,
    started: datetime,
    ended: datetime,
    plan: Plan | None,
    checksum: str | None,
    saved: bool,
    steps: Sequence[StepEnd],
    outcome: str,
    reason: str | None,
    convergence_errors: Sequence[str] = (),
) -> JSONDict:
    """The record of one apply. ``plan``: the plan applied (None when the apply ended before it
    had one); ``steps``: the end of each of its changes, in plan order."""
    record = _base("apply", record_id, who, server, environment, started, ended)
    if plan is None:
        record["plan"] = None
        record["changes"] = []
    else:
        s = plan.summary()
        record["plan"] = {
            "checksum": checksum,
            "source": "saved" if saved else "fresh",
            "summary": {
                "add": s.add,
                "change": s.change,
                "replace": s.replace,
                "migrate": s.migrate,
                "destroy": s.destroy,
            },
        }
        record["changes"] = [change_entry(c, e) for c, e in zip(plan.changes, steps, strict=True)]
    record["outcome"] = outcome
    record["reason"] = _line(reason) if reason else None
    if convergence_errors:
        record["convergence_errors"] = [_line(p) for p in convergence_errors[:MAX_PROBLEMS]]
    return record


def force_unlock_record(
    *,
    record_id: str,
    who: Who,
    server: ServerIdentity,
    environment: str | None,
    started: datetime,
    ended: datetime,
    holder: str | None,
    outcome: str,
    reason: str | None = None,
) -> JSONDict:
    """The record of one force-unlock: whose lock it removed (``holder``; None: none was held)."""
    record = _base("force-unlock", record_id, who, server, environment, started, ended)
    record["lock_holder"] = holder
    record["outcome"] = outcome
    record["reason"] = _line(reason) if reason else None
    return record


def encode_record(record: Mapping[str, Any], max_bytes: int) -> bytes:
    """The record as compact JSON of at most ``max_bytes`` bytes.

    A record too large for the server's messages keeps its first changes and says how many
    more it left out (``changes_omitted``); everything else is always kept.
    """

    def dump(value: Mapping[str, Any]) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    data = dump(record)
    changes = list(record.get("changes") or [])
    if len(data) <= max_bytes or not changes:
        return data
    low, high = 0, len(changes)  # the most changes that fit lie in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        trial = {**record, "changes": changes[:middle], "changes_omitted": len(changes) - middle}
        if len(dump(trial)) <= max_bytes:
            low = middle
        else:
            high = middle
    return dump({**record, "changes": changes[:low], "changes_omitted": len(changes) - low})


def decode_record(data: bytes) -> JSONDict | None:
    """A record read back (None when the message is not a JSON object)."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


# --- watching an apply ---------------------------------------------------------------------------


class ApplyObserver:
    """What one apply showed, did and how it ended, learnt through its hooks (:meth:`watch`)
    and from the exception that ended it (:attr:`ended_by`, set by the caller)."""

    def __init__(
        self, saved: Plan | None = None, *, checksum: Callable[[Plan], str] | None = None
    ) -> None:
        #: The saved plan applied (its checksum is the file's), or None for a fresh plan.
        self.saved = saved
        #: How a plan's checksum is had (:func:`plan_checksum` unless the caller has a faster
        #: way, e.g. one already under way).
        self._checksum_of = checksum or plan_checksum
        #: The plan shown (a fresh one, or the saved one with the environment's policy).
        self.plan: Plan | None = saved
        self.result: ApplyResult | None = None
        self.cancelled = False
        #: The exception that ended the apply (None: it returned).
        self.ended_by: BaseException | None = None
        self._started: set[str] = set()
        self._ended: dict[str, StepEnd] = {}

    def watch(self, hooks: ApplyHooks) -> ApplyHooks:
        """``hooks`` with each call noted here first."""

        def on_plan(plan: Plan) -> None:
            self.plan = plan
            hooks.on_plan(plan)

        def on_step_start(change: ResourceChange) -> None:
            self._started.add(change.address)
            hooks.on_step_start(change)

        def on_step_done(change: ResourceChange, error: str | None) -> None:
            self._ended[change.address] = StepEnd("done" if error is None else "failed", error)
            hooks.on_step_done(change, error)

        def on_result(result: ApplyResult) -> None:
            self.result = result
            hooks.on_result(result)

        confirm = hooks.confirm
        watched: Callable[[Plan], Awaitable[bool]] | None = None
        if confirm is not None:

            async def watched(plan: Plan) -> bool:
                answer = await confirm(plan)
                self.cancelled = not answer
                return answer

        return replace(
            hooks,
            on_plan=on_plan,
            on_step_start=on_step_start,
            on_step_done=on_step_done,
            on_result=on_result,
            confirm=watched,
        )

    def checksum(self) -> str | None:
        """The checksum of the saved plan, or of the fresh plan shown (None: no plan yet)."""
        plan = self.saved if self.saved is not None else self.plan
        return self._checksum_of(plan) if plan is not None else None

    def outcome(self) -> tuple[str, str | None]:
        """How the apply ended (one of :data:`OUTCOMES`) and why, in one line (None: complete)."""
        result = self.result
        if result is not None:
            if result.ok:
                return COMPLETE, None
            if result.lock_lost:
                return STOPPED, result.lock_lost
            failed = result.failed
            if failed is not None:
                return STOPPED, (
                    f"{failed.change.address} ({failed.change.action.value}) failed: {failed.error}"
                )
            return INCOMPLETE, "the server does not hold everything the plan intended"
        exc = self.ended_by
        if exc is None:
            return COMPLETE, None
        if self.cancelled:
            return CANCELLED, "the confirmation was not given: nothing was changed"
        if not isinstance(exc, Exception):  # cancelled (a signal), KeyboardInterrupt, exit
            return INTERRUPTED, "interrupted (SIGINT or SIGTERM)"
        sent = bool(self._started)
        if isinstance(exc, StalePlanError | LockError | ApplyError) and not sent:
            return REFUSED, str(exc)
        return FAILED, str(exc) or type(exc).__name__

    def steps(self) -> list[StepEnd]:
        """The end of each change of :attr:`plan`, in plan order."""
        if self.plan is None:
            return []
        if self.result is not None and len(self.result.steps) == len(self.plan.changes):
            return [StepEnd(s.status, s.error) for s in self.result.steps]
        ends: list[StepEnd] = []
        for change in self.plan.changes:
            end = self._ended.get(change.address)
            if end is None:
                started = change.address in self._started
                end = StepEnd(STEP_INTERRUPTED if started else "not attempted")
            ends.append(end)
        return ends

    def record(
        self,
        *,
        record_id: str,
        who: Who,
        server: ServerIdentity,
        environment: str | None,
        started: datetime,
        ended: datetime,
    ) -> JSONDict:
        """The apply's record, as far as it got."""
        outcome, reason = self.outcome()
        return apply_record(
            record_id=record_id,
            who=who,
            server=server,
            environment=environment,
            started=started,
            ended=ended,
            plan=self.plan,
            checksum=self.checksum(),
            saved=self.saved is not None,
            steps=self.steps(),
            outcome=outcome,
            reason=reason,
            convergence_errors=self.result.convergence_errors if self.result else (),
        )


# --- words for `history` -----------------------------------------------------------------------

_SYMBOLS = (("add", "+"), ("change", "~"), ("replace", "-/+"), ("migrate", "~>"), ("destroy", "-"))


def who_text(record: Mapping[str, Any]) -> str:
    """``alice (deploy@ci-7)``: the server's user, then the process user and host."""
    who = record.get("who")
    if not isinstance(who, Mapping):
        return "?"
    local = f"{who.get('process_user') or '?'}@{who.get('host') or '?'}"
    user = who.get("user") or (f"account {who['account']}" if who.get("account") else None)
    return f"{user} ({local})" if user else local


def summary_text(record: Mapping[str, Any]) -> str:
    """What a record says happened, in a few words: ``+2 ~1; 1 failed, 2 not attempted``."""
    if record.get("command") == "force-unlock":
        holder = record.get("lock_holder")
        words = f"removed the lock of {holder}" if holder else "no lock was held"
    else:
        plan = record.get("plan")
        counts = plan.get("summary") if isinstance(plan, Mapping) else None
        if not isinstance(counts, Mapping):
            words = "no plan"
        else:
            parts = [f"{sym}{counts.get(key)}" for key, sym in _SYMBOLS if counts.get(key)]
            words = " ".join(parts) or "no changes"
        tally: dict[str, int] = {}
        for change in record.get("changes") or []:
            status = change.get("status") if isinstance(change, Mapping) else None
            if isinstance(status, str) and status != "done":
                tally[status] = tally.get(status, 0) + 1
        if tally and record.get("outcome") != REFUSED:
            words += "; " + ", ".join(f"{n} {status}" for status, n in tally.items())
    reason = record.get("reason")
    if reason and record.get("outcome") != COMPLETE:
        words += f": {reason}"
    return words


__all__ = [
    "CANCELLED",
    "COMPLETE",
    "DEFAULT_ENVIRONMENT",
    "FAILED",
    "INCOMPLETE",
    "INTERRUPTED",
    "OUTCOMES",
    "RECORD_FORMAT",
    "REFUSED",
    "STOPPED",
    "ApplyObserver",
    "AuditError",
    "StepEnd",
    "Who",
    "apply_record",
    "audit_subject",
    "auth_method",
    "decode_record",
    "encode_record",
    "force_unlock_record",
    "not_written",
    "plan_checksum",
    "summary_text",
    "timestamp",
    "who_text",
]
