"""The KV bucket kind: ``kv_buckets:`` entries, addresses ``kv.NAME``, streams ``KV_<NAME>``.

Everything but the identity and the field table is shared with object stores
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


class KVKind(BucketKind):
    name: ClassVar[str] = "kv"
    bucket_kind: ClassVar[BucketKindName] = "kv"
    plan_kind: ClassVar[Kind] = Kind.KV
    form = FORMS["kv"]
    fields: ClassVar[Mapping[str, F.Field]] = F.KV_FIELD_MAP
    topology_field: ClassVar[str] = "kv_buckets"
    migration_effects: ClassVar[tuple[str, ...]] = (
        "every key keeps its whole history (values, deletes and purges, in order), but a "
        "revision is a stream sequence number: revisions change, so an update that expects "
        "a revision must read the key again; watchers must be started again",
    )


KV = KVKind()
