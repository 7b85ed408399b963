"""Which streams are buckets: the names and subjects the NATS clients give a bucket's stream.

Kept apart from :mod:`jelmore_infra.kinds.bucket` so that the stream and consumer kinds can leave
buckets out of their inventories without importing the bucket kinds (docs/buckets.md §1). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from jelmore_infra.kinds.base import int_of
from jelmore_infra.migration.steps import TEMP_SUFFIX, migration_in_progress, read_marker
from jelmore_infra.model import BUCKET_NAME, MAX_HISTORY

BucketKindName = Literal["kv", "objectstore"]


KV_PREFIX = "KV_"
OBJ_PREFIX = "OBJ_"


def stream_name(kind: BucketKindName, bucket: str) -> str:
    """``KV_<bucket>`` or ``OBJ_<bucket>``."""
    return (KV_PREFIX if kind == "kv" else OBJ_PREFIX) + bucket


def bucket_subjects(kind: BucketKindName, bucket: str) -> list[str]:
    if kind == "kv":
        return [f"$KV.{bucket}.>"]
    return [f"$O.{bucket}.C.>", f"$O.{bucket}.M.>"]


def bucket_named(stream: str) -> tuple[BucketKindName, str] | None:
    """``(kind, bucket)`` when ``stream`` has the name of a bucket's stream (``KV_<bucket>``,
    ``OBJ_<bucket>``): all that can be told of a stream the server lists without its config
    (missing or offline on a degraded cluster)."""
    prefixes: tuple[tuple[BucketKindName, str], ...] = (
        ("kv", KV_PREFIX),
        ("objectstore", OBJ_PREFIX),
    )
    for kind, prefix in prefixes:
        if stream.startswith(prefix) and BUCKET_NAME.match(stream[len(prefix) :]):
            return kind, stream[len(prefix) :]
    return None


def bucket_of(config: Mapping[str, Any]) -> tuple[BucketKindName, str] | None:
    """``("kv" | "objectstore", bucket)`` when the stream config is a bucket's, else ``None``.

    A bucket's stream has the clients' name and exactly their subjects; a KV stream also needs a
    per-subject limit of at least 1 (the clients refuse to bind to one without). A KV mirror has
    no subjects and mirrors a ``KV_`` stream (docs/buckets.md §4); object stores have neither
    mirrors nor sources in the clients, so such a stream stays a stream.
    """
    name = config.get("name")
    if not isinstance(name, str):
        return None
    subjects = config.get("subjects")
    mirror = config.get("mirror")
    if name.startswith(KV_PREFIX):
        bucket = name[len(KV_PREFIX) :]
        if mirror:
            # a KV mirror (nats.go): no subjects, the origin is another bucket's stream
            shaped = not subjects and str(mirror.get("name") or "").startswith(KV_PREFIX)
        else:
            shaped = subjects == bucket_subjects("kv", bucket)
        if BUCKET_NAME.match(bucket) and shaped and int_of(config, "max_msgs_per_subject") >= 1:
            return "kv", bucket
    elif name.startswith(OBJ_PREFIX) and not mirror and not config.get("sources"):
        bucket = name[len(OBJ_PREFIX) :]
        if BUCKET_NAME.match(bucket) and subjects == bucket_subjects("objectstore", bucket):
            return "objectstore", bucket
    return None


def migrating_buckets(streams: Mapping[str, Any]) -> dict[str, tuple[BucketKindName, str]]:
    """The buckets being migrated: stream name → ``(kind, bucket)``.

    ``streams``: the live streams by name (each with a ``config``). A bucket's migration copy
    (``KV_<b>_JELMORE_MIGRATE``) carries the bucket stream's original config in its marker; the
    bucket's own stream may meanwhile be frozen, copying back or gone.
    """
    if not any(n.endswith(TEMP_SUFFIX) for n in streams):
        return {}
    infos = [{"config": s.config} for s in streams.values()]
    out: dict[str, tuple[BucketKindName, str]] = {}
    for name, temp in migration_in_progress(infos).items():
        marker = read_marker({"config": streams[temp].config})
        found = bucket_of(marker.original) if marker is not None else None
        if found is not None:
            out[name] = found
    return out


__all__ = [
    "BUCKET_NAME",
    "MAX_HISTORY",
    "BucketKindName",
    "bucket_of",
    "bucket_subjects",
    "migrating_buckets",
    "stream_name",
]
