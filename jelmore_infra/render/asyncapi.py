"""The topology's event catalogue as an AsyncAPI 3.0 document (``jelmore-infra asyncapi``).

:func:`asyncapi_document` turns a :class:`~jelmore_infra.model.Topology` into the document as a
plain dict (the command line writes it as YAML or JSON). Its shape (docs/asyncapi.md):

- ``channels``: one per event type, addressed by the event's subject, holding one message;
- ``components.messages``: per event type the message: ``headers`` (the application headers
  ``Event-Type``, ``Session-Id``, ``Jelmore-Schema-Version`` and, for sensitive events,
  ``Jelmore-Encryption``; never the ``Nats-*`` protocol headers) and ``payload`` (the event
  envelope, whose ``payload`` field refers to the event's payload schema);
- ``components.schemas``: per event type its payload schema as the topology declares it;
- ``operations``: one ``send`` per event type (its publishers) and one ``receive`` per consumer
  group and event type that the group's filter subjects match, with the NATS operation binding
  ``queue`` (the group's durable name) and ``bindingVersion`` ``0.1.0``.

:func:`reference_problems` checks the rules of the AsyncAPI specification that its JSON Schema
does not express (an operation's ``channel`` refers to a root channel, its ``messages`` to
messages of that channel). :func:`server_entries` turns a NATS server URL into ``servers``
entries without any credentials.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from jelmore_infra.errors import JelmoreError
from jelmore_infra.model import ConsumerSpec, EventSpec, JSONDict, Topology
from jelmore_infra.subjects import subjects_overlap

ASYNCAPI_VERSION = "3.0.0"
#: The NATS bindings version whose operation binding has ``queue`` (at most 255 characters).
NATS_BINDING_VERSION = "0.1.0"
QUEUE_MAX = 255
CONTENT_TYPE = "application/json"
DEFAULT_TITLE = "Jelmore events"
DEFAULT_API_VERSION = "1.0.0"
#: The application headers a published event carries (the ``Nats-*`` ones are protocol headers
#: and are left out of ``headers``, as the specification asks).
HDR_EVENT_TYPE = "Event-Type"
HDR_SESSION_ID = "Session-Id"
HDR_SCHEMA_VERSION = "Jelmore-Schema-Version"
HDR_ENCRYPTION = "Jelmore-Encryption"
#: The fields of the event envelope, in the order the runtime writes them.
ENVELOPE_FIELDS = ("event_type", "session_id", "timestamp", "message_id", "retry_count", "payload")

#: Characters allowed in the keys of the components maps (the specification's
#: ``^[a-zA-Z0-9\.\-_]+$``); used for every id in the document.
_ID_BAD = re.compile(r"[^A-Za-z0-9._-]")
#: How the URL schemes other than ``nats://`` carry the NATS protocol.
_TRANSPORTS = {"tls": "TLS", "ws": "WebSocket", "wss": "WebSocket with TLS"}
#: Keywords whose values are data, not schemas: a ``$ref`` inside them is left alone.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example"})


def asyncapi_document(
    topology: Topology,
    *,
    servers: Mapping[str, JSONDict] | None = None,
    title: str = DEFAULT_TITLE,
    version: str = DEFAULT_API_VERSION,
) -> JSONDict:
    """The AsyncAPI 3.0 document of ``topology``'s events, consumer groups and ``servers``.

    Raises :class:`~jelmore_infra.errors.JelmoreError` when an event's subject cannot be a
    channel address (it contains ``{`` or ``}``, which AsyncAPI reads as a parameter) or a
    group's durable name is longer than a NATS ``queue`` may be.
    """
    events = [topology.events[name] for name in sorted(topology.events)]
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for event in events:
        ids[event.type] = _unique(_component_id(event.type), taken)

    channels: JSONDict = {}
    messages: JSONDict = {}
    schemas: JSONDict = {}
    operations: JSONDict = {}
    op_ids: set[str] = set()
    groups = [topology.consumers[key] for key in sorted(topology.consumers)]
    for event in events:
        cid = ids[event.type]
        subject = event.subject
        if "{" in subject or "}" in subject:
            raise JelmoreError(
                f"event '{event.type}': its subject '{subject}' cannot be an AsyncAPI channel "
                "address (braces mark channel parameters there)"
            )
        streams = _capturing_streams(event, topology)
        channel: JSONDict = {"address": subject, "title": event.type}
        description = event.config.get("description")
        if description:
            channel["description"] = str(description)
        channel["messages"] = {cid: {"$ref": f"#/components/messages/{cid}"}}
        if len(streams) == 1:
            channel["x-jelmore-stream"] = streams[0]
        channels[cid] = channel
        schemas[cid] = _rebased(event.payload, f"#/components/schemas/{cid}")
        messages[cid] = _message(event, cid)

        message_ref = [{"$ref": f"#/channels/{cid}/messages/{cid}"}]
        channel_ref = {"$ref": f"#/channels/{cid}"}
        send_id = _unique(f"send.{cid}", op_ids)
        operations[send_id] = {
            "action": "send",
            "channel": dict(channel_ref),
            "messages": [dict(m) for m in message_ref],
            "summary": f"Publish {event.type} events to {subject}.",
        }
        for group in groups:
            if group.stream not in streams or not _filter_matches(group, subject):
                continue
            queue = str(group.config.get("durable_name") or group.name)
            if len(queue) > QUEUE_MAX:
                raise JelmoreError(
                    f"consumer group '{group.name}' of stream '{group.stream}': its durable "
                    f"name is {len(queue)} characters long, more than the {QUEUE_MAX} a NATS "
                    "queue may have"
                )
            op_id = _receive_id(cid, group, op_ids)
            operation: JSONDict = {
                "action": "receive",
                "channel": dict(channel_ref),
                "messages": [dict(m) for m in message_ref],
                "summary": (
                    f"Consumer group {group.name} (stream {group.stream}) receives "
                    f"{event.type} events."
                ),
            }
            group_description = group.config.get("description")
            if group_description:
                operation["description"] = str(group_description)
            operation["bindings"] = {
                "nats": {"queue": queue, "bindingVersion": NATS_BINDING_VERSION}
            }
            operations[op_id] = operation

    document: JSONDict = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": (
                "The event types of the topology, their subjects, envelopes and payload schemas, "
                "and the consumer groups that receive them; generated by jelmore-infra."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
    }
    if servers:
        document["servers"] = {name: dict(entry) for name, entry in servers.items()}
    document["channels"] = channels
    document["operations"] = operations
    document["components"] = {"messages": messages, "schemas": schemas}
    return document


def _message(event: EventSpec, cid: str) -> JSONDict:
    sensitive = event.sensitive
    payload_ref: JSONDict = {"$ref": f"#/components/schemas/{cid}"}
    if sensitive:
        payload_field: JSONDict = {
            "description": (
                "Encrypted on the wire (see the Jelmore-Encryption header); the schema is that "
                "of the payload after decryption."
            ),
            "allOf": [payload_ref],
        }
    else:
        payload_field = payload_ref
    headers: JSONDict = {
        "type": "object",
        "required": [HDR_EVENT_TYPE, HDR_SESSION_ID] + ([HDR_ENCRYPTION] if sensitive else []),
        "properties": {
            HDR_EVENT_TYPE: {
                "type": "string",
                "const": event.type,
                "description": "The event type (the envelope's event_type).",
            },
            HDR_SESSION_ID: {
                "type": "string",
                "minLength": 1,
                "description": "The session the event belongs to (the envelope's session_id).",
            },
            HDR_SCHEMA_VERSION: {
                "type": "string",
                "description": (
                    "The catalogue version of the payload schema the event was published with."
                ),
            },
        },
    }
    if sensitive:
        headers["properties"][HDR_ENCRYPTION] = {
            "type": "string",
            "minLength": 1,
            "description": "How the payload is encrypted (sensitive events only).",
        }
    envelope: JSONDict = {
        "type": "object",
        "required": list(ENVELOPE_FIELDS),
        "properties": {
            "event_type": {"type": "string", "const": event.type, "description": "The event type."},
            "session_id": {
                "type": "string",
                "minLength": 1,
                "description": "The session the event belongs to.",
            },
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": (
                    "When the event was published: ISO-8601 in UTC with milliseconds "
                    "(2024-01-01T12:00:00.000Z)."
                ),
            },
            "message_id": {
                "type": "string",
                "minLength": 1,
                "description": (
                    "The event's unique id; also sent as the Nats-Msg-Id header, the stream's "
                    "de-duplication key."
                ),
            },
            "retry_count": {
                "type": "integer",
                "minimum": 0,
                "description": (
                    "0 when first published; a re-published dead-lettered event carries the "
                    "number of delivery attempts it had."
                ),
            },
            "payload": payload_field,
        },
    }
    message: JSONDict = {"name": event.type, "title": event.type}
    description = event.config.get("description")
    if description:
        message["summary"] = str(description)
    message["contentType"] = CONTENT_TYPE
    message["headers"] = headers
    message["payload"] = envelope
    message["x-jelmore-compatibility"] = event.compatibility
    message["x-jelmore-sensitive"] = sensitive
    return message


def _capturing_streams(event: EventSpec, topology: Topology) -> list[str]:
    """The streams that store the event: the one validation found, else every stream one of
    whose subjects overlaps the event's subject."""
    if event.stream is not None:
        return [event.stream]
    return sorted(
        name
        for name, stream in topology.streams.items()
        if any(subjects_overlap(str(s), event.subject) for s in stream.config.get("subjects") or ())
    )


def _filter_subjects(group: ConsumerSpec) -> list[str]:
    config = group.config
    many = config.get("filter_subjects")
    if many:
        return [str(s) for s in many]
    one = config.get("filter_subject")
    return [str(one)] if one else []


def _filter_matches(group: ConsumerSpec, subject: str) -> bool:
    """Whether the group receives messages on ``subject`` (no filter: every subject)."""
    filters = _filter_subjects(group)
    return not filters or any(subjects_overlap(f, subject) for f in filters)


def _receive_id(cid: str, group: ConsumerSpec, taken: set[str]) -> str:
    base = f"receive.{cid}.{_component_id(group.name)}"
    if base not in taken:
        taken.add(base)
        return base
    return _unique(
        f"receive.{cid}.{_component_id(group.stream)}.{_component_id(group.name)}", taken
    )


def _component_id(text: str) -> str:
    return _ID_BAD.sub("_", text) or "_"


def _unique(base: str, taken: set[str]) -> str:
    candidate = base
    n = 2
    while candidate in taken:
        candidate = f"{base}_{n}"
        n += 1
    taken.add(candidate)
    return candidate


def _rebased(schema: Any, base: str) -> Any:
    """``schema`` with its document-local ``$ref``s (``#``, ``#/…``) pointing at ``base``.

    The payload schema is placed at ``base`` inside the AsyncAPI document, where ``#`` means the
    document's root; a payload schema with its own ``$id`` keeps its references (they resolve
    against that ``$id``). Values of data keywords (``const``, ``enum``, ``default``, …) are
    copied unchanged.
    """
    if isinstance(schema, Mapping) and "$id" in schema:
        return _copy(schema)
    return _rebase(schema, base)


def _rebase(node: Any, base: str) -> Any:
    if isinstance(node, Mapping):
        out: JSONDict = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#"):
                out[key] = base + value[1:]
            elif key in _DATA_KEYWORDS:
                out[key] = _copy(value)
            else:
                out[key] = _rebase(value, base)
        return out
    if isinstance(node, list):
        return [_rebase(item, base) for item in node]
    return node


def _copy(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {key: _copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy(item) for item in node]
    return node


def server_entries(url: str) -> JSONDict:
    """``servers`` entries for a NATS URL (or comma-separated list), without credentials.

    One entry per URL: ``host`` is ``host:port`` (port 4222 when none is given), ``protocol``
    ``nats``; a ``tls://``, ``ws://`` or ``wss://`` URL says so in ``description``. Entries are
    named ``nats`` (one URL) or ``nats-1``, ``nats-2``, … (several).
    """
    parts = [p.strip() for p in url.split(",") if p.strip()]
    entries: JSONDict = {}
    for index, part in enumerate(parts, start=1):
        text = part if "://" in part else f"nats://{part}"
        split = urlsplit(text)
        scheme = split.scheme.lower() or "nats"
        host_port = split.netloc.rpartition("@")[2]
        if not host_port:
            raise JelmoreError(f"server URL number {index} names no host")
        if not _has_port(host_port):
            host_port = f"{host_port}:4222"
        entry: JSONDict = {"host": host_port, "protocol": "nats"}
        if scheme in _TRANSPORTS:
            entry["description"] = f"NATS over {_TRANSPORTS[scheme]} ({scheme}://)"
        name = "nats" if len(parts) == 1 else f"nats-{index}"
        entries[name] = entry
    return entries


def _has_port(host_port: str) -> bool:
    if host_port.startswith("["):
        return "]:" in host_port
    return ":" in host_port


def reference_problems(document: Mapping[str, Any]) -> list[str]:
    """Breaches of the AsyncAPI 3.0 rules its JSON Schema leaves unchecked, as sentences.

    Every root operation's ``channel`` must be ``{"$ref": "#/channels/<id>"}`` naming a root
    channel, and each of its ``messages`` must be ``{"$ref": "#/channels/<id>/messages/<m>"}``
    naming a message of that same channel. Every ``#/…`` reference in the channels must resolve.
    """
    problems: list[str] = []
    channels = document.get("channels") or {}
    for op_id, operation in (document.get("operations") or {}).items():
        ref = (operation.get("channel") or {}).get("$ref")
        prefix = "#/channels/"
        if not isinstance(ref, str) or not ref.startswith(prefix) or "/" in ref[len(prefix) :]:
            problems.append(f"operation '{op_id}': channel {ref!r} is not a root channel")
            continue
        cid = _unescape(ref[len(prefix) :])
        if cid not in channels:
            problems.append(f"operation '{op_id}': channel {ref!r} does not exist")
            continue
        own = channels[cid].get("messages") or {}
        for message in operation.get("messages") or ():
            mref = message.get("$ref") if isinstance(message, Mapping) else None
            mprefix = f"{ref}/messages/"
            name = mref[len(mprefix) :] if isinstance(mref, str) else ""
            if not isinstance(mref, str) or not mref.startswith(mprefix) or "/" in name:
                problems.append(
                    f"operation '{op_id}': message {mref!r} is not a message of channel {ref!r}"
                )
            elif _unescape(name) not in own:
                problems.append(f"operation '{op_id}': message {mref!r} does not exist")
    for cid, channel in channels.items():
        for name, message in (channel.get("messages") or {}).items():
            mref = message.get("$ref") if isinstance(message, Mapping) else None
            if isinstance(mref, str) and _resolve(document, mref) is None:
                problems.append(f"channel '{cid}': message '{name}' refers to missing {mref!r}")
    return problems


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _resolve(document: Mapping[str, Any], ref: str) -> Any:
    """The value a ``#/…`` JSON pointer names in ``document``, or ``None``."""
    if not ref.startswith("#/"):
        return None
    node: Any = document
    for token in _tokens(ref[2:]):
        if not isinstance(node, Mapping) or token not in node:
            return None
        node = node[token]
    return node


def _tokens(pointer: str) -> Iterable[str]:
    return (_unescape(t) for t in pointer.split("/"))


__all__ = [
    "ASYNCAPI_VERSION",
    "NATS_BINDING_VERSION",
    "asyncapi_document",
    "reference_problems",
    "server_entries",
]
