"""Normalisation: one canonical form for desired and live JetStream configs, per server version.

The server fills defaults, derives values and adds ``_nats.*`` metadata; a config the user wrote
and the config the server reports for it must still compare equal, or every plan would show a
perpetual diff. Both sides therefore go through the same function, which models the server's own
defaulting (``checkStreamCfgLocked`` / ``setConsumerConfigDefaults``, see
``docs/server-semantics.md``, "Defaults and normalisation") for the connected server version.

Canonical spelling: server defaults are filled in (``storage: file``, ``max_msgs: -1``, …);
``false`` booleans, zero numbers, empty strings, lists and objects are dropped (so "absent" and
"false" are the same); ``_nats.*`` metadata keys are dropped; fields the version does not know, or
that are not in the field table, are dropped; timestamps are RFC 3339 UTC. List order is kept (the
diff compares subject lists as sets).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jelmore_infra import fields as F
from jelmore_infra.model import SERVER_META_PREFIX

Version = tuple[int, int, int]

NS_PER_SECOND = 1_000_000_000
DEFAULT_DUPLICATE_WINDOW = 120 * NS_PER_SECOND
DEFAULT_ACK_WAIT = 30 * NS_PER_SECOND
DEFAULT_MAX_WAITING = 512
DEFAULT_MAX_ACK_PENDING = 1000
DEFAULT_EPHEMERAL_INACTIVE = 5 * NS_PER_SECOND
DEFAULT_PINNED_TTL = 120 * NS_PER_SECOND
FLOW_CONTROL_HEARTBEAT = NS_PER_SECOND

#: Stream limits where ``0`` (and, from 2.12, anything below -1) means unlimited (-1).
STREAM_UNLIMITED_FIELDS = (
    "max_consumers",
    "max_msgs",
    "max_bytes",
    "max_msgs_per_subject",
    "max_msg_size",
)
#: Version from which the server also maps values below -1 to -1.
V_LIMIT_BELOW_MINUS_ONE: Version = (2, 12, 0)
#: Version from which streams with sources no longer get the default duplicate window.
V_SOURCES_NO_DEDUPE: Version = (2, 14, 0)

#: Enum values that mean "the default" and are therefore written as absent.
_DEFAULT_ENUM_SPELLINGS: dict[str, str] = {"persist_mode": "default", "priority_policy": "none"}


def _is_empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or value in ("", [], {})


def canonical_time(value: Any) -> Any:
    """An RFC 3339 timestamp as UTC with ``Z``, keeping every fractional digit up to nanoseconds.

    The server stores times with nanosecond precision, so the fraction is carried as text
    (``datetime`` holds only microseconds): ``…30.123456789+02:00`` becomes ``…28.123456789Z``.
    Trailing zeros of the fraction are dropped; values that are not times come back unchanged.
    """
    if not isinstance(value, str) or not value:
        return value
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    fraction = ""
    if dot:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        if not digits or len(digits) > 9:
            return value
        fraction = digits.rstrip("0")
        text = head + rest[len(digits) :]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    stamp = parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


_SCALARS = (int, str, bool, float)
_COMPOUND_KINDS = (F.ValueKind.METADATA, F.ValueKind.TIME)


def _clean(value: Any, field: F.Field | None, version: Version) -> Any:
    """Canonical spelling of one value (recursively for objects); ``None`` means absent."""
    if (
        type(value) in _SCALARS
        and field is not None
        and not field.sub_fields
        and field.kind not in _COMPOUND_KINDS
    ):
        # The common case, kept fast: a plain scalar of a plain field.
        if _DEFAULT_ENUM_SPELLINGS.get(field.name) == value:
            return None
        return None if _is_empty(value) else value
    kind = field.kind if field else None
    if kind is F.ValueKind.METADATA and isinstance(value, Mapping):
        return _clean_metadata(value)
    if kind is F.ValueKind.TIME:
        value = canonical_time(value)
    if field is not None and field.sub_fields and isinstance(value, Mapping):
        if not value:
            return None
        sub_map = _sub_map(field)
        if kind is F.ValueKind.OBJECT:
            return _clean_object(value, sub_map, version)
    if field is not None and field.sub_fields and isinstance(value, list):
        if not value:
            return None
        sub_map = _sub_map(field)
        items = [_clean_object(v, sub_map, version) if isinstance(v, Mapping) else v for v in value]
        items = [i for i in items if not _is_empty(i)]
        return items or None
    if isinstance(value, list):
        return list(value) or None
    if isinstance(value, Mapping):
        return dict(value) or None
    if field is not None and _DEFAULT_ENUM_SPELLINGS.get(field.name) == value:
        return None
    return None if _is_empty(value) else value


def _clean_metadata(value: Mapping[Any, Any]) -> dict[str, str] | None:
    """Metadata as text keys to text values, sorted by key, without the server's ``_nats.*``
    keys and without keys whose value is null; ``None`` when nothing is left."""
    meta: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            continue
        key = k if type(k) is str else str(k)
        if not key.startswith(SERVER_META_PREFIX):
            meta[key] = v if type(v) is str else str(v)
    if len(meta) < 2:
        return meta or None
    return dict(sorted(meta.items()))


#: id of a field → (the field, its sub-fields by name); the field is kept so an id is never reused.
_SUB_MAPS: dict[int, tuple[F.Field, dict[str, F.Field]]] = {}


def _sub_map(field: F.Field) -> dict[str, F.Field]:
    cached = _SUB_MAPS.get(id(field))
    if cached is not None and cached[0] is field:
        return cached[1]
    sub_map = {f.name: f for f in field.sub_fields}
    _SUB_MAPS[id(field)] = (field, sub_map)
    return sub_map


def _clean_object(
    obj: Mapping[str, Any], sub_map: Mapping[str, F.Field], version: Version
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for key, raw in obj.items():
        sub = sub_map.get(key)
        if sub is None or not sub.known_by(version):
            continue
        v = _clean(raw, sub, version)
        if not _is_empty(v):
            out[key] = v
    return out or None


def _limit(value: Any, version: Version) -> Any:
    if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
        return value
    if value == 0 or (value < -1 and version >= V_LIMIT_BELOW_MINUS_ONE):
        return -1
    return value


def _int(config: Mapping[str, Any], key: str) -> int:
    value = config.get(key)
    if type(value) is int:  # the common case first
        return value
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


#: Per (field table, version): the plain fields the version knows (scalar fields that are not
#: objects, metadata or times) with the enum spelling that means their default (or ``None``),
#: and every other field the version knows.
_TopFields = tuple[dict[str, str | None], dict[str, F.Field]]
_TOP: dict[tuple[int, Version], tuple[Mapping[str, F.Field], _TopFields]] = {}


def _top_fields(table: Mapping[str, F.Field], version: Version) -> _TopFields:
    key = (id(table), version)
    cached = _TOP.get(key)
    if cached is not None and cached[0] is table:
        return cached[1]
    plain: dict[str, str | None] = {}
    other: dict[str, F.Field] = {}
    for name, f in table.items():
        if not f.known_by(version):
            continue
        if not f.sub_fields and f.kind not in _COMPOUND_KINDS:
            plain[name] = _DEFAULT_ENUM_SPELLINGS.get(name)
        else:
            other[name] = f
    _TOP[key] = (table, (plain, other))
    return plain, other


def _clean_top(
    config: Mapping[str, Any], table: Mapping[str, F.Field], version: Version
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    plain, other = _top_fields(table, version)
    for key, raw in config.items():
        if key in plain:
            # The common case, inlined: a scalar of a plain field (the same result as
            # ``_clean`` then ``_is_empty``: false, zero, "" and the default's spelling drop).
            kind = type(raw)
            if kind is str:
                if raw and raw != plain[key]:
                    out[key] = raw
                continue
            if kind is int or kind is float:
                if raw != 0:
                    out[key] = raw
                continue
            if kind is bool:
                if raw:
                    out[key] = raw
                continue
            field = table[key]
        else:
            found = other.get(key)
            if found is None:
                continue
            field = found
            kind = type(raw)
            if kind is list and not field.sub_fields:
                if raw:  # (what ``_clean`` makes of a list of a field without sub-fields)
                    out[key] = list(raw)
                continue
            if kind is dict and field.kind is F.ValueKind.METADATA:
                meta = _clean_metadata(raw)
                if meta is not None:
                    out[key] = meta
                continue
        value = _clean(raw, field, version)
        if value is not None:  # ``_clean`` gives ``None`` for every empty value
            out[key] = value
    return out


def normalize_stream(
    config: Mapping[str, Any],
    version: Version,
    *,
    server_limits: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The canonical form of a stream config as ``version`` would store it (see module doc).

    ``server_limits`` may carry ``duplicate_window`` (ns), the server's
    ``jetstream.limits.duplicate_window``.
    """
    c: dict[str, Any] = dict(config)
    get = c.get
    limits = server_limits or {}
    c["storage"] = get("storage") or "file"
    c["retention"] = get("retention") or "limits"
    c["discard"] = get("discard") or "old"
    c["compression"] = get("compression") or "none"
    if not _int(c, "num_replicas"):
        c["num_replicas"] = 1
    for key in STREAM_UNLIMITED_FIELDS:
        c[key] = _limit(get(key, 0) or 0, version)
    mirror = get("mirror") or None
    sources = get("sources") or None
    if not get("subjects") and not mirror and not sources:
        c["subjects"] = [get("name")]
    if (
        not _int(c, "duplicate_window")
        and not mirror
        and (version < V_SOURCES_NO_DEDUPE or not sources)
    ):
        window = DEFAULT_DUPLICATE_WINDOW
        server_window = limits.get("duplicate_window")
        if isinstance(server_window, int) and server_window > 0:
            window = min(window, server_window)
        max_age = _int(c, "max_age")
        c["duplicate_window"] = max_age if 0 < max_age < window else window
    if F.STREAM_FIELD_MAP["subject_delete_marker_ttl"].known_by(version) and (
        _int(c, "subject_delete_marker_ttl") > 0
    ):
        c["allow_msg_ttl"] = True
        c["allow_rollup_hdrs"] = True
        c["deny_purge"] = False
    if F.STREAM_FIELD_MAP["allow_msg_schedules"].known_by(version) and get("allow_msg_schedules"):
        c["allow_rollup_hdrs"] = True
        c["deny_purge"] = False
    if get("sealed"):
        # Sealing makes the server rewrite these (update path of checkStreamCfg).
        c.update(max_age=0, discard="new", deny_delete=True, deny_purge=True)
        c["allow_rollup_hdrs"] = False
    republish = get("republish")
    if isinstance(republish, Mapping) and republish:
        c["republish"] = {**republish, "src": republish.get("src") or ">"}
    return _clean_top(c, F.STREAM_FIELD_MAP, version)


def normalize_consumer(
    config: Mapping[str, Any],
    version: Version,
    *,
    stream_config: Mapping[str, Any] | None = None,
    server_limits: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The canonical form of a consumer config as ``version`` would store it (see module doc).

    ``stream_config`` (the stream's config, raw or normalised) supplies the inherited
    ``consumer_limits``. ``server_limits`` may carry ``max_ack_pending`` and
    ``max_request_batch`` (the server's ``jetstream.limits``).
    """
    c: dict[str, Any] = dict(config)
    get = c.get
    limits = server_limits or {}
    stream_limits: Mapping[str, Any] = (stream_config or {}).get("consumer_limits") or {}
    if get("durable_name") and not get("name"):
        c["name"] = c["durable_name"]
    c["ack_policy"] = ack_policy = get("ack_policy") or "none"
    c["deliver_policy"] = get("deliver_policy") or "all"
    c["replay_policy"] = get("replay_policy") or "instant"
    c["max_deliver"] = _limit(get("max_deliver", 0) or 0, version)
    pull = not get("deliver_subject")
    if ack_policy == "flow_control":
        c["flow_control"] = True
        c["idle_heartbeat"] = _int(c, "idle_heartbeat") or FLOW_CONTROL_HEARTBEAT
    backoff = get("backoff") or []
    if backoff:
        c["ack_wait"] = backoff[0]
    elif not _int(c, "ack_wait") and ack_policy in ("explicit", "all"):
        c["ack_wait"] = DEFAULT_ACK_WAIT
    if pull and not _int(c, "max_waiting"):
        c["max_waiting"] = DEFAULT_MAX_WAITING
    map_ = _int(c, "max_ack_pending")
    if version >= V_LIMIT_BELOW_MINUS_ONE and map_ < -1:
        map_ = -1
    if map_ == 0:
        map_ = _int(stream_limits, "max_ack_pending")
    if map_ == 0 and ack_policy != "none":
        map_ = DEFAULT_MAX_ACK_PENDING
        cap = limits.get("max_ack_pending")
        if isinstance(cap, int) and cap > 0:
            map_ = min(map_, cap)
    c["max_ack_pending"] = map_
    inactive = _int(c, "inactive_threshold")
    if inactive <= 0:
        inactive = _int(stream_limits, "inactive_threshold")
    if inactive == 0 and not get("durable_name"):
        inactive = DEFAULT_EPHEMERAL_INACTIVE
    c["inactive_threshold"] = inactive
    batch_cap = limits.get("max_request_batch")
    if pull and not _int(c, "max_batch") and isinstance(batch_cap, int) and batch_cap > 0:
        c["max_batch"] = batch_cap
    if get("priority_policy") == "pinned_client" and not _int(c, "priority_timeout"):
        c["priority_timeout"] = DEFAULT_PINNED_TTL
    if version >= V_LIMIT_BELOW_MINUS_ONE:
        for key in _CONSUMER_NOT_NEGATIVE:
            value = get(key)
            if isinstance(value, int) and value < 0:  # (no bool is below 0)
                c[key] = 0
    # pause_until is managed through the PAUSE API and never diffed or sent.
    c.pop("pause_until", None)
    return _clean_top(c, F.CONSUMER_FIELD_MAP, version)


#: Consumer settings where the server (from 2.12) turns a negative value into 0.
_CONSUMER_NOT_NEGATIVE = ("max_waiting", "max_expires", "max_bytes", "idle_heartbeat", "max_batch")


def fingerprint(config: Mapping[str, Any]) -> str:
    """A stable short digest of a normalised config (``sha256:`` + 16 hex of its canonical JSON)."""
    import hashlib  # here: a plan shown on a terminal digests nothing (diff/builder.py)

    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def wire_config(
    normalized: Mapping[str, Any],
    version: Version,
    table: Mapping[str, F.Field] | None = None,
) -> dict[str, Any]:
    """The full config apply sends (an update replaces the whole config on the server).

    Every field of ``normalized`` the version knows, with every boolean the version knows spelled
    out (``false`` when absent); nothing the version does not know, no ``_nats.*`` metadata.
    ``table`` is the kind's field table; without it, a consumer config is told by
    ``durable_name`` or ``ack_policy`` and anything else is taken for a stream.
    """
    if table is None:
        is_consumer = "durable_name" in normalized or "ack_policy" in normalized
        table = F.CONSUMER_FIELD_MAP if is_consumer else F.STREAM_FIELD_MAP
    template, present, metadata = _wire_shape(table, version, tuple(normalized))
    out = template.copy()  # every key in table order: absent booleans false, the rest filled in
    for name in present:
        value = normalized[name]
        if type(value) in _SCALARS:
            out[name] = value
            continue
        if name in metadata and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if not str(k).startswith(SERVER_META_PREFIX)}
        out[name] = _deep_copy(value)
    return out


#: What :func:`wire_config` makes of a config with given keys: the output's keys in table order
#: (absent booleans already ``False``), the keys taken from the config, which are metadata.
_WireShape = tuple[dict[str, Any], tuple[str, ...], frozenset[str]]
#: (table id, version, the config's keys) → (the table, the shape); at most _WIRE_SHAPES_KEPT.
_WIRE_SHAPES: dict[tuple[int, Version, tuple[str, ...]], tuple[Mapping[str, F.Field], _WireShape]]
_WIRE_SHAPES = {}
_WIRE_SHAPES_KEPT = 512


def _wire_shape(
    table: Mapping[str, F.Field], version: Version, keys: tuple[str, ...]
) -> _WireShape:
    """The shape of the wire config of a config with ``keys`` (configs share a few shapes)."""
    cache_key = (id(table), version, keys)
    cached = _WIRE_SHAPES.get(cache_key)
    if cached is not None and cached[0] is table:
        return cached[1]
    given = set(keys)
    template: dict[str, Any] = {}
    metadata: set[str] = set()
    for name, is_bool, is_metadata in _wire_fields(table, version):
        if name in given:
            template[name] = None  # replaced by the config's value
            if is_metadata:
                metadata.add(name)
        elif is_bool:
            template[name] = False
    shape = (template, tuple(n for n in template if n in given), frozenset(metadata))
    if len(_WIRE_SHAPES) >= _WIRE_SHAPES_KEPT:
        _WIRE_SHAPES.clear()
    _WIRE_SHAPES[cache_key] = (table, shape)
    return shape


#: A field apply sends: its name, whether it is a boolean, whether it is metadata.
_WireField = tuple[str, bool, bool]
#: (table id, version) → (the table, its wire fields); the table is kept so an id is never reused.
_WIRE: dict[tuple[int, Version], tuple[Mapping[str, F.Field], tuple[_WireField, ...]]] = {}


def _wire_fields(table: Mapping[str, F.Field], version: Version) -> tuple[_WireField, ...]:
    """The fields of ``table`` apply sends to ``version``, in table order (computed once)."""
    key = (id(table), version)
    cached = _WIRE.get(key)
    if cached is not None and cached[0] is table:
        return cached[1]
    fields = tuple(
        (name, f.kind is F.ValueKind.BOOL, f.kind is F.ValueKind.METADATA)
        for name, f in table.items()
        if f.known_by(version) and f.update is not F.Update.IGNORED
    )
    _WIRE[key] = (table, fields)
    return fields


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: v if type(v) in _SCALARS else _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _SCALARS else _deep_copy(v) for v in value]
    return value
