"""The consumer kind: ``consumer.STREAM.NAME``, durable consumers (consumer groups) of a stream.

A consumer lives in its stream: it is planned after the stream and follows the stream's fate
(not planned while the stream is unavailable or unmanaged, lost with a deleted or replaced
stream, an error when its stream is missing or about to be deleted). Ephemeral consumers and the
server's own sourcing consumers (2.14+) come and go by themselves and are never planned.

Server rules beyond the field table (see ``docs/server-semantics.md``, "Server rules the plan
encodes"): a pull consumer cannot become a push consumer or back (``deliver_subject`` added or
removed: replace); more replicas than the stream's, or more than one without a cluster, are
refused; on interest and workqueue streams the replicas must equal the stream's. Data impact:
deleting a consumer loses its delivery state, replacing it resets that state.

Apply: a consumer's replicas come from its stream's servers, so a consumer created or scaled up
right after its stream was scaled up is refused until the stream's scale-up has finished (2.15
answers 10126 or 10023 for a moment); the API client sends such a request again while the stream
reports the scale-up under way (``wait_for_stream_scale``, docs/multi-region.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from jelmore_infra import fields as F
from jelmore_infra.address import FORMS, Address
from jelmore_infra.errors import JetStreamAPIError
from jelmore_infra.impact import ConsumerStateLost, Impact, UnmanagedConsumerLost
from jelmore_infra.kinds.base import (
    Fate,
    FieldDelta,
    PlanContext,
    ResourceKind,
    Rule,
    Version,
    error,
    int_of,
    warning,
)
from jelmore_infra.migration.steps import keep_resumed_position
from jelmore_infra.model import (
    UNPLANNED_STREAMS,
    ConsumerSpec,
    LiveConsumer,
    LiveState,
    Topology,
    is_managed,
)
from jelmore_infra.normalize import normalize_consumer
from jelmore_infra.plan import FieldChange, Kind, PlanMessage, ResourceChange
from jelmore_infra.units import format_duration

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI


class ConsumerKind(ResourceKind):
    name: ClassVar[str] = "consumer"
    plan_kind: ClassVar[Kind] = Kind.CONSUMER
    form = FORMS["consumer"]
    fields: ClassVar[Mapping[str, F.Field]] = F.CONSUMER_FIELD_MAP
    tier: ClassVar[int] = 1
    #: 10014 "consumer not found".
    not_found_codes: ClassVar[frozenset[int]] = frozenset({10014})
    import_keep: ClassVar[tuple[str, ...]] = ("durable_name",)
    topology_field: ClassVar[str] = "consumers"
    delete_summary: ClassVar[tuple[str, ...]] = (
        "filter_subject",
        "filter_subjects",
        "deliver_policy",
        "ack_policy",
        "max_deliver",
    )

    # ------------------------------------------------------------------ inventory

    def desired_specs(self, topology: Topology) -> Mapping[Address, ConsumerSpec]:
        return {
            Address("consumer", key): c
            for key, c in topology.consumers.items()
            if key[0] not in UNPLANNED_STREAMS
        }

    def live_resources(self, live: LiveState) -> Mapping[Address, LiveConsumer]:
        """Every live consumer but those of the tool's own streams (lock, audit) and of the
        buckets' streams."""
        from jelmore_infra.kinds.shape import bucket_of

        buckets = {n for n, s in live.streams.items() if bucket_of(s.config) is not None}
        return {
            Address("consumer", key): c
            for key, c in live.consumers.items()
            if key[0] not in UNPLANNED_STREAMS and key[0] not in buckets
        }

    def spec_from_change(self, change: ResourceChange) -> tuple[Any, Any]:
        assert change.after is not None
        key = (change.stream, change.name)
        return key, ConsumerSpec(change.stream, change.name, dict(change.after))

    def excluded(self, address: Address) -> bool:
        return address.parts[0] in UNPLANNED_STREAMS

    def plannable(self, live: Any, declared: bool) -> bool:
        """Ephemeral consumers (no durable_name) and the server's own sourcing consumers (2.14+)
        come and go by themselves: they are never planned, listed or fingerprinted."""
        return declared or bool(live.config.get("durable_name") and not live.config.get("sourcing"))

    def parent_of(self, address: Address) -> Address | None:
        return Address("stream", (address.parts[0],))

    def change_identity(self, address: Address) -> tuple[str, str]:
        return address.parts[0], address.parts[1]

    def label(self, change: ResourceChange) -> str:
        return f'consumer "{change.stream}/{change.name}"'

    def address_for(self, stream: str, name: str) -> Address:
        return Address("consumer", (stream, name))

    # -------------------------------------------------------------- normalisation

    def _stream_config(self, ctx: PlanContext, stream: str) -> Mapping[str, Any] | None:
        """The stream's desired config (the topology's, else the live one)."""
        spec = ctx.desired.streams.get(stream)
        if spec is not None:
            return spec.config
        live = ctx.live.streams.get(stream)
        return live.config if live else None

    def normalize_live(self, ctx: PlanContext, address: Address, config: Any) -> dict[str, Any]:
        stream = ctx.live.streams.get(address.parts[0])
        return normalize_consumer(
            config, ctx.version, stream_config=stream.config if stream else None
        )

    def normalize_desired(
        self, ctx: PlanContext, address: Address, spec: Any
    ) -> dict[str, Any] | None:
        stream_config = self._stream_config(ctx, address.parts[0])
        config = spec.config
        live = ctx.live.consumers.get((address.parts[0], address.parts[1]))
        if live is not None:
            # Re-created by a migration: its start position is not a change (docs/migration.md).
            config = keep_resumed_position(config, live.config)
        return normalize_consumer(config, ctx.version, stream_config=stream_config)

    def normalize_config(
        self, config: Mapping[str, Any], version: Version, parent: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return normalize_consumer(config, version, stream_config=parent)

    # ---------------------------------------------------------------- plan rules

    def stream_fate(self, ctx: PlanContext, address: Address) -> Fate:
        stream = address.parts[0]
        fate = ctx.fate(Address("stream", (stream,)))
        if fate is None and stream in ctx.live.streams and stream not in ctx.desired.streams:
            # Its stream is out of scope (targets): judge the stream's ownership directly.
            fate = "noop" if is_managed(ctx.live.streams[stream].config) else "unmanaged"
        if fate is None:
            fate = "noop" if stream in ctx.live.streams else "create"
        return fate

    def gate(
        self, ctx: PlanContext, address: Address, spec: Any, live: Any
    ) -> tuple[bool, list[PlanMessage]]:
        stream = address.parts[0]
        fate = self.stream_fate(ctx, address)
        if fate == "unmanaged" and spec is None:
            return False, []  # consumers of unmanaged streams are not listed separately
        if fate == "unavailable" or f"stream.{stream}" in ctx.live.unavailable:
            if spec is None:
                return False, []
            return False, [
                warning(
                    "unavailable",
                    f"{address}: its stream {stream} is unavailable on the server; no change "
                    "is planned for this consumer group",
                    str(address),
                )
            ]
        return True, []

    def parent_errors(self, ctx: PlanContext, address: Address) -> list[PlanMessage]:
        stream = address.parts[0]
        where = str(address)
        if self._stream_config(ctx, stream) is None:
            return [
                error(
                    "invalid",
                    f"{address}: stream {stream} is neither in the topology nor on the server",
                    where,
                    "stream",
                )
            ]
        if self.stream_fate(ctx, address) == "delete":
            return [
                error(
                    "invalid",
                    f"{address}: stream {stream} is not in the topology and will be deleted; "
                    "add the stream to the topology or remove this consumer group",
                    where,
                    "stream",
                )
            ]
        if ctx.fate(Address("stream", (stream,))) is None and stream not in ctx.live.streams:
            return [
                error(
                    "invalid",
                    f"{address} needs stream {stream}, which does not exist yet: "
                    f"target stream.{stream} too",
                    where,
                    "stream",
                )
            ]
        return []

    def special_rule(self, ctx: PlanContext, delta: FieldDelta) -> Rule | None:
        if delta.field == "deliver_subject":
            if delta.before is None:
                return F.Update.REPLACE, (
                    "a pull consumer cannot become a push consumer (deliver_subject added)"
                )
            if delta.after is None:
                return F.Update.REPLACE, (
                    "a push consumer cannot become a pull consumer (deliver_subject removed)"
                )
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
        where = str(address)
        stream = address.parts[0]
        stream_config = self._stream_config(ctx, stream) or {}
        replicas = int_of(after, "num_replicas")
        stream_norm = ctx.normalized_stream(stream, stream_config)
        stream_replicas = int_of(stream_norm, "num_replicas") or 1
        if replicas > 1 and not ctx.live.server.cluster:
            out.append(
                error(
                    "invalid",
                    f"num_replicas {replicas} needs a clustered server, and "
                    f"{ctx.live.server.server_name} is not clustered ({where})",
                    where,
                    "num_replicas",
                )
            )
        elif replicas > stream_replicas:
            out.append(
                error(
                    "invalid",
                    f"num_replicas {replicas} is more than stream {stream} has "
                    f"({stream_replicas}) ({where})",
                    where,
                    "num_replicas",
                )
            )
        if (
            replicas
            and stream_norm.get("retention") in ("interest", "workqueue")
            and replicas != stream_replicas
        ):
            out.append(
                error(
                    "invalid",
                    f"num_replicas must equal the stream's ({stream_replicas}) on a "
                    f"{stream_norm.get('retention')} stream, or be left out ({where})",
                    where,
                    "num_replicas",
                )
            )
        limits = stream_config.get("consumer_limits") or {}
        if int_of(limits, "inactive_threshold") > 0 and not int_of(
            spec.config, "inactive_threshold"
        ):
            threshold = format_duration(int_of(limits, "inactive_threshold"))
            out.append(
                warning(
                    "note",
                    f"stream {stream} sets consumer_limits.inactive_threshold {threshold}, which "
                    f"{where} inherits: the server deletes this durable after {threshold} without "
                    "activity; set inactive_threshold on the group to override it",
                    where,
                    "inactive_threshold",
                    {"inactive_threshold": int_of(limits, "inactive_threshold")},
                )
            )
        return out

    def forced_replace(self, ctx: PlanContext, address: Address) -> tuple[FieldChange, ...]:
        if self.stream_fate(ctx, address) != "replace":
            return ()
        stream = address.parts[0]
        return (
            FieldChange(
                "stream", stream, stream, forces_replace=True, reason=f"stream {stream} is replaced"
            ),
        )

    # -------------------------------------------------------------- data impact

    def _numbers(self, live: LiveConsumer) -> tuple[int, int, int]:
        return (
            int_of(live.state, "num_pending"),
            int_of(live.state, "num_ack_pending"),
            int_of(live.state, "num_redelivered"),
        )

    def _state_lost(self, ctx: PlanContext, live: LiveConsumer, cause: Any) -> Iterable[Impact]:
        numbers = self._numbers(live)
        stream = ctx.live.streams.get(live.stream)
        stored = int_of(stream.state, "messages") if stream else 0
        if any(numbers) or stored > 0:
            yield ConsumerStateLost(live.address, cause, *numbers)

    def delete_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        if self.stream_fate(ctx, address) in ("delete", "replace"):
            return ()  # lost with the stream, which says so
        return self._state_lost(ctx, live, "delete")

    def replace_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        return self._state_lost(ctx, live, "recreate")

    def unmanaged_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        fate = self.stream_fate(ctx, address)
        if fate not in ("delete", "replace"):
            return ()
        return (UnmanagedConsumerLost(str(address), address.parts[0], fate, *self._numbers(live)),)

    # --------------------------------------------------------------------- API

    async def create(self, api: JetStreamAPI, change: ResourceChange) -> None:
        assert change.after is not None
        await api.create_consumer(
            change.stream, change.after, action="create", wait_for_stream_scale=True
        )

    async def update(self, api: JetStreamAPI, change: ResourceChange) -> None:
        assert change.after is not None
        await api.create_consumer(
            change.stream, change.after, action="update", wait_for_stream_scale=True
        )

    async def delete(self, api: JetStreamAPI, change: ResourceChange) -> None:
        try:
            await api.delete_consumer(change.stream, change.name)
        except JetStreamAPIError as exc:
            if exc.err_code not in self.not_found_codes:
                raise


CONSUMER = ConsumerKind()
