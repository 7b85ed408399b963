"""The event catalogue as a runtime sees it: which event types exist, where they go, and the
payload schema of each version, with validators compiled once per schema version.

The catalogue is the KV bucket that ``apply`` writes (:mod:`jelmore_infra.catalogue.entry`). A
runtime reads it on first use: every stored message of the bucket's stream, through
``STREAM.MSG.GET`` with ``next_by_subj`` (so gaps left by the history limit cost nothing), which
gives the current entry of each type and every schema version still kept. It then listens on the
bucket's subjects: each write ``apply`` makes is also seen by core subscribers, and the changed
key is read back from the stream (the stream, not the notification, is the truth). A version a
message names that is not in memory is looked up in the stream once more before it is called
unknown, and after a reconnection everything is read again (writes may have been missed): in
the background, the catalogue held meanwhile answering, so that a reconnection while the
bucket's stream elects a leader (its node died) delays no publish; a failed re-read is tried
again on the next question.

Publishing checks the event type and validates the payload against the current version
(:meth:`Catalogue.prepare`); consuming validates against the version the message's
``Jelmore-Schema-Version`` header names (:meth:`Catalogue.violation`). Validation follows the
``jsonschema`` package (draft 2020-12); the validators of a version are built the first time
they are needed and kept (:class:`SchemaValidator`: ``jsonschema-rs`` answers "valid?" fast for
the schemas whose every keyword both packages read alike, ``jsonschema`` has the last word and
says how a payload breaks its schema).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jelmore_infra.catalogue.entry import (
    KEY_PREFIX,
    KV_DELETED,
    KV_OPERATION,
    decode_entry,
    type_of_subject,
)
from jelmore_infra.model import CATALOGUE_BUCKET, CATALOGUE_STREAM
from jelmore_infra.runtime.envelope import EventError

if TYPE_CHECKING:
    from jelmore_infra.runtime.bus import Bus

log = logging.getLogger("jelmore_infra.runtime")

#: What a runtime says when the server has no catalogue.
MISSING = (
    f"the event catalogue is not on the server (KV bucket {CATALOGUE_BUCKET}): run "
    "`jelmore-infra apply` with a topology that declares its events"
)


#: :meth:`Catalogue.violation_now`'s answer when only :meth:`Catalogue.violation` can tell.
NEEDS_READ = "(the catalogue must be read first)"

#: The longest schema violation message kept (error texts and DLQ failure reasons).
MAX_MESSAGE = 200


class CatalogueMissing(EventError):
    """The server has no event catalogue (apply has not stored one)."""


@dataclass(frozen=True, slots=True)
class EventKind:
    """The current entry of one event type: where it goes and its schema version."""

    type: str
    subject: str
    stream: str
    version: int
    sensitive: bool
    compatibility: str
    description: str


class Catalogue:
    """One runtime's view of the catalogue (see the module docstring)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._current: dict[str, EventKind] = {}
        self._schemas: dict[tuple[str, int], dict[str, Any]] = {}
        self._validators: dict[tuple[str, int], SchemaValidator] = {}
        self._loaded_loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._stop: Callable[[], Awaitable[None]] | None = None
        self._reconnects = -1
        #: the re-read after a reconnection, under way in the background
        self._reread: asyncio.Task[None] | None = None

    # -- reading ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the whole catalogue now (on first use), or start reading it again in the
        background after a reconnection."""
        loop = asyncio.get_running_loop()
        if self._loaded_loop is loop and self._bus.metrics.reconnects == self._reconnects:
            return  # the hot path: read on this loop, no reconnection since
        if self._lock is None or self._loaded_loop is not loop:
            self._lock = asyncio.Lock()
            self._loaded_loop = None
        if self._loaded_loop is loop and self._bus.metrics.reconnects != self._reconnects:
            if self._reread is None or self._reread.done():
                self._reread = loop.create_task(self._read_again())
            return
        await self._load_now()

    async def _read_again(self) -> None:
        """The re-read after a reconnection. When it fails (a stream electing its leader does
        not answer) the catalogue held is kept, and the next question tries again."""
        try:
            await self._load_now()
        except Exception as exc:  # a background task: report in one line, never raise
            log.warning("event catalogue: re-reading it after a reconnection failed (%s); the"
                        " catalogue read before is used meanwhile", exc)  # fmt: skip

    async def _load_now(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._lock is not None
        async with self._lock:
            reconnects = self._bus.metrics.reconnects
            if self._loaded_loop is loop and reconnects == self._reconnects:
                return
            if self._stop is None or self._loaded_loop is not loop:
                self._stop = await self._bus.listen(KEY_PREFIX + ">", self._changed)
            if await self._bus.stream_info(CATALOGUE_STREAM) is None:
                raise CatalogueMissing(MISSING)
            current: dict[str, EventKind] = {}
            await self._read(KEY_PREFIX + ">", current)
            self._current = current
            self._loaded_loop = loop
            self._reconnects = reconnects

    async def _read(self, subjects: str, current: dict[str, EventKind]) -> None:
        """Take every stored message of the bucket on ``subjects``, oldest first."""
        seq = 1
        while True:
            found = await self._bus.get_message(CATALOGUE_STREAM, seq, next_by=subjects)
            if found is None:
                return
            self._take(current, found.subject, found.data, found.headers)
            seq = found.seq + 1

    def _take(
        self, current: dict[str, EventKind], subject: str, data: bytes, headers: Mapping[str, str]
    ) -> None:
        """Record one stored message of the bucket in ``current`` and the version store."""
        event_type = type_of_subject(subject)
        if event_type is None:
            return
        if headers.get(KV_OPERATION) in KV_DELETED:
            current.pop(event_type, None)
            return
        entry = decode_entry(data)
        if entry is None or entry["type"] != event_type:
            return
        version = int(entry["version"])
        self._schemas[(event_type, version)] = dict(entry["payload"])
        current[event_type] = EventKind(
            event_type,
            str(entry.get("subject") or ""),
            str(entry.get("stream") or ""),
            version,
            bool(entry.get("sensitive")),
            str(entry.get("compatibility") or ""),
            str(entry.get("description") or ""),
        )

    async def _changed(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        """A write to the bucket: read the key back from the stream and take it."""
        try:
            found = await self._bus.get_message(CATALOGUE_STREAM, last_by=subject)
        except Exception as exc:  # a notification handler: report, never raise into nats-py
            log.warning("event catalogue: reading %s after a change failed: %s", subject, exc)
            return
        if found is not None:
            self._take(self._current, found.subject, found.data, found.headers)

    async def _refresh(self, event_type: str) -> None:
        """Read one type's last entry from the stream (it may have been added a moment ago)."""
        subject = KEY_PREFIX + event_type
        found = await self._bus.get_message(CATALOGUE_STREAM, last_by=subject)
        if found is None:
            self._current.pop(event_type, None)
        else:
            self._take(self._current, found.subject, found.data, found.headers)

    async def close(self) -> None:
        """Stop listening (a listener of an event loop that has ended is only dropped)."""
        reread, self._reread = self._reread, None
        if reread is not None and not reread.done() and reread.get_loop() is _loop():
            reread.cancel()
            await asyncio.gather(reread, return_exceptions=True)
        stop, self._stop = self._stop, None
        loop, self._loaded_loop = self._loaded_loop, None
        if stop is not None and loop is asyncio.get_running_loop():
            await stop()

    # -- questions ----------------------------------------------------------------------------

    async def types(self) -> dict[str, EventKind]:
        """Every declared event type, by type."""
        await self.load()
        return dict(self._current)

    async def kind(self, event_type: str) -> EventKind:
        """The current entry of ``event_type`` (``EventError`` when it is not declared)."""
        await self.load()
        found = self._current.get(event_type)
        if found is None and isinstance(event_type, str) and event_type.isprintable():
            await self._refresh(event_type)
            found = self._current.get(event_type)
        if found is None:
            known = ", ".join(sorted(self._current)) or "none"
            raise EventError(
                f"unknown event type {event_type!r}: it is not in the event catalogue "
                f"(declared: {known})"
            )
        return found

    async def prepare(self, event_type: str, payload: Any) -> EventKind:
        """Check an event before it is published: a declared type and a payload valid under its
        current schema version (``EventError`` naming the property path otherwise)."""
        kind = await self.kind(event_type)
        problem = self.violation_of(kind.type, kind.version, payload)
        if problem is not None:
            raise EventError(f"{event_type} payload violates its schema (version "
                             f"{kind.version}): {problem}")  # fmt: skip
        return kind

    async def violation(self, event_type: str, version: int | None, payload: Any) -> str | None:
        """Why a received payload breaks the schema version its message names (``None``: it
        does not). A message without a version is checked against the current one; a version
        the catalogue does not have is a violation."""
        await self.load()
        if version is None:
            current = self._current.get(event_type)
            if current is None:
                return f"event type {event_type!r} is not in the event catalogue"
            version = current.version
        if (event_type, version) not in self._schemas:
            await self.load_history(event_type)
        if (event_type, version) not in self._schemas:
            return f"{event_type} has no schema version {version} in the event catalogue"
        return self.violation_of(event_type, version, payload)

    def violation_now(self, event_type: str, version: int | None, payload: Any) -> str | None:
        """:meth:`violation` answered without waiting, when no read is needed: the catalogue was
        read on this loop with no reconnection since, and holds the version. Otherwise
        :data:`NEEDS_READ` (ask :meth:`violation`)."""
        if self._loaded_loop is None or self._bus.metrics.reconnects != self._reconnects:
            return NEEDS_READ
        if self._loaded_loop is not _loop():
            return NEEDS_READ
        if version is None:
            current = self._current.get(event_type)
            if current is None:
                return NEEDS_READ
            version = current.version
        if (event_type, version) not in self._schemas:
            return NEEDS_READ
        return self.violation_of(event_type, version, payload)

    async def load_history(self, event_type: str) -> None:
        """Read every kept version of one type from the stream."""
        await self._read(KEY_PREFIX + event_type, {})

    def violation_of(self, event_type: str, version: int, payload: Any) -> str | None:
        """``path: message`` for the first way ``payload`` breaks the schema (``None``: valid)."""
        validator = self._validator(event_type, version)
        if validator.quick_valid(payload):
            return None
        full = validator.full
        error = next(iter(full.iter_errors(payload)), None)
        if error is None:
            return None
        from jsonschema.exceptions import best_match

        best = best_match(full.iter_errors(payload)) or error
        path = "payload" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in best.absolute_path
        )
        message = best.message
        if len(message) > MAX_MESSAGE:  # it quotes the offending value, which may be huge
            message = message[: MAX_MESSAGE - 1] + "…"
        return f"{path}: {message}"

    def _validator(self, event_type: str, version: int) -> SchemaValidator:
        key = (event_type, version)
        found = self._validators.get(key)
        if found is None:
            found = SchemaValidator(self._schemas[key])
            self._validators[key] = found
        return found


#: The keywords whose meaning ``jsonschema-rs`` and ``jsonschema`` share exactly, for payloads
#: decoded from JSON. Left out: ``pattern`` and ``patternProperties`` (Rust's and Python's
#: regular expressions differ: ``\d`` and ``\s`` match other characters, ``$`` another place),
#: ``multipleOf`` (float division in one, exact arithmetic in the other), ``format`` and the
#: ``content*`` keywords (annotations in both, but left to the reference), ``$ref`` and the
#: dynamic references (their targets would need the same walk), and ``unevaluated*``.
_SHARED_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples",
        "deprecated", "readOnly", "writeOnly", "type", "enum", "const", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
        "uniqueItems", "minProperties", "maxProperties", "required", "dependentRequired",
        "properties", "additionalProperties", "propertyNames", "items", "prefixItems",
        "contains", "minContains", "maxContains", "allOf", "anyOf", "oneOf", "not", "if",
        "then", "else", "dependentSchemas",
    }
)  # fmt: skip
#: Keywords whose value is one schema, a list of schemas, or a map of names to schemas.
_ONE_SCHEMA = frozenset(
    {"additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else"}
)
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"$defs", "properties", "dependentSchemas"})


def uses_shared_keywords_only(schema: Any) -> bool:
    """Whether every keyword of ``schema``, its subschemas included, is in the shared set."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, Mapping):
        return False
    for keyword, value in schema.items():
        if keyword not in _SHARED_KEYWORDS:
            return False
        if keyword in _ONE_SCHEMA:
            subschemas: Any = (value,)
        elif keyword in _SCHEMA_LISTS:
            subschemas = value if isinstance(value, list) else (None,)
        elif keyword in _SCHEMA_MAPS:
            subschemas = value.values() if isinstance(value, Mapping) else (None,)
        else:
            continue
        if not all(uses_shared_keywords_only(s) for s in subschemas):
            return False
    return True


class SchemaValidator:
    """One schema version's validators.

    ``full`` is ``jsonschema``'s (draft 2020-12): the reference, and the one that says where and
    how a payload breaks the schema. :meth:`quick_valid` asks ``jsonschema-rs`` first when the
    schema uses only keywords both read alike: about 0.2 µs per payload of the bench against
    about 11 µs (docs/catalogue.md). Only its "valid" is taken as the answer; a payload it
    refuses, or cannot take (an integer beyond 64 bits), is judged by ``full``.

    ``full`` is built when first needed: importing ``jsonschema`` takes about 80 ms, which a
    process whose payloads all pass the quick check (the common case) never spends; its first
    publish or first event is that much faster.
    """

    __slots__ = ("_full", "_schema", "fast")

    def __init__(self, schema: dict[str, Any] | bool) -> None:
        self._schema = schema
        self._full: Any = None
        self.fast: Callable[[Any], bool] | None = None
        if uses_shared_keywords_only(schema):
            try:
                import jsonschema_rs

                self.fast = jsonschema_rs.Draft202012Validator(
                    schema, validate_formats=False
                ).is_valid
            except Exception:  # a schema it cannot compile: the reference alone
                self.fast = None

    @property
    def full(self) -> Any:
        """``jsonschema``'s validator of the schema (draft 2020-12)."""
        if self._full is None:
            from jsonschema import Draft202012Validator

            self._full = Draft202012Validator(self._schema)
        return self._full

    def quick_valid(self, payload: Any) -> bool:
        """Whether ``payload`` is valid (the reference's answer, reached fast when it can be)."""
        fast = self.fast
        if fast is not None:
            try:
                if fast(payload):
                    return True
            except Exception:  # a value it cannot take: the reference decides
                pass
        return bool(self.full.is_valid(payload))


def _loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def schema_violation_reason(problem: str) -> str:
    """The DLQ ``failure_reason`` of a payload that breaks its schema."""
    return f"schema violation: {problem}"
