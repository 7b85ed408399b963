"""Set algebra over addresses and field by field comparison of normalised configs.

:class:`AddressSets` splits a kind's addresses into those only declared, only live, on both
sides and unavailable; :func:`field_deltas` lists the fields that differ between two normalised
configs (objects and metadata opened up into dotted paths), after a whole-config equality check
that settles the common no-change case at once.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jelmore_infra import fields as F
from jelmore_infra.address import Address
from jelmore_infra.kinds.base import FieldDelta

#: Lists the server treats as sets: their order is not a change.
_LIST_AS_SET = frozenset({"subjects", "filter_subjects"})
#: Objects always listed key by key (also when added or removed as a whole).
_FLATTEN_OBJECTS = frozenset({"consumer_limits", "republish", "subject_transform", "placement"})


@dataclass(frozen=True, slots=True)
class AddressSets:
    """One kind's addresses: declared only (create), live only (delete or leave), both (diff),
    and unavailable (skipped)."""

    desired: frozenset[Address]
    live: frozenset[Address]
    unavailable: frozenset[Address]

    @property
    def only_desired(self) -> frozenset[Address]:
        return self.desired - self.live

    @property
    def only_live(self) -> frozenset[Address]:
        return self.live - self.desired

    @property
    def both(self) -> frozenset[Address]:
        return self.desired & self.live

    @property
    def all(self) -> frozenset[Address]:
        return self.desired | self.live | self.unavailable

    @classmethod
    def of(
        cls, desired: Iterable[Address], live: Iterable[Address], unavailable: Iterable[Address]
    ) -> AddressSets:
        return cls(frozenset(desired), frozenset(live), frozenset(unavailable))


def same_value(name: str, before: Any, after: Any) -> bool:
    """Whether two normalised values of field ``name`` mean the same to the server."""
    if before == after:
        return True
    if name in _LIST_AS_SET and isinstance(before, list) and isinstance(after, list):
        return sorted(map(str, before)) == sorted(map(str, after))
    if name == "sources" and isinstance(before, list) and isinstance(after, list):
        key = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
        return sorted(map(key, before)) == sorted(map(key, after))
    return False


def field_deltas(
    before: Mapping[str, Any], after: Mapping[str, Any], table: Mapping[str, F.Field]
) -> list[FieldDelta]:
    """The fields whose values differ, in name order (identity and ignored fields never do)."""
    if before == after:
        return []
    out: list[FieldDelta] = []
    for name in sorted(set(before) | set(after)):
        fdef = table.get(name)
        if fdef is None or fdef.update in (F.Update.IDENTITY, F.Update.IGNORED):
            continue
        b, a = before.get(name), after.get(name)
        if same_value(name, b, a):
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
        out.append(FieldDelta(name, b, a, paths))
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
