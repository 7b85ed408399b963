"""How the event catalogue is stored on the server, and how a message names its schema version.

The catalogue is the KV bucket :data:`~jelmore_infra.model.CATALOGUE_BUCKET`: one key per event
type (the key is the event type itself, ``session.created``), whose value is the JSON *entry*::

    {"type": "session.created", "subject": "jelmore.session.created", "stream": "JELMORE",
     "description": "…", "compatibility": "backward", "sensitive": false,
     "payload": {…JSON Schema…}, "version": 3}

``version`` counts the payload schemas the type has had: 1 when it is created, one more each
time apply changes the schema (a change of description, subject or mode keeps the version). The
bucket keeps up to :data:`HISTORY` values per key, so a consumer can validate an older message
against the schema version named in its :data:`HDR_SCHEMA_VERSION` header. Removing an event type
writes a KV delete marker: the history stays.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jelmore_infra.model import (
    CATALOGUE_BUCKET,
    CATALOGUE_STREAM,
    DEFAULT_COMPATIBILITY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    MAX_HISTORY,
)

#: Values kept per key: the earlier schema versions a consumer can still validate against.
HISTORY = MAX_HISTORY
#: The header carrying the schema version a published payload was validated against.
HDR_SCHEMA_VERSION = "Jelmore-Schema-Version"
#: KV operation header values (a delete marker and a purge marker), as the NATS clients write them.
KV_OPERATION = "KV-Operation"
KV_DELETED = frozenset({"DEL", "PURGE"})
#: The subject prefix of the catalogue's keys.
KEY_PREFIX = f"$KV.{CATALOGUE_BUCKET}."
#: The settings an entry carries besides ``type``, ``stream`` and ``version``.
SETTINGS = ("subject", "description", "compatibility", "sensitive", "payload")


def key_subject(event_type: str) -> str:
    """The subject of an event type's key: ``$KV.jelmore-catalogue.session.created``."""
    return KEY_PREFIX + event_type


def type_of_subject(subject: str) -> str | None:
    """The event type a catalogue key subject stands for (``None`` for another subject)."""
    return subject[len(KEY_PREFIX) :] if subject.startswith(KEY_PREFIX) else None


def catalogue_stream_config(replicas: int = 1) -> dict[str, Any]:
    """The stream of the catalogue bucket, as the NATS clients create a KV bucket."""
    return {
        "name": CATALOGUE_STREAM,
        "description": "jelmore-infra event catalogue (event types and payload schemas)",
        "subjects": [f"$KV.{CATALOGUE_BUCKET}.>"],
        "retention": "limits",
        "max_msgs_per_subject": HISTORY,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msg_size": -1,
        "discard": "new",
        "storage": "file",
        "num_replicas": replicas,
        "duplicate_window": 120_000_000_000,
        "allow_rollup_hdrs": True,
        "deny_delete": True,
        "allow_direct": True,
        "metadata": {MANAGED_BY_KEY: MANAGED_BY_VALUE},
    }


def settings_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """An event's settings in canonical form (defaults filled in), as plans compare them."""
    return {
        "subject": str(config.get("subject") or ""),
        "description": str(config.get("description") or ""),
        "compatibility": str(config.get("compatibility") or DEFAULT_COMPATIBILITY),
        "sensitive": bool(config.get("sensitive")),
        "payload": dict(config.get("payload") or {}),
    }


def canonical_entry(
    event_type: str, config: Mapping[str, Any], stream: str, version: int
) -> dict[str, Any]:
    """An entry as plans compare it and apply stores it (settings with defaults filled in, and
    the ownership marker every entry carries)."""
    return {
        "type": event_type,
        "stream": stream,
        **settings_of(config),
        "metadata": {MANAGED_BY_KEY: MANAGED_BY_VALUE},
        "version": version,
    }


def encode_entry(entry: Mapping[str, Any]) -> bytes:
    """The value stored under the event type's key (an entry from :func:`canonical_entry`)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def decode_entry(data: bytes) -> dict[str, Any] | None:
    """An entry read back (``None`` when the bytes are not an entry this module wrote)."""
    try:
        entry = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        return None
    version = entry.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return None
    if not isinstance(entry.get("payload"), dict):
        return None
    return entry


def schema_version_of(headers: Mapping[str, str] | None) -> int | None:
    """The schema version a message names (``None`` when absent or not a positive number)."""
    text = (headers or {}).get(HDR_SCHEMA_VERSION)
    if text is None or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number >= 1 else None
