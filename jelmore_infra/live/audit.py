"""Writing and reading the audit trail on the server (docs/audit.md).

Each ``apply`` and ``force-unlock`` appends one record (:mod:`jelmore_infra.audit`) to the subject
``jelmore-infra.audit.<environment>`` of the stream :data:`~jelmore_infra.model.AUDIT_STREAM`,
which the first record creates (file storage, limits retention, kept forever, deletes and purges
of messages denied; three replicas on a cluster that can place them, else one) and which
jelmore-infra never deletes. The publish names the stream it expects and a message id, so the
record lands in that stream once.

``history`` reads the records newest first with ``STREAM.MSG.GET`` (``next_by_subj`` over
windows of sequences walked backwards from the stream's last one), so reading needs no consumer
and writes nothing.

Talks to the server only through :class:`jelmore_infra.live.jsapi.JetStreamAPI`.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jelmore_infra import __version__
from jelmore_infra.audit import (
    COMPLETE,
    FAILED,
    ApplyObserver,
    Who,
    audit_subject,
    auth_method,
    decode_record,
    encode_record,
    force_unlock_record,
)
from jelmore_infra.errors import JetStreamAPIError
from jelmore_infra.model import (
    AUDIT_STREAM,
    AUDIT_SUBJECTS,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
)

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI

JSONDict = dict[str, Any]

#: Room left in a message for the headers and the server's framing.
_HEADROOM = 1024
#: The first window of sequences ``history`` reads backwards (it doubles while more are needed).
_FIRST_WINDOW = 64


def audit_stream_config(replicas: int = 1) -> JSONDict:
    """The audit trail's stream: append-only through the API, kept until someone sets limits."""
    return {
        "name": AUDIT_STREAM,
        "description": "jelmore-infra audit trail: one record per apply and force-unlock",
        "subjects": [AUDIT_SUBJECTS],
        "retention": "limits",
        "storage": "file",
        "num_replicas": replicas,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "discard": "old",
        "deny_delete": True,
        "deny_purge": True,
        "metadata": {MANAGED_BY_KEY: MANAGED_BY_VALUE},
    }


def who_is(api: JetStreamAPI) -> Who:
    """Who runs this command: the user the server reports, the machine, the tool's version."""
    from jelmore_infra.live.lock import _me  # the lock records its holder the same way

    me = _me()
    return Who(
        user=api.user,
        account=api.identity.account,
        auth=auth_method(api.settings),
        host=str(me["host"]),
        process_user=str(me["user"]),
        pid=int(me["pid"]),
        tool_version=__version__,
    )


def new_record_id() -> str:
    return secrets.token_hex(16)


async def append_record(api: JetStreamAPI, record: JSONDict) -> int:
    """Append ``record`` (creating the stream when needed); its sequence in the stream."""
    await api.ensure_replicated_stream(audit_stream_config)
    limit = max(4096, int(getattr(api.nc, "max_payload", 0) or 1024 * 1024) - _HEADROOM)
    headers = {"Nats-Msg-Id": str(record["id"]), "Nats-Expected-Stream": AUDIT_STREAM}
    reply = await api.publish_acked(
        audit_subject(record.get("environment")),
        encode_record(record, limit),
        headers,
        wait_for_leader=True,  # a stream created a moment ago on a cluster
    )
    return int(reply.get("seq") or 0)


async def write_record(api: JetStreamAPI, record: JSONDict) -> str | None:
    """:func:`append_record`; why it failed, in one line (None: written). Never raises."""
    try:
        await append_record(api, record)
    except JetStreamAPIError as exc:
        return f"{exc.description} (error {exc.err_code})"
    except Exception as exc:  # the record must never hide how the command itself ended
        return str(exc) or type(exc).__name__
    return None


async def record_apply(
    api: JetStreamAPI, observer: ApplyObserver, environment: str | None, started: datetime
) -> str | None:
    """Write the record of the apply ``observer`` watched; why it failed (None: written)."""
    try:
        record = observer.record(
            record_id=new_record_id(),
            who=who_is(api),
            server=api.identity,
            environment=environment,
            started=started,
            ended=datetime.now(UTC),
        )
    except Exception as exc:  # the record must never hide how the apply ended
        return f"the record could not be built: {exc or type(exc).__name__}"
    return await write_record(api, record)


async def force_unlock_recorded(
    api: JetStreamAPI, environment: str | None
) -> tuple[str | None, str | None]:
    """Remove the apply lock and record it: (who held it or None, why the record failed or
    None). A removal that fails is recorded too (outcome ``failed``), then raised."""
    from jelmore_infra.live.lock import force_unlock

    started = datetime.now(UTC)
    holder: str | None = None
    outcome, reason = COMPLETE, None
    try:
        holder = await force_unlock(api)
    except Exception as exc:
        outcome, reason = FAILED, str(exc) or type(exc).__name__
        raise
    finally:
        record = force_unlock_record(
            record_id=new_record_id(),
            who=who_is(api),
            server=api.identity,
            environment=environment,
            started=started,
            ended=datetime.now(UTC),
            holder=holder,
            outcome=outcome,
            reason=reason,
        )
        problem = await write_record(api, record)
    return holder, problem


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as read back: its sequence and subject in the stream, and the record (None when
    the message is not a record; ``problem`` says why)."""

    seq: int
    subject: str
    record: JSONDict | None
    problem: str | None = None

    def to_dict(self) -> JSONDict:
        if self.record is not None:
            return {"seq": self.seq, **self.record}
        return {"seq": self.seq, "subject": self.subject, "unreadable": self.problem}


def _stored(message: JSONDict) -> StoredRecord:
    seq, subject = int(message.get("seq") or 0), str(message.get("subject") or "")
    try:
        data = base64.b64decode(message.get("data") or "")
    except ValueError:
        return StoredRecord(seq, subject, None, "its data is not base64")
    record = decode_record(data)
    if record is None:
        return StoredRecord(seq, subject, None, "not a JSON object")
    return StoredRecord(seq, subject, record)


async def read_records(
    api: JetStreamAPI, environment: str | None, limit: int
) -> list[StoredRecord]:
    """The newest ``limit`` records (of ``environment`` only, when given), newest first.

    Walks backwards from the stream's last sequence in windows that double in size, fetching
    the records of each window with ``next_by_subj`` (one request per record, whatever the
    other environments' records in between).
    """
    info = await api.stream_info(AUDIT_STREAM)
    if info is None or limit <= 0:
        return []
    state = info.get("state") or {}
    first, last = int(state.get("first_seq") or 0), int(state.get("last_seq") or 0)
    if not state.get("messages") or last < first:
        return []
    subject = audit_subject(environment) if environment else AUDIT_SUBJECTS
    found: list[StoredRecord] = []
    # every record matches without an environment: the first window then holds just enough
    end, window = last, max(_FIRST_WINDOW, limit) if environment else limit
    while end >= first and len(found) < limit:
        start = max(first, end - window + 1)
        batch: list[StoredRecord] = []
        seq = start
        while seq <= end:
            message = await api.get_message(AUDIT_STREAM, seq, next_by_subj=subject)
            if message is None or int(message.get("seq") or 0) > end:
                break
            batch.append(_stored(message))
            seq = batch[-1].seq + 1
        found.extend(reversed(batch))
        end, window = start - 1, window * 2
    return found[:limit]


__all__ = [
    "StoredRecord",
    "append_record",
    "audit_stream_config",
    "force_unlock_recorded",
    "read_records",
    "record_apply",
    "who_is",
    "write_record",
]
