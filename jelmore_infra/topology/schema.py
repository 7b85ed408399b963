"""The JSON Schema of topology files, generated from the field table.

``build_schema()`` returns the schema (JSON Schema draft-07, which editors' YAML language servers
support well). It is committed as ``topology.schema.json`` beside this module, shipped as package
data, and referenced from topology files with
``# yaml-language-server: $schema=../jelmore_infra/topology/topology.schema.json``.
Regenerate it with::

    python -m jelmore_infra.topology.schema > jelmore_infra/topology/topology.schema.json

Validation itself walks the same field table in :mod:`jelmore_infra.topology.validate` (faster, and
with better messages); the tests check that both accept and reject the same documents.
Pure: no I/O (except printing when run as a script).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from jelmore_infra import fields as F

SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"

#: One line per setting; the value rules, server versions and update behaviour are appended.
STREAM_DOCS: dict[str, str] = {
    "description": "A short description of the stream.",
    "subjects": "Subjects the stream stores (wildcards * and > allowed). "
    "Default: the stream's name. Must not overlap another stream's subjects.",
    "retention": "When messages are removed: limits (by the limits below), interest (once every "
    "consumer acknowledged), workqueue (once one consumer acknowledged). Default: limits.",
    "max_consumers": "How many consumers the stream may have. Default: unlimited.",
    "max_msgs": "How many messages the stream keeps. Default: unlimited.",
    "max_bytes": "How many bytes the stream keeps. Default: unlimited.",
    "max_age": "How long a message is kept. 0, -1 or 'unlimited': forever (the default).",
    "max_msgs_per_subject": "How many messages are kept per subject. Default: unlimited.",
    "max_msg_size": "The largest message accepted. Default: unlimited.",
    "discard": "What happens when a limit is reached: old (remove the oldest messages) or new "
    "(refuse new messages). Default: old.",
    "discard_new_per_subject": "Apply discard: new per subject (needs discard: new and "
    "max_msgs_per_subject > 0).",
    "storage": "file or memory. Default: file.",
    "num_replicas": "How many servers keep a copy (1-5; more than 1 needs a cluster). Default: 1.",
    "no_ack": "Do not acknowledge published messages.",
    "template_owner": "The stream template that owns this stream (stream templates are gone).",
    "duplicate_window": "How long message ids (Nats-Msg-Id) are remembered to drop duplicates. "
    "Default: 2m (or max_age when shorter).",
    "placement": "Where a clustered stream is placed.",
    "mirror": "Make this stream a mirror of another stream (a mirror has no subjects).",
    "sources": "Streams whose messages are copied into this stream.",
    "compression": "Compression of stored messages: none or s2. Default: none.",
    "first_seq": "The sequence number of the first message.",
    "subject_transform": "Transform the subjects of incoming messages.",
    "republish": "Republish stored messages to other subjects.",
    "allow_direct": "Allow direct get of messages from any replica.",
    "mirror_direct": "Allow direct get from this mirror (mirrors only).",
    "sealed": "A sealed stream accepts no changes. Cannot be set in a topology (a stream cannot "
    "be created sealed).",
    "deny_delete": "Refuse deleting single messages through the API.",
    "deny_purge": "Refuse purging the stream through the API.",
    "allow_rollup_hdrs": "Allow the Nats-Rollup header to replace earlier messages.",
    "consumer_limits": "Limits applied to every consumer of the stream.",
    "metadata": "Your own key/value notes (text). Keys starting with 'jelmore.' or '_nats.' are "
    "reserved.",
    "allow_msg_ttl": "Allow per-message TTLs (the Nats-TTL header).",
    "subject_delete_marker_ttl": "Leave a delete marker with this TTL when a subject's last "
    "message ages out (at least 1s).",
    "allow_msg_counter": "Make this a counter stream (needs retention: limits and discard: old).",
    "allow_atomic": "Allow atomic batch publishing.",
    "allow_msg_schedules": "Allow scheduled messages (needs discard: old).",
    "persist_mode": "default, or async (file storage, one replica).",
    "allow_batched": "Allow fast batch publishing.",
}

CONSUMER_DOCS: dict[str, str] = {
    "description": "A short description of the consumer group.",
    "deliver_policy": "Where delivery starts: all, last, new, by_start_sequence, by_start_time, "
    "last_per_subject. Default: all.",
    "opt_start_seq": "The first sequence delivered (with deliver_policy: by_start_sequence).",
    "opt_start_time": "The first time delivered (with deliver_policy: by_start_time).",
    "ack_policy": "How messages are acknowledged: explicit (each one), all, none. The server's "
    "default is none; consumer groups normally want explicit.",
    "ack_wait": "How long the server waits for an acknowledgement before redelivering. "
    "Default: 30s.",
    "max_deliver": "How many times a message is delivered at most. Default: unlimited.",
    "backoff": "Redelivery delays after ack timeouts (replaces ack_wait; at most max_deliver "
    "entries). Do not combine with jelmore.retry_delays.",
    "filter_subject": "Deliver only this subject (use filter_subjects for several).",
    "filter_subjects": "Deliver only these subjects (within the stream's subjects, not "
    "overlapping each other).",
    "replay_policy": "instant, or original (at the rate messages were stored). Default: instant.",
    "rate_limit_bps": "Push consumers only (a group with deliver_subject is a push consumer).",
    "sample_freq": "Percentage of acknowledgements sampled for metrics, e.g. '50%'.",
    "max_waiting": "How many pull requests may wait. Default: 512.",
    "max_ack_pending": "How many messages may be unacknowledged at once. Default: 1000.",
    "flow_control": "Push consumers only (a group with deliver_subject is a push consumer).",
    "headers_only": "Deliver only headers, not payloads.",
    "max_batch": "The largest batch one pull request may ask for.",
    "max_expires": "The longest time a pull request may wait.",
    "max_bytes": "The most bytes one pull request may ask for.",
    "deliver_subject": "Push consumers only (a group with deliver_subject is a push consumer).",
    "deliver_group": "Push consumers only (a group with deliver_subject is a push consumer).",
    "idle_heartbeat": "Push consumers only (a group with deliver_subject is a push consumer).",
    "inactive_threshold": "Delete the consumer after it has been inactive this long.",
    "num_replicas": "Copies of the consumer state (0: as many as the stream).",
    "mem_storage": "Keep the consumer state in memory.",
    "metadata": "Your own key/value notes (text). Keys starting with 'jelmore.' or '_nats.' are "
    "reserved.",
    "pause_until": "Pause delivery until this time (managed through the pause API).",
    "priority_groups": "Priority group names (1-16 of letters, digits, / _ = -).",
    "priority_policy": "none, overflow, pinned_client or prioritized.",
    "priority_timeout": "How long a pinned client keeps its pin.",
}

SUB_DOCS: dict[str, str] = {
    "placement.cluster": "The cluster to place the stream in.",
    "placement.tags": "Server tags the stream's servers must have.",
    "placement.preferred": "Preferred leader (refused by the server in stream configs).",
    "source.name": "The stream to copy from.",
    "source.opt_start_seq": "Start copying at this sequence.",
    "source.opt_start_time": "Start copying at this time.",
    "source.filter_subject": "Copy only this subject.",
    "source.subject_transforms": "Subject transforms applied while copying.",
    "source.external": "Copy from another JetStream domain or account.",
    "source.consumer": "Copy through this durable consumer of the origin.",
    "transform.src": "Source subject filter.",
    "transform.dest": "Destination subject (may use {{wildcard(1)}} mappings).",
    "external.api": "The API prefix of the other domain or account.",
    "external.deliver": "The delivery prefix.",
    "consumer.name": "The consumer's name.",
    "consumer.deliver_subject": "The consumer's deliver subject.",
    "republish.src": "Which stored subjects to republish. Default: all (>).",
    "republish.dest": "Where to republish (must not overlap the stream's subjects).",
    "republish.headers_only": "Republish only headers.",
    "consumer_limits.inactive_threshold": "Default (and largest) inactive_threshold.",
    "consumer_limits.max_ack_pending": "Default (and largest) max_ack_pending.",
}


def _ci(word: str) -> str:
    """A case-insensitive regex for ``word`` (JSON Schema regexes have no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


_NUM = r"\d+(\.\d+)?"
DURATION_PATTERN = (
    r"^\s*(0|(?=\d)"
    + "".join(f"({_NUM}{unit})?" for unit in ("w", "d", "h", "m", "s", "ms", "(us|µs)", "ns"))
    + r")\s*$"
)
UNLIMITED_PATTERN = rf"^\s*(-1|{_ci('unlimited')})\s*$"
SIZE_PATTERN = rf"^\s*{_NUM}\s*([kKmMgGtTpP]?[bB]|[kKmMgGtTpP][iI][bB])?\s*$"
COUNT_PATTERN = r"^\s*[\d_,]*\d[\d_,]*\s*$"
_TOKEN = r"[^\s.*>]+"
SUBJECT_PATTERN = rf"^(>|(\*|{_TOKEN})(\.(\*|{_TOKEN}))*(\.>)?)$"
LITERAL_SUBJECT_PATTERN = rf"^{_TOKEN}(\.{_TOKEN})*$"
NAME_PATTERN = r"^[^\s.*>/\\]+$"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
RESERVED_META_PATTERN = r"^(jelmore\.|_nats\.)"

DURATION_HELP = "A duration with units: 500ms, 60s, 2m, 1h30m, 7d, 1w."
SIZE_HELP = (
    "A size: bytes (1024) or a number with a unit: KB/MB/GB/TB are powers of 1000 "
    "(10GB = 10,000,000,000 bytes), KiB/MiB/GiB/TiB powers of 1024."
)


def _definitions() -> dict[str, Any]:
    duration = {"type": "string", "pattern": DURATION_PATTERN}
    unlimited = {"type": "string", "pattern": UNLIMITED_PATTERN}
    return {
        "name": {
            "description": "A stream or consumer group name: at most 255 characters, "
            "no whitespace, '.', '*', '>', '/' or '\\'.",
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": NAME_PATTERN,
        },
        "duration": {"anyOf": [duration, {"const": 0}]},
        "duration_or_unlimited": {"anyOf": [duration, unlimited, {"enum": [0, -1]}]},
        "size": {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": SIZE_PATTERN},
            ]
        },
        "size_or_unlimited": {
            "anyOf": [
                {"type": "integer", "minimum": -1},
                {"type": "string", "pattern": SIZE_PATTERN},
                unlimited,
            ]
        },
        "count": {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": COUNT_PATTERN},
            ]
        },
        "count_or_unlimited": {
            "anyOf": [
                {"type": "integer", "minimum": -1},
                {"type": "string", "pattern": COUNT_PATTERN},
                unlimited,
            ]
        },
        "subject": {"type": "string", "pattern": SUBJECT_PATTERN},
        "literal_subject": {"type": "string", "pattern": LITERAL_SUBJECT_PATTERN},
        "time": {"type": "string", "pattern": TIME_PATTERN},
        "metadata": {
            "type": ["object", "null"],
            "propertyNames": {"not": {"pattern": RESERVED_META_PATTERN}},
            "additionalProperties": {"type": "string"},
        },
        "jelmore": {
            "description": "Runtime settings of the group, stored in the consumer's metadata "
            "(jelmore.* keys) for the runtime shim.",
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {
                "retry_delays": {
                    "description": "The delay before each next delivery attempt, e.g. "
                    "[2s, 4s, 8s]. " + DURATION_HELP,
                    "type": "array",
                    "items": {"$ref": "#/definitions/duration"},
                },
                "dead_letter": {
                    "description": "Where events go after their last failed attempt: "
                    "published to <subject>.<original subject> in stream <stream>.",
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["stream", "subject"],
                    "properties": {
                        "stream": {
                            "description": "The dead-letter stream (defined in the topology).",
                            "type": "string",
                        },
                        "subject": {
                            "description": "Subject prefix; the stream must store <subject>.>.",
                            "$ref": "#/definitions/literal_subject",
                        },
                    },
                },
            },
        },
    }


def _version(v: tuple[int, int, int]) -> str:
    return ".".join(str(p) for p in v)


def _notes(fld: F.Field) -> str:
    notes: list[str] = []
    if fld.kind in (F.ValueKind.DURATION, F.ValueKind.DURATION_LIST):
        notes.append(DURATION_HELP)
        if fld.minimum_ns:
            notes.append(f"At least {fld.minimum_ns // 1_000_000}ms when not 0.")
    elif fld.kind is F.ValueKind.SIZE:
        notes.append(SIZE_HELP)
    if fld.unlimited:
        notes.append("-1 or 'unlimited' for no limit.")
    if fld.since > (2, 10, 0):
        notes.append(f"Needs nats-server {_version(fld.since)} or newer.")
    if fld.until is not None:
        notes.append(f"Not known by nats-server {_version(fld.until)} and newer.")
    if fld.update is F.Update.REPLACE:
        if fld.in_place_since:
            notes.append(
                f"Changing it replaces the resource before nats-server "
                f"{_version(fld.in_place_since)}."
            )
        else:
            notes.append("Changing it replaces the resource.")
    elif fld.update is F.Update.ONE_WAY:
        notes.append("Can be turned on but never off again.")
    return " ".join(notes)


def _value_schema(fld: F.Field, doc_prefix: str) -> dict[str, Any]:
    k = F.ValueKind
    kind = fld.kind
    if kind is k.DURATION:
        ref = "duration_or_unlimited" if fld.unlimited else "duration"
        return {"$ref": f"#/definitions/{ref}"}
    if kind is k.DURATION_LIST:
        return {"type": "array", "items": {"$ref": "#/definitions/duration"}}
    if kind is k.SIZE:
        if fld.name == "max_msg_size":  # int32 on the wire
            return {
                "anyOf": [
                    {"type": "integer", "minimum": -1, "maximum": 2**31 - 1},
                    {"type": "string", "pattern": SIZE_PATTERN},
                    {"type": "string", "pattern": UNLIMITED_PATTERN},
                ]
            }
        ref = "size_or_unlimited" if fld.unlimited else "size"
        return {"$ref": f"#/definitions/{ref}"}
    if kind is k.COUNT:
        ref = "count_or_unlimited" if fld.unlimited else "count"
        return {"$ref": f"#/definitions/{ref}"}
    if kind is k.INT:
        return {"type": "integer", "minimum": 0}
    if kind is k.BOOL:
        return {"type": "boolean"}
    if kind is k.ENUM:
        return {"type": "string", "enum": list(fld.choices)}
    if kind is k.SUBJECT:
        ref = "literal_subject" if fld.name == "deliver_subject" else "subject"
        return {"$ref": f"#/definitions/{ref}"}
    if kind is k.SUBJECT_LIST:
        return {"type": "array", "items": {"$ref": "#/definitions/subject"}}
    if kind is k.STRING_LIST:
        return {"type": "array", "items": {"type": "string"}}
    if kind is k.TIME:
        return {"$ref": "#/definitions/time"}
    if kind is k.METADATA:
        return {"$ref": "#/definitions/metadata"}
    if kind is k.STRING:
        if fld.name == "sample_freq":
            return {
                "anyOf": [
                    {"type": "integer", "minimum": 0},
                    {"type": "string", "pattern": r"^\d+%?$"},
                ]
            }
        if fld.name == "description":
            return {"type": "string", "maxLength": 4096}
        return {"type": "string"}
    obj = _object_schema(fld.sub_fields, _sub_prefix(fld))
    if kind is k.OBJECT:
        return obj
    return {"type": "array", "items": obj}


def _sub_prefix(fld: F.Field) -> str:
    if fld.name in ("mirror", "sources"):
        return "source"
    if fld.name in ("subject_transform", "subject_transforms"):
        return "transform"
    return fld.name


def _object_schema(sub_fields: tuple[F.Field, ...], prefix: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for sub in sub_fields:
        schema = _value_schema(sub, prefix)
        doc = " ".join(p for p in (SUB_DOCS.get(f"{prefix}.{sub.name}", ""), _notes(sub)) if p)
        props[sub.name] = {"description": doc, **schema} if doc else schema
    return {"type": "object", "additionalProperties": False, "properties": props}


def _field_property(fld: F.Field, docs: dict[str, str]) -> dict[str, Any]:
    doc = " ".join(p for p in (docs.get(fld.name, fld.description), _notes(fld)) if p)
    return {"description": doc, **_value_schema(fld, fld.name)}


def _strategy_schema(what: str, data: str) -> dict[str, Any]:
    """The ``jelmore:`` block of a stream or bucket: ``replace_strategy``."""
    return {
        "description": "Settings for jelmore-infra itself (never sent to the server).",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "replace_strategy": {
                "description": "What apply does when a change cannot be made in place: "
                f"'recreate' (default) deletes the {what} and creates it again, losing its "
                f"{data}; 'migrate' copies them into the new {what} (docs/migration.md).",
                "type": "string",
                "enum": ["recreate", "migrate"],
            }
        },
    }


def _stream_schema() -> dict[str, Any]:
    props = {f.name: _field_property(f, STREAM_DOCS) for f in F.STREAM_FIELDS if f.name != "name"}
    props["jelmore"] = _strategy_schema("stream", "messages")
    props["jelmore"]["properties"]["durability"] = {
        "description": "'strict': acknowledged writes must survive a crash; doctor and plan "
        "warn about servers that do not sync every write (default 'default').",
        "type": "string",
        "enum": ["default", "strict"],
    }
    return {
        "description": "A JetStream stream. Settings are the JetStream API's own field names; "
        "a setting left out means the server's default.",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": props,
    }


def _group_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "stream": {"description": "The stream this group reads.", "type": "string"},
        "jelmore": {"$ref": "#/definitions/jelmore"},
    }
    for f in F.CONSUMER_FIELDS:
        if f.name in ("name", "durable_name"):
            continue
        props[f.name] = _field_property(f, CONSUMER_DOCS)
    push_only = [n for n in F.PUSH_ONLY_FIELDS if n != "deliver_subject"]
    return {
        "description": "A consumer group: a durable consumer shared by every worker of the group "
        "(a pull consumer unless deliver_subject makes it a push consumer). Its name is the "
        "durable name.",
        "type": "object",
        "additionalProperties": False,
        "required": ["stream"],
        "properties": props,
        "if": {"required": ["deliver_subject"]},
        "then": {
            "properties": {n: {"not": {}} for n in (*F.PULL_ONLY_FIELDS, "jelmore")},
        },
        "else": {"properties": {n: {"not": {}} for n in push_only}},
    }


#: One line per bucket setting (docs/buckets.md maps each to its stream field).
BUCKET_DOCS: dict[str, str] = {
    "description": "A short description of the bucket.",
    "history": "How many values (revisions) to keep per key, 1 to 64. Default: 1. Lowering it "
    "removes the older revisions at once.",
    "ttl": "How long a value is kept. Default: forever. Lowering it removes older values at once.",
    "max_value_size": "The largest value accepted. Default: unlimited.",
    "max_bytes": "The most the bucket may hold. Default: unlimited.",
    "storage": "file (default) or memory.",
    "replicas": "How many copies in a cluster (1 to 5). Default: 1.",
    "compression": "Compress stored data (s2). Default: false.",
    "placement": "Where in a super-cluster the bucket lives.",
    "republish": "Republish every change of the bucket to other subjects.",
    "metadata": "Your own text keys and values.",
    "limit_marker_ttl": "Leave a marker, kept this long, when a value is removed by a limit.",
    "allow_direct": "Serve reads from any replica (direct get). Left out: as the live bucket "
    "has it (true for a new bucket, as nats.go and the nats CLI make them).",
}


def _bucket_schema(fields: tuple[F.Field, ...], what: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in fields:
        if f.name in F.BUCKET_DERIVED:
            continue
        prop = _field_property(f, BUCKET_DOCS)
        if f.name == "history":
            prop.update(minimum=1, maximum=64)
        elif f.name == "replicas":
            prop.update(minimum=1, maximum=5)
        props[f.name] = prop
    props["jelmore"] = _strategy_schema(what, "values" if "KV" in what else "objects")
    return {
        "description": f"A {what}. Settings are the NATS clients' bucket settings; the bucket is "
        "the stream those clients create for it.",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": props,
    }


def build_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of one topology file."""
    definitions = _definitions()
    definitions["stream"] = _stream_schema()
    definitions["bucket_name"] = {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$"}
    definitions["consumer_group"] = _group_schema()
    definitions["kv_bucket"] = _bucket_schema(F.KV_FIELDS, "KV bucket")
    definitions["object_store"] = _bucket_schema(F.OBJECT_STORE_FIELDS, "object store")
    return {
        "$schema": SCHEMA_DRAFT,
        "title": "jelmore-infra topology file",
        "description": "Streams, consumer groups, KV buckets and object stores of a NATS JetStream "
        "topology "
        "(topology/*.yaml). Generated by `python -m jelmore_infra.topology.schema`.",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "streams": {
                "description": "Stream name → stream settings.",
                "type": ["object", "null"],
                "propertyNames": {"$ref": "#/definitions/name"},
                "additionalProperties": {"$ref": "#/definitions/stream"},
            },
            "consumer_groups": {
                "description": "Consumer group (durable consumer) name → settings, "
                "including stream:.",
                "type": ["object", "null"],
                "propertyNames": {"$ref": "#/definitions/name"},
                "additionalProperties": {"$ref": "#/definitions/consumer_group"},
            },
            "kv_buckets": {
                "description": "KV bucket name → bucket settings.",
                "type": ["object", "null"],
                "propertyNames": {"$ref": "#/definitions/bucket_name"},
                "additionalProperties": {"$ref": "#/definitions/kv_bucket"},
            },
            "object_stores": {
                "description": "Object store name → store settings.",
                "type": ["object", "null"],
                "propertyNames": {"$ref": "#/definitions/bucket_name"},
                "additionalProperties": {"$ref": "#/definitions/object_store"},
            },
            "events": {
                "description": "Event type → its subject, compatibility mode and payload schema.",
                "type": ["object", "null"],
                "propertyNames": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
                    "maxLength": 255,
                },
                "additionalProperties": {"$ref": "#/definitions/event"},
            },
        },
        "definitions": {**definitions, "event": _EVENT},
    }


_EVENT: dict[str, Any] = {
    "description": "An event type (README.md, 'Events').",
    "type": "object",
    "additionalProperties": False,
    "required": ["payload"],
    "properties": {
        "subject": {
            "description": "The subject it is published on (default jelmore.<event type>).",
            "type": "string",
        },
        "description": {"type": "string", "maxLength": 4096},
        "compatibility": {
            "description": "Which payload schema changes a plan accepts (default backward).",
            "enum": ["none", "backward", "forward", "full"],
        },
        "sensitive": {
            "description": "The runtime encrypts the payload (AES-256-GCM).",
            "type": "boolean",
        },
        "payload": {
            "description": "JSON Schema (draft 2020-12) of the envelope's payload.",
            "type": "object",
        },
    },
}


def schema_text() -> str:
    """The schema as the committed file spells it."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(schema_text())


if __name__ == "__main__":
    main()


__all__ = ["build_schema", "main", "schema_text"]
