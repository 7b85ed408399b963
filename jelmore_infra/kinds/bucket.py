"""What KV buckets and object stores share: the bucket ↔ stream mapping and the bucket kind base.

A bucket is nothing but a JetStream stream with a fixed name (``KV_<bucket>`` / ``OBJ_<bucket>``),
fixed subjects and a handful of fixed flags; its settings (``history``, ``ttl``, …) are spellings
of ordinary stream fields. docs/buckets.md records the mapping, what each official client sends
and what the server stores; this module encodes it:

- :func:`bucket_of` tells a live stream that is a bucket (name and subject shape) from a stream;
- :func:`settings_from_stream` reads a bucket's settings back from its stream config, as nats.go
  does (``history`` = ``max_msgs_per_subject``, ``ttl`` = ``max_age``, …);
- :func:`stream_from_settings` builds the stream jelmore-infra sends: nats.go's (``nats kv add``)
  shape, always with an explicit ``duplicate_window`` (2 min, or ``ttl`` when shorter), which
  pedantic 2.11+ servers require;
- :func:`canonical` is the normalised form both sides of a plan are compared in: bucket settings
  with every default filled in and empty values left out.

The clients' buckets differ in two flags (docs/buckets.md §2): nats-py leaves ``allow_direct`` off
unless asked, and sets ``allow_msg_ttl`` on every bucket from 2.11 on (a flag the server never lets
go). A topology that does not mention them accepts the live value, so buckets made by either
client plan with no changes; a new bucket gets nats.go's values (``allow_direct: true``,
``allow_msg_ttl`` only with ``limit_marker_ttl``).

Drift in the fixed flags (``discard``, ``deny_delete``, …) of a live bucket is not shown; any
update sends them again with the bucket's values.

Pure (the API hooks only use the client they are given).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from jelmore_infra import fields as F
from jelmore_infra.address import Address, try_parse
from jelmore_infra.errors import JetStreamAPIError
from jelmore_infra.impact import (
    BucketDataLost,
    CompressionDeferred,
    HistoryLowered,
    Impact,
    OverLimitKept,
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
    version_text,
)
from jelmore_infra.kinds.shape import (
    BUCKET_NAME,
    KV_PREFIX,
    MAX_HISTORY,
    BucketKindName,
    bucket_named,
    bucket_of,
    bucket_subjects,
    migrating_buckets,
    stream_name,
)
from jelmore_infra.model import (
    INTERNAL_BUCKETS,
    REPLACE_MIGRATE,
    REPLACE_RECREATE,
    BucketSpec,
    LiveState,
    LiveStream,
    Topology,
)
from jelmore_infra.normalize import (
    DEFAULT_DUPLICATE_WINDOW,
    _clean_top,
    normalize_stream,
    wire_config,
)
from jelmore_infra.plan import Action, PlanMessage, ResourceChange

#: From this version a mirror can be removed in place (promoted): docs/buckets.md §6.
V_MIRROR_PROMOTE: Version = (2, 12, 0)

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI


def duplicate_window(ttl: int) -> int:
    """The clients' rule: 2 min, or ``ttl`` when ``0 < ttl < 2 min``."""
    return ttl if 0 < ttl < DEFAULT_DUPLICATE_WINDOW else DEFAULT_DUPLICATE_WINDOW


def table_for(kind: BucketKindName) -> Mapping[str, F.Field]:
    return F.KV_FIELD_MAP if kind == "kv" else F.OBJECT_STORE_FIELD_MAP


def settings_from_stream(
    kind: BucketKindName, config: Mapping[str, Any], version: Version
) -> dict[str, Any]:
    """The bucket settings a stream config stands for (server defaults filled in first)."""
    s = normalize_stream(config, version)
    out: dict[str, Any] = {
        "description": s.get("description"),
        "ttl": s.get("max_age", 0),
        "max_bytes": s.get("max_bytes", -1),
        "storage": s.get("storage") or "file",
        "replicas": s.get("num_replicas") or 1,
        "compression": (s.get("compression") or "none") != "none",
        "placement": s.get("placement"),
        "metadata": config.get("metadata"),
        "allow_direct": bool(s.get("allow_direct")),
    }
    if kind == "kv":
        out["history"] = s.get("max_msgs_per_subject", 1)
        out["max_value_size"] = s.get("max_msg_size", -1)
        out["republish"] = s.get("republish")
        out["limit_marker_ttl"] = s.get("subject_delete_marker_ttl", 0)
        out["allow_msg_ttl"] = bool(s.get("allow_msg_ttl"))
        bucket = str(config.get("name") or "")[len(KV_PREFIX) :]
        mirror = s.get("mirror")
        if isinstance(mirror, Mapping) and mirror:
            out["mirror"] = {**mirror, "name": _unprefixed(mirror.get("name"))}
            out["mirror_direct"] = bool(s.get("mirror_direct"))
        sources = [_source_setting(bucket, src) for src in s.get("sources") or ()]
        out["sources"] = [src for src in sources if src]
    return out


def _unprefixed(name: Any) -> str:
    text = str(name or "")
    return text[len(KV_PREFIX) :] if text.startswith(KV_PREFIX) else text


def _default_transforms(bucket: str, source: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """The transform nats.go adds to a KV source: ``$KV.<src>.>`` → ``$KV.<bucket>.>`` (none for
    an external source of the same bucket name)."""
    origin = _unprefixed(source.get("name"))
    if source.get("external") and origin == bucket:
        return None
    return [{"src": f"$KV.{origin}.>", "dest": f"$KV.{bucket}.>"}]


def _source_setting(bucket: str, source: Any) -> dict[str, Any] | None:
    """A stream source as the bucket setting nats.go reads it (its own transform left out)."""
    if not isinstance(source, Mapping):
        return None
    out = {**source, "name": _unprefixed(source.get("name"))}
    if out.get("subject_transforms") == _default_transforms(bucket, source):
        out.pop("subject_transforms", None)
    return out


def _stream_source(bucket: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """A bucket's source as nats.go sends it: ``KV_`` prefix and, unless given, its transform."""
    out = dict(source)
    out["name"] = KV_PREFIX + _unprefixed(source.get("name"))
    if not out.get("subject_transforms"):
        transforms = _default_transforms(bucket, source)
        if transforms:
            out["subject_transforms"] = transforms
    return out


def canonical(
    kind: BucketKindName, settings: Mapping[str, Any], version: Version
) -> dict[str, Any]:
    """The normalised bucket config: defaults filled in, empty values and unknown fields out."""
    c = dict(settings)
    c["storage"] = c.get("storage") or "file"
    c["replicas"] = int_of(c, "replicas") or 1
    for key in ("max_bytes", "max_value_size"):
        if kind == "kv" or key == "max_bytes":
            value = int_of(c, key)
            c[key] = -1 if value == 0 or value < -1 else value  # 0 and below -1: unlimited
    if kind == "kv":
        c["history"] = int_of(c, "history") or 1
        if not c.get("mirror"):
            c.pop("mirror_direct", None)
        if int_of(c, "limit_marker_ttl") > 0 and version >= (2, 11, 0):
            c["allow_msg_ttl"] = True
        republish = c.get("republish")
        if isinstance(republish, Mapping) and republish:
            c["republish"] = {**republish, "src": republish.get("src") or ">"}
    return _clean_top(c, table_for(kind), version)


def stream_from_settings(
    kind: BucketKindName, bucket: str, settings: Mapping[str, Any], version: Version
) -> dict[str, Any]:
    """The full stream config apply sends for a bucket (nats.go's shape, pedantic-safe)."""
    ttl = int_of(settings, "ttl")
    cfg: dict[str, Any] = {
        "name": stream_name(kind, bucket),
        "subjects": bucket_subjects(kind, bucket),
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": int_of(settings, "max_bytes") or -1,
        "discard": "new",
        "max_age": ttl,
        "storage": settings.get("storage") or "file",
        "num_replicas": int_of(settings, "replicas") or 1,
        "duplicate_window": duplicate_window(ttl),
        "allow_rollup_hdrs": True,
        "allow_direct": bool(settings.get("allow_direct")),
        "compression": "s2" if settings.get("compression") else "none",
    }
    if kind == "kv":
        mirror = settings.get("mirror")
        if isinstance(mirror, Mapping) and mirror:
            del cfg["subjects"]
            cfg["mirror"] = {**mirror, "name": KV_PREFIX + _unprefixed(mirror.get("name"))}
            cfg["mirror_direct"] = bool(settings.get("mirror_direct", True))
        if settings.get("sources"):
            cfg["sources"] = [_stream_source(bucket, src) for src in settings["sources"]]
        cfg["max_msgs_per_subject"] = int_of(settings, "history") or 1
        cfg["max_msg_size"] = int_of(settings, "max_value_size") or -1
        cfg["deny_delete"] = True
        if settings.get("republish"):
            cfg["republish"] = dict(settings["republish"])
        marker = int_of(settings, "limit_marker_ttl")
        if marker > 0:
            cfg["subject_delete_marker_ttl"] = marker
        cfg["allow_msg_ttl"] = bool(settings.get("allow_msg_ttl")) or marker > 0
    else:
        cfg["max_msgs_per_subject"] = -1
        cfg["max_msg_size"] = -1
    for key in ("description", "placement", "metadata"):
        if settings.get(key):
            cfg[key] = settings[key]
    return wire_config(cfg, version, F.STREAM_FIELD_MAP)


class BucketKind(ResourceKind):
    """The bucket kinds' shared behaviour; :mod:`~jelmore_infra.kinds.kv` and
    :mod:`~jelmore_infra.kinds.objectstore` set the identity and the field table."""

    bucket_kind: ClassVar[BucketKindName]
    tier: ClassVar[int] = 0
    #: 10059 "stream not found".
    not_found_codes: ClassVar[frozenset[int]] = frozenset({10059})
    one_way_refusals: ClassVar[Mapping[str, str]] = {
        "allow_msg_ttl": "message TTL status can not be disabled",
    }
    delete_summary: ClassVar[tuple[str, ...]] = ("history", "ttl", "storage", "max_bytes")
    migratable: ClassVar[bool] = True

    # ------------------------------------------------------------------ inventory

    def _specs(self, topology: Topology) -> Mapping[str, BucketSpec]:
        return topology.kv_buckets if self.bucket_kind == "kv" else topology.object_stores

    def desired_specs(self, topology: Topology) -> Mapping[Address, BucketSpec]:
        return {
            Address(self.name, (n,)): s
            for n, s in self._specs(topology).items()
            if not self.excluded(Address(self.name, (n,)))
        }

    def live_resources(self, live: LiveState) -> Mapping[Address, LiveStream]:
        out: dict[Address, LiveStream] = {}
        migrating = migrating_buckets(live.streams)
        for name, stream in live.streams.items():
            found = bucket_of(stream.config) or migrating.get(name)
            if found is not None and found[0] == self.bucket_kind:
                address = Address(self.name, (found[1],))
                if not self.excluded(address):
                    out[address] = stream
        return out

    def excluded(self, address: Address) -> bool:
        return self.bucket_kind == "kv" and address.name in INTERNAL_BUCKETS

    def unavailable_address(self, text: str, topology: Topology) -> Address | None:
        """A bucket's stream the server lists as missing or offline, told by its name: the
        bucket is unavailable (never created again over it). A stream the topology declares
        under that name stays the stream kind's."""
        stream = try_parse(text, ("stream",))
        if stream is None or stream.name in topology.streams:
            return None
        found = bucket_named(stream.name)
        if found is None or found[0] != self.bucket_kind:
            return None
        address = Address(self.name, (found[1],))
        return None if self.excluded(address) else address

    def spec_from_change(self, change: ResourceChange) -> tuple[Any, Any]:
        assert change.after is not None
        strategy = REPLACE_MIGRATE if change.action is Action.MIGRATE else REPLACE_RECREATE
        return change.name, BucketSpec(change.name, dict(change.after), replace_strategy=strategy)

    def change_identity(self, address: Address) -> tuple[str, str]:
        return stream_name(self.bucket_kind, address.name), address.name

    # -------------------------------------------------------------- normalisation

    def normalize_live(self, ctx: PlanContext, address: Address, config: Any) -> dict[str, Any]:
        return self.normalize_config(config, ctx.version, None)

    def normalize_desired(
        self, ctx: PlanContext, address: Address, spec: Any
    ) -> dict[str, Any] | None:
        settings = dict(spec.config)
        live = ctx.live.streams.get(stream_name(self.bucket_kind, address.name))
        found = settings_from_stream(self.bucket_kind, live.config, ctx.version) if live else {}
        # The clients differ here (module doc): unmentioned means "as the live bucket has it".
        if "allow_direct" not in settings:
            settings["allow_direct"] = found.get("allow_direct", True)
        if self.bucket_kind == "kv" and "allow_msg_ttl" not in settings:
            settings["allow_msg_ttl"] = bool(found.get("allow_msg_ttl"))
        if settings.get("sources"):  # nats.go's own transform, if written out, is the default
            written = [_source_setting(address.name, src) for src in settings["sources"]]
            settings["sources"] = [src for src in written if src]
        mirror = settings.get("mirror")
        if isinstance(mirror, Mapping) and mirror and "mirror_direct" not in settings:
            settings["mirror_direct"] = self._mirror_direct(ctx, mirror, found)
        return canonical(self.bucket_kind, settings, ctx.version)

    def _mirror_direct(
        self, ctx: PlanContext, mirror: Mapping[str, Any], found: Mapping[str, Any]
    ) -> bool:
        """What the server makes a mirror's ``mirror_direct``: the live value, else the origin
        bucket's ``allow_direct`` (declared or live), else nats.go's ``true``."""
        if "mirror_direct" in found:
            return bool(found["mirror_direct"])
        origin = _unprefixed(mirror.get("name"))
        if mirror.get("external"):
            return True
        declared = ctx.desired.kv_buckets.get(origin)
        if declared is not None and "allow_direct" in declared.config:
            return bool(declared.config["allow_direct"])
        live = ctx.live.streams.get(KV_PREFIX + origin)
        if live is not None:
            return bool(live.config.get("allow_direct"))
        return True

    def normalize_config(
        self, config: Mapping[str, Any], version: Version, parent: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """A live stream config (it has a ``name``) or a planned bucket config, normalised."""
        if "name" in config:
            return canonical(
                self.bucket_kind, settings_from_stream(self.bucket_kind, config, version), version
            )
        return canonical(self.bucket_kind, config, version)

    # ---------------------------------------------------------------- plan rules

    def special_rule(self, ctx: PlanContext, delta: FieldDelta) -> Rule | None:
        if delta.field == "mirror":
            if delta.after is None and ctx.version >= V_MIRROR_PROMOTE:
                return F.Update.IN_PLACE, None
            if delta.after is None:
                return F.Update.REPLACE, (
                    "a mirror cannot be removed from a live bucket before nats-server "
                    f"{version_text(V_MIRROR_PROMOTE)} (connected: {ctx.live.server.version})"
                )
            if delta.before is None:
                return F.Update.REPLACE, "a mirror cannot be added to a live bucket"
            return F.Update.REPLACE, "mirror cannot be changed on a live bucket"
        if delta.field == "storage":
            return F.Update.REPLACE, (
                f"storage cannot be changed on a live bucket ({delta.before or 'file'} → "
                f"{delta.after or 'file'}); the bucket's stream is recreated"
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
        replicas = int_of(after, "replicas")
        where = str(address)
        out: list[PlanMessage] = []
        if after.get("mirror") and int_of(after, "limit_marker_ttl"):
            out.append(
                error(
                    "invalid",
                    f"a KV mirror cannot have limit_marker_ttl (the server refuses: "
                    f'"subject delete markers forbidden on mirrors") ({where})',
                    where,
                    "limit_marker_ttl",
                )
            )
        clustered = replicas_need_a_cluster(ctx, replicas, where, "replicas")
        if clustered is not None:
            out.append(clustered)
        return out

    def check_update(
        self, ctx: PlanContext, address: Address, live: Any, change: ResourceChange
    ) -> list[PlanMessage]:
        paths = {f.path.partition(".")[0] for f in change.fields}
        if {"replicas", "placement"} <= paths:
            return [
                error(
                    "invalid",
                    f"{address}: the server cannot change replicas and placement in one update "
                    '("can not move and scale a stream in a single update"); change one, '
                    "apply, then the other",
                    str(address),
                    "placement",
                )
            ]
        return []

    # -------------------------------------------------------------- data impact

    def _lost(self, address: Address, live: LiveStream, cause: Any) -> Iterable[Impact]:
        messages = int_of(live.state, "messages")
        if messages > 0:
            yield BucketDataLost(
                str(address),
                address.name,
                self.bucket_kind,
                cause,
                messages,
                int_of(live.state, "bytes"),
            )

    def delete_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        return self._lost(address, live, "delete")

    def replace_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        return self._lost(address, live, "replace")

    def update_impact(
        self, ctx: PlanContext, address: Address, live: Any, change: ResourceChange
    ) -> Iterable[Impact]:
        from jelmore_infra.kinds.stream import STREAM, cluster_impact

        assert isinstance(live, LiveStream)
        messages = int_of(live.state, "messages")
        before = change.before or {}
        after = change.after or {}
        where = str(address)
        if bool(before.get("compression")) != bool(after.get("compression")):
            yield CompressionDeferred(where, bool(after.get("compression")))
        what = "KV bucket" if self.bucket_kind == "kv" else "object store"
        clustered = bool(ctx.live.server.cluster)
        label = f"{what} {address.name}"
        yield from cluster_impact(where, label, before, after, "replicas", live.state, clustered)
        if messages <= 0:
            return
        b_hist, a_hist = int_of(before, "history") or 1, int_of(after, "history") or 1
        if self.bucket_kind == "kv" and a_hist < b_hist:
            keys = int_of(live.state, "num_subjects")
            removed = messages - keys * a_hist if keys else None
            yield HistoryLowered(
                where, a_hist, messages, keys, removed if removed and removed > 0 else None
            )
        for record in STREAM._max_age_impact(
            ctx,
            live,
            {"max_age": int_of(before, "ttl")},
            {"max_age": int_of(after, "ttl")},
            messages,
        ):
            yield dataclasses.replace(record, address=where)
        b_bytes, a_bytes = int_of(before, "max_bytes"), int_of(after, "max_bytes")
        lowered = a_bytes > 0 and (b_bytes <= 0 or a_bytes < b_bytes)
        if lowered and int_of(live.state, "bytes") > a_bytes:
            yield OverLimitKept(where, address.name, "max_bytes", a_bytes, messages)

    # ---------------------------------------------------------------- ordering

    def dependencies(self, change: ResourceChange) -> Iterable[str]:
        """The buckets a KV bucket mirrors or sources (created first)."""
        config = change.after or {}
        mirror = config.get("mirror")
        if isinstance(mirror, Mapping) and mirror.get("name"):
            yield _unprefixed(mirror["name"])
        for src in config.get("sources") or ():
            if isinstance(src, Mapping) and src.get("name"):
                yield _unprefixed(src["name"])

    # --------------------------------------------------------------------- API

    def _stream_config(self, api: JetStreamAPI, change: ResourceChange) -> dict[str, Any]:
        assert change.after is not None
        return stream_from_settings(self.bucket_kind, change.name, change.after, api.version)

    def migration_config(
        self, name: str, after: Mapping[str, Any], version: Version
    ) -> dict[str, Any]:
        """The bucket's stream as :meth:`create` would send it: a migration ends with it."""
        return stream_from_settings(self.bucket_kind, name, after, version)

    async def create(self, api: JetStreamAPI, change: ResourceChange) -> None:
        await api.create_stream(self._stream_config(api, change))

    async def update(self, api: JetStreamAPI, change: ResourceChange) -> None:
        await api.update_stream(self._stream_config(api, change))

    async def delete(self, api: JetStreamAPI, change: ResourceChange) -> None:
        try:
            await api.delete_stream(stream_name(self.bucket_kind, change.name))
        except JetStreamAPIError as exc:
            if exc.err_code not in self.not_found_codes:
                raise


__all__ = [
    "BUCKET_NAME",
    "MAX_HISTORY",
    "BucketKind",
    "BucketKindName",
    "bucket_of",
    "bucket_subjects",
    "canonical",
    "duplicate_window",
    "settings_from_stream",
    "stream_from_settings",
    "stream_name",
]
