"""The diff: desired topology against live server state, producing the plan.

For every stream and consumer group in scope it normalises both sides for the connected server
version (:mod:`jelmore_infra.normalize`), compares them field by field, and classifies each change
with the field table (:mod:`jelmore_infra.fields`) and the server's special cases: update in place,
replace (delete and recreate), or impossible (a one-way flag turned off, a field the server is too
old for). It attaches what a reviewer must know: data that will be lost, unmanaged resources left
alone, unavailable resources skipped, adoption of resources created by hand.

Pure: no I/O, no network, no clock (``now`` is a parameter).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from jelmore_infra import fields as F
from jelmore_infra.model import (
    LOCK_STREAM,
    ConsumerSpec,
    LiveConsumer,
    LiveState,
    LiveStream,
    StreamSpec,
    Topology,
    consumer_address,
    is_managed,
    parse_version,
    stream_address,
)
from jelmore_infra.normalize import (
    Version,
    canonical_time,
    fingerprint,
    normalize_consumer,
    normalize_stream,
    wire_config,
)
from jelmore_infra.plan import (
    Action,
    FieldChange,
    Kind,
    MessageKind,
    Plan,
    PlanMessage,
    ResourceChange,
)
from jelmore_infra.units import format_count, format_duration, format_size

V_MIRROR_PROMOTE: Version = (2, 12, 0)
#: From 2.14 a lower max_msgs_per_subject removes the excess at once; before, each subject is
#: trimmed when its next message arrives (checked against real servers).
V_PER_SUBJECT_ENFORCED_ON_UPDATE: Version = (2, 14, 0)
#: Up to 2.12 a stream's consumer_limits.inactive_threshold is refused while a durable has none or
#: a longer one (10069); 2.14 accepts it (checked against 2.10.26, 2.11.11, 2.12.8, 2.14.6, 2.15.1).
V_DURABLE_INACTIVE_LIMIT_UNCHECKED: Version = (2, 14, 0)

#: What the server answers when a one-way flag is turned off (jetstream-semantics.md §1.2).
ONE_WAY_REFUSALS: dict[str, str] = {
    "sealed": "stream configuration update can not unseal a sealed stream",
    "deny_delete": "stream configuration update can not cancel deny message deletes",
    "deny_purge": "stream configuration update can not cancel deny purge",
    "allow_msg_ttl": "message TTL status can not be disabled",
    "allow_msg_schedules": "message schedules can not be disabled",
}

_LIST_AS_SET = frozenset({"subjects", "filter_subjects"})
_FLATTEN_OBJECTS = frozenset({"consumer_limits", "republish", "subject_transform", "placement"})

StreamFate = Literal["create", "update", "replace", "noop", "delete", "unmanaged", "unavailable"]


def _v(version: Version) -> str:
    return ".".join(str(p) for p in version)


def _fmt(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


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


def _int(mapping: Mapping[str, Any] | None, key: str) -> int:
    value = (mapping or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _same(name: str, before: Any, after: Any) -> bool:
    if name in _LIST_AS_SET and isinstance(before, list) and isinstance(after, list):
        return sorted(map(str, before)) == sorted(map(str, after))
    if name == "sources" and isinstance(before, list) and isinstance(after, list):
        key = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
        return sorted(map(key, before)) == sorted(map(key, after))
    return bool(before == after)


@dataclass
class _Change:
    """A field change before it becomes a :class:`FieldChange`: top-level field plus details."""

    field: str
    before: Any
    after: Any
    paths: list[tuple[str, Any, Any]]


def _field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], table: Mapping[str, F.Field]
) -> list[_Change]:
    out: list[_Change] = []
    for name in sorted(set(before) | set(after)):
        fdef = table.get(name)
        if fdef is None or fdef.update in (F.Update.IDENTITY, F.Update.IGNORED):
            continue
        b, a = before.get(name), after.get(name)
        if _same(name, b, a):
            continue
        paths: list[tuple[str, Any, Any]] = []
        if fdef.kind is F.ValueKind.METADATA:
            bm, am = b or {}, a or {}
            for key in sorted(set(bm) | set(am)):
                if bm.get(key) != am.get(key):
                    paths.append((f"{name}.{key}", bm.get(key), am.get(key)))
        elif fdef.kind is F.ValueKind.OBJECT and (
            name in _FLATTEN_OBJECTS or (isinstance(b, Mapping) and isinstance(a, Mapping))
        ):
            _flatten(name, b or {}, a or {}, paths)
        else:
            paths.append((name, b, a))
        out.append(_Change(name, b, a, paths))
    return out


def _flatten(
    prefix: str, b: Mapping[str, Any], a: Mapping[str, Any], out: list[tuple[str, Any, Any]]
) -> None:
    for key in sorted(set(b) | set(a)):
        bv, av = b.get(key), a.get(key)
        if bv == av:
            continue
        if isinstance(bv, Mapping) and isinstance(av, Mapping):
            _flatten(f"{prefix}.{key}", bv, av, out)
        else:
            out.append((f"{prefix}.{key}", bv, av))


@dataclass
class _Resource:
    """The outcome of diffing one resource, before ordering."""

    change: ResourceChange | None
    group: int  # 1 consumer deletes, 2 stream deletes, 3 streams, 4 consumers


@dataclass
class _Builder:
    desired: Topology
    live: LiveState
    targets: tuple[str, ...]
    now: datetime
    version: Version = (0, 0, 0)
    messages: list[PlanMessage] = field(default_factory=list)
    results: list[_Resource] = field(default_factory=list)
    fingerprints: dict[str, str | None] = field(default_factory=dict)
    unmanaged: list[str] = field(default_factory=list)
    fates: dict[str, StreamFate] = field(default_factory=dict)
    target_streams: set[str] = field(default_factory=set)
    target_consumers: set[str] = field(default_factory=set)
    _stream_norms: dict[str, tuple[Mapping[str, Any], dict[str, Any]]] = field(default_factory=dict)

    # ----------------------------------------------------------------- messages

    def error(
        self,
        kind: MessageKind,
        message: str,
        address: str | None = None,
        fld: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.messages.append(PlanMessage("error", kind, message, address, fld, dict(data or {})))

    def warn(
        self,
        kind: MessageKind,
        message: str,
        address: str | None = None,
        fld: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.messages.append(PlanMessage("warning", kind, message, address, fld, dict(data or {})))

    # ------------------------------------------------------------------ targets

    def resolve_targets(self) -> None:
        streams = self._stream_names()
        consumers = {consumer_address(s, c) for s, c in self._consumer_keys()}
        for target in self.targets:
            parts = target.split(".")
            if parts[0] == "stream" and len(parts) == 2 and parts[1] in streams:
                self.target_streams.add(parts[1])
            elif parts[0] == "consumer" and len(parts) == 3 and target in consumers:
                self.target_consumers.add(target)
            elif parts[0] in ("stream", "consumer") and len(parts) == (
                2 if parts[0] == "stream" else 3
            ):
                self.error(
                    "invalid",
                    f"target {target} is neither in the topology nor on the server",
                    target,
                )
            else:
                self.error(
                    "invalid",
                    f"target {target!r} is not an address: use stream.NAME or consumer.STREAM.NAME",
                    target,
                )

    def stream_in_scope(self, name: str) -> bool:
        return not self.targets or name in self.target_streams

    def consumer_in_scope(self, stream: str, name: str) -> bool:
        return (
            not self.targets
            or stream in self.target_streams
            or consumer_address(stream, name) in self.target_consumers
        )

    # ---------------------------------------------------------------- inventory

    def _stream_names(self) -> set[str]:
        names = set(self.desired.streams) | set(self.live.streams)
        for address in self.live.unavailable:
            parts = address.split(".")
            if len(parts) == 2 and parts[0] == "stream":
                names.add(parts[1])
        names.discard(LOCK_STREAM)
        return names

    def _consumer_keys(self) -> set[tuple[str, str]]:
        # Ephemeral consumers (no durable_name) and the server's own sourcing consumers (2.14+)
        # come and go by themselves: they are never planned, listed or fingerprinted.
        live_keys = {
            key
            for key, c in self.live.consumers.items()
            if key in self.desired.consumers
            or (c.config.get("durable_name") and not c.config.get("sourcing"))
        }
        keys = set(self.desired.consumers) | live_keys
        for address in self.live.unavailable:
            parts = address.split(".")
            if len(parts) == 3 and parts[0] == "consumer":
                keys.add((parts[1], parts[2]))
        return {k for k in keys if k[0] != LOCK_STREAM}

    # ------------------------------------------------------------ field checks

    def check_fields(self, kind: str, address: str, config: Mapping[str, Any]) -> None:
        table = F.fields_for(kind)
        for key, value in config.items():
            fdef = table.get(key)
            if fdef is None:
                self.error(
                    "invalid",
                    f"{key} is not a {kind} setting jelmore-infra knows ({address})",
                    address,
                    key,
                )
                continue
            self._check_one(kind, address, key, fdef, value)

    def _check_one(self, kind: str, address: str, path: str, fdef: F.Field, value: Any) -> None:
        if value is None or value is False or value in ("", [], {}):
            return
        connected = self.live.server.version
        if not fdef.known_by(self.version):
            if self.version < fdef.since:
                self.error(
                    "needs-newer-server",
                    f"{path} needs nats-server {_v(fdef.since)} or newer; the connected server "
                    f"runs {connected} ({address})",
                    address,
                    path,
                    {"needed": _v(fdef.since), "connected": connected},
                )
            else:
                assert fdef.until is not None
                self.error(
                    "needs-newer-server",
                    f"{path} is no longer supported from nats-server {_v(fdef.until)}; the "
                    f"connected server runs {connected} ({address}): remove it from the topology",
                    address,
                    path,
                    {"removed_in": _v(fdef.until), "connected": connected},
                )
            return
        if fdef.kind is F.ValueKind.ENUM and isinstance(value, str):
            since = F.ENUM_VALUE_SINCE.get((kind, fdef.name, value))
            if since is not None and self.version < since:
                self.error(
                    "needs-newer-server",
                    f"{path}: {value} needs nats-server {_v(since)} or newer; the connected "
                    f"server runs {connected} ({address})",
                    address,
                    path,
                    {"needed": _v(since), "connected": connected, "value": value},
                )
        if fdef.sub_fields:
            subs = {f.name: f for f in fdef.sub_fields}
            items = value if isinstance(value, list) else [value]
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                for key, sub_value in item.items():
                    sub = subs.get(key)
                    if sub is not None:
                        self._check_one(kind, address, f"{path}.{key}", sub, sub_value)

    # ------------------------------------------------------------------ streams

    def stream_config_for_desired(self, spec: StreamSpec) -> dict[str, Any]:
        """The desired config, with ``mirror_direct`` derived from the origin as the server does."""
        config = dict(spec.config)
        mirror = config.get("mirror")
        if (
            isinstance(mirror, Mapping)
            and "mirror_direct" not in config
            and not mirror.get("external")
        ):
            origin = str(mirror.get("name") or "")
            if origin in self.desired.streams:
                config["mirror_direct"] = bool(
                    self.desired.streams[origin].config.get("allow_direct")
                )
            elif origin in self.live.streams:
                config["mirror_direct"] = bool(self.live.streams[origin].config.get("allow_direct"))
        return config

    def plan_streams(self) -> None:
        for name in sorted(self._stream_names()):
            if not self.stream_in_scope(name):
                continue
            address = stream_address(name)
            spec = self.desired.streams.get(name)
            live = self.live.streams.get(name)
            if address in self.live.unavailable:
                self.fates[name] = "unavailable"
                self._unavailable(address, spec is not None)
                continue
            if spec is not None:
                self.check_fields("stream", address, spec.config)
            before = normalize_stream(live.config, self.version) if live else None
            self.fingerprints[address] = fingerprint(before) if before is not None else None
            if spec is None:
                assert live is not None
                assert before is not None
                if is_managed(live.config):
                    self.fates[name] = "delete"
                    self.results.append(
                        _Resource(
                            self._resource(
                                address, Kind.STREAM, name, name, Action.DELETE, before, None, ()
                            ),
                            2,
                        )
                    )
                    self._stream_loss(live, f"deleting stream {name}")
                else:
                    self.fates[name] = "unmanaged"
                    self._unmanaged(address)
                continue
            after = normalize_stream(self.stream_config_for_desired(spec), self.version)
            self._validate_stream(address, after, before)
            if before is None:
                self.fates[name] = "create"
                self._create(address, Kind.STREAM, name, name, after, 3)
                continue
            assert live is not None
            change = self._diff_existing(
                Kind.STREAM, address, name, name, before, after, live.config
            )
            if change is None:
                self.fates[name] = "noop"
            elif change.action is Action.REPLACE:
                self.fates[name] = "replace"
                self._stream_loss(live, f"replacing stream {name}")
            else:
                self.fates[name] = "update"
                self._stream_update_impact(live, change)
                self._check_consumer_limits(live, change)
                paths = {f.path.split(".")[0] for f in change.fields}
                if {"num_replicas", "placement"} <= paths:
                    self.error(
                        "invalid",
                        f"stream {name}: the server cannot change num_replicas and placement in "
                        'one update ("can not move and scale a stream in a single update"); '
                        "change one, apply, then the other",
                        address,
                        "placement",
                    )

    def _check_consumer_limits(self, live: LiveStream, change: ResourceChange) -> None:
        """The server refuses new consumer_limits that an existing consumer exceeds (10069)."""
        before = (change.before or {}).get("consumer_limits") or {}
        after = (change.after or {}).get("consumer_limits") or {}
        consumers = sorted(
            (name, c.config)
            for (s, name), c in self.live.consumers.items()
            if s == live.name and not self._deleted_before_streams(s, name, c)
        )
        checks: list[tuple[str, int, list[str]]] = []
        limit = _int(after, "max_ack_pending")
        if limit > 0 and limit != _int(before, "max_ack_pending"):
            over = [
                f"{n} ({format_count(_int(c, 'max_ack_pending'))})"
                for n, c in consumers
                if _int(c, "max_ack_pending") > limit or _int(c, "max_ack_pending") == -1
            ]
            checks.append(("max_ack_pending", limit, over))
        limit = _int(after, "inactive_threshold")
        if (
            limit > 0
            and limit != _int(before, "inactive_threshold")
            and self.version < V_DURABLE_INACTIVE_LIMIT_UNCHECKED
        ):
            over = [
                f"{n} ({format_duration(_int(c, 'inactive_threshold'))})"
                if _int(c, "inactive_threshold")
                else f"{n} (none)"
                for n, c in consumers
                if not _int(c, "inactive_threshold") or _int(c, "inactive_threshold") > limit
            ]
            checks.append(("inactive_threshold", limit, over))
        for key, value, over in checks:
            if not over:
                continue
            shown = format_count(value) if key == "max_ack_pending" else format_duration(value)
            self.error(
                "invalid",
                f"the server refuses consumer_limits.{key} {shown} on stream {live.name} while "
                f'consumers exceed it: {", ".join(over)} ("change to limits violates '
                f'consumers"); set {key} on those consumer groups first (apply them with '
                "--target), then change the stream",
                live.address,
                f"consumer_limits.{key}",
                {"consumers": [o.split(" ")[0] for o in over]},
            )

    def _deleted_before_streams(self, stream: str, name: str, live: LiveConsumer) -> bool:
        """Whether the plan deletes this consumer (consumer deletes run before stream changes)."""
        return (
            (stream, name) not in self.desired.consumers
            and is_managed(live.config)
            and self.consumer_in_scope(stream, name)
        )

    def _validate_stream(
        self, address: str, after: Mapping[str, Any], before: Mapping[str, Any] | None
    ) -> None:
        replicas = _int(after, "num_replicas")
        if replicas > 1 and not self.live.server.cluster:
            self.error(
                "invalid",
                f"num_replicas {replicas} needs a clustered server, and "
                f"{self.live.server.server_name} is not clustered (the server refuses: "
                f'"replicas > 1 not supported in non-clustered mode") ({address})',
                address,
                "num_replicas",
            )
        if before is None and after.get("sealed"):
            self.error(
                "invalid",
                f'a stream cannot be created sealed (the server refuses: "stream configuration '
                f'for create can not be sealed"): create it first, then seal it ({address})',
                address,
                "sealed",
            )

    # ----------------------------------------------------------------- consumers

    def plan_consumers(self) -> None:
        for stream, name in sorted(self._consumer_keys()):
            if not self.consumer_in_scope(stream, name):
                continue
            address = consumer_address(stream, name)
            spec = self.desired.consumers.get((stream, name))
            live = self.live.consumers.get((stream, name))
            fate = self.fates.get(stream)
            if fate is None and stream in self.live.streams and stream not in self.desired.streams:
                # Its stream is out of scope (targets): judge the stream's ownership directly.
                fate = "noop" if is_managed(self.live.streams[stream].config) else "unmanaged"
            if fate is None:
                fate = "noop" if stream in self.live.streams else "create"
            if fate == "unmanaged" and spec is None:
                continue  # consumers of unmanaged streams are not listed separately
            if fate == "unavailable" or stream_address(stream) in self.live.unavailable:
                if spec is not None:
                    self.warn(
                        "unavailable",
                        f"{address}: its stream {stream} is unavailable on the server; no change "
                        "is planned for this consumer group",
                        address,
                    )
                continue
            if address in self.live.unavailable:
                self._unavailable(address, spec is not None)
                continue
            live_stream = self.live.streams.get(stream)
            live_stream_config = live_stream.config if live_stream else None
            before = (
                normalize_consumer(live.config, self.version, stream_config=live_stream_config)
                if live
                else None
            )
            self.fingerprints[address] = fingerprint(before) if before is not None else None
            if spec is None:
                assert live is not None
                assert before is not None
                if fate in ("delete", "replace") and not is_managed(live.config):
                    self.warn(
                        "data-loss",
                        f"{address} is not managed by jelmore-infra but will be LOST: "
                        f"{'deleting' if fate == 'delete' else 'replacing'} stream {stream} "
                        "deletes its consumers",
                        address,
                        data=self._consumer_numbers(live),
                    )
                    continue
                if is_managed(live.config):
                    self.results.append(
                        _Resource(
                            self._resource(
                                address,
                                Kind.CONSUMER,
                                stream,
                                name,
                                Action.DELETE,
                                before,
                                None,
                                (),
                            ),
                            1,
                        )
                    )
                    if fate not in ("delete", "replace"):
                        self._consumer_loss(live, f"{address} will be deleted:", "lost")
                else:
                    self._unmanaged(address)
                continue
            self.check_fields("consumer", address, spec.config)
            stream_config = self._desired_stream_config(stream)
            if stream_config is None:
                self.error(
                    "invalid",
                    f"{address}: stream {stream} is neither in the topology nor on the server",
                    address,
                    "stream",
                )
                continue
            if fate == "delete":
                self.error(
                    "invalid",
                    f"{address}: stream {stream} is not in the topology and will be deleted; "
                    "add the stream to the topology or remove this consumer group",
                    address,
                    "stream",
                )
                continue
            if stream not in self.fates and stream not in self.live.streams:
                self.error(
                    "invalid",
                    f"{address} needs stream {stream}, which does not exist yet: "
                    f"target stream.{stream} too",
                    address,
                    "stream",
                )
                continue
            after = normalize_consumer(spec.config, self.version, stream_config=stream_config)
            self._validate_consumer(address, spec, after, stream_config)
            if before is None:
                self._create(address, Kind.CONSUMER, stream, name, after, 4)
                continue
            assert live is not None
            extra: tuple[FieldChange, ...] = ()
            if fate == "replace":
                extra = (
                    FieldChange(
                        "stream",
                        stream,
                        stream,
                        forces_replace=True,
                        reason=f"stream {stream} is replaced",
                    ),
                )
            last = self._diff_existing(
                Kind.CONSUMER, address, stream, name, before, after, live.config, extra
            )
            if last is not None and last.action is Action.REPLACE:
                self._consumer_loss(live, f"{address} will be recreated:", "reset")

    def _desired_stream_config(self, stream: str) -> Mapping[str, Any] | None:
        spec = self.desired.streams.get(stream)
        if spec is not None:
            return spec.config
        live = self.live.streams.get(stream)
        return live.config if live else None

    def _normalized_stream(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """``normalize_stream`` once per stream config (every consumer of a stream asks)."""
        cached = self._stream_norms.get(name)
        if cached is not None and cached[0] is config:
            return cached[1]
        normalized = normalize_stream(config, self.version)
        self._stream_norms[name] = (config, normalized)
        return normalized

    def _validate_consumer(
        self,
        address: str,
        spec: ConsumerSpec,
        after: Mapping[str, Any],
        stream_config: Mapping[str, Any],
    ) -> None:
        replicas = _int(after, "num_replicas")
        stream_norm = self._normalized_stream(spec.stream, stream_config)
        stream_replicas = _int(stream_norm, "num_replicas") or 1
        if replicas > 1 and not self.live.server.cluster:
            self.error(
                "invalid",
                f"num_replicas {replicas} needs a clustered server, and "
                f"{self.live.server.server_name} is not clustered ({address})",
                address,
                "num_replicas",
            )
        elif replicas > stream_replicas:
            self.error(
                "invalid",
                f"num_replicas {replicas} is more than stream {spec.stream} has "
                f"({stream_replicas}) ({address})",
                address,
                "num_replicas",
            )
        if (
            replicas
            and stream_norm.get("retention") in ("interest", "workqueue")
            and replicas != stream_replicas
        ):
            self.error(
                "invalid",
                f"num_replicas must equal the stream's ({stream_replicas}) on a "
                f"{stream_norm.get('retention')} stream, or be left out ({address})",
                address,
                "num_replicas",
            )
        limits = stream_config.get("consumer_limits") or {}
        if _int(limits, "inactive_threshold") > 0 and not _int(spec.config, "inactive_threshold"):
            threshold = format_duration(_int(limits, "inactive_threshold"))
            self.warn(
                "note",
                f"stream {spec.stream} sets consumer_limits.inactive_threshold {threshold}, which "
                f"{address} inherits: the server deletes this durable after {threshold} without "
                "activity; set inactive_threshold on the group to override it",
                address,
                "inactive_threshold",
                {"inactive_threshold": _int(limits, "inactive_threshold")},
            )

    # ------------------------------------------------------------- shared diff

    def _diff_existing(
        self,
        kind: Kind,
        address: str,
        stream: str,
        name: str,
        before: dict[str, Any],
        after: dict[str, Any],
        live_config: Mapping[str, Any],
        extra: tuple[FieldChange, ...] = (),
    ) -> ResourceChange | None:
        table = F.STREAM_FIELD_MAP if kind is Kind.STREAM else F.CONSUMER_FIELD_MAP
        classified = [
            (ch, *self._classify(kind, ch)) for ch in _field_changes(before, after, table)
        ]
        replacing = bool(extra) or any(mode == "replace" for _, mode, _ in classified)
        one_way = [ch for ch, mode, _ in classified if mode == "one-way"]
        if one_way and not replacing:
            # The server refuses to turn these off. Plan errors; the config apply would send
            # keeps the live value (jetstream-semantics.md §1.4), so the rest stays truthful.
            patched = dict(after)
            for ch in one_way:
                refusal = ONE_WAY_REFUSALS.get(ch.field, f"{ch.field} can only be turned on")
                self.error(
                    "one-way",
                    f"{ch.field} cannot be turned off on {kind.value} {name}: the server refuses "
                    f'("{refusal}"); remove the change from the topology (set {ch.field}: true '
                    f"again), or delete and recreate the {kind.value} by hand",
                    address,
                    ch.field,
                    {"live": ch.before, "desired": ch.after},
                )
                patched[ch.field] = ch.before
            after = normalize_stream(patched, self.version) if kind is Kind.STREAM else patched
            classified = [
                (ch, *self._classify(kind, ch)) for ch in _field_changes(before, after, table)
            ]
        changes: list[FieldChange] = list(extra)
        for ch, mode, reason in classified:
            for path, b, a in ch.paths:
                changes.append(
                    FieldChange(
                        path,
                        b,
                        a,
                        forces_replace=mode == "replace",
                        reason=reason if mode == "replace" else None,
                    )
                )
        if not changes:
            return None
        action = Action.REPLACE if any(c.forces_replace for c in changes) else Action.UPDATE
        if not is_managed(live_config):
            self.warn(
                "adopt",
                f"{address} exists but was not created by jelmore-infra; the plan adopts it "
                "(adds the jelmore.managed-by metadata)"
                + (" and replaces it" if action is Action.REPLACE else ""),
                address,
            )
        change = self._resource(
            address,
            kind,
            stream,
            name,
            action,
            before,
            wire_config(after, self.version),
            tuple(changes),
        )
        self.results.append(_Resource(change, 3 if kind is Kind.STREAM else 4))
        return change

    def _classify(self, kind: Kind, ch: _Change) -> tuple[str, str | None]:
        table = F.STREAM_FIELD_MAP if kind is Kind.STREAM else F.CONSUMER_FIELD_MAP
        fdef = table[ch.field]
        b, a = ch.before, ch.after
        what = f"a live {kind.value}"
        if kind is Kind.STREAM:
            if ch.field == "retention":
                if "workqueue" in (b, a):
                    return "replace", (
                        f"retention cannot be changed to or from workqueue on {what} "
                        f"({_fmt(b)} → {_fmt(a)})"
                    )
                return "in_place", None
            if ch.field == "mirror":
                if a is None and self.version >= V_MIRROR_PROMOTE:
                    return "in_place", None
                if a is None:
                    return "replace", (
                        f"a mirror cannot be removed from {what} before nats-server "
                        f"{_v(V_MIRROR_PROMOTE)} (connected: {self.live.server.version})"
                    )
                if b is None:
                    return "replace", f"a mirror cannot be added to {what}"
                return "replace", f"mirror cannot be changed on {what}"
        else:
            if ch.field == "deliver_subject":
                if b is None:
                    return (
                        "replace",
                        "a pull consumer cannot become a push consumer (deliver_subject added)",
                    )
                if a is None:
                    return (
                        "replace",
                        "a push consumer cannot become a pull consumer (deliver_subject removed)",
                    )
        if fdef.update is F.Update.ONE_WAY:
            # Turning it off is impossible in place; a replace of the resource makes it moot.
            return ("one-way", None) if b and not a else ("in_place", None)
        if fdef.update is F.Update.REPLACE:
            if fdef.in_place_since is not None and self.version >= fdef.in_place_since:
                return "in_place", None
            suffix = ""
            if fdef.in_place_since is not None:
                suffix = (
                    f" before nats-server {_v(fdef.in_place_since)} "
                    f"(connected: {self.live.server.version})"
                )
            return (
                "replace",
                f"{ch.field} cannot be changed on {what}{suffix} ({_fmt(b)} → {_fmt(a)})",
            )
        return "in_place", None

    # --------------------------------------------------------------- messages

    def _create(
        self, address: str, kind: Kind, stream: str, name: str, after: dict[str, Any], phase: int
    ) -> None:
        """Plan a create of a resource the server does not have (``phase``: apply order)."""
        change = self._resource(
            address, kind, stream, name, Action.CREATE, None, wire_config(after, self.version), ()
        )
        self.results.append(_Resource(change, phase))

    def _resource(
        self,
        address: str,
        kind: Kind,
        stream: str,
        name: str,
        action: Action,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        fields: tuple[FieldChange, ...],
    ) -> ResourceChange:
        return ResourceChange(
            address=address,
            kind=kind,
            stream=stream,
            name=name,
            action=action,
            before=before,
            after=after,
            fields=fields,
            fingerprint=fingerprint(before) if before is not None else None,
        )

    def _unavailable(self, address: str, declared: bool) -> None:
        reason = self.live.unavailable.get(address, "unavailable")
        tail = (
            "; it is in the topology, but no change is planned for it until the server reports it"
            if declared
            else "; it is left alone"
        )
        self.warn(
            "unavailable",
            f"{address} is unavailable on the server ({reason}){tail}",
            address,
            data={"reason": reason},
        )

    def _unmanaged(self, address: str) -> None:
        self.unmanaged.append(address)
        self.warn(
            "unmanaged",
            f"{address} is not managed by jelmore-infra and not in the topology; left alone",
            address,
        )

    def _stream_loss(self, live: LiveStream, doing: str) -> None:
        """Warn that every stored message of ``live`` is lost (when it holds any)."""
        messages = _int(live.state, "messages")
        size = _int(live.state, "bytes")
        if messages <= 0:
            return
        self.warn(
            "data-loss",
            f"{doing}: {format_count(messages)} messages, {_bytes(size)} will be lost",
            live.address,
            data={"messages": messages, "bytes": size},
        )

    def _consumer_numbers(self, live: LiveConsumer) -> dict[str, int]:
        return {
            "num_pending": _int(live.state, "num_pending"),
            "num_ack_pending": _int(live.state, "num_ack_pending"),
            "num_redelivered": _int(live.state, "num_redelivered"),
        }

    def _consumer_loss(self, live: LiveConsumer, doing: str, outcome: str) -> None:
        numbers = self._consumer_numbers(live)
        stream = self.live.streams.get(live.stream)
        stored = _int(stream.state, "messages") if stream else 0
        if not any(numbers.values()) and stored <= 0:
            return
        self.warn(
            "data-loss",
            f"{doing} its delivery state — {format_count(numbers['num_pending'])} pending, "
            f"{format_count(numbers['num_ack_pending'])} unacknowledged — is {outcome}",
            live.address,
            data=numbers,
        )

    def _stream_update_impact(self, live: LiveStream, change: ResourceChange) -> None:
        state = live.state
        messages = _int(state, "messages")
        size = _int(state, "bytes")
        before = change.before or {}
        after = change.after or {}
        address = live.address

        def lowered(key: str) -> tuple[int, int] | None:
            b = _int(before, key) or -1
            a = _int(after, key) or -1
            if a == -1 or (b != -1 and a >= b):
                return None
            return b, a

        if messages > 0:
            discard_new = after.get("discard") == "new"
            low = lowered("max_msgs")
            if low and messages > low[1]:
                n = messages - low[1]
                if discard_new:
                    self._over_limit_note(live, "max_msgs", format_count(low[1]), messages)
                else:
                    self.warn(
                        "data-loss",
                        f"lowering max_msgs to {format_count(low[1])} will remove about "
                        f"{format_count(n)} of {format_count(messages)} stored messages",
                        address,
                        "max_msgs",
                        {"messages": n, "stored_messages": messages},
                    )
            low = lowered("max_bytes")
            if low and size > low[1]:
                avg = size / messages
                n = min(messages, math.ceil((size - low[1]) / avg)) if avg else messages
                if discard_new:
                    self._over_limit_note(live, "max_bytes", format_size(low[1]), messages)
                else:
                    self.warn(
                        "data-loss",
                        f"lowering max_bytes to {format_size(low[1])} (the stream holds "
                        f"{format_size(size)}) will remove about {format_count(n)} of "
                        f"{format_count(messages)} stored messages",
                        address,
                        "max_bytes",
                        {"messages": n, "stored_messages": messages, "bytes": size - low[1]},
                    )
            low = lowered("max_msgs_per_subject")
            if low:
                subjects = _int(state, "num_subjects")
                when = (
                    "will remove"
                    if self.version >= V_PER_SUBJECT_ENFORCED_ON_UPDATE
                    else "will remove (for each subject when its next message arrives)"
                )
                if subjects and messages > subjects * low[1]:
                    n = messages - subjects * low[1]
                    self.warn(
                        "data-loss",
                        f"lowering max_msgs_per_subject to {format_count(low[1])} {when} up "
                        f"to about {format_count(n)} of {format_count(messages)} stored messages "
                        f"({format_count(subjects)} subjects)",
                        address,
                        "max_msgs_per_subject",
                        {"messages": n, "stored_messages": messages, "num_subjects": subjects},
                    )
                elif not subjects:
                    self.warn(
                        "data-loss",
                        f"lowering max_msgs_per_subject to {format_count(low[1])} {when} "
                        "some stored messages",
                        address,
                        "max_msgs_per_subject",
                        {"stored_messages": messages},
                    )
            self._max_age_impact(live, before, after, messages)
            if before.get("retention") == "limits" and after.get("retention") == "interest":
                self.warn(
                    "data-loss",
                    "switching retention from limits to interest removes stored messages "
                    f"without interest (the stream holds {format_count(messages)} messages)",
                    address,
                    "retention",
                    {"stored_messages": messages},
                )
        removed = sorted(set(before.get("subjects") or ()) - set(after.get("subjects") or ()))
        if removed:
            self.warn(
                "note",
                f"subjects removed from stream {live.name}: {', '.join(removed)}; new messages on "
                "them are no longer stored, messages already stored stay",
                address,
                "subjects",
                {"removed": removed},
            )
        if before.get("mirror") and not after.get("mirror"):
            self.warn(
                "note",
                f"stream {live.name} stops mirroring {before['mirror'].get('name')} and becomes "
                "a normal stream (mirror promotion); this cannot be undone in place",
                address,
                "mirror",
            )

    def _over_limit_note(self, live: LiveStream, key: str, limit: str, messages: int) -> None:
        self.warn(
            "note",
            f"stream {live.name} holds more than the new {key} {limit}: with discard new the "
            "server keeps the stored messages and refuses new ones until the stream is below "
            "the limit",
            live.address,
            key,
            {"stored_messages": messages},
        )

    def _max_age_impact(
        self, live: LiveStream, before: Mapping[str, Any], after: Mapping[str, Any], messages: int
    ) -> None:
        b = _int(before, "max_age")
        a = _int(after, "max_age")
        if a <= 0 or (b > 0 and a >= b):
            return
        first = _parse_time(live.state.get("first_ts"))
        last = _parse_time(live.state.get("last_ts"))
        human = format_duration(a)
        if first is None:
            self.warn(
                "data-loss",
                f"lowering max_age to {human} may remove some stored messages",
                live.address,
                "max_age",
                {"stored_messages": messages},
            )
            return
        cutoff = self.now.timestamp() - a / 1e9
        if first.timestamp() >= cutoff:
            return
        if last is None or last <= first:
            self.warn(
                "data-loss",
                f"messages older than {human} — some of {format_count(messages)} — will be removed",
                live.address,
                "max_age",
                {"stored_messages": messages},
            )
            return
        span = last.timestamp() - first.timestamp()
        fraction = min(1.0, max(0.0, (cutoff - first.timestamp()) / span))
        n = max(1, round(fraction * messages))
        self.warn(
            "data-loss",
            f"messages older than {human} — about {format_count(n)} of "
            f"{format_count(messages)} — will be removed",
            live.address,
            "max_age",
            {"messages": n, "stored_messages": messages},
        )

    # -------------------------------------------------------------------- build

    def build(self) -> Plan:
        self.version = parse_version(self.live.server.version)
        self.resolve_targets()
        self.plan_streams()
        self.plan_consumers()
        changes = [r.change for r in self.results if r.change is not None]
        groups: dict[int, list[ResourceChange]] = {1: [], 2: [], 3: [], 4: []}
        for r in self.results:
            if r.change is not None:
                groups[r.group].append(r.change)
        ordered: list[ResourceChange] = []
        for g in (1, 2, 3, 4):
            items = sorted(groups[g], key=lambda c: c.address)
            ordered.extend(_dependency_order(items) if g == 3 else items)
        assert len(ordered) == len(changes)
        return Plan(
            server=self.live.server,
            changes=tuple(ordered),
            messages=tuple(self.messages),
            unmanaged=tuple(sorted(self.unmanaged)),
            targets=tuple(self.targets),
            fingerprints=dict(sorted(self.fingerprints.items())),
        )


def _dependency_order(items: Sequence[ResourceChange]) -> list[ResourceChange]:
    """Streams sorted by address, but an origin (mirror/source) before the streams that read it."""
    by_name = {c.name: c for c in items}
    done: set[str] = set()
    out: list[ResourceChange] = []

    def deps(c: ResourceChange) -> Iterable[str]:
        config = c.after or {}
        mirror = config.get("mirror")
        if isinstance(mirror, Mapping) and mirror.get("name"):
            yield str(mirror["name"])
        for src in config.get("sources") or ():
            if isinstance(src, Mapping) and src.get("name"):
                yield str(src["name"])

    def visit(c: ResourceChange, stack: set[str]) -> None:
        if c.name in done or c.name in stack:
            return
        stack.add(c.name)
        for dep in sorted(deps(c)):
            if dep in by_name:
                visit(by_name[dep], stack)
        done.add(c.name)
        out.append(c)

    for c in items:
        visit(c, set())
    return out


def build_plan(
    desired: Topology,
    live: LiveState,
    *,
    targets: Sequence[str] = (),
    now: datetime,
) -> Plan:
    """Diff ``desired`` against ``live`` and return the plan, changes in apply order.

    Order: (1) consumer deletes, (2) stream deletes, (3) stream creates/replaces/updates (an origin
    before its mirrors and sourcing streams), (4) consumer creates/replaces/updates; by address
    within a group. A replace is one :class:`ResourceChange` (apply deletes, then recreates).
    """
    return _Builder(desired, live, tuple(targets), now).build()


def _bytes(size: int) -> str:
    """``1,463 bytes`` or ``10 GB (10,000,000,000 bytes)``."""
    human = format_size(size)
    exact = f"{size:,} bytes"
    return exact if human.endswith(" B") else f"{human} ({exact})"
