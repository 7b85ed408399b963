"""Building the plan: every kind's addresses, each resource diffed, the result in apply order.

For each kind of :data:`jelmore_infra.kinds.KINDS` (in dependency order) the builder takes the
declared, live and unavailable addresses (:class:`~jelmore_infra.diff.changes.AddressSets`),
keeps those ``--target`` selects, and for each one decides: skip (unavailable, or the kind's
``gate`` says so), delete or leave alone (live only), create (declared only), or compare the
normalised configs (both) and classify every field change with the server rules
(:mod:`jelmore_infra.diff.rules`). The kind adds its own diagnostics and its data-impact records
(:mod:`jelmore_infra.diff.impact`). What it decides for a resource (its fate) is what the
resources inside it read.

Pure: no I/O, no network, no clock (``now`` is a parameter).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from jelmore_infra import fields as F
from jelmore_infra.address import Address, AddressError
from jelmore_infra.address import parse as parse_address
from jelmore_infra.diff.changes import AddressSets, field_deltas
from jelmore_infra.diff.impact import impact_message
from jelmore_infra.diff.migrate import (
    orphan_error,
    plan_migration,
    plan_resume,
    resume_note,
    resumed_consumers,
)
from jelmore_infra.diff.order import order_changes
from jelmore_infra.diff.policy import with_policy
from jelmore_infra.diff.rules import check_fields, classify, one_way_error
from jelmore_infra.impact import Impact
from jelmore_infra.kinds import KINDS, TARGET_KEYWORDS, ResourceKind, kind_at
from jelmore_infra.kinds.base import Fate, Version, warning
from jelmore_infra.migration.steps import migration_in_progress, strategy_note
from jelmore_infra.model import REPLACE_MIGRATE, LiveState, Topology, is_managed, parse_version
from jelmore_infra.normalize import fingerprint, normalize_stream, wire_config
from jelmore_infra.plan import Action, FieldChange, Kind, Plan, PlanMessage, ResourceChange


class LiveFingerprints(Mapping[str, str | None]):
    """Address → :func:`~jelmore_infra.normalize.fingerprint` of its live normalised config
    (``None``: nothing live), each digest computed when it is first read.

    A plan shown on a terminal reads none of them; a saved or JSON plan reads every one. The
    normalised configs are the builder's and are never changed once recorded. Addresses are
    iterated in sorted order (sorted when first iterated).
    """

    __slots__ = ("_configs", "_digests", "_order")

    def __init__(self, configs: Mapping[str, Mapping[str, Any] | None]) -> None:
        self._configs = configs
        self._digests: dict[str, str | None] = {}
        self._order: list[str] | None = None

    def __getitem__(self, address: str) -> str | None:
        try:
            return self._digests[address]
        except KeyError:
            pass
        config = self._configs[address]
        digest = fingerprint(config) if config is not None else None
        self._digests[address] = digest
        return digest

    def __iter__(self) -> Iterator[str]:
        if self._order is None:
            self._order = sorted(self._configs)
        return iter(self._order)

    def __contains__(self, address: object) -> bool:
        return address in self._configs

    def __len__(self) -> int:
        return len(self._configs)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


@dataclass
class _Inventory:
    """One kind's resources on both sides, and the address sets they give."""

    desired: Mapping[Address, Any]
    live: Mapping[Address, Any]
    sets: AddressSets


@dataclass
class _Builder:
    desired: Topology
    live: LiveState
    targets: tuple[str, ...]
    now: datetime
    version: Version = (0, 0, 0)
    messages: list[PlanMessage] = field(default_factory=list)
    changes: list[ResourceChange] = field(default_factory=list)
    #: Address → its live normalised config (``None``: not live), fingerprinted when read.
    live_normalized: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    unmanaged: list[str] = field(default_factory=list)
    fates: dict[Address, Fate] = field(default_factory=dict)
    targeted: set[Address] = field(default_factory=set)
    _stream_norms: dict[str, tuple[Mapping[str, Any], dict[str, Any]]] = field(default_factory=dict)
    #: Streams left half migrated: name → its temporary copy (never planned itself).
    migrating: dict[str, str] = field(default_factory=dict)
    #: Addresses the server lists as missing or offline (of any kind) → why.
    unavailable_reasons: dict[Address, str] = field(default_factory=dict)

    # ------------------------------------------------------------ PlanContext

    def fate(self, address: Address) -> Fate | None:
        return self.fates.get(address)

    def in_scope(self, address: Address) -> bool:
        if not self.targets or address in self.targeted:
            return True
        kind = kind_at(address)
        parent = kind.parent_of(address) if kind is not None else None
        return parent is not None and parent in self.targeted

    def normalized_stream(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """``normalize_stream`` once per stream config (every consumer of a stream asks)."""
        cached = self._stream_norms.get(name)
        if cached is not None and cached[0] is config:
            return cached[1]
        normalized = normalize_stream(config, self.version)
        self._stream_norms[name] = (config, normalized)
        return normalized

    # ------------------------------------------------------------------ inventory

    def inventory(self, kind: ResourceKind) -> _Inventory:
        desired = kind.desired_specs(self.desired)
        every = kind.live_resources(self.live)
        live = {a: r for a, r in every.items() if kind.plannable(r, a in desired)}
        if kind.name == "stream" and self.migrating:
            temps = set(self.migrating.values())
            live = {a: r for a, r in live.items() if a.name not in temps}
        unavailable = []
        for text, reason in self.live.unavailable.items():
            address = kind.unavailable_address(text, self.desired)
            if address is not None:
                unavailable.append(address)
                self.unavailable_reasons[address] = reason
        return _Inventory(desired, live, AddressSets.of(desired, live, unavailable))

    def resolve_targets(self, inventories: Mapping[str, _Inventory]) -> None:
        for target in self.targets:
            try:
                address = parse_address(target, TARGET_KEYWORDS)
            except AddressError as exc:
                self.messages.append(PlanMessage("error", "invalid", f"target {exc}", target))
                continue
            if address in inventories[address.kind].sets.all:
                self.targeted.add(address)
            else:
                self.messages.append(
                    PlanMessage(
                        "error",
                        "invalid",
                        f"target {target} is neither in the topology nor on the server",
                        target,
                    )
                )

    # ------------------------------------------------------------------- planning

    def plan_kind(self, kind: ResourceKind, inv: _Inventory) -> None:
        for address in sorted(inv.sets.all, key=lambda a: a.parts):
            if self.in_scope(address):
                self.plan_one(kind, address, inv.desired.get(address), inv.live.get(address))

    def plan_one(self, kind: ResourceKind, address: Address, spec: Any, live: Any) -> None:
        if kind.name == "consumer" and live is None and self._resumed_consumer(address):
            return  # the interrupted migration re-creates it at its position
        if kind.migratable and kind.change_identity(address)[0] in self.migrating:
            self._plan_resume(kind, address, spec, live)
            return
        go, messages = kind.gate(self, address, spec, live)
        self.messages.extend(messages)
        if not go:
            return
        where = str(address)
        if address in self.unavailable_reasons:
            self.fates[address] = "unavailable"
            self._unavailable(where, self.unavailable_reasons[address], spec is not None)
            return
        before = kind.normalize_live(self, address, live.config) if live is not None else None
        self.live_normalized[where] = before
        if spec is None:
            assert live is not None
            assert before is not None
            if is_managed(live.config):
                self.fates[address] = "delete"
                self._add(kind, address, Action.DELETE, before, None, ())
                self._impacts(kind.delete_impact(self, address, live))
                return
            lost = list(kind.unmanaged_impact(self, address, live))
            if lost:
                self._impacts(lost)
            else:
                self.fates[address] = "unmanaged"
                self._unmanaged(where)
            return
        self.messages.extend(check_fields(kind, self, where, spec.config))
        errors = kind.parent_errors(self, address)
        if errors:
            self.messages.extend(errors)
            return
        after = kind.normalize_desired(self, address, spec)
        assert after is not None
        if kind.plan_kind is Kind.STREAM and not spec.config.get("mirror"):
            # Without a mirror the desired config is normalised as it is written: this is what
            # ``normalized_stream`` would compute again for each of the stream's consumers.
            self._stream_norms[address.name] = (spec.config, after)
        self.messages.extend(kind.validate(self, address, spec, after, before))
        if before is None:
            self.fates[address] = "create"
            wire = wire_config(after, self.version, kind.fields)
            self._add(kind, address, Action.CREATE, None, wire, (), expected=after)
            return
        change = self._diff_existing(
            kind, address, before, after, live.config, kind.forced_replace(self, address)
        )
        migrate = getattr(spec, "replace_strategy", None) == REPLACE_MIGRATE
        if change is not None and change.action is Action.REPLACE and migrate and kind.migratable:
            self._to_migrate(kind, address, change, live)
        elif change is None:
            self.fates[address] = "noop"
        elif change.action is Action.REPLACE:
            self.fates[address] = "replace"
            self._impacts(kind.replace_impact(self, address, live))
        else:
            self.fates[address] = "update"
            self._impacts(kind.update_impact(self, address, live, change))
            self.messages.extend(kind.check_update(self, address, live, change))
            if migrate:
                self.messages.extend(self._at(kind, address, [strategy_note(address.name)]))

    # ------------------------------------------------------------------ migration

    def _at(
        self, kind: ResourceKind, address: Address, messages: Iterable[PlanMessage]
    ) -> list[PlanMessage]:
        """Migration ``messages`` (about a stream) told at ``address`` (a bucket's stream's)."""
        if kind.name == "stream":
            return list(messages)
        stream = f"stream.{kind.change_identity(address)[0]}"
        own = f"stream.{address.name}"
        return [
            replace(m, address=str(address)) if m.address in (stream, own) else m for m in messages
        ]

    def _migration(self, kind: ResourceKind, migration: dict[str, Any]) -> dict[str, Any]:
        """A kind's own migration effects added to the stream's."""
        if kind.migration_effects:
            migration["effects"] = [*migration.get("effects", ()), *kind.migration_effects]
        return migration

    def _to_migrate(
        self, kind: ResourceKind, address: Address, change: ResourceChange, live: Any
    ) -> None:
        """Turn the replace ``change`` of a stream or bucket that opts in into a migrate."""
        assert change.after is not None
        target = kind.migration_config(address.name, change.after, self.version)
        migration, diagnostics = plan_migration(self.desired, self.live, live, target, self.version)
        migration = self._migration(kind, migration)
        self.messages.extend(self._at(kind, address, diagnostics))
        self.changes[self.changes.index(change)] = replace(
            change, action=Action.MIGRATE, migration=migration
        )
        self.fates[address] = "migrate"
        for n, m in enumerate(self.messages):
            if m.kind == "adopt" and m.address == change.address:
                text = m.message.replace(" and replaces it", " and migrates it")
                self.messages[n] = replace(m, message=text)

    def _resumed_consumer(self, address: Address) -> bool:
        temp = self.migrating.get(address.parts[0])
        return temp is not None and address.parts[1] in resumed_consumers(self.live, temp)

    def _plan_resume(self, kind: ResourceKind, address: Address, spec: Any, live: Any) -> None:
        """A stream or bucket left half migrated: a migrate that resumes, never a destructive
        change."""
        name = kind.change_identity(address)[0]
        temp = self.migrating[name]
        where = str(address)
        before = kind.normalize_live(self, address, live.config) if live is not None else None
        self.live_normalized[where] = before
        if spec is None:
            self.messages.extend(self._at(kind, address, [orphan_error(name, temp)]))
            return
        after = kind.normalize_desired(self, address, spec)
        assert after is not None
        wire = wire_config(after, self.version, kind.fields)
        target = kind.migration_config(address.name, wire, self.version)
        migration, errors = plan_resume(self.live, name, temp, target, self.version)
        migration = self._migration(kind, migration)
        self.messages.extend(self._at(kind, address, [*errors, resume_note(name, temp)]))
        fields: tuple[FieldChange, ...] = ()
        if before is not None:
            fields = tuple(
                FieldChange(path, b, a)
                for d in field_deltas(before, after, kind.fields)
                for path, b, a in d.paths
            )
        self.fates[address] = "migrate"
        change = self._add(kind, address, Action.MIGRATE, before, wire, fields)
        self.changes[-1] = replace(change, migration=migration)

    def _diff_existing(
        self,
        kind: ResourceKind,
        address: Address,
        before: dict[str, Any],
        after: dict[str, Any],
        live_config: Mapping[str, Any],
        extra: tuple[FieldChange, ...] = (),
    ) -> ResourceChange | None:
        where = str(address)
        deltas = field_deltas(before, after, kind.fields)
        if not deltas and not extra:
            return None
        classified = [(d, *classify(kind, self, d)) for d in deltas]
        replacing = bool(extra) or any(mode is F.Update.REPLACE for _, mode, _ in classified)
        one_way = [d for d, mode, _ in classified if mode is F.Update.ONE_WAY]
        expected: dict[str, Any] | None = after
        if one_way and not replacing:
            # The server refuses to turn these off. Plan errors; the config apply would send
            # keeps the live value (docs/server-semantics.md), so the rest stays truthful.
            patched = dict(after)
            for d in one_way:
                self.messages.append(one_way_error(kind, where, address.name, d))
                patched[d.field] = d.before
            if kind.renormalize_after_patch:
                patched = kind.normalize_config(patched, self.version, None)
            after = patched
            expected = None  # (patched by hand: not what the diff normalised)
            classified = [
                (d, *classify(kind, self, d)) for d in field_deltas(before, after, kind.fields)
            ]
        changes: list[FieldChange] = list(extra)
        for d, mode, reason in classified:
            replace = mode is F.Update.REPLACE
            for path, b, a in d.paths:
                why = reason if replace else None
                changes.append(FieldChange(path, b, a, forces_replace=replace, reason=why))
        if not changes:
            return None
        action = Action.REPLACE if any(c.forces_replace for c in changes) else Action.UPDATE
        if not is_managed(live_config):
            self.messages.append(
                warning(
                    "adopt",
                    f"{where} exists but was not created by jelmore-infra; the plan adopts it "
                    "(adds the jelmore.managed-by metadata)"
                    + (" and replaces it" if action is Action.REPLACE else ""),
                    where,
                )
            )
        wire = wire_config(after, self.version, kind.fields)
        return self._add(kind, address, action, before, wire, tuple(changes), expected)

    # ------------------------------------------------------------------- records

    def _add(
        self,
        kind: ResourceKind,
        address: Address,
        action: Action,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        fields: tuple[FieldChange, ...],
        expected: dict[str, Any] | None = None,
    ) -> ResourceChange:
        """Record a change; ``expected``: the normalised config ``after`` was written from."""
        stream, name = kind.change_identity(address)
        change = ResourceChange(
            address=str(address),
            kind=kind.plan_kind,
            stream=stream,
            name=name,
            action=action,
            before=before,
            after=after,
            fields=fields,
            fingerprint=fingerprint(before) if before is not None else None,
            expected=expected,
        )
        self.changes.append(change)
        return change

    def _impacts(self, records: Iterable[Impact]) -> None:
        self.messages.extend(impact_message(r) for r in records)

    def _unavailable(self, address: str, reason: str, declared: bool) -> None:
        tail = (
            "; it is in the topology, but no change is planned for it until the server reports it"
            if declared
            else "; it is left alone"
        )
        self.messages.append(
            warning(
                "unavailable",
                f"{address} is unavailable on the server ({reason}){tail}",
                address,
                data={"reason": reason},
            )
        )

    def _unmanaged(self, address: str) -> None:
        self.unmanaged.append(address)
        self.messages.append(
            warning(
                "unmanaged",
                f"{address} is not managed by jelmore-infra and not in the topology; left alone",
                address,
            )
        )

    # --------------------------------------------------------------------- build

    def build(self) -> Plan:
        self.version = parse_version(self.live.server.version)
        self.migrating = migration_in_progress(
            {"config": s.config} for s in self.live.streams.values()
        )
        inventories = {kind.name: self.inventory(kind) for kind in KINDS}
        self.resolve_targets(inventories)
        for kind in KINDS:
            self.plan_kind(kind, inventories[kind.name])
        plan = Plan(
            server=self.live.server,
            changes=tuple(order_changes(self.changes)),
            messages=tuple(self.messages),
            unmanaged=tuple(sorted(self.unmanaged)),
            targets=tuple(self.targets),
            fingerprints=LiveFingerprints(self.live_normalized),
        )
        return with_policy(plan, self.desired)


def build_plan(
    desired: Topology,
    live: LiveState,
    *,
    targets: Sequence[str] = (),
    now: datetime,
) -> Plan:
    """Diff ``desired`` against ``live`` and return the plan, changes in apply order.

    The order (:mod:`jelmore_infra.diff.order`): consumer deletes, stream deletes, stream
    creates/replaces/updates (an origin before its mirrors and sourcing streams), consumer
    creates/replaces/updates; by address within a phase. A replace is one
    :class:`ResourceChange` (apply deletes, then recreates).
    """
    return _Builder(desired, live, tuple(targets), now).build()
