"""Working with the dead-letter queue: list and show dead-lettered events, and re-publish them to
their original subjects after a fix (``jelmore-infra events dlq …``).

Re-publishing is "once each": the event gets ``Nats-Msg-Id: dlq-replay-<dlq stream>-<dlq seq>``
(a retry within the duplicate window is stored once) and its DLQ copy is deleted once the original
stream has acknowledged it, so a later run does not send it again.

Encrypted records (see ``crypto``) are listed and shown decrypted with the runtime's keys, or
with ``<encrypted: key KID>`` as their payload without them; they are re-published still
encrypted (no key needed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jelmore_infra.errors import JelmoreError
from jelmore_infra.runtime.bus import Bus, StoredMessage
from jelmore_infra.runtime.core import RuntimeCore
from jelmore_infra.runtime.crypto import encryption_header, reveal_event
from jelmore_infra.runtime.discovery import TopologyMissing, dlq_streams, main_stream
from jelmore_infra.runtime.dlq import replay_from_dead_letter
from jelmore_infra.runtime.publish import send


async def dlq_stream(bus: Bus) -> str:
    names = await dlq_streams(bus, await main_stream(bus))
    if not names:
        raise TopologyMissing("no dead-letter stream found: run `jelmore-infra apply`")
    return names[0]


def _record(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {"raw": data.decode("utf-8", errors="replace")}
    return value if isinstance(value, dict) else {"raw": value}


def _shown(runtime: RuntimeCore, stored: StoredMessage) -> dict[str, Any]:
    """A stored record for display: decrypted, or ``<encrypted: key KID>`` as its payload."""
    return reveal_event(_record(stored.data), stored.headers, runtime.settings.encryption_keys)


async def list_dead_letters(
    runtime: RuntimeCore, limit: int = 50
) -> list[tuple[int, dict[str, Any]]]:
    """The newest ``limit`` DLQ records as ``(dlq sequence, record)``, oldest first."""
    bus = runtime.bus
    stream = await dlq_stream(bus)
    info = await bus.stream_info(stream) or {}
    state = info.get("state") or {}
    first, last = int(state.get("first_seq", 0)), int(state.get("last_seq", 0))
    rows: list[tuple[int, dict[str, Any]]] = []
    seq = last
    while seq >= max(first, 1) and len(rows) < limit and int(state.get("messages", 0)) > 0:
        stored = await bus.get_message(stream, seq)
        if stored is not None:
            rows.append((seq, _shown(runtime, stored)))
        seq -= 1
    rows.reverse()
    return rows


async def show_dead_letter(runtime: RuntimeCore, seq: int) -> dict[str, Any]:
    """One DLQ message: stream, sequence, subject, headers and the record (decrypted for display
    when the runtime has the key)."""
    bus = runtime.bus
    stream = await dlq_stream(bus)
    stored = await bus.get_message(stream, seq)
    if stored is None:
        raise JelmoreError(f"no message {seq} in dead-letter stream {stream}")
    return {
        "dlq_stream": stream,
        "dlq_seq": seq,
        "subject": stored.subject,
        "headers": stored.headers,
        "record": _shown(runtime, stored),
    }


async def replay_dead_letters(
    runtime: RuntimeCore,
    seqs: Sequence[int] | None,
    *,
    group: str | None = None,
    delete: bool = True,
) -> dict[str, Any]:
    """Re-publish the given DLQ sequences (``None``: all) to their original subjects."""
    bus = runtime.bus
    stream = await dlq_stream(bus)
    if seqs is None:
        info = await bus.stream_info(stream) or {}
        state = info.get("state") or {}
        first, last = int(state.get("first_seq", 0)), int(state.get("last_seq", 0))
        wanted = list(range(max(first, 1), last + 1)) if int(state.get("messages", 0)) else []
    else:
        wanted = sorted(set(seqs))
    result: dict[str, Any] = {"republished": 0, "failed": 0, "skipped": 0, "errors": []}
    for seq in wanted:
        stored = await bus.get_message(stream, seq)
        if stored is None:
            if seqs is not None:
                result["skipped"] += 1
                result["errors"].append(f"{seq}: not in {stream} (already re-published?)")
            continue
        record = _record(stored.data)
        if group and record.get("consumer_group") != group:
            continue
        try:
            event = replay_from_dead_letter(
                record,
                dlq_stream=stream,
                dlq_seq=seq,
                now=datetime.now(UTC),
                encryption=encryption_header(stored.headers),
            )
        except ValueError as exc:
            result["skipped"] += 1
            result["errors"].append(f"{seq}: {exc}")
            continue
        outcome = await send(bus, event, attempts=5)
        if not outcome.ok:
            result["failed"] += 1
            result["errors"].append(f"{seq}: not re-published: {outcome.error}")
            continue
        result["republished"] += 1
        if delete:
            await bus.delete_message(stream, seq)
    return result
