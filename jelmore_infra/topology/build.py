"""Building the desired model from validated topology entries.

Validation turns each stream and consumer group into a *draft*: the settings the user wrote, in
JetStream wire form, with where each was written. This module turns drafts into
:class:`~jelmore_infra.model.StreamSpec` / :class:`~jelmore_infra.model.ConsumerSpec`: it adds the
name, the ``jelmore.managed-by`` ownership marker and a consumer group's runtime settings
(``jelmore.retry-delays``, ``jelmore.dead-letter-*``) to ``metadata``. It never fills in server
defaults (the normaliser does that). A spec takes over its draft's ``locations`` (drafts are
not used after they are built). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from jelmore_infra import model
from jelmore_infra.diagnostics import Location
from jelmore_infra.model import BucketSpec, ConsumerSpec, JSONDict, StreamSpec, Topology
from jelmore_infra.units import format_duration

_T = TypeVar("_T")


class Locations(MutableMapping[str, Location]):
    """Setting path → where it is written, each place made a :class:`Location` only when it is
    asked for (by a check or a message: most of a large topology's tens of thousands never are).

    :func:`place` records a located node; a plain assignment records a ``Location``.
    """

    __slots__ = ("_places",)

    def __init__(self) -> None:
        self._places: dict[str, Any] = {}

    def __getitem__(self, path: str) -> Location:
        found = self._places[path]
        if type(found) is not Location:
            found = self._places[path] = found.loc
        return found  # type: ignore[no-any-return]

    @overload
    def get(self, path: str, /) -> Location | None: ...

    @overload
    def get(self, path: str, /, default: Location | _T) -> Location | _T: ...

    def get(self, path: str, /, default: object = None) -> object:
        # (the checks ask a lot: one call instead of Mapping.get's two and a try)
        found = self._places.get(path)
        if found is None:
            return default
        if type(found) is not Location:
            found = self._places[path] = found.loc
        return found

    def __setitem__(self, path: str, location: Location) -> None:
        self._places[path] = location

    def __delitem__(self, path: str) -> None:
        del self._places[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._places)

    def __len__(self) -> int:
        return len(self._places)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def place(locations: MutableMapping[str, Location], path: str, node: Any) -> None:
    """Record that ``path`` is written where the located ``node`` is (see :class:`Locations`)."""
    if type(locations) is Locations:
        locations._places[path] = node
    else:
        locations[path] = node.loc


@dataclass(slots=True)
class StreamDraft:
    """A stream as written: user settings in wire form and their places (dotted paths)."""

    name: str
    location: Location
    config: JSONDict = field(default_factory=dict)
    locations: Locations = field(default_factory=Locations)
    #: Every setting written, valid or not (so checks do not complain about a missing one).
    written: set[str] = field(default_factory=set)
    #: ``jelmore.replace_strategy`` (an instruction for apply, never sent to the server).
    replace_strategy: str = model.REPLACE_RECREATE
    #: ``jelmore.durability`` (read by the preflight checks, never sent to the server).
    durability: str = model.DURABILITY_DEFAULT


@dataclass(slots=True)
class GroupDraft:
    """A consumer group as written, with its ``jelmore:`` runtime settings apart."""

    name: str
    location: Location
    stream: str | None = None
    config: JSONDict = field(default_factory=dict)
    locations: Locations = field(default_factory=Locations)
    written: set[str] = field(default_factory=set)
    retry_delays: list[int] | None = None
    dead_letter_stream: str | None = None
    dead_letter_subject: str | None = None


def group_metadata(draft: GroupDraft) -> dict[str, str]:
    """The ``jelmore.*`` metadata keys carrying a group's runtime settings."""
    meta: dict[str, str] = {}
    if draft.retry_delays is not None:
        meta[model.META_RETRY_DELAYS] = ",".join(format_duration(d) for d in draft.retry_delays)
    if draft.dead_letter_stream is not None:
        meta[model.META_DEAD_LETTER_STREAM] = draft.dead_letter_stream
    if draft.dead_letter_subject is not None:
        meta[model.META_DEAD_LETTER_SUBJECT] = draft.dead_letter_subject
    return meta


def build_stream(draft: StreamDraft) -> StreamSpec:
    config: JSONDict = {"name": draft.name}
    config.update(draft.config)
    user_meta = draft.config.get("metadata") or {}
    config["metadata"] = {model.MANAGED_BY_KEY: model.MANAGED_BY_VALUE, **user_meta}
    return StreamSpec(
        draft.name,
        config,
        draft.location,
        draft.locations,
        draft.replace_strategy,
        draft.durability,
    )


def build_consumer(draft: GroupDraft) -> ConsumerSpec:
    assert draft.stream is not None
    config: JSONDict = {"durable_name": draft.name}
    config.update(draft.config)
    user_meta = draft.config.get("metadata") or {}
    config["metadata"] = {
        model.MANAGED_BY_KEY: model.MANAGED_BY_VALUE,
        **user_meta,
        **group_metadata(draft),
    }
    return ConsumerSpec(draft.stream, draft.name, config, draft.location, draft.locations)


def build_bucket(draft: StreamDraft) -> BucketSpec:
    """A KV bucket or object store: its settings as written plus the ownership marker."""
    config: JSONDict = dict(draft.config)
    user_meta = draft.config.get("metadata") or {}
    config["metadata"] = {model.MANAGED_BY_KEY: model.MANAGED_BY_VALUE, **user_meta}
    return BucketSpec(draft.name, config, draft.location, draft.locations, draft.replace_strategy)


def build_topology(
    streams: list[StreamDraft],
    groups: list[GroupDraft],
    kv_buckets: Sequence[StreamDraft] = (),
    object_stores: Sequence[StreamDraft] = (),
) -> Topology:
    """The desired model; consumers are keyed by ``(stream, name)``.

    Buckets come as :class:`StreamDraft` too (a name, settings in wire form, places); their
    settings are the bucket ones (``history``, ``ttl``, …).
    """
    stream_specs = {d.name: build_stream(d) for d in streams}
    consumer_specs = {(d.stream, d.name): build_consumer(d) for d in groups if d.stream is not None}
    return Topology(
        streams=stream_specs,
        consumers=consumer_specs,
        kv_buckets={d.name: build_bucket(d) for d in kv_buckets},
        object_stores={d.name: build_bucket(d) for d in object_stores},
    )


__all__ = [
    "GroupDraft",
    "Locations",
    "StreamDraft",
    "build_bucket",
    "build_consumer",
    "build_stream",
    "build_topology",
    "group_metadata",
    "place",
]
