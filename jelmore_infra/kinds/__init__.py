"""Resource kinds: one module per kind of JetStream resource, and the registry :data:`KINDS`.

Diff, plan ordering, apply, saved-plan checks and import loop over :data:`KINDS` (in dependency
order: a kind comes after the kinds its resources live in) instead of naming streams and
consumers. Today: :mod:`~jelmore_infra.kinds.stream`, :mod:`~jelmore_infra.kinds.kv`,
:mod:`~jelmore_infra.kinds.objectstore` (both on :mod:`~jelmore_infra.kinds.bucket`),
:mod:`~jelmore_infra.kinds.consumer` and :mod:`~jelmore_infra.kinds.event` (event types in the
catalogue bucket).

What a new kind (KV bucket, object store, event schema, …) must provide
------------------------------------------------------------------------

A module ``jelmore_infra/kinds/<kind>.py`` with one :class:`~jelmore_infra.kinds.base.ResourceKind`
subclass instance, added to :data:`KINDS` after the kinds it depends on. It declares:

1. **Identity**: ``name`` (the address keyword), ``plan_kind`` (a member of
   :class:`jelmore_infra.plan.Kind`), ``form`` (its :class:`~jelmore_infra.address.AddressForm`
   from :data:`jelmore_infra.address.FORMS`; add the form there if it is new), and
   ``change_identity``/``address_of`` when the address has more than one part.
2. **Fields**: ``fields``, its table from :mod:`jelmore_infra.fields` (value kinds, versions,
   update mode per field: in place / replace / one-way / identity / ignored).
3. **Inventory**: ``desired_specs(topology)`` and ``live_resources(live)`` by
   :class:`~jelmore_infra.address.Address`; optionally ``excluded`` and ``plannable``.
4. **Normalisation**: ``normalize_live``, ``normalize_desired`` (in a plan) and
   ``normalize_config`` (outside one: convergence, staleness, import), all to the same canonical
   form so that equal configs compare equal.
5. **Server rules per version** beyond the field table: ``special_rule`` (a field change's
   :class:`~jelmore_infra.fields.Update` and reason), ``one_way_refusals`` (the server's words),
   ``validate`` and ``check_update`` (diagnostics as plan messages), ``gate``/``parent_errors``/
   ``forced_replace`` for a kind that lives inside another.
6. **Data impact**: ``delete_impact``, ``replace_impact``, ``update_impact`` and
   ``unmanaged_impact`` yielding :mod:`jelmore_infra.impact` records (add a record type there and
   its sentence in :func:`jelmore_infra.render.impact.impact_text` if none fits).
7. **Apply**: ``tier`` (its apply phase: :mod:`jelmore_infra.diff.order`), ``dependencies``
   (resources of the same kind to create first), ``create``/``update``/``delete`` (the
   :class:`~jelmore_infra.live.jsapi.JetStreamAPI` calls) and ``not_found_codes``.
8. **Import**: ``import_keep`` (fields always written).
9. **Rendering**: ``label`` (``stream "NAME"``) and ``delete_summary`` (fields a delete shows);
   values are formatted from the field table.

The topology loader, the JSON schema and the live read need the kind too (outside this package).

Pure (no I/O at import; the API hooks only use the client they are given).
"""

from __future__ import annotations

from jelmore_infra.address import Address
from jelmore_infra.kinds.base import PlanContext, ResourceKind
from jelmore_infra.kinds.consumer import CONSUMER
from jelmore_infra.kinds.event import EVENT
from jelmore_infra.kinds.kv import KV
from jelmore_infra.kinds.objectstore import OBJECT_STORE
from jelmore_infra.kinds.stream import STREAM
from jelmore_infra.plan import Kind, ResourceChange

#: Every kind, in dependency order (a kind's resources live in those of earlier kinds).
KINDS: tuple[ResourceKind, ...] = (STREAM, KV, OBJECT_STORE, CONSUMER, EVENT)

_BY_KEYWORD: dict[str, ResourceKind] = {k.name: k for k in KINDS}
_BY_PLAN_KIND: dict[Kind, ResourceKind] = {k.plan_kind: k for k in KINDS}

#: The address keywords ``--target`` accepts.
TARGET_KEYWORDS: tuple[str, ...] = tuple(k.name for k in KINDS)


def kind_named(keyword: str) -> ResourceKind:
    """The kind whose addresses start with ``keyword`` (``KeyError`` if none)."""
    return _BY_KEYWORD[keyword]


def kind_of(change: ResourceChange) -> ResourceKind:
    """The kind of a planned change."""
    return _BY_PLAN_KIND[change.kind]


def kind_for(plan_kind: Kind) -> ResourceKind:
    """The kind module behind a plan's :class:`~jelmore_infra.plan.Kind`."""
    return _BY_PLAN_KIND[plan_kind]


def kind_at(address: Address) -> ResourceKind | None:
    """The kind of an address (``None`` for a keyword no kind registers)."""
    return _BY_KEYWORD.get(address.kind)


__all__ = [
    "CONSUMER",
    "EVENT",
    "KINDS",
    "KV",
    "OBJECT_STORE",
    "STREAM",
    "TARGET_KEYWORDS",
    "PlanContext",
    "ResourceKind",
    "kind_at",
    "kind_for",
    "kind_named",
    "kind_of",
]
