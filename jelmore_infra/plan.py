"""The plan: plain data saying what apply will do, and everything a reviewer must know about it.

A closed action enum (create ``+``, update ``~``, replace ``-/+``, migrate ``~>``, delete ``-``,
no-op), one
:class:`ResourceChange` per resource, :class:`PlanMessage` for errors and warnings (impossible
changes, data loss, unmanaged resources), and the server identity the plan was made against. The
human, JSON and Markdown views are all rendered from this object, and a saved plan is its JSON.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from enum import StrEnum
from typing import Any, Literal

from jelmore_infra.address import Address
from jelmore_infra.address import parse as parse_address
from jelmore_infra.impact import Impact, impact_from_dict
from jelmore_infra.model import ServerIdentity

FORMAT_VERSION = 1


class Action(StrEnum):
    """What apply does to one resource."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    #: A replace that keeps the stream's messages (``replace_strategy: migrate``,
    #: :mod:`jelmore_infra.migration`): the change carries a ``migration`` object.
    MIGRATE = "migrate"
    DELETE = "delete"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {
            "create": "+",
            "update": "~",
            "replace": "-/+",
            "migrate": "~>",
            "delete": "-",
            "no-op": " ",
        }[self.value]


class Kind(StrEnum):
    STREAM = "stream"
    CONSUMER = "consumer"
    KV = "kv"
    OBJECT_STORE = "objectstore"
    EVENT = "event"


MessageKind = Literal[
    "one-way",  # a change the server can never make (deny_delete true → false, …)
    "needs-newer-server",  # a field the connected server does not know
    "invalid",  # a change the server would reject for another reason
    "data-loss",  # stored messages or consumer state will be lost
    "unmanaged",  # a live resource not created by jelmore-infra, left alone
    "unavailable",  # a live resource the server reported missing/offline
    "adopt",  # an unmanaged resource named in the topology will be taken over
    "preflight",  # a known server fault or risky setting (jelmore_infra.preflight)
    "note",  # anything else a reviewer should read
]


@dataclass(frozen=True, slots=True)
class PlanMessage:
    """An error (blocks apply) or a warning (shown in every format).

    ``impact``: the typed data-impact record behind a data-loss warning or note (``message`` is
    then its text, worded by :func:`jelmore_infra.render.impact.impact_text`).
    """

    severity: Literal["error", "warning"]
    kind: MessageKind
    message: str
    address: str | None = None
    field: str | None = None
    #: Numbers behind the message (messages, bytes, pending, …), for JSON consumers.
    data: Mapping[str, Any] = dc_field(default_factory=dict)
    impact: Impact | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "severity": self.severity,
            "kind": self.kind,
            "message": self.message,
            "address": self.address,
            "field": self.field,
            "data": dict(self.data),
        }
        if self.impact is not None:
            out["impact"] = self.impact.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanMessage:
        impact = d.get("impact")
        return cls(
            severity=d["severity"],
            kind=d["kind"],
            message=d["message"],
            address=d.get("address"),
            field=d.get("field"),
            data=dict(d.get("data") or {}),
            impact=impact_from_dict(impact) if impact is not None else None,
        )


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's old and new value (``None`` when absent on that side).

    ``path`` is the field's JSON name, dotted for nested fields
    (``consumer_limits.max_ack_pending``).
    ``forces_replace`` names a field the server will not update in place; ``reason`` says why.
    """

    path: str
    before: Any
    after: Any
    forces_replace: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "forces_replace": self.forces_replace,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FieldChange:
        return cls(
            path=d["path"],
            before=d.get("before"),
            after=d.get("after"),
            forces_replace=bool(d.get("forces_replace")),
            reason=d.get("reason"),
        )


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """What happens to one stream or consumer.

    ``before`` is the live config (normalised, ``None`` for a create); ``after`` is the full config
    apply sends (``None`` for a delete). ``fingerprint`` is a digest of the live normalised config
    (``None`` when the resource does not exist), so a saved plan can tell if the server moved on.
    ``migration``: for a migrate, its steps and effects
    (:meth:`jelmore_infra.migration.steps.MigrationPlan.to_dict`, plus ``resume``: an interrupted
    migration is continued).
    """

    address: str
    kind: Kind
    stream: str
    name: str
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: tuple[FieldChange, ...] = ()
    fingerprint: str | None = None
    migration: Mapping[str, Any] | None = None
    #: The normalised config the diff worked out for ``after`` (``None``: not known, as in a plan
    #: read back from a file). Not part of the plan's data (left out of :meth:`to_dict` and of
    #: comparisons): apply's check of a create or update reply compares with it instead of
    #: normalising ``after`` again.
    expected: Mapping[str, Any] | None = dc_field(default=None, compare=False, repr=False)

    @property
    def addr(self) -> Address:
        """The parsed :attr:`address`."""
        return parse_address(self.address)

    @property
    def replace_reasons(self) -> tuple[str, ...]:
        return tuple(
            f.reason or f"{f.path} cannot be changed in place"
            for f in self.fields
            if f.forces_replace
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            "address": self.address,
            "kind": self.kind.value,
            "stream": self.stream,
            "name": self.name,
            "action": self.action.value,
            "before": self.before,
            "after": self.after,
            "fields": [f.to_dict() for f in self.fields],
            "replace_reasons": list(self.replace_reasons),
            "fingerprint": self.fingerprint,
        }
        if self.migration is not None:
            out["migration"] = dict(self.migration)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResourceChange:
        return cls(
            address=d["address"],
            kind=Kind(d["kind"]),
            stream=d["stream"],
            name=d["name"],
            action=Action(d["action"]),
            before=d.get("before"),
            after=d.get("after"),
            fields=tuple(FieldChange.from_dict(f) for f in d.get("fields") or ()),
            fingerprint=d.get("fingerprint"),
            migration=dict(d["migration"]) if d.get("migration") is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Summary:
    add: int
    change: int
    replace: int
    destroy: int
    migrate: int = 0

    @property
    def total(self) -> int:
        return self.add + self.change + self.replace + self.destroy + self.migrate


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole plan. ``changes`` are in apply order and exclude no-ops.

    ``fingerprints`` records the live fingerprint of every resource the plan touches or checked
    (``None`` = did not exist), so applying a saved plan can refuse when the server has moved on.
    """

    server: ServerIdentity
    changes: tuple[ResourceChange, ...] = ()
    messages: tuple[PlanMessage, ...] = ()
    unmanaged: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    fingerprints: Mapping[str, str | None] = dc_field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    #: The environment (``--env``) the plan was made for; a saved plan is applied only there.
    environment: str | None = None

    @property
    def errors(self) -> tuple[PlanMessage, ...]:
        return tuple(m for m in self.messages if m.severity == "error")

    @property
    def warnings(self) -> tuple[PlanMessage, ...]:
        return tuple(m for m in self.messages if m.severity == "warning")

    def data_loss(self) -> tuple[PlanMessage, ...]:
        return tuple(m for m in self.messages if m.kind == "data-loss")

    def summary(self) -> Summary:
        def count(action: Action) -> int:
            return sum(1 for c in self.changes if c.action is action)

        return Summary(
            add=count(Action.CREATE),
            change=count(Action.UPDATE),
            replace=count(Action.REPLACE),
            destroy=count(Action.DELETE),
            migrate=count(Action.MIGRATE),
        )

    @property
    def has_changes(self) -> bool:
        return self.summary().total > 0

    def to_dict(self) -> dict[str, Any]:
        s = self.summary()
        summary = {"add": s.add, "change": s.change, "replace": s.replace, "destroy": s.destroy}
        if s.migrate:
            summary["migrate"] = s.migrate
        return {
            "format_version": self.format_version,
            "tool": "jelmore-infra",
            "environment": self.environment,
            "server": self.server.to_dict(),
            "summary": summary,
            "errors": [m.to_dict() for m in self.errors],
            "warnings": [m.to_dict() for m in self.warnings],
            "changes": [c.to_dict() for c in self.changes],
            "unmanaged": list(self.unmanaged),
            "targets": list(self.targets),
            "fingerprints": dict(sorted(self.fingerprints.items())),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        messages: Iterable[Mapping[str, Any]] = [*d.get("errors", ()), *d.get("warnings", ())]
        return cls(
            server=ServerIdentity.from_dict(d["server"]),
            changes=tuple(ResourceChange.from_dict(c) for c in d.get("changes", ())),
            messages=tuple(PlanMessage.from_dict(m) for m in messages),
            unmanaged=tuple(d.get("unmanaged", ())),
            targets=tuple(d.get("targets", ())),
            fingerprints=dict(d.get("fingerprints", {})),
            format_version=int(d["format_version"]),
            environment=d.get("environment"),
        )
