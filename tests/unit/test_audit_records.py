"""The audit trail's records without a server: how they are built field by field, how an apply's
end is told from its hooks and the exception that ended it, how a record keeps within the
server's message size, and that no secret gets into one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from jelmore_infra.apply import ApplyHooks, ApplyResult, StepResult
from jelmore_infra.audit import (
    CANCELLED,
    COMPLETE,
    FAILED,
    INCOMPLETE,
    INTERRUPTED,
    REFUSED,
    STOPPED,
    ApplyObserver,
    StepEnd,
    Who,
    apply_record,
    audit_subject,
    auth_method,
    decode_record,
    encode_record,
    force_unlock_record,
    plan_checksum,
    summary_text,
    who_text,
)
from jelmore_infra.cli.main import cli
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ApplyError, ConnectionFailed, LockError, StalePlanError
from jelmore_infra.live.jsapi import _reported_user
from jelmore_infra.model import ServerIdentity
from jelmore_infra.plan import Action, FieldChange, Kind, Plan, ResourceChange
from jelmore_infra.render.json import load_plan_json, render_plan_json

SERVER = ServerIdentity("n1", "NID", "2.15.1", 3, account="$G", url="nats://127.0.0.1:4222")
WHO = Who("alice", "$G", "user/password", "ci-7", "deploy", 4242, "0.1.0")
STARTED = datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)
ENDED = datetime(2026, 1, 31, 12, 0, 2, 456000, tzinfo=UTC)


def _change(address: str, action: Action, *paths: str) -> ResourceChange:
    kind, _, rest = address.partition(".")
    stream, _, name = rest.partition(".")
    return ResourceChange(
        address=address,
        kind=Kind(kind),
        stream=stream,
        name=name or stream,
        action=action,
        before=None if action is Action.CREATE else {"name": stream},
        after=None if action is Action.DELETE else {"name": stream},
        fields=tuple(FieldChange(p, 1, 2) for p in paths),
    )


PLAN = Plan(
    server=SERVER,
    changes=(
        _change("stream.ORDERS", Action.CREATE),
        _change("stream.JELMORE", Action.UPDATE, "max_age", "consumer_limits.max_ack_pending"),
        _change("consumer.JELMORE.workers", Action.DELETE),
    ),
    environment="prod",
)


def _record(**overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "record_id": "abc",
        "who": WHO,
        "server": SERVER,
        "environment": "prod",
        "started": STARTED,
        "ended": ENDED,
        "plan": PLAN,
        "checksum": "sha256:00",
        "saved": False,
        "steps": [StepEnd("done"), StepEnd("failed", "no!\nsecond line"), StepEnd("not attempted")],
        "outcome": STOPPED,
        "reason": "stream.JELMORE (update) failed: no!",
    }
    arguments.update(overrides)
    return apply_record(**arguments)  # type: ignore[arg-type]


def test_an_apply_record_holds_when_who_where_the_plan_each_change_and_the_outcome() -> None:
    assert _record() == {
        "format": 1,
        "id": "abc",
        "command": "apply",
        "time": "2026-01-31T12:00:02.456Z",
        "started": "2026-01-31T12:00:00.123Z",
        "environment": "prod",
        "who": {
            "user": "alice",
            "account": "$G",
            "auth": "user/password",
            "host": "ci-7",
            "process_user": "deploy",
            "pid": 4242,
            "tool_version": "0.1.0",
        },
        "server": {
            "name": "n1",
            "cluster": None,
            "domain": None,
            "version": "2.15.1",
            "url": "nats://127.0.0.1:4222",
        },
        "plan": {
            "checksum": "sha256:00",
            "source": "fresh",
            "summary": {"add": 1, "change": 1, "replace": 0, "migrate": 0, "destroy": 1},
        },
        "changes": [
            {
                "address": "stream.ORDERS",
                "action": "create",
                "fields": [],
                "status": "done",
                "error": None,
            },
            {
                "address": "stream.JELMORE",
                "action": "update",
                "fields": ["max_age", "consumer_limits.max_ack_pending"],
                "status": "failed",
                "error": "no! second line",
            },
            {
                "address": "consumer.JELMORE.workers",
                "action": "delete",
                "fields": [],
                "status": "not attempted",
                "error": None,
            },
        ],
        "outcome": "stopped",
        "reason": "stream.JELMORE (update) failed: no!",
    }


def test_a_record_names_field_paths_never_their_values() -> None:
    secret = "hunter2-in-a-description"
    change = ResourceChange(
        address="stream.S",
        kind=Kind.STREAM,
        stream="S",
        name="S",
        action=Action.UPDATE,
        before={"description": "old"},
        after={"description": secret},
        fields=(FieldChange("description", "old", secret),),
    )
    plan = Plan(server=SERVER, changes=(change,))
    text = json.dumps(_record(plan=plan, steps=[StepEnd("done")], outcome=COMPLETE, reason=None))
    assert secret not in text
    assert '"fields": ["description"]' in text


def test_an_apply_that_ended_before_it_had_a_plan_records_no_plan_and_no_changes() -> None:
    record = _record(plan=None, checksum=None, steps=[], outcome=REFUSED, reason="lock held")
    assert record["plan"] is None
    assert record["changes"] == []
    assert record["outcome"] == "refused"
    assert record["reason"] == "lock held"


def test_records_go_to_the_subject_of_their_environment_default_without_one() -> None:
    assert audit_subject("prod") == "jelmore-infra.audit.prod"
    assert audit_subject(None) == "jelmore-infra.audit.default"
    assert _record(environment=None)["environment"] == "default"


def test_a_force_unlock_record_names_whose_lock_it_removed() -> None:
    record = force_unlock_record(
        record_id="x",
        who=WHO,
        server=SERVER,
        environment=None,
        started=STARTED,
        ended=ENDED,
        holder="bob@ci-3 (pid 7, since 2026-01-31T11:00:00Z)",
        outcome=COMPLETE,
    )
    assert record["command"] == "force-unlock"
    assert record["environment"] == "default"
    assert record["lock_holder"] == "bob@ci-3 (pid 7, since 2026-01-31T11:00:00Z)"
    assert record["outcome"] == "complete"
    assert record["reason"] is None
    assert (
        summary_text(record) == "removed the lock of bob@ci-3 (pid 7, since 2026-01-31T11:00:00Z)"
    )


def test_a_record_too_large_for_a_message_keeps_its_first_changes_and_counts_the_rest() -> None:
    changes = tuple(_change(f"stream.S{i:04d}", Action.CREATE) for i in range(2000))
    plan = Plan(server=SERVER, changes=changes)
    record = _record(plan=plan, steps=[StepEnd("done")] * 2000, outcome=COMPLETE, reason=None)
    whole = encode_record(record, 10**9)
    assert decode_record(whole) == record
    limit = 20_000
    data = encode_record(record, limit)
    assert len(data) <= limit
    kept = decode_record(data)
    assert kept is not None
    assert 0 < len(kept["changes"]) < 2000
    assert kept["changes_omitted"] == 2000 - len(kept["changes"])
    assert kept["changes"] == record["changes"][: len(kept["changes"])]  # type: ignore[index]
    assert kept["plan"] == record["plan"]
    # one more change would not have fitted
    more = {**kept, "changes": record["changes"][: len(kept["changes"]) + 1]}  # type: ignore[index]
    more["changes_omitted"] -= 1
    assert len(json.dumps(more, separators=(",", ":"), ensure_ascii=False).encode()) > limit


def test_a_long_reason_or_error_is_cut_to_one_bounded_line() -> None:
    reason = "the plan destroys " + ", ".join(f"stream.S{i}" for i in range(5000))
    record = _record(reason=reason + "\nmore")
    assert len(str(record["reason"])) <= 2000
    assert "\n" not in str(record["reason"])


def test_decoding_refuses_what_is_not_a_json_object() -> None:
    assert decode_record(b"not json") is None
    assert decode_record(b"[1, 2]") is None
    assert decode_record(b"\xff\xfe") is None
    assert decode_record(b'{"format": 1}') == {"format": 1}


def test_the_checksum_of_a_saved_plan_read_back_is_the_one_its_file_carries() -> None:
    text = render_plan_json(PLAN)
    assert plan_checksum(load_plan_json(text)) == json.loads(text)["checksum"]


@pytest.mark.parametrize(
    ("settings", "method"),
    [
        (ConnectionSettings(), "none"),
        (ConnectionSettings(user="alice", password="pw"), "user/password"),
        (ConnectionSettings(url="nats://alice:pw@h:4222"), "user/password"),
        (ConnectionSettings(token="s3cret"), "token"),
        (ConnectionSettings(url="nats://s3cret@h:4222"), "token"),
        (ConnectionSettings(nkey="/keys/user.nk"), "nkey"),
        (ConnectionSettings(creds="/keys/user.creds"), "creds"),
        (ConnectionSettings(tls_cert="c.pem", tls_key="k.pem"), "tls certificate"),
    ],
)
def test_the_record_names_the_authentication_method_never_its_secret(
    settings: ConnectionSettings, method: str
) -> None:
    assert auth_method(settings) == method


@pytest.mark.parametrize(
    ("reported", "settings", "kept"),
    [
        ("alice", ConnectionSettings(user="alice", password="pw"), "alice"),
        ("alice", ConnectionSettings(url="nats://alice:pw@h:4222"), "alice"),
        ("UA5CMR2E", ConnectionSettings(nkey="u.nk"), "UA5CMR2E"),
        ("", ConnectionSettings(), None),
        # 2.10 reports the token itself as the user, 2.11+ "[REDACTED]"
        ("s3cret", ConnectionSettings(token="s3cret"), None),
        ("[REDACTED]", ConnectionSettings(token="s3cret"), None),
        ("s3cret", ConnectionSettings(url="nats://s3cret@h:4222"), None),
        ("s3cret", ConnectionSettings(user="bob", password="s3cret"), None),
    ],
)
def test_the_user_the_server_reports_is_kept_only_when_it_cannot_be_a_secret(
    reported: str, settings: ConnectionSettings, kept: str | None
) -> None:
    assert _reported_user({"user": reported, "account": "$G"}, settings) == kept


# --- how an apply ended ---------------------------------------------------------------------------


def _watched(observer: ApplyObserver, confirm: bool | None = None) -> ApplyHooks:
    async def answer(_: Plan) -> bool:
        return bool(confirm)

    return observer.watch(ApplyHooks(confirm=answer if confirm is not None else None))


def _result(*steps: StepResult, **kw: object) -> ApplyResult:
    return ApplyResult(steps=list(steps), **kw)  # type: ignore[arg-type]


def test_an_apply_whose_every_step_is_done_is_complete() -> None:
    observer = ApplyObserver()
    hooks = _watched(observer)
    hooks.on_plan(PLAN)
    hooks.on_result(_result(*(StepResult(c, "done") for c in PLAN.changes)))
    assert observer.outcome() == (COMPLETE, None)
    assert [s.status for s in observer.steps()] == ["done", "done", "done"]


def test_an_apply_with_a_failed_step_is_stopped_naming_the_step_and_the_error() -> None:
    a, b, c = PLAN.changes
    observer = ApplyObserver()
    hooks = _watched(observer)
    hooks.on_plan(PLAN)
    hooks.on_result(
        _result(
            StepResult(a, "done"),
            StepResult(b, "failed", "subjects overlap (error 10065)"),
            StepResult(c, "not attempted"),
        )
    )
    assert observer.outcome() == (
        STOPPED,
        "stream.JELMORE (update) failed: subjects overlap (error 10065)",
    )
    assert observer.steps() == [
        StepEnd("done"),
        StepEnd("failed", "subjects overlap (error 10065)"),
        StepEnd("not attempted"),
    ]


def test_an_apply_that_lost_its_lock_is_stopped_and_one_that_did_not_converge_incomplete() -> None:
    steps = [StepResult(c, "done") for c in PLAN.changes]
    lost = ApplyObserver()
    _watched(lost).on_result(_result(*steps, lock_lost="lost the apply lock: taken over"))
    assert lost.outcome() == (STOPPED, "lost the apply lock: taken over")
    drift = ApplyObserver()
    _watched(drift).on_result(_result(*steps, convergence_errors=["server did not apply x"]))
    assert drift.outcome()[0] == INCOMPLETE


@pytest.mark.parametrize(
    "error",
    [
        StalePlanError("plan is stale: stream.JELMORE was changed since the plan was made"),
        LockError("another apply holds the lock: bob@ci-3"),
        ApplyError("apply refused, nothing was changed: the plan loses data"),
    ],
)
def test_an_apply_refused_before_sending_anything_is_refused_with_the_reason(
    error: Exception,
) -> None:
    observer = ApplyObserver(saved=PLAN)
    _watched(observer)
    observer.ended_by = error
    assert observer.outcome() == (REFUSED, str(error))
    assert [s.status for s in observer.steps()] == ["not attempted"] * 3
    assert observer.checksum() == plan_checksum(PLAN)


def test_a_declined_confirmation_is_cancelled() -> None:
    observer = ApplyObserver()
    hooks = _watched(observer, confirm=False)
    hooks.on_plan(PLAN)
    assert hooks.confirm is not None
    assert asyncio.run(hooks.confirm(PLAN)) is False
    observer.ended_by = ApplyError("Apply cancelled: nothing was changed.")
    assert observer.outcome()[0] == CANCELLED


def test_an_interrupted_apply_marks_the_step_under_way_as_interrupted() -> None:
    a, b, _ = PLAN.changes
    observer = ApplyObserver()
    hooks = _watched(observer)
    hooks.on_plan(PLAN)
    hooks.on_step_start(a)
    hooks.on_step_done(a, None)
    hooks.on_step_start(b)
    observer.ended_by = asyncio.CancelledError()
    assert observer.outcome()[0] == INTERRUPTED
    assert [s.status for s in observer.steps()] == ["done", "interrupted", "not attempted"]


def test_an_apply_ended_by_another_error_is_failed_even_after_steps_were_sent() -> None:
    a = PLAN.changes[0]
    observer = ApplyObserver()
    hooks = _watched(observer)
    hooks.on_plan(PLAN)
    hooks.on_step_start(a)
    hooks.on_step_done(a, None)
    observer.ended_by = ConnectionFailed("connection to nats://127.0.0.1:4222 lost")
    assert observer.outcome() == (FAILED, "connection to nats://127.0.0.1:4222 lost")
    after_sending = ApplyObserver()
    _watched(after_sending).on_step_start(a)
    after_sending.ended_by = LockError("lost")
    assert after_sending.outcome()[0] == FAILED


def test_the_hooks_still_reach_the_caller() -> None:
    seen: list[str] = []
    observer = ApplyObserver()
    hooks = observer.watch(
        ApplyHooks(
            on_plan=lambda plan: seen.append("plan"),
            on_step_start=lambda change: seen.append("start"),
            on_step_done=lambda change, error: seen.append(f"done {error}"),
            on_result=lambda result: seen.append("result"),
        )
    )
    hooks.on_plan(PLAN)
    hooks.on_step_start(PLAN.changes[0])
    hooks.on_step_done(PLAN.changes[0], "boom")
    hooks.on_result(_result())
    assert seen == ["plan", "start", "done boom", "result"]
    assert hooks.confirm is None


def test_history_words_a_record_in_a_few_words() -> None:
    record = _record()
    assert who_text(record) == "alice (deploy@ci-7)"
    assert summary_text(record) == (
        "+1 ~1 -1; 1 failed, 1 not attempted: stream.JELMORE (update) failed: no!"
    )
    complete = _record(outcome=COMPLETE, reason=None, steps=[StepEnd("done")] * 3)
    assert summary_text(complete) == "+1 ~1 -1"
    empty = _record(plan=Plan(server=SERVER), steps=[], outcome=COMPLETE, reason=None)
    assert summary_text(empty) == "no changes"
    refused = _record(outcome=REFUSED, reason="plan is stale", steps=[StepEnd("not attempted")] * 3)
    assert summary_text(refused) == "+1 ~1 -1: plan is stale"
    anonymous = {**record, "who": {**WHO.to_dict(), "user": None, "account": None}}
    assert who_text(anonymous) == "deploy@ci-7"


# --- the audit stream belongs to jelmore-infra ----------------------------------------------------


def test_a_topology_declaring_the_audit_stream_or_its_subjects_is_refused_at_file_line_col(
    tmp_path: Path,
) -> None:
    topology = tmp_path / "topology"
    topology.mkdir()
    (topology / "t.yaml").write_text(
        "streams:\n"
        "  JELMORE_INFRA_AUDIT:\n"
        "    subjects: [mine.>]\n"
        "  WIDE:\n"
        "    subjects: ['jelmore-infra.>']\n"
        "  ONE:\n"
        "    subjects: [jelmore-infra.audit.prod]\n"
        "  FINE:\n"
        "    subjects: [jelmore-infra.audits]\n"
        "  WILD:\n"  # a wide capture: it collides with every stream of the tool, left to the server
        "    subjects: ['*.audit.>']\n"
        "    no_ack: true\n"
    )
    result = CliRunner().invoke(cli, ["validate", "--topology", str(topology)])
    assert result.exit_code == 1
    where = f"{topology / 't.yaml'}"
    lines = result.output.splitlines()
    assert (
        f"{where}:2:3: error: 'JELMORE_INFRA_AUDIT' is the stream of jelmore-infra's audit trail "
        "(created and kept by apply); choose another name"
    ) in lines
    for line, subject in ((5, "jelmore-infra.>"), (7, "jelmore-infra.audit.prod")):
        assert (
            f"{where}:{line}:16: error: subject '{subject}' overlaps 'jelmore-infra.audit.>', "
            "the subjects of jelmore-infra's audit trail: the server refuses streams with "
            "overlapping subjects"
        ) in lines
    assert not [x for x in lines if "'jelmore-infra.audits' overlaps 'jelmore-infra.audit" in x]
    assert len([x for x in lines if "audit trail" in x]) == 3


def test_a_checksum_computed_ahead_in_a_thread_is_the_plans_checksum() -> None:
    from jelmore_infra.workflow import ChecksumAhead

    ahead = ChecksumAhead()
    shown: list[Plan] = []
    on_plan = ahead.starting(shown.append)
    on_plan(PLAN)
    assert shown == [PLAN]  # the plan is shown, then its checksum started
    observer = ApplyObserver(checksum=ahead.checksum)
    observer.plan = PLAN
    assert observer.checksum() == plan_checksum(PLAN)
    other = Plan(server=PLAN.server, changes=PLAN.changes[:1])
    assert ahead.checksum(other) == plan_checksum(other) != plan_checksum(PLAN)  # never started
