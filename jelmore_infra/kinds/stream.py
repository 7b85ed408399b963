"""The stream kind: ``stream.NAME``, the JetStream ``StreamConfig`` fields, created first.

Server rules beyond the field table (each described, with how it was verified, in
``docs/server-semantics.md``, "Server rules the plan encodes"):

- ``retention`` changes in place, except to or from ``workqueue`` (replace);
- a mirror can be removed in place from 2.12 (mirror promotion), not before; it can never be added
  or changed in place;
- ``num_replicas`` and ``placement`` cannot change in one update; a stream cannot be created
  sealed; more than one replica needs a cluster;
- a new placement moves the stream in place and more replicas are added in place: the plan notes
  what each copies (:func:`cluster_impact`, shared with the bucket kinds); removing a placement
  moves nothing (docs/multi-region.md);
- new ``consumer_limits`` are refused while an existing consumer exceeds them
  (``inactive_threshold`` only up to 2.12);
- data impact: deleting or replacing loses every message; lower ``max_msgs``/``max_bytes``/
  ``max_msgs_per_subject``/``max_age`` remove messages (with ``discard: new`` the first two keep
  them and refuse new ones; ``max_msgs_per_subject`` trims lazily before 2.14); limits →
  interest retention removes messages without interest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from jelmore_infra import fields as F
from jelmore_infra.address import FORMS, Address
from jelmore_infra.errors import JetStreamAPIError
from jelmore_infra.impact import (
    AgeLowered,
    Impact,
    LimitLowered,
    MirrorPromoted,
    OverLimitKept,
    PlacementDropped,
    ReplicasAdded,
    RetentionNarrowed,
    StreamMessagesLost,
    StreamMoved,
    SubjectsRemoved,
)
from jelmore_infra.kinds.base import (
    FieldDelta,
    PlanContext,
    ResourceKind,
    Rule,
    Version,
    error,
    int_of,
    replicas_need_a_cluster,
    value_text,
    version_text,
)
from jelmore_infra.model import (
    REPLACE_MIGRATE,
    REPLACE_RECREATE,
    UNPLANNED_STREAMS,
    LiveState,
    LiveStream,
    StreamSpec,
    Topology,
    is_managed,
)
from jelmore_infra.normalize import canonical_time, normalize_stream
from jelmore_infra.plan import Action, Kind, PlanMessage, ResourceChange
from jelmore_infra.units import format_count, format_duration

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI

V_MIRROR_PROMOTE: Version = (2, 12, 0)
#: From 2.14 a lower max_msgs_per_subject removes the excess at once; before, each subject is
#: trimmed when its next message arrives.
V_PER_SUBJECT_ENFORCED_ON_UPDATE: Version = (2, 14, 0)
#: Up to 2.12 a stream's consumer_limits.inactive_threshold is refused while a durable has none or
#: a longer one (10069); 2.14 accepts it.
V_DURABLE_INACTIVE_LIMIT_UNCHECKED: Version = (2, 14, 0)

#: What the server answers when a one-way flag is turned off.
ONE_WAY_REFUSALS: dict[str, str] = {
    "sealed": "stream configuration update can not unseal a sealed stream",
    "deny_delete": "stream configuration update can not cancel deny message deletes",
    "deny_purge": "stream configuration update can not cancel deny purge",
    "allow_msg_ttl": "message TTL status can not be disabled",
    "allow_msg_schedules": "message schedules can not be disabled",
}


def placement_text(placement: Any) -> str:
    """A placement in words: ``cluster C1``, ``tags site:a, ssd``, ``cluster C1 and tags ssd``."""
    if not isinstance(placement, Mapping) or not placement:
        return "no placement"
    parts = []
    if placement.get("cluster"):
        parts.append(f"cluster {placement['cluster']}")
    if placement.get("tags"):
        parts.append("tags " + ", ".join(str(t) for t in placement["tags"]))
    if placement.get("preferred"):
        parts.append(f"preferred leader {placement['preferred']}")
    return " and ".join(parts) or "no placement"


def cluster_impact(
    where: str,
    label: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    replicas_key: str,
    state: Mapping[str, Any],
    clustered: bool,
) -> Iterable[Impact]:
    """Notes on what an in-place move or scale-up does (stream or bucket settings, normalised).

    The server moves a stream when an update carries a placement different from the stored one,
    and copies every stored message to the servers it adds; an update without a placement moves
    nothing. A move together with a replica change is refused (``check_update``'s error), so it
    gets no note; a server without a cluster keeps the placement and moves nothing.
    """
    if not clustered:
        return
    rb = int_of(before, replicas_key) or 1
    ra = int_of(after, replicas_key) or 1
    pb = before.get("placement") or None
    pa = after.get("placement") or None
    moved = pa is not None and pa != pb
    if moved and ra != rb:
        return
    messages, size = int_of(state, "messages"), int_of(state, "bytes")
    if moved:
        yield StreamMoved(where, label, placement_text(pb), placement_text(pa), messages, size)
    elif pb is not None and pa is None:
        yield PlacementDropped(where, label, placement_text(pb))
    if ra > rb and messages > 0:
        yield ReplicasAdded(where, label, replicas_key, rb, ra, messages, size)


def _parse_time(value: Any) -> datetime | None:
    text = canonical_time(value)
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class StreamKind(ResourceKind):
    name: ClassVar[str] = "stream"
    plan_kind: ClassVar[Kind] = Kind.STREAM
    form = FORMS["stream"]
    fields: ClassVar[Mapping[str, F.Field]] = F.STREAM_FIELD_MAP
    tier: ClassVar[int] = 0
    renormalize_after_patch: ClassVar[bool] = True
    #: 10059 "stream not found".
    not_found_codes: ClassVar[frozenset[int]] = frozenset({10059})
    one_way_refusals: ClassVar[Mapping[str, str]] = ONE_WAY_REFUSALS
    import_keep: ClassVar[tuple[str, ...]] = ("name",)
    topology_field: ClassVar[str] = "streams"
    migratable: ClassVar[bool] = True
    delete_summary: ClassVar[tuple[str, ...]] = (
        "subjects",
        "retention",
        "storage",
        "num_replicas",
        "max_age",
        "max_msgs",
        "max_bytes",
    )

    # ------------------------------------------------------------------ inventory

    def desired_specs(self, topology: Topology) -> Mapping[Address, StreamSpec]:
        return {
            Address("stream", (n,)): s
            for n, s in topology.streams.items()
            if n not in UNPLANNED_STREAMS
        }

    def live_resources(self, live: LiveState) -> Mapping[Address, LiveStream]:
        """Every live stream but the tool's own (lock, audit) and the buckets'
        (:mod:`~jelmore_infra.kinds.shape`)."""
        from jelmore_infra.kinds.shape import bucket_of, migrating_buckets

        # A bucket's stream halfway through a migration is not bucket-shaped (frozen, or
        # copying back without subjects): it stays the bucket's (docs/migration.md).
        migrating = migrating_buckets(live.streams)
        return {
            Address("stream", (n,)): s
            for n, s in live.streams.items()
            if n not in UNPLANNED_STREAMS and bucket_of(s.config) is None and n not in migrating
        }

    def spec_from_change(self, change: ResourceChange) -> tuple[Any, Any]:
        assert change.after is not None
        strategy = REPLACE_MIGRATE if change.action is Action.MIGRATE else REPLACE_RECREATE
        return change.name, StreamSpec(change.name, dict(change.after), replace_strategy=strategy)

    def excluded(self, address: Address) -> bool:
        return address.name in UNPLANNED_STREAMS

    def unavailable_address(self, text: str, topology: Topology) -> Address | None:
        """As the base, but a stream with a bucket's stream name is the bucket kind's to report
        (:meth:`BucketKind.unavailable_address`) unless the topology declares it as a stream."""
        from jelmore_infra.kinds.shape import bucket_named

        address = super().unavailable_address(text, topology)
        if address is None or address.name in topology.streams:
            return address
        return None if bucket_named(address.name) is not None else address

    # -------------------------------------------------------------- normalisation

    def normalize_live(self, ctx: PlanContext, address: Address, config: Any) -> dict[str, Any]:
        return normalize_stream(config, ctx.version)

    def normalize_desired(
        self, ctx: PlanContext, address: Address, spec: Any
    ) -> dict[str, Any] | None:
        return normalize_stream(self._desired_config(ctx, spec), ctx.version)

    def normalize_config(
        self, config: Mapping[str, Any], version: Version, parent: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return normalize_stream(config, version)

    def _desired_config(self, ctx: PlanContext, spec: StreamSpec) -> dict[str, Any]:
        """The desired config, with ``mirror_direct`` derived from the origin as the server does."""
        config = dict(spec.config)
        mirror = config.get("mirror")
        if (
            isinstance(mirror, Mapping)
            and "mirror_direct" not in config
            and not mirror.get("external")
        ):
            origin = str(mirror.get("name") or "")
            if origin in ctx.desired.streams:
                config["mirror_direct"] = bool(
                    ctx.desired.streams[origin].config.get("allow_direct")
                )
            elif origin in ctx.live.streams:
                config["mirror_direct"] = bool(ctx.live.streams[origin].config.get("allow_direct"))
        return config

    # ---------------------------------------------------------------- plan rules

    def special_rule(self, ctx: PlanContext, delta: FieldDelta) -> Rule | None:
        b, a = delta.before, delta.after
        what = "a live stream"
        if delta.field == "retention":
            if "workqueue" in (b, a):
                return F.Update.REPLACE, (
                    f"retention cannot be changed to or from workqueue on {what} "
                    f"({value_text(b)} → {value_text(a)})"
                )
            return F.Update.IN_PLACE, None
        if delta.field == "mirror":
            if a is None and ctx.version >= V_MIRROR_PROMOTE:
                return F.Update.IN_PLACE, None
            if a is None:
                return F.Update.REPLACE, (
                    f"a mirror cannot be removed from {what} before nats-server "
                    f"{version_text(V_MIRROR_PROMOTE)} (connected: {ctx.live.server.version})"
                )
            if b is None:
                return F.Update.REPLACE, f"a mirror cannot be added to {what}"
            return F.Update.REPLACE, f"mirror cannot be changed on {what}"
        return None

    def validate(
        self,
        ctx: PlanContext,
        address: Address,
        spec: Any,
        after: Mapping[str, Any],
        before: Mapping[str, Any] | None,
    ) -> list[PlanMessage]:
        out: list[PlanMessage] = []
        replicas = int_of(after, "num_replicas")
        where = str(address)
        clustered = replicas_need_a_cluster(ctx, replicas, where, "num_replicas")
        if clustered is not None:
            out.append(clustered)
        if before is None and after.get("sealed"):
            out.append(
                error(
                    "invalid",
                    f"a stream cannot be created sealed (the server refuses: "
                    f'"stream configuration for create can not be sealed"): create it first, '
                    f"then seal it ({where})",
                    where,
                    "sealed",
                )
            )
        return out

    def check_update(
        self, ctx: PlanContext, address: Address, live: Any, change: ResourceChange
    ) -> list[PlanMessage]:
        out = self._consumer_limit_errors(ctx, live, change)
        paths = {f.path.partition(".")[0] for f in change.fields}
        if {"num_replicas", "placement"} <= paths:
            out.append(
                error(
                    "invalid",
                    f"stream {address.name}: the server cannot change num_replicas and placement "
                    'in one update ("can not move and scale a stream in a single update"); '
                    "change one, apply, then the other",
                    str(address),
                    "placement",
                )
            )
        return out

    def _consumer_limit_errors(
        self, ctx: PlanContext, live: LiveStream, change: ResourceChange
    ) -> list[PlanMessage]:
        """The server refuses new consumer_limits that an existing consumer exceeds (10069)."""
        before = (change.before or {}).get("consumer_limits") or {}
        after = (change.after or {}).get("consumer_limits") or {}
        consumers = sorted(
            (name, c.config)
            for (s, name), c in ctx.live.consumers.items()
            if s == live.name
            and not (
                # deleted by this plan before the stream changes
                (s, name) not in ctx.desired.consumers
                and is_managed(c.config)
                and ctx.in_scope(Address("consumer", (s, name)))
            )
        )
        checks: list[tuple[str, int, list[str]]] = []
        limit = int_of(after, "max_ack_pending")
        if limit > 0 and limit != int_of(before, "max_ack_pending"):
            over = [
                f"{n} ({format_count(int_of(c, 'max_ack_pending'))})"
                for n, c in consumers
                if int_of(c, "max_ack_pending") > limit or int_of(c, "max_ack_pending") == -1
            ]
            checks.append(("max_ack_pending", limit, over))
        limit = int_of(after, "inactive_threshold")
        if (
            limit > 0
            and limit != int_of(before, "inactive_threshold")
            and ctx.version < V_DURABLE_INACTIVE_LIMIT_UNCHECKED
        ):
            over = [
                f"{n} ({format_duration(int_of(c, 'inactive_threshold'))})"
                if int_of(c, "inactive_threshold")
                else f"{n} (none)"
                for n, c in consumers
                if not int_of(c, "inactive_threshold") or int_of(c, "inactive_threshold") > limit
            ]
            checks.append(("inactive_threshold", limit, over))
        out: list[PlanMessage] = []
        for key, value, over in checks:
            if not over:
                continue
            shown = format_count(value) if key == "max_ack_pending" else format_duration(value)
            out.append(
                error(
                    "invalid",
                    f"the server refuses consumer_limits.{key} {shown} on stream {live.name} "
                    f'while consumers exceed it: {", ".join(over)} ("change to limits violates '
                    f'consumers"); set {key} on those consumer groups first (apply them with '
                    "--target), then change the stream",
                    live.address,
                    f"consumer_limits.{key}",
                    {"consumers": [o.split(" ")[0] for o in over]},
                )
            )
        return out

    # -------------------------------------------------------------- data impact

    def _lost(self, live: LiveStream, cause: Any) -> Iterable[Impact]:
        messages = int_of(live.state, "messages")
        if messages > 0:
            yield StreamMessagesLost(
                live.address, live.name, cause, messages, int_of(live.state, "bytes")
            )

    def delete_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        return self._lost(live, "delete")

    def replace_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        return self._lost(live, "replace")

    def update_impact(
        self, ctx: PlanContext, address: Address, live: Any, change: ResourceChange
    ) -> Iterable[Impact]:
        assert isinstance(live, LiveStream)
        state = live.state
        messages = int_of(state, "messages")
        size = int_of(state, "bytes")
        before = change.before or {}
        after = change.after or {}
        where = live.address

        def lowered(key: str) -> tuple[int, int] | None:
            b = int_of(before, key) or -1
            a = int_of(after, key) or -1
            if a == -1 or (b != -1 and a >= b):
                return None
            return b, a

        if messages > 0:
            discard_new = after.get("discard") == "new"
            low = lowered("max_msgs")
            if low and messages > low[1]:
                if discard_new:
                    yield OverLimitKept(where, live.name, "max_msgs", low[1], messages)
                else:
                    yield LimitLowered(where, "max_msgs", low[1], messages, messages - low[1])
            low = lowered("max_bytes")
            if low and size > low[1]:
                avg = size / messages
                n = min(messages, math.ceil((size - low[1]) / avg)) if avg else messages
                if discard_new:
                    yield OverLimitKept(where, live.name, "max_bytes", low[1], messages)
                else:
                    yield LimitLowered(where, "max_bytes", low[1], messages, n, stored_bytes=size)
            low = lowered("max_msgs_per_subject")
            if low:
                subjects = int_of(state, "num_subjects")
                lazy = ctx.version < V_PER_SUBJECT_ENFORCED_ON_UPDATE
                if subjects and messages > subjects * low[1]:
                    yield LimitLowered(
                        where,
                        "max_msgs_per_subject",
                        low[1],
                        messages,
                        messages - subjects * low[1],
                        num_subjects=subjects,
                        lazy=lazy,
                    )
                elif not subjects:
                    yield LimitLowered(where, "max_msgs_per_subject", low[1], messages, lazy=lazy)
            yield from self._max_age_impact(ctx, live, before, after, messages)
            if before.get("retention") == "limits" and after.get("retention") == "interest":
                yield RetentionNarrowed(where, messages)
        removed = sorted(set(before.get("subjects") or ()) - set(after.get("subjects") or ()))
        if removed:
            yield SubjectsRemoved(where, live.name, tuple(removed))
        if before.get("mirror") and not after.get("mirror"):
            yield MirrorPromoted(where, live.name, before["mirror"].get("name"))
        clustered = bool(ctx.live.server.cluster)
        label = f"stream {live.name}"
        yield from cluster_impact(where, label, before, after, "num_replicas", state, clustered)

    def _max_age_impact(
        self,
        ctx: PlanContext,
        live: LiveStream,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        messages: int,
    ) -> Iterable[Impact]:
        b = int_of(before, "max_age")
        a = int_of(after, "max_age")
        if a <= 0 or (b > 0 and a >= b):
            return
        first = _parse_time(live.state.get("first_ts"))
        last = _parse_time(live.state.get("last_ts"))
        if first is None:
            yield AgeLowered(live.address, a, messages, "unknown")
            return
        cutoff = ctx.now.timestamp() - a / 1e9
        if first.timestamp() >= cutoff:
            return
        if last is None or last <= first:
            yield AgeLowered(live.address, a, messages, "some")
            return
        span = last.timestamp() - first.timestamp()
        fraction = min(1.0, max(0.0, (cutoff - first.timestamp()) / span))
        yield AgeLowered(live.address, a, messages, "about", max(1, round(fraction * messages)))

    # ---------------------------------------------------------------- ordering

    def dependencies(self, change: ResourceChange) -> Iterable[str]:
        """The origins a stream mirrors or sources (they are created first)."""
        config = change.after or {}
        mirror = config.get("mirror")
        if isinstance(mirror, Mapping) and mirror.get("name"):
            yield str(mirror["name"])
        for src in config.get("sources") or ():
            if isinstance(src, Mapping) and src.get("name"):
                yield str(src["name"])

    # --------------------------------------------------------------------- API

    async def create(self, api: JetStreamAPI, change: ResourceChange) -> None:
        assert change.after is not None
        await api.create_stream(change.after)

    async def update(self, api: JetStreamAPI, change: ResourceChange) -> None:
        assert change.after is not None
        await api.update_stream(change.after)

    async def delete(self, api: JetStreamAPI, change: ResourceChange) -> None:
        try:
            await api.delete_stream(change.name)
        except JetStreamAPIError as exc:
            if exc.err_code not in self.not_found_codes:
                raise


STREAM = StreamKind()
