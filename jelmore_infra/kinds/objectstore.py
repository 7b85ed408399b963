"""The object store kind: ``object_stores:`` entries, addresses ``objectstore.NAME``, streams
``OBJ_<NAME>``.

Everything but the identity and the field table is shared with KV buckets
(:mod:`jelmore_infra.kinds.bucket`; the server facts are in docs/buckets.md). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from jelmore_infra import fields as F
from jelmore_infra.address import FORMS
from jelmore_infra.kinds.bucket import BucketKind
from jelmore_infra.kinds.shape import BucketKindName
from jelmore_infra.plan import Kind


class ObjectStoreKind(BucketKind):
    name: ClassVar[str] = "objectstore"
    bucket_kind: ClassVar[BucketKindName] = "objectstore"
    plan_kind: ClassVar[Kind] = Kind.OBJECT_STORE
    form = FORMS["objectstore"]
    fields: ClassVar[Mapping[str, F.Field]] = F.OBJECT_STORE_FIELD_MAP
    topology_field: ClassVar[str] = "object_stores"
    delete_summary: ClassVar[tuple[str, ...]] = ("ttl", "storage", "max_bytes")
    migration_effects: ClassVar[tuple[str, ...]] = (
        "every object keeps all its chunks and its meta message; watchers must be started again",
    )


OBJECT_STORE = ObjectStoreKind()
