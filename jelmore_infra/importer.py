"""``import``: turn live streams, consumers and buckets into topology entries, defaults left out.

A field is left out when the server would fill in the same value by itself (checked with the
normaliser, so it holds for every server version). Planning the written files against the same
server then shows no changes, except the adoption of resources jelmore-infra did not create
(:func:`unmanaged_addresses`): an update in place that only adds the ``jelmore.managed-by``
metadata, made when that plan is applied. Import itself never writes to the server.
Each kind's normalisation, kept fields and plannable resources come from its kind module
(:mod:`jelmore_infra.kinds`), as in the plan. Pure: works on a :class:`LiveState`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from jelmore_infra.kinds import CONSUMER, KV, OBJECT_STORE, STREAM
from jelmore_infra.kinds.shape import bucket_of
from jelmore_infra.model import (
    MANAGED_BY_KEY,
    SERVER_META_PREFIX,
    LiveState,
    parse_version,
)


def _minimal(config: Mapping[str, Any], normalize: Any, keep: Collection[str]) -> dict[str, Any]:
    """Drop every field whose absence normalises to the same config."""
    target = normalize(config)
    current = dict(target)
    for key in list(target):
        if key in keep:
            continue
        trial = {k: v for k, v in current.items() if k != key}
        if normalize(trial) == target:
            current = trial
    meta = {
        k: v
        for k, v in (current.get("metadata") or {}).items()
        if k != MANAGED_BY_KEY and not k.startswith(SERVER_META_PREFIX)
    }
    if meta:
        current["metadata"] = meta
    else:
        current.pop("metadata", None)
    return current


def select_streams(live: LiveState, names: Collection[str]) -> list[str]:
    """The stream names to import: ``names`` (each must exist), or every stream; buckets'
    streams (``KV_*``, ``OBJ_*``) are included, the apply lock's and the audit trail's never."""
    from jelmore_infra.model import UNPLANNED_STREAMS

    available = sorted(n for n in live.streams if n not in UNPLANNED_STREAMS)
    if not names:
        return available
    missing = sorted(set(names) - set(available))
    if missing:
        from jelmore_infra.errors import JelmoreError

        raise JelmoreError(f"no such stream on the server: {', '.join(missing)}")
    return sorted(set(names))


def _durables(live: LiveState, stream: str) -> list[tuple[str, Any]]:
    """The consumers of ``stream`` a plan would consider, by name."""
    return [
        (name, consumer)
        for (sname, name), consumer in sorted(live.consumers.items())
        if sname == stream and CONSUMER.plannable(consumer, False)
    ]


def minimal_configs(
    live: LiveState, names: Collection[str]
) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
    """Streams and their durable consumers, each with server defaults left out."""
    version = parse_version(live.server.version)
    streams: list[dict[str, Any]] = []
    consumers: list[tuple[str, dict[str, Any]]] = []
    for name in select_streams(live, names):
        scfg = live.streams[name].config
        if bucket_of(scfg) is not None:
            continue

        def norm_stream(c: Mapping[str, Any]) -> dict[str, Any]:
            return STREAM.normalize_config(c, version, None)

        def norm_consumer(c: Mapping[str, Any], scfg: Mapping[str, Any] = scfg) -> dict[str, Any]:
            return CONSUMER.normalize_config(c, version, scfg)

        streams.append(_minimal(scfg, norm_stream, keep=STREAM.import_keep))
        for _, consumer in _durables(live, name):
            minimal = _minimal(consumer.config, norm_consumer, keep=CONSUMER.import_keep)
            consumers.append((name, minimal))
    return streams, consumers


def unmanaged_addresses(live: LiveState, stream_names: Collection[str]) -> list[str]:
    """Addresses of the imported streams and durable consumers jelmore-infra does not manage.

    Planning the imported files adopts them: an update in place adding only the
    ``jelmore.managed-by`` metadata.
    """
    from jelmore_infra.model import is_managed

    out: list[str] = []
    for name in stream_names:
        stream = live.streams[name]
        bucket = bucket_of(stream.config)
        if bucket is not None:
            if not is_managed(stream.config):
                out.append(f"{bucket[0]}.{bucket[1]}")
            continue
        if not is_managed(stream.config):
            out.append(stream.address)
        out.extend(c.address for _, c in _durables(live, name) if not is_managed(c.config))
    return out


def minimal_buckets(
    live: LiveState, names: Collection[str]
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """``(KV buckets, object stores)`` among the streams ``names`` selects (all when empty), each
    as ``(bucket name, settings)`` with defaults left out.

    ``allow_direct`` and ``allow_msg_ttl`` are never written: a topology that leaves them out
    accepts the live values (the NATS clients differ in them; :mod:`jelmore_infra.kinds.bucket`).
    """
    version = parse_version(live.server.version)
    kv: list[tuple[str, dict[str, Any]]] = []
    obj: list[tuple[str, dict[str, Any]]] = []
    for name in select_streams(live, names):
        config = live.streams[name].config
        found = bucket_of(config)
        if found is None:
            continue
        kind = KV if found[0] == "kv" else OBJECT_STORE
        settings = kind.normalize_config(config, version, None)
        for key in ("allow_direct", "allow_msg_ttl"):
            settings.pop(key, None)

        def norm(c: Mapping[str, Any], kind: Any = kind) -> dict[str, Any]:
            out: dict[str, Any] = kind.normalize_config(c, version, None)
            out.pop("allow_direct", None)
            out.pop("allow_msg_ttl", None)
            return out

        minimal = _minimal(settings, norm, keep=kind.import_keep)
        (kv if found[0] == "kv" else obj).append((found[1], minimal))
    return kv, obj
