"""``import``: turn live streams and consumers into topology entries, defaults left out.

A field is left out when the server would fill in the same value by itself (checked with the
normaliser, so it holds for every server version). Planning the written files against the same
server then shows no changes. Pure: works on a :class:`LiveState`.
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


async def adopt_live(api: Any, live: LiveState, stream_names: Collection[str]) -> list[str]:
    """Add the ``jelmore.managed-by`` marker to live streams and their durable consumers.

    A metadata-only update of the config the server already has: nothing else changes.
    """
    from jelmore_infra.model import MANAGED_BY_VALUE, is_managed

    adopted: list[str] = []

    def marked(config: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in config.items()}
        meta = {
            k: v
            for k, v in (config.get("metadata") or {}).items()
            if not k.startswith(SERVER_META_PREFIX)
        }
        meta[MANAGED_BY_KEY] = MANAGED_BY_VALUE
        out["metadata"] = meta
        return out

    for name in stream_names:
        stream = live.streams[name]
        if not is_managed(stream.config):
            await api.update_stream(marked(stream.config))
            adopted.append(stream.address)
        for (sname, _), consumer in sorted(live.consumers.items()):
            if sname != name or not consumer.config.get("durable_name"):
                continue
            if not is_managed(consumer.config):
                await api.create_consumer(sname, marked(consumer.config), action="update")
                adopted.append(consumer.address)
    return adopted
