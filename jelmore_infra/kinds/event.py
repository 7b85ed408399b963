"""The event kind: ``event.TYPE``, an event type in the catalogue bucket with its payload schema.

An event type is not a JetStream resource of its own: apply writes its entry
(:mod:`jelmore_infra.catalogue.entry`) under its key in the catalogue bucket, which apply creates
the first time it is needed, and removing a type writes a delete marker (the schema history
stays). Every setting changes in place. A new payload schema is a new *version* of the type,
checked against the live one under the type's ``compatibility`` mode
(:mod:`jelmore_infra.catalogue.compat`): a breaking change is a plan error naming the property
path and the rule; a compatible one is a note listing what changed. Removing a type whose stream
still holds messages of it is a data-impact note
(:class:`~jelmore_infra.impact.EventMessagesRemain`).

Pure (the API hooks only use the client they are given).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from jelmore_infra import fields as F
from jelmore_infra.address import FORMS, Address
from jelmore_infra.catalogue.entry import (
    KV_OPERATION,
    canonical_entry,
    catalogue_stream_config,
    encode_entry,
    key_subject,
)
from jelmore_infra.impact import EventMessagesRemain, Impact
from jelmore_infra.kinds.base import PlanContext, ResourceKind, Version, error, warning
from jelmore_infra.model import (
    CATALOGUE_STREAM,
    EventSpec,
    LiveEvent,
    LiveState,
    Topology,
)
from jelmore_infra.plan import Kind, PlanMessage, ResourceChange

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI


class EventKind(ResourceKind):
    name: ClassVar[str] = "event"
    plan_kind: ClassVar[Kind] = Kind.EVENT
    form = FORMS["event"]
    fields: ClassVar[Mapping[str, F.Field]] = F.EVENT_FIELD_MAP
    topology_field: ClassVar[str] = "events"
    #: After streams, buckets and consumers: the catalogue describes what they carry.
    tier: ClassVar[int] = 2
    delete_summary: ClassVar[tuple[str, ...]] = ("subject", "stream", "version")
    #: 10059 "stream not found": the catalogue's own stream is gone, and the type with it.
    not_found_codes: ClassVar[frozenset[int]] = frozenset({10059})

    # ------------------------------------------------------------------ inventory

    def desired_specs(self, topology: Topology) -> Mapping[Address, EventSpec]:
        return {Address("event", (t,)): spec for t, spec in topology.events.items()}

    def live_resources(self, live: LiveState) -> Mapping[Address, LiveEvent]:
        return {
            Address("event", (t,)): event for t, event in live.events.items() if not event.deleted
        }

    def spec_from_change(self, change: ResourceChange) -> tuple[Any, Any]:
        assert change.after is not None
        after = change.after
        return change.name, EventSpec(change.name, dict(after), stream=after.get("stream"))

    def change_identity(self, address: Address) -> tuple[str, str]:
        return CATALOGUE_STREAM, address.name

    def label(self, change: ResourceChange) -> str:
        return f'event "{change.name}"'

    # -------------------------------------------------------------- normalisation

    def normalize_config(
        self, config: Mapping[str, Any], version: Version, parent: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return canonical_entry(
            str(config.get("type") or ""),
            config,
            str(config.get("stream") or ""),
            int(config.get("version") or 1),
        )

    def normalize_live(self, ctx: PlanContext, address: Address, config: Any) -> dict[str, Any]:
        return self.normalize_config(config, ctx.version, None)

    def normalize_desired(
        self, ctx: PlanContext, address: Address, spec: Any
    ) -> dict[str, Any] | None:
        assert isinstance(spec, EventSpec)
        live = ctx.live.events.get(spec.type)
        wanted = canonical_entry(spec.type, spec.config, spec.stream or "", 1)
        if live is not None:
            current = self.normalize_config(live.config, ctx.version, None)
            same = not live.deleted and current["payload"] == wanted["payload"]
            wanted["version"] = live.version if same else live.version + 1
        return wanted

    # ---------------------------------------------------------------- plan rules

    def validate(
        self,
        ctx: PlanContext,
        address: Address,
        spec: Any,
        after: Mapping[str, Any],
        before: Mapping[str, Any] | None,
    ) -> list[PlanMessage]:
        if before is None or before["payload"] == after["payload"]:
            return []
        from jelmore_infra.catalogue.compat import check_compatibility

        where = str(address)
        mode = str(after["compatibility"])
        verdict = check_compatibility(before["payload"], after["payload"], mode)
        versions = f"payload schema version {before['version']} → {after['version']}"
        changes = "; ".join(c.text for c in verdict.changes) or "no structural change"
        data = {
            "mode": mode,
            "compatible": verdict.compatible,
            "changes": [
                {"type": c.type, "path": c.path, "compatible": c.compatible, "text": c.text}
                for c in verdict.changes
            ],
        }
        if verdict.compatible:
            return [
                warning(
                    "note",
                    f"{versions}, compatible under {mode}: {changes}",
                    where,
                    "payload",
                    data,
                )
            ]
        return [
            error(
                "invalid",
                f"{versions} is not {mode} compatible: {b.message}; to accept it, change the "
                "event's compatibility in the same pull request",
                where,
                "payload",
                {**data, "path": b.change.path, "rule": b.change.type},
            )
            for b in verdict.breaking
        ]

    # -------------------------------------------------------------- data impact

    def delete_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        assert isinstance(live, LiveEvent)
        if live.messages:
            yield EventMessagesRemain(
                str(address), live.type, str(live.config.get("stream") or ""), live.messages
            )

    # --------------------------------------------------------------------- API

    async def _ensure_catalogue(self, api: JetStreamAPI) -> None:
        # the replication of the cluster, so the catalogue outlives a node
        await api.ensure_replicated_stream(catalogue_stream_config)

    async def _put(self, api: JetStreamAPI, change: ResourceChange, delete: bool = False) -> None:
        entry = change.before if delete else change.after
        assert entry is not None
        if not delete:
            await self._ensure_catalogue(api)
        headers = {KV_OPERATION: "DEL"} if delete else None
        # a catalogue just created on a cluster may have no stream leader yet
        await api.publish_acked(
            key_subject(change.name), encode_entry(entry), headers, wait_for_leader=True
        )

    async def create(self, api: JetStreamAPI, change: ResourceChange) -> None:
        await self._put(api, change)

    async def update(self, api: JetStreamAPI, change: ResourceChange) -> None:
        await self._put(api, change)

    async def delete(self, api: JetStreamAPI, change: ResourceChange) -> None:
        await self._put(api, change, delete=True)


EVENT = EventKind()
