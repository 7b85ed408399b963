"""The event envelope, its subject and its headers (the seed document's format).

An event on the wire is the JSON object::

    {"event_type": "session.created", "session_id": "…", "timestamp": "2024-01-01T12:00:00.000Z",
     "message_id": "…", "retry_count": 0, "payload": {…}}

published to the subject the event catalogue names for its type (``jelmore.session.created``)
with the headers ``Nats-Msg-Id`` (= message_id, the stream's de-duplication key), ``Event-Type``,
``Session-Id`` and ``Jelmore-Schema-Version`` (the payload schema version it was validated
against) plus any custom headers.

Pure: no I/O. The clock and the id generator are passed in by callers that need them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jelmore_infra import jsontext
from jelmore_infra.catalogue.entry import HDR_SCHEMA_VERSION
from jelmore_infra.errors import JelmoreError

HDR_MSG_ID = "Nats-Msg-Id"
HDR_EVENT_TYPE = "Event-Type"
HDR_SESSION_ID = "Session-Id"
#: Header names NATS reserves for control purposes; never copied from one message to another.
CONTROL_HEADER_PREFIX = "Nats-"

_HEADER_NAME_RE = re.compile(r"^[!-9;-~]+$")  # printable ASCII without ':' and spaces
#: a header value with neither a line break nor a lone surrogate
_PLAIN_VALUE_RE = re.compile(r"[^\r\n\ud800-\udfff]*\Z")


class EventError(JelmoreError):
    """An event cannot be published as given (unknown type, bad payload, bad header)."""


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """An event ready to publish: subject, serialised body, headers, and its id."""

    subject: str
    data: bytes
    headers: dict[str, str]
    message_id: str
    event_type: str
    session_id: str


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``: ``2024-01-01T12:00:00.000Z``."""
    if moment.tzinfo is not UTC:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # isoformat is several times faster than strftime (this runs once per published event)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    """Read an envelope or server timestamp (``Z`` or offset, any fraction) as an aware UTC time."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python < 3.12 accepts at most 6 fractional digits; servers send 9.
    match = re.match(r"^(.*\.\d{1,6})\d*(.*)$", value)
    if match:
        value = match.group(1) + match.group(2)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def new_message_id() -> str:
    return uuid.uuid4().hex


def build_event(
    subject: str,
    event_type: str,
    session_id: str,
    payload: Any,
    *,
    now: datetime,
    message_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    retry_count: int = 0,
    schema_version: int | None = None,
) -> OutgoingEvent:
    """The envelope and headers of one event of ``event_type`` published on ``subject`` (the
    catalogue's, :mod:`jelmore_infra.runtime.catalogue`); ``schema_version`` is the payload
    schema version it was validated against. Raises ``EventError`` when it is invalid."""
    if not isinstance(session_id, str) or not session_id:
        raise EventError("session_id must be a non-empty string")
    mid = message_id or new_message_id()
    envelope = {
        "event_type": event_type,
        "session_id": session_id,
        "timestamp": format_timestamp(now),
        "message_id": mid,
        "retry_count": retry_count,
        "payload": payload,
    }
    data = encode_json(envelope, what=f"{event_type} event")
    check_header_value(HDR_SESSION_ID, session_id)
    check_header_value(HDR_EVENT_TYPE, event_type)
    if message_id:
        check_header_value(HDR_MSG_ID, message_id)
    fixed = {HDR_MSG_ID: mid, HDR_EVENT_TYPE: event_type, HDR_SESSION_ID: session_id}
    if schema_version is not None:
        fixed[HDR_SCHEMA_VERSION] = str(schema_version)
    hdrs = merge_headers(headers, fixed, fixed_checked=True)
    return OutgoingEvent(subject, data, hdrs, mid, event_type, session_id)


def encode_json(value: Any, *, what: str) -> bytes:
    """Compact JSON (UTF-8); anything JSON or UTF-8 cannot represent is an ``EventError``."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EventError(f"{what} is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise EventError(f"{what} is nested too deeply to serialise") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        where = unencodable_path(value) or "a string"
        raise EventError(f"{what} cannot be encoded as UTF-8: lone surrogate in {where}") from None


def _bad_text(text: str) -> int | None:
    """The index of the first character UTF-8 cannot encode (a lone surrogate), if any."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def unencodable_path(value: Any, path: str = "") -> str | None:
    """Where in ``value`` (dicts, lists, strings) the first string UTF-8 cannot encode (a lone
    surrogate) sits: ``payload.items[2] (character 0: '\\ud800')`` for a value, ``a key of
    payload ('a\\ud800')`` for a key; ``None`` when every string is encodable."""
    if isinstance(value, str):
        index = _bad_text(value)
        if index is None:
            return None
        return f"{path or 'the value'} (character {index}: {value[index]!r})"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _bad_text(key) is not None:
                return f"a key of {path or 'the object'} ({key!r})"
            found = unencodable_path(item, _child(path, key))
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = unencodable_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _child(path: str, key: object) -> str:
    name = str(key)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
        return f"{path}.{name}" if path else name
    return f"{path}[{name!r}]"


def wire_size(event: OutgoingEvent) -> int:
    """Bytes the server counts against its ``max_payload`` for ``event``: the body plus the
    header block (``NATS/1.0``, one ``Name: value`` line per header, a blank line)."""
    block = len(b"NATS/1.0\r\n\r\n")
    for name, value in event.headers.items():
        block += len(name.encode("utf-8")) + 2 + len(value.encode("utf-8")) + 2
    return len(event.data) + block


def merge_headers(
    custom: Mapping[str, str] | None, fixed: Mapping[str, str], *, fixed_checked: bool = False
) -> dict[str, str]:
    """Custom headers plus the fixed ones (which win); names and values are validated (the
    fixed ones not again when the caller has, ``fixed_checked``)."""
    if not custom and fixed_checked:
        return dict(fixed)
    result: dict[str, str] = {}
    for name, value in (custom or {}).items():
        check_header(name, value)
        result[str(name)] = str(value)
    for name, value in fixed.items():
        if not fixed_checked:
            check_header(name, value)
        result[name] = value
    return result


def check_header(name: object, value: object) -> None:
    if not isinstance(name, str) or not _HEADER_NAME_RE.match(name):
        raise EventError(f"invalid header name {name!r}")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise EventError(f"header {name} must be a string, got {type(value).__name__}")
    check_header_value(name, str(value))


def check_header_value(name: str, text: str) -> None:
    """``EventError`` when ``text`` cannot be the value of header ``name``: a line break, or a
    lone surrogate UTF-8 cannot encode. One regular-expression match in the common case."""
    if _PLAIN_VALUE_RE.match(text):
        return
    if "\r" in text or "\n" in text:
        raise EventError(f"header {name} must not contain line breaks")
    if _bad_text(text) is not None:
        raise EventError(f"header {name} cannot be encoded as UTF-8 (it contains a lone surrogate)")


def _json_of_utf8(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))


def decode_event(data: bytes) -> dict[str, Any]:
    """The envelope of a received message; raises ``EventError`` when it is not a JSON object."""
    try:
        value = jsontext.loads(data, then=_json_of_utf8)
    except ValueError as exc:  # (a UnicodeDecodeError too)
        raise EventError(f"message is not a JSON event: {exc}") from None
    if not isinstance(value, dict):
        raise EventError(f"message is not a JSON object but {type(value).__name__}")
    return value


def user_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers without NATS control headers (``Nats-*``), which must never be copied."""
    return {
        k: v
        for k, v in (headers or {}).items()
        if not k.lower().startswith(CONTROL_HEADER_PREFIX.lower())
    }
