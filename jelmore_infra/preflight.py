"""Preflight checks: known server faults and risky settings that a plan and ``doctor`` warn about.

Each finding names its source (a nats-server issue or release, or the Jepsen analysis of
nats-server 2.12.1), restated in ``docs/preflight.md`` with how it was checked:

- **server versions with known data-loss defects** (:data:`DEFECTS`): a stream forgotten after
  repeated crashes on 2.10.20–2.10.22; buffered writes dropped on 2.12.0–2.12.2; the faults
  Jepsen found on 2.12.1; compressed blocks corrupted by compaction before 2.12.12 and 2.14.3;
- **lazy fsync**: a server that does not sync every write (``sync_interval`` not ``always``)
  while the topology marks streams ``jelmore: {durability: strict}``; read from the servers'
  ``VARZ`` when the connection may (system account), said so when it cannot be read;
- **R1 file streams** where the environment's policy asks for replicas;
- **placement** naming a cluster or tags no server has (from the same ``VARZ``).

Pure: no I/O (the server facts are passed in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jelmore_infra.model import DURABILITY_STRICT, Topology, parse_version
from jelmore_infra.plan import Plan, PlanMessage

Version = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Defect:
    """A server fault that can lose data, the versions it affects and where it is described."""

    first: Version
    last: Version  # inclusive
    effect: str
    source: str
    #: Only streams with this setting are exposed (``"compression"``), or all (``""``).
    needs: str = ""


DEFECTS: tuple[Defect, ...] = (
    Defect(
        (2, 10, 20),
        (2, 10, 22),
        "a stream can be forgotten after a few hard kills (kill -9), with all its messages, even "
        "with sync_interval always; fixed in 2.10.23",
        "nats-server issue #6888",
    ),
    Defect(
        (2, 12, 0),
        (2, 12, 2),
        "buffered writes of replicated streams can be dropped when a paused server's sync timer "
        "fires; fixed in 2.12.3 (and 2.11.12)",
        "nats-server issue #7594",
    ),
    Defect(
        (2, 12, 1),
        (2, 12, 1),
        "Jepsen found acknowledged writes lost after file corruption on a minority of nodes, "
        "split brain after a node's power loss with pauses, and lost writes with membership "
        "changes and partitions",
        "Jepsen, NATS 2.12.1 analysis (2025-12-08); nats-server issues #7549, #7567, #7545",
    ),
    Defect(
        (2, 10, 0),
        (2, 12, 11),
        "compaction can corrupt compressed (s2) blocks; fixed in 2.12.12 and 2.14.3 (the first "
        "affected version was not established, so every earlier version is assumed affected)",
        "nats-server issue #8312",
        needs="compression",
    ),
    Defect(
        (2, 14, 0),
        (2, 14, 2),
        "compaction can corrupt compressed (s2) blocks; fixed in 2.14.3",
        "nats-server issue #8312",
        needs="compression",
    ),
)

#: Why lazy fsync matters, with its source.
LAZY_FSYNC_SOURCE = (
    "nats-server issue #7564 and the Jepsen NATS 2.12.1 analysis: with the default sync_interval "
    "(2 minutes) an OS crash or power loss loses writes acknowledged since the last sync"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One preflight warning: what, about which resource (if any), and its source."""

    topic: str  # "version", "fsync", "replicas", "placement", "unread"
    message: str
    source: str
    address: str | None = None

    def text(self) -> str:
        return f"{self.message} (source: {self.source})"


def _compressed(topology: Topology) -> list[str]:
    names = [n for n, s in topology.streams.items() if s.config.get("compression") == "s2"]
    names += [f"KV_{n}" for n, b in topology.kv_buckets.items() if b.config.get("compression")]
    names += [f"OBJ_{n}" for n, b in topology.object_stores.items() if b.config.get("compression")]
    return names


def version_findings(version: str, topology: Topology) -> list[Finding]:
    """The known defects of server ``version`` that can affect this topology."""
    current = parse_version(version)
    out = []
    for defect in DEFECTS:
        if not defect.first <= current <= defect.last:
            continue
        exposed = ""
        if defect.needs == "compression":
            streams = _compressed(topology)
            if not streams:
                continue
            exposed = f" (compressed here: {', '.join(sorted(streams))})"
        out.append(
            Finding(
                "version",
                f"nats-server {version} has a known data-loss defect: {defect.effect}{exposed}",
                defect.source,
            )
        )
    return out


def strict_streams(topology: Topology) -> list[str]:
    return sorted(n for n, s in topology.streams.items() if s.durability == DURABILITY_STRICT)


def fsync_findings(varz: Sequence[Mapping[str, Any]] | None, topology: Topology) -> list[Finding]:
    """A warning per server that does not sync every write, when streams are marked strict;
    ``varz``: the servers' VARZ (``None`` when they could not be read)."""
    strict = strict_streams(topology)
    if not strict:
        return []
    if varz is None:
        return [
            Finding(
                "unread",
                "cannot tell whether the servers sync every write (reading sync_interval needs "
                f"a system account connection); streams marked durability strict: "
                f"{', '.join(strict)}",
                LAZY_FSYNC_SOURCE,
            )
        ]
    out = []
    for server in varz:
        js = (server.get("jetstream") or {}).get("config") or {}
        if js.get("sync_always"):
            continue
        interval = js.get("sync_interval")
        seconds = f"{interval / 1e9:g}s" if isinstance(interval, int | float) else "the default"
        name = server.get("server_name") or server.get("server_id") or "a server"
        out.append(
            Finding(
                "fsync",
                f"server {name} syncs to disk every {seconds}, not on every write (sync_interval "
                f"is not always), and these streams are marked durability strict: "
                f"{', '.join(strict)}",
                LAZY_FSYNC_SOURCE,
            )
        )
    return out


def replica_findings(topology: Topology) -> list[Finding]:
    """R1 file streams where the environment's policy asks for replicas."""
    if topology.policy.min_replicas is None:
        return []
    minimum, where = topology.policy.min_replicas
    if minimum < 2:
        return []
    out = []
    for name, stream in sorted(topology.streams.items()):
        replicas = stream.config.get("num_replicas") or 1
        if replicas == 1 and (stream.config.get("storage") or "file") == "file":
            out.append(
                Finding(
                    "replicas",
                    f"stream {name} is a single-replica file stream, and the policy asks for "
                    f"{minimum} replicas (min_replicas at {where}): one disk failure loses it",
                    "the environment's policy",
                    f"stream.{name}",
                )
            )
    return out


def placement_findings(
    varz: Sequence[Mapping[str, Any]] | None, topology: Topology
) -> list[Finding]:
    """Placement naming a cluster or tags that no server has (nothing without ``varz``)."""
    if not varz:
        return []
    clusters = {str((v.get("cluster") or {}).get("name") or "") for v in varz} - {""}
    tag_sets = [{str(t) for t in (v.get("tags") or ())} for v in varz]
    out = []
    for address, placement in _placements(topology):
        cluster = placement.get("cluster")
        tags = {str(t) for t in placement.get("tags") or ()}
        if cluster and cluster not in clusters:
            out.append(
                Finding(
                    "placement",
                    f"{address} is placed in cluster {cluster}, which no server reports "
                    f"(clusters: {', '.join(sorted(clusters)) or 'none'})",
                    "the servers' VARZ",
                    address,
                )
            )
        if tags and not any(tags <= have for have in tag_sets):
            out.append(
                Finding(
                    "placement",
                    f"{address} asks for servers tagged {', '.join(sorted(tags))}, and no server "
                    "has all of them",
                    "the servers' VARZ",
                    address,
                )
            )
    return out


def _placements(topology: Topology) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for name, stream in sorted(topology.streams.items()):
        placement = stream.config.get("placement")
        if isinstance(placement, Mapping):
            yield f"stream.{name}", placement
    for keyword, buckets in (("kv", topology.kv_buckets), ("objectstore", topology.object_stores)):
        for name, bucket in sorted(buckets.items()):
            placement = bucket.config.get("placement")
            if isinstance(placement, Mapping):
                yield f"{keyword}.{name}", placement


def needs_varz(topology: Topology) -> bool:
    """Whether any check needs the servers' VARZ (asked for only then: it costs a round trip)."""
    return bool(strict_streams(topology)) or any(True for _ in _placements(topology))


def findings(
    version: str, varz: Sequence[Mapping[str, Any]] | None, topology: Topology
) -> list[Finding]:
    """Every preflight finding for this server and topology."""
    return [
        *version_findings(version, topology),
        *fsync_findings(varz, topology),
        *replica_findings(topology),
        *placement_findings(varz, topology),
    ]


def with_findings(plan: Plan, found: Iterable[Finding]) -> Plan:
    """``plan`` with each finding added as a ``preflight`` warning."""
    from dataclasses import replace

    extra = tuple(
        PlanMessage("warning", "preflight", f.text(), f.address, data={"source": f.source})
        for f in found
    )
    return replace(plan, messages=(*plan.messages, *extra)) if extra else plan
