"""The contract of a resource kind (:class:`ResourceKind`) and the plan context it reads.

A kind is a stateless object; the diff (:mod:`jelmore_infra.diff`) calls its hooks with a
:class:`PlanContext` (the desired topology, the live state, the server version, what has been
decided for other resources) and collects what they return: normalised configs, diagnostics
(:class:`~jelmore_infra.plan.PlanMessage`) and impact records. Kinds never import the diff, so
they stay small and the dependency runs one way. See :mod:`jelmore_infra.kinds` for the list of
what a new kind must provide.

Pure (the API hooks only call the :class:`~jelmore_infra.live.jsapi.JetStreamAPI` given to them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from jelmore_infra import fields as F
from jelmore_infra.address import Address, AddressForm, try_parse
from jelmore_infra.impact import Impact
from jelmore_infra.model import LiveState, Topology
from jelmore_infra.plan import FieldChange, Kind, MessageKind, PlanMessage, ResourceChange

if TYPE_CHECKING:
    from jelmore_infra.live.jsapi import JetStreamAPI

Version = tuple[int, int, int]

#: What the plan decided for a resource (children read their parent's).
Fate = Literal[
    "create", "update", "replace", "migrate", "noop", "delete", "unmanaged", "unavailable"
]


def version_text(version: Version) -> str:
    return ".".join(str(p) for p in version)


def value_text(value: Any) -> str:
    """A value inside a replace reason: ``unset``, ``true``, ``workqueue``, JSON otherwise."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def int_of(mapping: Mapping[str, Any] | None, key: str) -> int:
    """``mapping[key]`` when it is an integer (not a bool), else 0."""
    value = (mapping or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def error(
    kind: MessageKind,
    message: str,
    address: str | None = None,
    field: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> PlanMessage:
    return PlanMessage("error", kind, message, address, field, dict(data or {}))


def warning(
    kind: MessageKind,
    message: str,
    address: str | None = None,
    field: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> PlanMessage:
    return PlanMessage("warning", kind, message, address, field, dict(data or {}))


def replicas_need_a_cluster(
    ctx: PlanContext, replicas: int, where: str, field: str
) -> PlanMessage | None:
    """The plan error for ``replicas`` > 1 on a server that is not clustered (else ``None``)."""
    if replicas <= 1 or ctx.live.server.cluster:
        return None
    return error(
        "invalid",
        f"{field} {replicas} needs a clustered server, and "
        f"{ctx.live.server.server_name} is not clustered (the server refuses: "
        f'"replicas > 1 not supported in non-clustered mode") ({where})',
        where,
        field,
    )


class FieldDelta:
    """One top-level field that differs between the live and the desired normalised config.

    ``paths``: the dotted paths (objects and metadata opened up) with their old and new values,
    as the plan lists them.
    """

    __slots__ = ("after", "before", "field", "paths")

    def __init__(
        self, field: str, before: Any, after: Any, paths: list[tuple[str, Any, Any]]
    ) -> None:
        self.field = field
        self.before = before
        self.after = after
        self.paths = paths


#: How one field change is carried out: ``IN_PLACE``, ``REPLACE`` or ``ONE_WAY`` (impossible).
Rule = tuple[F.Update, str | None]


class PlanContext(Protocol):
    """What a kind may read while the plan is built (implemented by the diff's builder)."""

    desired: Topology
    live: LiveState
    version: Version
    now: datetime
    targets: tuple[str, ...]

    def fate(self, address: Address) -> Fate | None:
        """What the plan decided for ``address`` so far (``None``: not planned yet)."""

    def in_scope(self, address: Address) -> bool:
        """Whether ``--target`` includes ``address``."""

    def normalized_stream(self, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """``normalize_stream(config)``, computed once per stream config."""


class ResourceKind:
    """One kind of resource: declarations plus the hooks the diff, apply and import call.

    Subclasses set the class attributes and override the hooks they need; the defaults suit a
    top-level resource with no special rules.
    """

    #: The keyword of its addresses and the plan's :class:`~jelmore_infra.plan.Kind`.
    name: ClassVar[str]
    plan_kind: ClassVar[Kind]
    form: ClassVar[AddressForm]
    #: The field table (``jelmore_infra.fields``): name → field.
    fields: ClassVar[Mapping[str, F.Field]]
    #: Dependency tier: a kind's resources are created after those of lower tiers and deleted
    #: before them (streams 0, consumers 1). Sets the apply phase (:mod:`jelmore_infra.diff.order`).
    tier: ClassVar[int] = 0
    #: Fields turned into a full normalisation again after a one-way change was undone.
    renormalize_after_patch: ClassVar[bool] = False
    #: Server error codes meaning "no such resource" (a delete of something gone is done).
    not_found_codes: ClassVar[frozenset[int]] = frozenset()
    #: What the server answers when a one-way flag is turned off (quoted in the plan error).
    one_way_refusals: ClassVar[Mapping[str, str]] = {}
    #: Fields ``import`` always writes, even when the server would fill in the same value.
    import_keep: ClassVar[tuple[str, ...]] = ()
    #: The :class:`~jelmore_infra.model.Topology` field holding this kind's specs.
    topology_field: ClassVar[str]
    #: Fields a plan shows for a resource that will be destroyed (the rest are counted).
    delete_summary: ClassVar[tuple[str, ...]] = ()
    #: Whether a replace may be a data-preserving migration (``replace_strategy: migrate``):
    #: the resource is one stream, named by :meth:`change_identity` (docs/migration.md).
    migratable: ClassVar[bool] = False
    #: Effects a migration has on this kind beyond a stream's (shown in the plan).
    migration_effects: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ inventory

    def desired_specs(self, topology: Topology) -> Mapping[Address, Any]:
        """The topology's resources of this kind, by address (specs with ``config``)."""
        raise NotImplementedError

    def live_resources(self, live: LiveState) -> Mapping[Address, Any]:
        """The live resources of this kind the plan considers, by address (with ``config``)."""
        raise NotImplementedError

    def excluded(self, address: Address) -> bool:
        """Never planned, listed or fingerprinted (the apply lock's own bucket)."""
        return False

    def unavailable_address(self, text: str, topology: Topology) -> Address | None:
        """The address of this kind that ``text``, an entry of the live read's ``unavailable``
        (``stream.NAME``, ``consumer.STREAM.NAME``), stands for; ``None``: not this kind's."""
        address = try_parse(text, (self.name,))
        return None if address is None or self.excluded(address) else address

    def parent_of(self, address: Address) -> Address | None:
        """The resource this one lives in (a consumer's stream): targeting it includes this."""
        return None

    def plannable(self, live: Any, declared: bool) -> bool:
        """Whether a live resource takes part in the plan (``declared``: it is in the topology)."""
        return True

    def spec_from_change(self, change: ResourceChange) -> tuple[Any, Any]:
        """``(topology key, spec)`` declaring ``change.after`` (saved plans are re-diffed)."""
        raise NotImplementedError

    def change_identity(self, address: Address) -> tuple[str, str]:
        """``(stream, name)`` of a :class:`~jelmore_infra.plan.ResourceChange` at ``address``."""
        return address.name, address.name

    def label(self, change: ResourceChange) -> str:
        """How the plan names the resource: ``stream "JELMORE"``."""
        return f'{self.name} "{change.name}"'

    def address_for(self, stream: str, name: str) -> Address:
        """The address of the resource a change names by ``stream`` and ``name``."""
        return Address(self.name, (name,))

    def address_of(self, change: ResourceChange) -> Address:
        return self.address_for(change.stream, change.name)

    # -------------------------------------------------------------- normalisation

    def normalize_live(self, ctx: PlanContext, address: Address, config: Any) -> dict[str, Any]:
        raise NotImplementedError

    def normalize_desired(
        self, ctx: PlanContext, address: Address, spec: Any
    ) -> dict[str, Any] | None:
        """The desired config in canonical form (``None``: cannot be planned, see ``gate``)."""
        raise NotImplementedError

    def normalize_config(
        self, config: Mapping[str, Any], version: Version, parent: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Normalise a config outside a plan (convergence, staleness, import)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- plan rules

    def gate(
        self, ctx: PlanContext, address: Address, spec: Any, live: Any
    ) -> tuple[bool, list[PlanMessage]]:
        """Before planning ``address``: ``(plan it?, diagnostics)`` (a child asks its parent)."""
        return True, []

    def parent_errors(self, ctx: PlanContext, address: Address) -> list[PlanMessage]:
        """Errors that stop a declared resource from being planned (its parent is missing…)."""
        return []

    def special_rule(self, ctx: PlanContext, delta: FieldDelta) -> Rule | None:
        """A server rule for this field change that the field table alone does not express."""
        return None

    def validate(
        self,
        ctx: PlanContext,
        address: Address,
        spec: Any,
        after: Mapping[str, Any],
        before: Mapping[str, Any] | None,
    ) -> list[PlanMessage]:
        """Diagnostics about the desired config against this server."""
        return []

    def forced_replace(self, ctx: PlanContext, address: Address) -> tuple[FieldChange, ...]:
        """Field changes that force a replace from outside (the consumer's stream is replaced)."""
        return ()

    def check_update(
        self, ctx: PlanContext, address: Address, live: Any, change: ResourceChange
    ) -> list[PlanMessage]:
        """Errors about an in-place update the server would refuse as a whole."""
        return []

    # -------------------------------------------------------------- data impact

    def delete_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        return ()

    def unmanaged_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        """An unmanaged resource lost anyway (with its parent); empty: it is left alone."""
        return ()

    def replace_impact(self, ctx: PlanContext, address: Address, live: Any) -> Iterable[Impact]:
        return ()

    def update_impact(
        self, ctx: PlanContext, address: Address, live: Any, change: ResourceChange
    ) -> Iterable[Impact]:
        return ()

    # ---------------------------------------------------------------- ordering

    def dependencies(self, change: ResourceChange) -> Iterable[str]:
        """Names of resources of the same kind that must be created or changed first."""
        return ()

    # --------------------------------------------------------------------- API

    def migration_config(
        self, name: str, after: Mapping[str, Any], version: Version
    ) -> dict[str, Any]:
        """The full stream config a migration of resource ``name`` ends with (``after``: the
        planned config, as a change carries it)."""
        return dict(after)

    async def create(self, api: JetStreamAPI, change: ResourceChange) -> None:
        raise NotImplementedError

    async def update(self, api: JetStreamAPI, change: ResourceChange) -> None:
        raise NotImplementedError

    async def delete(self, api: JetStreamAPI, change: ResourceChange) -> None:
        raise NotImplementedError
