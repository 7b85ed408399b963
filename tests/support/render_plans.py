"""Hand-built plans shared by the renderer tests, and the golden-file helper.

Each plan covers one situation a reviewer meets (create, update with units, replace, delete,
no changes, errors, data loss, unmanaged, adopt). Golden outputs live in
``tests/unit/cases/render/<case>.<ext>``; run with ``JELMORE_UPDATE_GOLDEN=1`` to rewrite them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jelmore_infra.model import ServerIdentity
from jelmore_infra.plan import Action, FieldChange, Kind, Plan, PlanMessage, ResourceChange

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "unit" / "cases" / "render"
UPDATE_ENV = "JELMORE_UPDATE_GOLDEN"

SERVER = ServerIdentity(
    server_name="n1",
    server_id="NDXYZSERVERID",
    version="2.14.6",
    api_level=3,
    account="ACC",
    url="nats://127.0.0.1:4222",
)
OLD_SERVER = ServerIdentity(
    server_name="old1",
    server_id="NOLDSERVERID",
    version="2.10.22",
    api_level=1,
    cluster="east",
    domain="hub",
    account="$G",
)

MANAGED = {"jelmore.managed-by": "jelmore-infra"}
SEC = 1_000_000_000
DAY = 86_400 * SEC

JELMORE_CONFIG: dict[str, Any] = {
    "name": "JELMORE",
    "description": "Jelmore session events",
    "subjects": ["jelmore.session.>"],
    "retention": "limits",
    "max_msgs": 100_000,
    "max_bytes": 10_000_000_000,
    "max_age": 7 * DAY,
    "discard": "old",
    "storage": "file",
    "num_replicas": 1,
    "duplicate_window": 60 * SEC,
    "metadata": dict(MANAGED),
}

SESSION_HANDLERS_CONFIG: dict[str, Any] = {
    "durable_name": "session_handlers",
    "description": "General session event processing",
    "filter_subjects": ["jelmore.session.>"],
    "ack_policy": "explicit",
    "ack_wait": 30 * SEC,
    "max_deliver": 3,
    "max_ack_pending": 1000,
    "metadata": {
        **MANAGED,
        "jelmore.retry-delays": "2s,4s,8s",
        "jelmore.dead-letter-stream": "JELMORE_DLQ",
        "jelmore.dead-letter-subject": "jelmore.dlq.session_handlers",
    },
}


def stream_change(
    name: str,
    action: Action,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    fields: tuple[FieldChange, ...] = (),
    fingerprint: str | None = None,
) -> ResourceChange:
    return ResourceChange(
        address=f"stream.{name}",
        kind=Kind.STREAM,
        stream=name,
        name=name,
        action=action,
        before=before,
        after=after,
        fields=fields,
        fingerprint=fingerprint,
    )


def consumer_change(
    stream: str,
    name: str,
    action: Action,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    fields: tuple[FieldChange, ...] = (),
    fingerprint: str | None = None,
) -> ResourceChange:
    return ResourceChange(
        address=f"consumer.{stream}.{name}",
        kind=Kind.CONSUMER,
        stream=stream,
        name=name,
        action=action,
        before=before,
        after=after,
        fields=fields,
        fingerprint=fingerprint,
    )


def plan_create() -> Plan:
    """A fresh server: the main stream and one consumer group are created."""
    return Plan(
        server=SERVER,
        changes=(
            stream_change("JELMORE", Action.CREATE, None, JELMORE_CONFIG),
            consumer_change(
                "JELMORE", "session_handlers", Action.CREATE, None, SESSION_HANDLERS_CONFIG
            ),
        ),
        fingerprints={"stream.JELMORE": None, "consumer.JELMORE.session_handlers": None},
    )


def plan_update() -> Plan:
    """In-place updates with durations, sizes, counts, nested objects and metadata."""
    after = {
        **JELMORE_CONFIG,
        "max_age": 14 * DAY,
        "max_bytes": 20_000_000_000,
        "max_msgs": 50_000,
        "consumer_limits": {"max_ack_pending": 500},
        "republish": {"src": "jelmore.>", "dest": "mirror.jelmore.>"},
    }
    before = {**JELMORE_CONFIG, "consumer_limits": {"max_ack_pending": 1000}}
    consumer_before = {**SESSION_HANDLERS_CONFIG, "description": "old text"}
    consumer_after = {
        **SESSION_HANDLERS_CONFIG,
        "backoff": [2 * SEC, 4 * SEC],
        "metadata": {**SESSION_HANDLERS_CONFIG["metadata"], "jelmore.retry-delays": "2s,4s"},
    }
    return Plan(
        server=SERVER,
        changes=(
            stream_change(
                "JELMORE",
                Action.UPDATE,
                before,
                after,
                (
                    FieldChange("max_msgs", 100_000, 50_000),
                    FieldChange("max_bytes", 10_000_000_000, 20_000_000_000),
                    FieldChange("max_age", 7 * DAY, 14 * DAY),
                    FieldChange("republish.dest", None, "mirror.jelmore.>"),
                    FieldChange("republish.src", None, "jelmore.>"),
                    FieldChange("consumer_limits.max_ack_pending", 1000, 500),
                ),
                fingerprint="sha256:aaaa",
            ),
            consumer_change(
                "JELMORE",
                "session_handlers",
                Action.UPDATE,
                consumer_before,
                consumer_after,
                (
                    FieldChange("description", "old text", "General session event processing"),
                    FieldChange("backoff", None, [2 * SEC, 4 * SEC]),
                    FieldChange("metadata.jelmore.retry-delays", "2s,4s,8s", "2s,4s"),
                    FieldChange("metadata.owner", "team-a", None),
                ),
                fingerprint="sha256:bbbb",
            ),
        ),
        messages=(
            PlanMessage(
                "warning",
                "data-loss",
                "lowering max_msgs to 50,000 will remove about 12,345 messages",
                address="stream.JELMORE",
                field="max_msgs",
                data={"messages": 12_345},
            ),
        ),
        fingerprints={
            "stream.JELMORE": "sha256:aaaa",
            "consumer.JELMORE.session_handlers": "sha256:bbbb",
        },
    )


def plan_replace() -> Plan:
    """A consumer and a stream that must be deleted and created again."""
    git_before = {
        "durable_name": "git_monitors",
        "filter_subjects": ["jelmore.session.git_activity"],
        "ack_policy": "none",
        "deliver_policy": "all",
        "ack_wait": 30 * SEC,
    }
    git_after = {**git_before, "ack_policy": "explicit", "deliver_policy": "new"}
    dlq_before = {"name": "JELMORE_DLQ", "subjects": ["jelmore.dlq.>"], "storage": "memory"}
    dlq_after = {**dlq_before, "storage": "file"}
    reader = {"durable_name": "dlq_reader", "ack_policy": "explicit"}
    return Plan(
        server=SERVER,
        changes=(
            consumer_change(
                "JELMORE",
                "git_monitors",
                Action.REPLACE,
                git_before,
                git_after,
                (
                    FieldChange(
                        "ack_policy",
                        "none",
                        "explicit",
                        forces_replace=True,
                        reason="ack_policy cannot be changed on an existing consumer",
                    ),
                    FieldChange("deliver_policy", "all", "new", forces_replace=True),
                ),
                fingerprint="sha256:cccc",
            ),
            stream_change(
                "JELMORE_DLQ",
                Action.REPLACE,
                dlq_before,
                dlq_after,
                (
                    FieldChange(
                        "storage",
                        "memory",
                        "file",
                        forces_replace=True,
                        reason="storage cannot be changed in place",
                    ),
                ),
                fingerprint="sha256:dddd",
            ),
            consumer_change(
                "JELMORE_DLQ",
                "dlq_reader",
                Action.REPLACE,
                reader,
                reader,
                (
                    FieldChange(
                        "stream",
                        "JELMORE_DLQ",
                        "JELMORE_DLQ",
                        forces_replace=True,
                        reason="stream JELMORE_DLQ is replaced",
                    ),
                ),
                fingerprint="sha256:dddf",
            ),
        ),
        messages=(
            PlanMessage(
                "warning",
                "data-loss",
                "replacing the stream deletes its 42 messages (1.2 MB)",
                address="stream.JELMORE_DLQ",
                data={"messages": 42, "bytes": 1_200_000},
            ),
            PlanMessage(
                "warning",
                "data-loss",
                "replacing the consumer loses its delivery state (7 pending)",
                address="consumer.JELMORE.git_monitors",
                data={"pending": 7},
            ),
        ),
        fingerprints={
            "consumer.JELMORE.git_monitors": "sha256:cccc",
            "stream.JELMORE_DLQ": "sha256:dddd",
            "consumer.JELMORE_DLQ.dlq_reader": "sha256:dddf",
        },
    )


def plan_delete() -> Plan:
    """A managed stream and its consumer are destroyed (consumer first)."""
    old_stream = {
        "name": "OLD",
        "subjects": ["old.>"],
        "retention": "limits",
        "storage": "file",
        "num_replicas": 1,
        "max_age": 0,
        "max_msgs": -1,
        "max_bytes": -1,
        "discard": "old",
        "duplicate_window": 120 * SEC,
        "metadata": dict(MANAGED),
    }
    old_consumer = {
        "durable_name": "worker",
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": 30 * SEC,
        "max_deliver": -1,
        "filter_subject": "old.work",
        "metadata": dict(MANAGED),
    }
    return Plan(
        server=SERVER,
        changes=(
            consumer_change("OLD", "worker", Action.DELETE, old_consumer, None, fingerprint="f1"),
            stream_change("OLD", Action.DELETE, old_stream, None, fingerprint="f2"),
        ),
        messages=(
            PlanMessage(
                "warning",
                "data-loss",
                "deleting the stream removes 1,000 messages (5 MB)",
                address="stream.OLD",
                data={"messages": 1000, "bytes": 5_000_000},
            ),
        ),
        fingerprints={"consumer.OLD.worker": "f1", "stream.OLD": "f2"},
    )


def plan_no_changes() -> Plan:
    """The server matches; a foreign stream and a note are still reported."""
    return Plan(
        server=SERVER,
        messages=(
            PlanMessage(
                "warning",
                "unmanaged",
                "stream LEGACY was not created by jelmore-infra; it is left alone",
                address="stream.LEGACY",
            ),
            PlanMessage(
                "warning",
                "unavailable",
                "the server reported this stream offline; it was not planned",
                address="stream.FLAKY",
            ),
        ),
        unmanaged=("stream.LEGACY", "consumer.LEGACY.reader"),
        fingerprints={"stream.JELMORE": "sha256:aaaa"},
    )


def plan_errors() -> Plan:
    """Changes the server can never make: a one-way flag and a field the server is too old for."""
    before = {"name": "JELMORE", "subjects": ["jelmore.>"], "deny_delete": True}
    after = {**before, "deny_delete": False, "max_msgs": 200_000}
    return Plan(
        server=OLD_SERVER,
        changes=(
            stream_change(
                "JELMORE",
                Action.UPDATE,
                before,
                after,
                (FieldChange("max_msgs", 100_000, 200_000),),
                fingerprint="sha256:eeee",
            ),
        ),
        messages=(
            PlanMessage(
                "error",
                "one-way",
                "deny_delete cannot be turned off once set (the server refuses false after true)",
                address="stream.JELMORE",
                field="deny_delete",
            ),
            PlanMessage(
                "error",
                "needs-newer-server",
                "allow_msg_ttl needs nats-server 2.11.0 or newer; the server runs 2.10.22",
                address="stream.EVENTS",
                field="allow_msg_ttl",
                data={"since": "2.11.0", "server": "2.10.22"},
            ),
            PlanMessage("warning", "note", "compression takes effect when the stream reloads"),
        ),
        fingerprints={"stream.JELMORE": "sha256:eeee"},
    )


def plan_adopt() -> Plan:
    """An unmanaged stream named in the topology is taken over (its metadata gains the marker)."""
    before = {"name": "LEGACY", "subjects": ["legacy.>"], "max_age": DAY}
    after = {**before, "metadata": dict(MANAGED)}
    return Plan(
        server=SERVER,
        changes=(
            stream_change(
                "LEGACY",
                Action.UPDATE,
                before,
                after,
                (FieldChange("metadata.jelmore.managed-by", None, "jelmore-infra"),),
                fingerprint="sha256:ffff",
            ),
        ),
        messages=(
            PlanMessage(
                "warning",
                "adopt",
                "not created by jelmore-infra; named in the topology, so it will be adopted",
                address="stream.LEGACY",
            ),
        ),
        targets=("stream.LEGACY",),
        fingerprints={"stream.LEGACY": "sha256:ffff"},
    )


def plan_mixed() -> Plan:
    """The example of the issue: create, update, replace and delete together."""
    parts = [plan_create(), plan_update(), plan_replace(), plan_delete()]
    changes = (
        parts[0].changes[0],
        parts[1].changes[1],
        parts[2].changes[0],
        parts[3].changes[1],
    )
    messages = (
        PlanMessage(
            "warning",
            "note",
            "description contains <b>markup</b> | pipes and `ticks` *stars* _under_",
            address="stream.JELMORE",
        ),
        *parts[3].messages,
    )
    return Plan(
        server=SERVER,
        changes=changes,
        messages=messages,
        unmanaged=("stream.LEGACY",),
        fingerprints={c.address: c.fingerprint for c in changes},
    )


CASES = {
    "create": plan_create,
    "update": plan_update,
    "replace": plan_replace,
    "delete": plan_delete,
    "no_changes": plan_no_changes,
    "errors": plan_errors,
    "adopt": plan_adopt,
    "mixed": plan_mixed,
}


def check_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with the golden file ``name`` (or rewrite it under the env var)."""
    path = GOLDEN_DIR / name
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"golden file {path} is missing; run with {UPDATE_ENV}=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"output differs from {path} (run with {UPDATE_ENV}=1 to update)"
