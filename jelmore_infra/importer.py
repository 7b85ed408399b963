"""``import``: turn live streams and consumers into topology entries, defaults left out.

A field is left out when the server would fill in the same value by itself (checked with the
normaliser, so it holds for every server version). Planning the written files against the same
server then shows no changes, except the adoption of resources jelmore-infra did not create
(:func:`unmanaged_addresses`): an update in place that only adds the ``jelmore.managed-by``
metadata, made when that plan is applied. Import itself never writes to the server.
Pure: works on a :class:`LiveState`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from jelmore_infra.model import (
    MANAGED_BY_KEY,
    SERVER_META_PREFIX,
    LiveState,
    parse_version,
)
from jelmore_infra.normalize import normalize_consumer, normalize_stream


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
    from jelmore_infra.model import LOCK_STREAM

    available = sorted(n for n in live.streams if n != LOCK_STREAM)
    if not names:
        return available
    missing = sorted(set(names) - set(available))
    if missing:
        from jelmore_infra.errors import JelmoreError

        raise JelmoreError(f"no such stream on the server: {', '.join(missing)}")
    return sorted(set(names))


def minimal_configs(
    live: LiveState, names: Collection[str]
) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
    """Streams and their durable consumers, each with server defaults left out."""
    version = parse_version(live.server.version)
    streams: list[dict[str, Any]] = []
    consumers: list[tuple[str, dict[str, Any]]] = []
    for name in select_streams(live, names):
        scfg = live.streams[name].config
        streams.append(_minimal(scfg, lambda c: normalize_stream(c, version), keep=("name",)))

        def norm_consumer(c: Mapping[str, Any], scfg: Mapping[str, Any] = scfg) -> dict[str, Any]:
            return normalize_consumer(c, version, stream_config=scfg)

        for (stream, _), consumer in sorted(live.consumers.items()):
            if stream != name or not consumer.config.get("durable_name"):
                continue
            minimal = _minimal(consumer.config, norm_consumer, keep=("durable_name",))
            consumers.append((stream, minimal))
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
        if not is_managed(stream.config):
            out.append(stream.address)
        for (sname, _), consumer in sorted(live.consumers.items()):
            durable = sname == name and consumer.config.get("durable_name")
            if durable and not is_managed(consumer.config):
                out.append(consumer.address)
    return out
