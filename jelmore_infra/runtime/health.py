"""Monitoring: ``get_stream_info``, ``get_health_status`` and ``get_performance_metrics``.

Health rules (the seed's thresholds): the event stream, a dead-letter stream or an expected
consumer group missing → ``critical``; a group's backlog (``num_pending``) over 1000 → ``critical``,
over 100 → ``degraded``; more than 10 events in the DLQ → ``degraded``; the advisory safety net
(stream or ``dlq_router`` consumer) missing → ``degraded``. Every non-ok status carries reasons.

Expected groups are those given to ``get_health_status(groups=...)``, else the comma-separated
``JELMORE_CONSUMER_GROUPS`` environment variable, else the groups found on the server.

Replicas (``replicas`` in the status, from each stream's ``STREAM.INFO`` ``cluster``): for the
event stream, the dead-letter and advisory streams and the event catalogue's stream, the
leader and each other peer, *current*, *lagging* (behind the leader, ``lag`` operations) or
*offline* (the server says so, or its leader has not heard from it for ``PEER_SILENT`` seconds,
or not at all since it took over). A replicated stream without a leader (an election under way,
or quorum lost: it takes no writes) → ``critical``; an offline or lagging peer → ``degraded``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jelmore_infra.errors import JelmoreError
from jelmore_infra.model import CATALOGUE_STREAM
from jelmore_infra.runtime.bus import Bus, BusError
from jelmore_infra.runtime.core import RuntimeCore
from jelmore_infra.runtime.discovery import (
    ROUTER_CONSUMER,
    TopologyMissing,
    advisory_stream,
    dlq_streams,
    group_policies,
    main_stream,
)
from jelmore_infra.runtime.envelope import format_timestamp

LAG_WARN = 100
LAG_CRITICAL = 1000
DLQ_WARN = 10
#: seconds without word from a peer after which it counts as offline (a leader hears from each
#: follower about once a second)
PEER_SILENT = 5.0
NS = 1_000_000_000

CURRENT = "current"
LAGGING = "lagging"
OFFLINE = "offline"

OK = "ok"
DEGRADED = "degraded"
CRITICAL = "critical"
_RANK = {OK: 0, DEGRADED: 1, CRITICAL: 2}


def stream_summary(info: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's per-stream shape from a ``$JS.API.STREAM.INFO`` answer."""
    config = info.get("config") or {}
    state = info.get("state") or {}
    return {
        "name": config.get("name"),
        "subjects": list(config.get("subjects") or []),
        "messages": int(state.get("messages", 0)),
        "bytes": int(state.get("bytes", 0)),
        "first_seq": int(state.get("first_seq", 0)),
        "last_seq": int(state.get("last_seq", 0)),
        "first_time": _time(state.get("first_ts")),
        "last_time": _time(state.get("last_ts")),
        "consumer_count": int(state.get("consumer_count", 0)),
        "max_msgs": config.get("max_msgs"),
        "max_bytes": config.get("max_bytes"),
        "max_age_seconds": (int(config.get("max_age", 0)) // 1_000_000_000) or None,
    }


def replica_state(info: Mapping[str, Any] | None) -> dict[str, Any]:
    """A stream's replicas from its ``STREAM.INFO`` answer (``None``: no answer, as while a
    replicated stream elects a leader): ``{"replicas", "leader", "peers"}``, each peer
    ``{"name", "state", "lag", "seen_ago"}`` (seconds since the leader last heard from it,
    ``None`` when never)."""
    if info is None:
        return {"replicas": None, "leader": None, "peers": []}
    cluster = info.get("cluster") or {}
    peers = []
    for peer in cluster.get("replicas") or []:
        active = int(peer.get("active") or 0)
        seen_ago = active / NS if active > 0 else None
        if peer.get("current") and not peer.get("offline"):
            state = CURRENT if seen_ago is None or seen_ago < PEER_SILENT else OFFLINE
        elif peer.get("offline") or seen_ago is None or seen_ago >= PEER_SILENT:
            state = OFFLINE
        else:
            state = LAGGING
        peers.append(
            {
                "name": str(peer.get("name") or peer.get("peer") or "?"),
                "state": state,
                "lag": int(peer.get("lag") or 0),
                "seen_ago": None if seen_ago is None else round(seen_ago, 3),
            }
        )
    replicas = int((info.get("config") or {}).get("num_replicas") or 1)
    return {"replicas": replicas, "leader": cluster.get("leader") or None, "peers": peers}


def replica_reasons(replicas: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(level, reason)`` for streams without a leader and for peers not current (pure)."""
    reasons: list[tuple[str, str]] = []
    for stream, state in sorted(replicas.items()):
        if not state.get("leader"):
            size = state.get("replicas")
            what = f"R{size}" if size else "no answer"
            reasons.append(
                (CRITICAL, f"{stream}: no leader ({what}): an election under way or quorum lost")
            )
            continue
        for peer in state.get("peers") or []:
            if peer["state"] == OFFLINE:
                reasons.append((DEGRADED, f"{stream}: replica {peer['name']} offline"))
            elif peer["state"] == LAGGING:
                behind = f", {peer['lag']} behind" if peer.get("lag") else ""
                reasons.append((DEGRADED, f"{stream}: replica {peer['name']} lagging{behind}"))
    return reasons


def _time(value: Any) -> str | None:
    if not value or str(value).startswith("0001-01-01"):
        return None
    return str(value)


async def get_stream_info(runtime: RuntimeCore) -> dict[str, Any]:
    """``{"main_stream": {...}, "dlq_stream": {...} or None}`` (messages, bytes, times…)."""
    bus = runtime.bus
    main = await main_stream(bus)
    info = await bus.stream_info(main)
    if info is None:
        raise TopologyMissing(f"stream {main} disappeared")
    result: dict[str, Any] = {"main_stream": stream_summary(info), "dlq_stream": None}
    dlqs = await dlq_streams(bus, main)
    for name in dlqs:
        dlq_info = await bus.stream_info(name)
        if dlq_info is not None:
            result["dlq_stream"] = stream_summary(dlq_info)
            break
    return result


def classify(
    *,
    main: str | None,
    groups_found: Mapping[str, Mapping[str, int]],
    expected: Sequence[str],
    dlq_names: Sequence[str],
    dlq_present: Mapping[str, int | None],
    advisory: str | None,
    router_present: bool,
    replicas: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[str, list[str]]:
    """The status and its reasons from what was read (pure, for tests)."""
    reasons: list[tuple[str, str]] = replica_reasons(replicas or {})
    if main is None:
        return CRITICAL, ["event stream missing: run `jelmore-infra apply`"]
    if not groups_found and not expected:
        reasons.append((CRITICAL, f"no consumer groups on stream {main}"))
    for group in expected:
        if group not in groups_found:
            reasons.append((CRITICAL, f"consumer group {group} missing on stream {main}"))
    for group, lag in sorted(groups_found.items()):
        pending = lag.get("pending", 0)
        if pending > LAG_CRITICAL:
            reasons.append((CRITICAL, f"{group}: lag {pending} > {LAG_CRITICAL}"))
        elif pending > LAG_WARN:
            reasons.append((DEGRADED, f"{group}: lag {pending} > {LAG_WARN}"))
    if not dlq_names:
        reasons.append((CRITICAL, "no dead-letter stream"))
    silent = {name for name, state in (replicas or {}).items() if state.get("replicas") is None}
    for name in dlq_names:
        size = dlq_present.get(name)
        if name in silent:
            continue  # no leader answered: said above
        if size is None:
            reasons.append((CRITICAL, f"dead-letter stream {name} missing"))
        elif size > DLQ_WARN:
            reasons.append((DEGRADED, f"{name}: {size} dead-lettered events > {DLQ_WARN}"))
    if advisory is None:
        reasons.append((DEGRADED, "max-deliveries advisory stream missing (no DLQ safety net)"))
    elif not router_present:
        reasons.append((DEGRADED, f"consumer {ROUTER_CONSUMER} missing on stream {advisory}"))
    status = OK
    for level, _ in reasons:
        if _RANK[level] > _RANK[status]:
            status = level
    return status, [text for _, text in reasons]


async def get_health_status(
    runtime: RuntimeCore, groups: Sequence[str] | None = None
) -> dict[str, Any]:
    """``stream_health`` (ok/degraded/critical), ``reasons``, ``consumer_lag`` per group
    (pending, ack_pending, redelivered, waiting), ``dlq_size`` and ``replicas`` (per stream: its
    leader and each peer's state, see the module docstring). Never raises for a server problem:
    an unreachable server is ``critical`` with the reason."""
    bus = runtime.bus
    checked = format_timestamp(datetime.now(UTC))
    replicas: dict[str, dict[str, Any]] = {}
    try:
        return await _health(bus, groups, checked, replicas)
    except (JelmoreError, BusError) as exc:
        return {
            "stream_health": CRITICAL,
            "reasons": [*(text for _, text in replica_reasons(replicas)), str(exc)],
            "consumer_lag": {},
            "dlq_size": None,
            "replicas": replicas,
            "checked_at": checked,
            "server": bus.settings.safe_url(),
        }


async def _health(
    bus: Bus, groups: Sequence[str] | None, checked: str, replicas: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    expected = list(groups or [])
    if not expected and os.environ.get("JELMORE_CONSUMER_GROUPS"):
        expected = [g.strip() for g in os.environ["JELMORE_CONSUMER_GROUPS"].split(",") if g]
    try:
        main: str | None = await main_stream(bus)
    except TopologyMissing:
        main = None
    lag: dict[str, dict[str, int]] = {}
    dlq_names: list[str] = []
    dlq_sizes: dict[str, int | None] = {}
    advisory: str | None = None
    router_present = False
    if main is not None:
        replicas[main] = replica_state((await _stream_info(bus, main))[0])
        for info in await bus.consumer_infos(main):
            config = info.get("config") or {}
            name = str(config.get("durable_name") or "")
            if not name or config.get("deliver_subject"):
                continue
            if expected and name not in expected:
                continue
            meta = config.get("metadata") or {}
            if not expected and not any(k.startswith("jelmore.") for k in meta):
                continue
            lag[name] = {
                "pending": int(info.get("num_pending", 0)),
                "ack_pending": int(info.get("num_ack_pending", 0)),
                "redelivered": int(info.get("num_redelivered", 0)),
                "waiting": int(info.get("num_waiting", 0)),
            }
        dlq_names = await dlq_streams(bus, main)
        for name in dlq_names:
            dlq_info, answered = await _stream_info(bus, name)
            if answered:
                state = (dlq_info or {}).get("state") or {}
                dlq_sizes[name] = None if dlq_info is None else int(state.get("messages", 0))
            if dlq_info is not None or not answered:
                replicas[name] = replica_state(dlq_info)
        advisory = await advisory_stream(bus, main)
        if advisory is not None:
            replicas[advisory] = replica_state((await _stream_info(bus, advisory))[0])
            router_present = await bus.consumer_info(advisory, ROUTER_CONSUMER) is not None
        catalogue, answered = await _stream_info(bus, CATALOGUE_STREAM)
        if catalogue is not None or not answered:
            replicas[CATALOGUE_STREAM] = replica_state(catalogue)
    status, reasons = classify(
        main=main,
        groups_found=lag,
        expected=expected,
        dlq_names=dlq_names,
        dlq_present=dlq_sizes,
        advisory=advisory,
        router_present=router_present,
        replicas=replicas,
    )
    sizes = [s for s in dlq_sizes.values() if s is not None]
    return {
        "stream_health": status,
        "reasons": reasons,
        "consumer_lag": lag,
        "dlq_size": sum(sizes) if sizes else (None if not dlq_names else 0),
        "main_stream": main,
        "dlq_streams": dlq_names,
        "advisory_stream": advisory,
        "replicas": replicas,
        "checked_at": checked,
        "server": bus.settings.safe_url(),
    }


async def _stream_info(bus: Bus, name: str) -> tuple[dict[str, Any] | None, bool]:
    """``(STREAM.INFO, answered)``: ``(None, True)`` when the stream does not exist, ``(None,
    False)`` when nobody answered (a replicated stream electing a leader answers nobody)."""
    try:
        return await bus.stream_info(name), True
    except (BusError, JelmoreError):
        return None, False


async def get_performance_metrics(runtime: RuntimeCore) -> dict[str, Any]:
    """This process's publish/consume counts, rates, latency percentiles, errors, redeliveries
    and dead-letter counts, plus the server's stream and consumer statistics."""
    bus = runtime.bus
    result: dict[str, Any] = {"process": runtime.metrics.snapshot()}
    try:
        main = await main_stream(bus)
        server: dict[str, Any] = {}
        info = await bus.stream_info(main)
        if info is not None:
            server["main_stream"] = stream_summary(info)
        consumers: dict[str, Any] = {}
        for policy in await group_policies(bus, main):
            cinfo = await bus.consumer_info(main, policy.consumer)
            if cinfo is None:
                continue
            consumers[policy.consumer] = {
                "delivered_stream_seq": int((cinfo.get("delivered") or {}).get("stream_seq", 0)),
                "ack_floor_stream_seq": int((cinfo.get("ack_floor") or {}).get("stream_seq", 0)),
                "pending": int(cinfo.get("num_pending", 0)),
                "ack_pending": int(cinfo.get("num_ack_pending", 0)),
                "redelivered": int(cinfo.get("num_redelivered", 0)),
                "waiting": int(cinfo.get("num_waiting", 0)),
            }
        server["consumer_groups"] = consumers
        for name in await dlq_streams(bus, main):
            dlq_info = await bus.stream_info(name)
            if dlq_info is not None:
                server["dlq_stream"] = stream_summary(dlq_info)
                break
        result["server"] = server
    except (JelmoreError, BusError) as exc:
        result["server"] = {"error": str(exc)}
    return result
