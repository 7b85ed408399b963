"""Compatibility of a payload JSON Schema change under an event's ``compatibility`` mode.

:func:`schema_diff` walks two JSON Schema documents side by side and returns every difference as
a typed :class:`SchemaChange` (``OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL``, ``TYPE_NARROWED``,
``MAX_LENGTH_DECREASED`` …). The type names and the verdict of each type follow the rules of the
Confluent Schema Registry for JSON Schema, re-implemented here from their description (the table
and its reasoning are in docs/schema-compatibility.md). A diff is always read as "events written
under the first schema, read with the second": :data:`STRICT_COMPATIBLE` lists the types for
which that still works.

:func:`check_compatibility` turns the diff into a :class:`Verdict` for a mode:

- ``none``: never breaking;
- ``backward``: ``schema_diff(old, new)`` holds only compatible types (the new schema reads old
  events);
- ``forward``: ``schema_diff(new, old)`` holds only compatible types (the old schema reads new
  events);
- ``full``: both.

Only the latest stored version is compared (there are no transitive modes). The policy is
``strict`` (the default) or ``lenient``, which accepts a few more types
(:data:`LENIENT_COMPATIBLE`).

What the walk understands: annotations, ``type`` (with ``integer`` inside ``number`` and type
lists as sums), ``enum``/``const``, the string, number, object and array keywords, nested
``properties``/``items``/``prefixItems``/``additionalProperties``/``patternProperties``,
``dependentRequired``/``dependentSchemas`` (and draft-07 ``dependencies``), ``allOf``/``anyOf``/
``oneOf`` (branches paired by a maximum matching of compatible pairs) and ``not``. Local ``$ref``
(``#``, ``#/$defs/…``, any ``#/…`` pointer) is resolved in each document, with recursion cut off
when the same pair of references is met again; a ``$ref`` that cannot be resolved is compared by
its text. Conservative choices, each breaking in both directions unless noted: a validation
keyword the walk does not analyse (``if``/``then``/``else``, ``propertyNames``, ``contains``,
``unevaluated*`` …) added or changed (removing one is compatible); a ``patternProperties`` entry
added or removed; ``format`` added or changed. Keywords no validator knows are annotations.

Pure: no I/O, and no JSON Schema library (this compares schema documents, not instances).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from jelmore_infra.model import COMPATIBILITY_MODES

#: A JSON Schema: a mapping, or the boolean schemas ``true`` (anything) and ``false`` (nothing).
Schema = Mapping[str, Any] | bool

POLICY_STRICT = "strict"
POLICY_LENIENT = "lenient"
POLICIES = (POLICY_STRICT, POLICY_LENIENT)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Change types that keep events of the first schema readable with the second (STRICT).
STRICT_COMPATIBLE = _words(
    """
    ID_CHANGED TITLE_CHANGED DESCRIPTION_CHANGED DEFAULT_CHANGED ANNOTATION_CHANGED

    TYPE_EXTENDED SUM_TYPE_EXTENDED PRODUCT_TYPE_NARROWED COMBINED_TYPE_EXTENDED
    COMBINED_TYPE_REMOVED NOT_TYPE_NARROWED NOT_TYPE_REMOVED REF_REMOVED KEYWORD_REMOVED
    ENUM_ARRAY_EXTENDED ENUM_ARRAY_REMOVED FORMAT_REMOVED

    MAX_LENGTH_INCREASED MAX_LENGTH_REMOVED MIN_LENGTH_DECREASED MIN_LENGTH_REMOVED
    PATTERN_REMOVED
    MAXIMUM_INCREASED MAXIMUM_REMOVED MINIMUM_DECREASED MINIMUM_REMOVED
    EXCLUSIVE_MAXIMUM_INCREASED EXCLUSIVE_MAXIMUM_REMOVED
    EXCLUSIVE_MINIMUM_DECREASED EXCLUSIVE_MINIMUM_REMOVED
    MULTIPLE_OF_REDUCED MULTIPLE_OF_REMOVED

    REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED REQUIRED_ATTRIBUTE_REMOVED
    DEPENDENCY_ARRAY_NARROWED DEPENDENCY_ARRAY_REMOVED DEPENDENCY_SCHEMA_REMOVED
    MAX_PROPERTIES_INCREASED MAX_PROPERTIES_REMOVED
    MIN_PROPERTIES_DECREASED MIN_PROPERTIES_REMOVED
    ADDITIONAL_PROPERTIES_ADDED ADDITIONAL_PROPERTIES_EXTENDED
    PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
    OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL
    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL
    PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
    PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL
    PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL
    PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL

    MAX_ITEMS_INCREASED MAX_ITEMS_REMOVED MIN_ITEMS_DECREASED MIN_ITEMS_REMOVED
    UNIQUE_ITEMS_REMOVED ADDITIONAL_ITEMS_ADDED ADDITIONAL_ITEMS_EXTENDED
    ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
    ITEM_ADDED_TO_CLOSED_CONTENT_MODEL
    ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
    ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL
    ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL
    ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
    """
)

#: LENIENT accepts these on top of STRICT: the content-model rules that STRICT applies to
#: properties a writer might have sent without declaring them.
LENIENT_COMPATIBLE: frozenset[str] = STRICT_COMPATIBLE | {
    "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL",
    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "ADDITIONAL_PROPERTIES_REMOVED",
    "ADDITIONAL_PROPERTIES_NARROWED",
}

#: Validation keywords the walk does not analyse: compared as JSON values, conservatively.
_UNANALYSED = _words(
    """
    propertyNames unevaluatedProperties unevaluatedItems contains minContains maxContains if
    then else $dynamicRef $recursiveRef
    """
)
_ANALYSED = _words(
    """
    $ref type enum const format maxLength minLength pattern maximum minimum exclusiveMaximum
    exclusiveMinimum multipleOf properties required additionalProperties patternProperties
    maxProperties minProperties dependentRequired dependentSchemas dependencies items
    prefixItems additionalItems maxItems minItems uniqueItems allOf anyOf oneOf not
    """
)
#: Every other key (``title``, ``description``, ``default``, ``examples``, ``$comment``, ``x-…``,
#: keywords no validator knows) is an annotation; ``$defs``/``definitions`` are read through refs.
_VALIDATION = _ANALYSED | _UNANALYSED
_ANNOTATION_TYPES = {
    "$id": "ID_CHANGED",
    "id": "ID_CHANGED",
    "title": "TITLE_CHANGED",
    "description": "DESCRIPTION_CHANGED",
    "default": "DEFAULT_CHANGED",
}
#: (keyword, type-name stem, True for an upper bound) of the numeric limits.
_LIMITS = (
    ("maxLength", "MAX_LENGTH", True),
    ("minLength", "MIN_LENGTH", False),
    ("maximum", "MAXIMUM", True),
    ("minimum", "MINIMUM", False),
    ("exclusiveMaximum", "EXCLUSIVE_MAXIMUM", True),
    ("exclusiveMinimum", "EXCLUSIVE_MINIMUM", False),
)
_MAX_REF_CHAIN = 64


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One difference found by :func:`schema_diff` (``old`` is the first schema's side)."""

    type: str
    #: JSON-pointer-like location in the schema: ``#`` (root), ``#/properties/timeout``,
    #: ``#/properties/user/properties/name/maxLength`` …
    path: str
    old: Any
    new: Any
    #: Under STRICT, for the diff read as BACKWARD reads it (first schema writes, second reads).
    compatible: bool
    #: One readable line, e.g. ``property timeout added (optional, open content model)``.
    text: str


@dataclass(frozen=True, slots=True)
class Breaking:
    """A change that breaks the mode, and the check (direction) that found it."""

    change: SchemaChange
    direction: Literal["backward", "forward"]
    #: ``<direction>: <path>: <TYPE> (<why>)``, one line.
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :func:`check_compatibility`."""

    mode: str
    #: ``schema_diff(old, new)``, for display.
    changes: list[SchemaChange]
    #: Empty means compatible.
    breaking: list[Breaking]
    policy: str = POLICY_STRICT

    @property
    def compatible(self) -> bool:
        return not self.breaking

    def summary(self) -> str:
        """``compatible under backward`` or ``breaking under full: 2 changes``."""
        under = self.mode if self.policy == POLICY_STRICT else f"{self.mode} ({self.policy})"
        if self.compatible:
            return f"compatible under {under}"
        count = len(self.breaking)
        return f"breaking under {under}: {count} change{'' if count == 1 else 's'}"


def is_compatible_change(change_type: str, policy: str = POLICY_STRICT) -> bool:
    """Whether a change type keeps the first schema's events readable under ``policy``."""
    _check_policy(policy)
    table = STRICT_COMPATIBLE if policy == POLICY_STRICT else LENIENT_COMPATIBLE
    return change_type in table


def schema_diff(old: Schema, new: Schema) -> list[SchemaChange]:
    """Every difference between ``old`` and ``new``, in a stable order (the walk's order).

    Within one schema node: ``type``, allowed values, string and number keywords, properties
    (sorted by name), ``additionalProperties``, …, combinations, annotations last.
    """
    differ = _Differ(old, new, set())
    differ.compare(old, new, "#")
    return differ.changes


def check_compatibility(
    old: Schema, new: Schema, mode: str, *, policy: str = POLICY_STRICT
) -> Verdict:
    """The verdict of replacing ``old`` by ``new`` under ``mode`` (none|backward|forward|full)."""
    if mode not in COMPATIBILITY_MODES:
        raise ValueError(
            f"unknown compatibility mode {mode!r}; expected one of {', '.join(COMPATIBILITY_MODES)}"
        )
    _check_policy(policy)
    changes = schema_diff(old, new)
    breaking: list[Breaking] = []
    if mode in ("backward", "full"):
        breaking += _breaking(changes, "backward", policy)
    if mode in ("forward", "full"):
        breaking += _breaking(schema_diff(new, old), "forward", policy)
    return Verdict(mode=mode, changes=changes, breaking=breaking, policy=policy)


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(
            f"unknown compatibility policy {policy!r}; expected one of {', '.join(POLICIES)}"
        )


# --- why a change breaks -------------------------------------------------------------------------

_FEWER = "{reader} accepts fewer values here than {writer} may hold"
_REASONS = {
    "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": (
        "{writer} may carry this property with any value (open content model); only a property "
        "with the empty schema {{}} may be added to an open model"
    ),
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL": (
        "{writer} may carry this property with any value (open content model); only a property "
        "with the empty schema {{}} may be added to an open model"
    ),
    "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": (
        "{reader} requires a property without a default that {writer} may lack"
    ),
    "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL": (
        "{reader} requires a property without a default that {writer} may lack"
    ),
    "REQUIRED_ATTRIBUTE_ADDED": (
        "{reader} requires a property without a default that {writer} may omit"
    ),
    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL": (
        "{reader} is a closed content model that no longer lists a property {writer} may carry"
    ),
    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "{reader} types this property more narrowly than the patternProperties or "
        "additionalProperties schema under which {writer} may carry it"
    ),
    "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (
        "{reader} no longer lists this property, and its patternProperties or "
        "additionalProperties schema rejects values {writer} may hold for it"
    ),
    "ADDITIONAL_PROPERTIES_REMOVED": (
        "{reader} forbids unlisted properties, which {writer} may carry"
    ),
    "ADDITIONAL_PROPERTIES_NARROWED": (
        "{reader} constrains unlisted properties, which {writer} may carry with any value"
    ),
    "ITEM_ADDED_TO_OPEN_CONTENT_MODEL": (
        "{writer} may hold any value at this position (open content model)"
    ),
    "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL": (
        "{reader} no longer allows an array position that {writer} may fill"
    ),
    "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": _FEWER,
    "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": _FEWER,
    "ADDITIONAL_ITEMS_REMOVED": "{reader} forbids array items that {writer} may hold",
    "TYPE_CHANGED": "{reader} expects another type than {writer} may hold",
    "TYPE_NARROWED": "{reader} accepts fewer types than {writer} may hold",
    "SUM_TYPE_NARROWED": "{reader} accepts fewer alternatives than {writer} may hold",
    "PRODUCT_TYPE_EXTENDED": "{reader} adds allOf conditions that {writer} may not meet",
    "COMBINED_TYPE_CHANGED": (
        "{reader} turns anyOf into oneOf, which rejects values matching several branches"
    ),
    "COMBINED_TYPE_ADDED": "{reader} adds anyOf/oneOf conditions that {writer} may not meet",
    "NOT_TYPE_ADDED": "{reader} adds a not condition that {writer} may not meet",
    "NOT_TYPE_EXTENDED": "{reader} excludes more values with not than before",
    "REF_ADDED": "{reader} adds a $ref condition that {writer} may not meet",
    "REF_CHANGED": (
        "{reader} refers to another schema that this check cannot resolve, so it counts as breaking"
    ),
    "KEYWORD_ADDED": (
        "{reader} adds a keyword this check does not analyse, so it counts as breaking"
    ),
    "KEYWORD_CHANGED": (
        "{reader} changes a keyword this check does not analyse, so it counts as breaking"
    ),
    "PATTERN_PROPERTY_ADDED": (
        "{reader} constrains the properties matching a new pattern, which {writer} may carry"
    ),
    "PATTERN_PROPERTY_REMOVED": (
        "removing a patternProperties entry is treated as breaking (not analysed)"
    ),
}
_ROLES = {
    "backward": {"reader": "the new schema", "writer": "old events"},
    "forward": {"reader": "the old schema", "writer": "new events"},
}


def _breaking(
    changes: Iterable[SchemaChange], direction: Literal["backward", "forward"], policy: str
) -> list[Breaking]:
    out = []
    for change in changes:
        if is_compatible_change(change.type, policy):
            continue
        reason = _REASONS.get(change.type, _FEWER).format(**_ROLES[direction])
        message = f"{direction}: {change.path}: {change.type} ({reason})"
        out.append(Breaking(change=change, direction=direction, message=message))
    return out


# --- helpers -------------------------------------------------------------------------------------


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _canon(value: Any) -> str:
    """A text equal for equal JSON values (``1`` and ``1.0`` alike, ``true`` and ``1`` not)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, Mapping):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True, ensure_ascii=False, default=str)


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return Fraction(str(value)) if isinstance(value, float) else Fraction(value)
    except (ValueError, OverflowError):
        return None


def _types(node: Mapping[str, Any]) -> list[str] | None:
    """The ``type`` keyword as a list of names, or ``None`` when absent (any type)."""
    value = node.get("type")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(value)
    return None


def _covered(name: str, names: Sequence[str]) -> bool:
    return name in names or (name == "integer" and "number" in names)


def _show_types(names: Sequence[str] | None) -> str:
    return "any" if names is None else "|".join(names)


def _validation(node: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k in _VALIDATION}


def _pure_sum(node: Mapping[str, Any]) -> str | None:
    """``anyOf``/``oneOf`` when that is the node's only validation keyword."""
    keys = [k for k in node if k in _VALIDATION]
    if len(keys) == 1 and keys[0] in ("anyOf", "oneOf") and isinstance(node[keys[0]], list):
        return keys[0]
    return None


def _as_sum(node: Mapping[str, Any], keyword: str) -> dict[str, Any] | None:
    """A node whose ``type`` lists several types, rewritten as ``keyword`` of one-type branches."""
    names = _types(node)
    if names is None or len(names) < 2:
        return None
    rest = {k: v for k, v in _validation(node).items() if k != "type"}
    return {keyword: [{**rest, "type": name} for name in names]}


def path_label(path: str) -> str:
    """The readable name of a schema location: ``user.name``, ``tags[]``, ``the payload``."""
    segments = [] if path in ("#", "") else [_unescape(s) for s in path[2:].split("/")]
    out = ""
    i = 0
    while i < len(segments):
        seg = segments[i]
        nxt = segments[i + 1] if i + 1 < len(segments) else None
        base = out or "payload"
        if seg == "properties" and nxt is not None:
            out = f"{out}.{nxt}" if out else nxt
            i += 2
            continue
        if seg == "patternProperties" and nxt is not None:
            out, i = f"{base}.<{nxt}>", i + 2
            continue
        if seg == "dependentSchemas" and nxt is not None:
            out, i = f"{base} (when {nxt} is present)", i + 2
            continue
        if seg == "prefixItems" and nxt is not None:
            out, i = f"{base}[{nxt}]", i + 2
            continue
        if seg in ("anyOf", "oneOf", "allOf") and nxt is not None and nxt.isdigit():
            out, i = f"{base} ({seg} branch {nxt})", i + 2
            continue
        if seg == "items" and nxt is not None and nxt.isdigit():  # draft-07 tuple position
            out, i = f"{base}[{nxt}]", i + 2
            continue
        if seg in ("items", "additionalItems"):
            out = f"{base}[]"
        elif seg == "additionalProperties":
            out = f"{base}.*"
        elif seg == "not":
            out = f"{base} (not)"
        else:
            out = f"{base} ({seg})"
        i += 1
    return out or "the payload"


def _pointer(root: Any, ref: str) -> tuple[bool, Any]:
    """Resolve a local reference (``#`` or ``#/a/b``) inside ``root``."""
    if ref == "#":
        return True, root
    if not ref.startswith("#/"):
        return False, None
    node = root
    for token in ref[2:].split("/"):
        key = _unescape(token)
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False, None
    if isinstance(node, bool | Mapping):
        return True, node
    return False, None


#: Keywords that read each other, so they must come from the same schema object.
_GROUPS = (
    frozenset({"properties", "patternProperties", "additionalProperties", "unevaluatedProperties"}),
    frozenset({"items", "prefixItems", "additionalItems", "unevaluatedItems"}),
    frozenset({"if", "then", "else"}),
    frozenset({"contains", "minContains", "maxContains"}),
)


def _mergeable(target: Any, siblings: Mapping[str, Any]) -> bool:
    """Whether ``siblings`` can be merged into the referenced ``target`` without changing it."""
    if target is True:
        return True
    if not isinstance(target, Mapping):
        return False
    mine = {k for k in target if k in _VALIDATION}
    theirs = {k for k in siblings if k in _VALIDATION}
    if mine & theirs:
        return False
    return not any(mine & group and theirs & group for group in _GROUPS)


def _empty(node: Any) -> bool:
    """True for a schema that accepts every value (``true``, ``{}``, annotations only)."""
    if node is True:
        return True
    return isinstance(node, Mapping) and not any(k in _VALIDATION for k in node)


# --- the walk ------------------------------------------------------------------------------------

_RefKey = tuple[object, object]


class _Differ:
    """Collects the changes from ``old`` to ``new``; both roots serve local ``$ref``."""

    def __init__(self, old_root: Any, new_root: Any, active: set[_RefKey]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.active = active
        self.changes: list[SchemaChange] = []

    # -- plumbing

    def sub(self) -> _Differ:
        return _Differ(self.old_root, self.new_root, self.active)

    def ok(self) -> bool:
        return all(c.compatible for c in self.changes)

    def emit(self, type_: str, path: str, old: Any, new: Any, text: str) -> None:
        self.changes.append(
            SchemaChange(
                type=type_,
                path=path,
                old=old,
                new=new,
                compatible=type_ in STRICT_COMPATIBLE,
                text=text,
            )
        )

    def trial(self, old: Any, new: Any, path: str) -> _Differ:
        """Compare in a sub-differ (to test a pairing) and return it."""
        sub = self.sub()
        sub.compare(old, new, path)
        return sub

    def resolve(self, node: Any, root: Any) -> tuple[Any, str | None]:
        """Follow local refs of a node that is only a ``$ref`` (plus annotations).

        Validation siblings of a ``$ref`` apply together with the referenced schema. When
        they cannot interact with it (no keyword in common, no keyword group such as
        ``properties``/``additionalProperties`` split between the two) they are merged into
        it; otherwise the node becomes ``allOf: [{$ref}]`` beside them, which the allOf rules
        compare. An unresolvable reference stays as it is.
        """
        ref_seen: str | None = None
        for _ in range(_MAX_REF_CHAIN):
            if not isinstance(node, Mapping) or not isinstance(node.get("$ref"), str):
                return node, ref_seen
            ref = node["$ref"]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            found, target = _pointer(root, ref)
            if any(k in _VALIDATION for k in siblings) and not (
                found and _mergeable(target, siblings)
            ):
                all_of = node.get("allOf")
                branches = list(all_of) if isinstance(all_of, list) else []
                return {**siblings, "allOf": [{"$ref": ref}, *branches]}, ref_seen
            if not found:
                return node, ref_seen
            ref_seen = ref
            node = {**target, **siblings} if isinstance(target, Mapping) else target
        return node, ref_seen

    # -- one node

    def compare(self, old: Any, new: Any, path: str) -> None:
        old_node, old_ref = self.resolve(old, self.old_root)
        new_node, new_ref = self.resolve(new, self.new_root)
        if old_ref is None and new_ref is None:
            self.node(old_node, new_node, path)
            return
        key: _RefKey = (
            ("old", old_ref) if old_ref is not None else ("old-id", id(old)),
            ("new", new_ref) if new_ref is not None else ("new-id", id(new)),
        )
        if key in self.active:
            return  # the same pair is being compared further up: assume it matches
        self.active.add(key)
        try:
            self.node(old_node, new_node, path)
        finally:
            self.active.discard(key)

    def node(self, old: Any, new: Any, path: str) -> None:
        if old is False:
            return  # nothing was valid, so nothing can break
        if new is False:
            self.emit(
                "TYPE_NARROWED", path, old, new, f"{path_label(path)} now rejects every value"
            )
            return
        o: Mapping[str, Any] = old if isinstance(old, Mapping) else {}
        n: Mapping[str, Any] = new if isinstance(new, Mapping) else {}
        o_sum, n_sum = _pure_sum(o), _pure_sum(n)
        if n_sum and not o_sum:
            expanded = _as_sum(o, n_sum)
            if expanded is None:
                self.into_sum(o, n, n_sum, path)
                self.annotations(o, n, path)
                return
            o = {**{k: v for k, v in o.items() if k not in _VALIDATION}, **expanded}
        elif o_sum and not n_sum:
            expanded = _as_sum(n, o_sum)
            if expanded is None:
                self.from_sum(o, n, o_sum, path)
                self.annotations(o, n, path)
                return
            n = {**{k: v for k, v in n.items() if k not in _VALIDATION}, **expanded}
        if self.type_(o, n, path):
            self.keyword_change(o, n, path, "$ref", "REF")  # left only when unresolvable
            self.values(o, n, path)
            self.format_(o, n, path)
            for keyword, stem, upper in _LIMITS:
                self.limit(o, n, path, keyword, stem, upper)
            self.pattern(o, n, path)
            self.multiple_of(o, n, path)
            self.object_(o, n, path)
            self.array(o, n, path)
            self.combinations(o, n, path)
            self.unanalysed(o, n, path)
        self.annotations(o, n, path)

    def annotations(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        keys = sorted(
            k for k in set(o) | set(n) if k not in _VALIDATION and k not in ("$defs", "definitions")
        )
        where = path_label(path)
        for key in keys:
            if key in o and key in n and _canon(o[key]) == _canon(n[key]):
                continue
            type_ = _ANNOTATION_TYPES.get(key, "ANNOTATION_CHANGED")
            if key == "default":
                text = f"default of {where} changed: {_show(o.get(key))} -> {_show(n.get(key))}"
            elif type_ == "ANNOTATION_CHANGED":
                text = f"annotation {key} of {where} changed"
            else:
                text = f"{key.lstrip('$')} of {where} changed"
            self.emit(type_, f"{path}/{_escape(key)}", o.get(key), n.get(key), text)

    # -- types and values

    def type_(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> bool:
        """Compare ``type``; False when the types changed outright (stop at this node)."""
        old, new = _types(o), _types(n)
        at, where = f"{path}/type", path_label(path)
        if old == new:
            return True
        if old is not None and new is not None:
            old_in_new = all(_covered(t, new) for t in old)
            new_in_old = all(_covered(t, old) for t in new)
            if old_in_new and new_in_old:
                return True
        else:
            old_in_new, new_in_old = new is None, old is None
        shown = f"{_show_types(old)} -> {_show_types(new)}"
        single = old is not None and new is not None and len(old) == len(new) == 1
        if old_in_new:
            kind = "TYPE_EXTENDED" if single or new is None else "SUM_TYPE_EXTENDED"
            self.emit(kind, at, o.get("type"), n.get("type"), f"type of {where} extended: {shown}")
            return True
        if new_in_old:
            kind = "TYPE_NARROWED" if single or old is None else "SUM_TYPE_NARROWED"
            self.emit(kind, at, o.get("type"), n.get("type"), f"type of {where} narrowed: {shown}")
            return True
        self.emit(
            "TYPE_CHANGED", at, o.get("type"), n.get("type"), f"type of {where} changed: {shown}"
        )
        return False

    def values(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        """``enum`` and ``const`` (a ``const`` is a one-value enum)."""

        def allowed(node: Mapping[str, Any]) -> list[Any] | None:
            enum = node.get("enum")
            if isinstance(enum, list):
                if "const" in node:
                    return [v for v in enum if _canon(v) == _canon(node["const"])]
                return enum
            if "const" in node:
                return [node["const"]]
            return None

        old, new = allowed(o), allowed(n)
        if old is None and new is None:
            return
        keyword = "enum" if "enum" in o or "enum" in n else "const"
        at, where = f"{path}/{keyword}", path_label(path)
        if new is None:
            self.emit(
                "ENUM_ARRAY_REMOVED", at, old, None, f"{where} no longer limited to {_show(old)}"
            )
            return
        if old is None:
            self.emit("ENUM_ARRAY_ADDED", at, None, new, f"{where} limited to {_show(new)}")
            return
        old_set, new_set = {_canon(v) for v in old}, {_canon(v) for v in new}
        if old_set == new_set:
            return
        shown = f"{_show(old)} -> {_show(new)}"
        if old_set <= new_set:
            self.emit(
                "ENUM_ARRAY_EXTENDED", at, old, new, f"allowed values of {where} extended: {shown}"
            )
        elif new_set <= old_set:
            self.emit(
                "ENUM_ARRAY_NARROWED", at, old, new, f"allowed values of {where} narrowed: {shown}"
            )
        else:
            self.emit(
                "ENUM_ARRAY_CHANGED", at, old, new, f"allowed values of {where} changed: {shown}"
            )

    def format_(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        self.keyword_change(o, n, path, "format", "FORMAT")

    def keyword_change(
        self, o: Mapping[str, Any], n: Mapping[str, Any], path: str, keyword: str, stem: str
    ) -> None:
        """``<STEM>_ADDED`` / ``_REMOVED`` / ``_CHANGED`` for a keyword compared by value."""
        if keyword not in o and keyword not in n:
            return
        old, new = o.get(keyword), n.get(keyword)
        at, where = f"{path}/{_escape(keyword)}", path_label(path)
        if keyword not in n:
            self.emit(
                f"{stem}_REMOVED", at, old, None, f"{keyword} of {where} removed (was {_show(old)})"
            )
        elif keyword not in o:
            self.emit(f"{stem}_ADDED", at, None, new, f"{keyword} of {where} added: {_show(new)}")
        elif _canon(old) != _canon(new):
            self.emit(
                f"{stem}_CHANGED",
                at,
                old,
                new,
                f"{keyword} of {where} changed: {_show(old)} -> {_show(new)}",
            )

    def limit(
        self,
        o: Mapping[str, Any],
        n: Mapping[str, Any],
        path: str,
        keyword: str,
        stem: str,
        upper: bool,
    ) -> None:
        if keyword not in o and keyword not in n:
            return
        old, new = o.get(keyword), n.get(keyword)
        at, where = f"{path}/{keyword}", path_label(path)
        if keyword not in n:
            self.emit(
                f"{stem}_REMOVED", at, old, None, f"{keyword} of {where} removed (was {_show(old)})"
            )
            return
        if keyword not in o:
            self.emit(f"{stem}_ADDED", at, None, new, f"{keyword} of {where} added: {_show(new)}")
            return
        a, b = _number(old), _number(new)
        if a is None or b is None:
            if _canon(old) != _canon(new):
                self.emit(
                    "KEYWORD_CHANGED",
                    at,
                    old,
                    new,
                    f"{keyword} of {where} changed: {_show(old)} -> {_show(new)}",
                )
            return
        if a == b:
            return
        direction = "INCREASED" if b > a else "DECREASED"
        self.emit(
            f"{stem}_{direction}",
            at,
            old,
            new,
            f"{keyword} of {where} {direction.lower()}: {_show(old)} -> {_show(new)}",
        )

    def pattern(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        self.keyword_change(o, n, path, "pattern", "PATTERN")

    def multiple_of(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        if "multipleOf" not in o and "multipleOf" not in n:
            return
        old, new = o.get("multipleOf"), n.get("multipleOf")
        a, b = _number(old), _number(new)
        if "multipleOf" in o and "multipleOf" in n and a and b:
            if a == b:
                return
            at, where = f"{path}/multipleOf", path_label(path)
            shown = f"{_show(old)} -> {_show(new)}"
            if (b / a).denominator == 1:
                self.emit(
                    "MULTIPLE_OF_EXPANDED", at, old, new, f"multipleOf of {where} expanded: {shown}"
                )
            elif (a / b).denominator == 1:
                self.emit(
                    "MULTIPLE_OF_REDUCED", at, old, new, f"multipleOf of {where} reduced: {shown}"
                )
            else:
                self.emit(
                    "MULTIPLE_OF_CHANGED", at, old, new, f"multipleOf of {where} changed: {shown}"
                )
            return
        self.keyword_change(o, n, path, "multipleOf", "MULTIPLE_OF")

    # -- objects

    def object_(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        self.properties(o, n, path)
        self.additional_properties(o, n, path)
        self.pattern_properties(o, n, path)
        self.limit(o, n, path, "maxProperties", "MAX_PROPERTIES", True)
        self.limit(o, n, path, "minProperties", "MIN_PROPERTIES", False)
        self.dependencies(o, n, path)

    def properties(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        o_props, n_props = _mapping(o.get("properties")), _mapping(n.get("properties"))
        o_req, n_req = _strings(o.get("required")), _strings(n.get("required"))
        o_names, n_names = set(o_props) | o_req, set(n_props) | n_req
        for name in sorted(o_names | n_names):
            at = f"{path}/properties/{_escape(name)}"
            old, new = o_props.get(name, True), n_props.get(name, True)
            if name not in o_names:
                self.property_added(o, name, new, name in n_req, at)
            elif name not in n_names:
                self.property_removed(n, name, old, at)
            else:
                self.required(name in o_req, name in n_req, new, at)
                self.compare(old, new, at)

    def required(self, was: bool, now: bool, new: Any, at: str) -> None:
        where = path_label(at)
        if was and not now:
            self.emit("REQUIRED_ATTRIBUTE_REMOVED", at, True, False, f"{where} made optional")
        elif now and not was:
            if self.has_default(new, self.new_root):
                self.emit(
                    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
                    at,
                    False,
                    True,
                    f"{where} made required (it has a default)",
                )
            else:
                self.emit("REQUIRED_ATTRIBUTE_ADDED", at, False, True, f"{where} made required")

    def has_default(self, node: Any, root: Any) -> bool:
        resolved, _ = self.resolve(node, root)
        return isinstance(resolved, Mapping) and "default" in resolved

    def content_model(self, node: Mapping[str, Any], name: str, root: Any) -> tuple[str, Any]:
        """How an object treats a property it does not list: open, partial (+ schema), closed."""
        for pattern, schema in sorted(_mapping(node.get("patternProperties")).items()):
            try:
                if re.search(pattern, name):
                    return "partial", schema
            except re.error:
                continue
        extra, _ = self.resolve(node.get("additionalProperties", True), root)
        if extra is False:
            return "closed", None
        if _empty(extra):
            return "open", None
        return "partial", extra

    def property_added(
        self, o: Mapping[str, Any], name: str, schema: Any, required: bool, at: str
    ) -> None:
        where = path_label(at)
        has_default = self.has_default(schema, self.new_root)
        resolved, _ = self.resolve(schema, self.new_root)
        model, cover = self.content_model(o, name, self.old_root)
        if model == "open":
            if required:
                if has_default:
                    kind = "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
                    how = "required with a default, open content model"
                else:
                    kind = "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                    how = "required, no default, open content model"
            elif _empty(resolved):
                kind = "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
                how = "empty schema, open content model"
            else:
                kind = "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                how = "optional, open content model"
            self.emit(kind, at, None, schema, f"property {where} added ({how})")
            return
        if model == "partial":
            trial = self.trial(cover, schema, at)
            self.changes += trial.changes
            covered = "IS_COVERED" if trial.ok() else "NOT_COVERED"
            self.emit(
                f"PROPERTY_ADDED_{covered}_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                at,
                cover,
                schema,
                f"property {where} added ({'' if trial.ok() else 'not '}covered by the "
                "patternProperties/additionalProperties schema)",
            )
        unopen = "closed" if model == "closed" else "partially open"
        if required and has_default:
            kind = "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
            how = f"required with a default, {unopen} content model"
        elif required:
            kind = "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
            how = f"required, no default, {unopen} content model"
        else:
            kind = "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
            how = f"optional, {unopen} content model"
        self.emit(kind, at, None, schema, f"property {where} added ({how})")

    def property_removed(self, n: Mapping[str, Any], name: str, schema: Any, at: str) -> None:
        where = path_label(at)
        model, cover = self.content_model(n, name, self.new_root)
        if model == "open":
            self.emit(
                "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
                at,
                schema,
                None,
                f"property {where} removed (open content model)",
            )
        elif model == "partial":
            trial = self.trial(schema, cover, at)
            self.changes += trial.changes
            covered = "IS_COVERED" if trial.ok() else "NOT_COVERED"
            self.emit(
                f"PROPERTY_REMOVED_{covered}_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                at,
                schema,
                cover,
                f"property {where} removed ({'' if trial.ok() else 'not '}covered by the "
                "patternProperties/additionalProperties schema)",
            )
        elif self.resolve(schema, self.old_root)[0] is False:
            self.emit(
                "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                at,
                schema,
                None,
                f"forbidden property {where} removed (closed content model)",
            )
        else:
            self.emit(
                "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                at,
                schema,
                None,
                f"property {where} removed (closed content model)",
            )

    def additional_properties(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        self.extra(o, n, path, "additionalProperties", "ADDITIONAL_PROPERTIES", "properties")

    def extra(
        self,
        o: Mapping[str, Any],
        n: Mapping[str, Any],
        path: str,
        keyword: str,
        stem: str,
        what: str,
    ) -> None:
        """``additionalProperties`` (or the additional items of a tuple): the content model."""
        if keyword not in o and keyword not in n:
            return
        old_raw, new_raw = o.get(keyword, True), n.get(keyword, True)
        old, _ = self.resolve(old_raw, self.old_root)
        new, _ = self.resolve(new_raw, self.new_root)
        at, where = f"{path}/{keyword}", path_label(path)
        if (old is False) != (new is False):
            if new is False:
                self.emit(
                    f"{stem}_REMOVED",
                    at,
                    old_raw,
                    new_raw,
                    f"{where} no longer allows additional {what}",
                )
            else:
                self.emit(
                    f"{stem}_ADDED", at, old_raw, new_raw, f"{where} now allows additional {what}"
                )
        elif old is False:
            return
        elif _empty(old) and not _empty(new):
            self.emit(
                f"{stem}_NARROWED",
                at,
                old_raw,
                new_raw,
                f"additional {what} of {where} narrowed to a schema",
            )
        elif _empty(new) and not _empty(old):
            self.emit(
                f"{stem}_EXTENDED",
                at,
                old_raw,
                new_raw,
                f"additional {what} of {where} no longer constrained",
            )
        elif not _empty(old):
            self.compare(old_raw, new_raw, at)

    def pattern_properties(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        old, new = _mapping(o.get("patternProperties")), _mapping(n.get("patternProperties"))
        where = path_label(path)
        for pattern in sorted(set(old) | set(new)):
            at = f"{path}/patternProperties/{_escape(pattern)}"
            if pattern not in new:
                self.emit(
                    "PATTERN_PROPERTY_REMOVED",
                    at,
                    old[pattern],
                    None,
                    f"patternProperties {pattern} of {where} removed",
                )
            elif pattern not in old:
                self.emit(
                    "PATTERN_PROPERTY_ADDED",
                    at,
                    None,
                    new[pattern],
                    f"patternProperties {pattern} of {where} added",
                )
            else:
                self.compare(old[pattern], new[pattern], at)

    def dependencies(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        old_arrays, old_schemas = _dependencies(o)
        new_arrays, new_schemas = _dependencies(n)
        where = path_label(path)
        for name in sorted(set(old_arrays) | set(new_arrays)):
            at = f"{path}/dependentRequired/{_escape(name)}"
            old, new = old_arrays.get(name), new_arrays.get(name)
            if new is None:
                self.emit(
                    "DEPENDENCY_ARRAY_REMOVED",
                    at,
                    old,
                    None,
                    f"{where}: properties required with {name} no longer listed",
                )
            elif old is None:
                self.emit(
                    "DEPENDENCY_ARRAY_ADDED",
                    at,
                    None,
                    new,
                    f"{where}: {name} now requires {_show(new)}",
                )
            elif set(old) != set(new):
                if set(new) >= set(old):
                    kind = "DEPENDENCY_ARRAY_EXTENDED"
                elif set(new) <= set(old):
                    kind = "DEPENDENCY_ARRAY_NARROWED"
                else:
                    kind = "DEPENDENCY_ARRAY_CHANGED"
                self.emit(
                    kind,
                    at,
                    old,
                    new,
                    f"{where}: what {name} requires changed: {_show(old)} -> {_show(new)}",
                )
        for name in sorted(set(old_schemas) | set(new_schemas)):
            at = f"{path}/dependentSchemas/{_escape(name)}"
            if name not in new_schemas:
                self.emit(
                    "DEPENDENCY_SCHEMA_REMOVED",
                    at,
                    old_schemas[name],
                    None,
                    f"{where}: schema applied with {name} removed",
                )
            elif name not in old_schemas:
                self.emit(
                    "DEPENDENCY_SCHEMA_ADDED",
                    at,
                    None,
                    new_schemas[name],
                    f"{where}: schema applied with {name} added",
                )
            else:
                self.compare(old_schemas[name], new_schemas[name], at)

    # -- arrays

    def array(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        self.items(o, n, path)
        self.limit(o, n, path, "maxItems", "MAX_ITEMS", True)
        self.limit(o, n, path, "minItems", "MIN_ITEMS", False)
        old_unique, new_unique = o.get("uniqueItems") is True, n.get("uniqueItems") is True
        where = path_label(path)
        if old_unique and not new_unique:
            self.emit(
                "UNIQUE_ITEMS_REMOVED",
                f"{path}/uniqueItems",
                True,
                n.get("uniqueItems"),
                f"items of {where} no longer need to be unique",
            )
        elif new_unique and not old_unique:
            self.emit(
                "UNIQUE_ITEMS_ADDED",
                f"{path}/uniqueItems",
                o.get("uniqueItems"),
                True,
                f"items of {where} must now be unique",
            )

    def items(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        old_prefix, old_rest, old_kw = _tuple(o)
        new_prefix, new_rest, new_kw = _tuple(n)
        if not old_prefix and not new_prefix:
            if "items" in o or "items" in n:
                self.compare(o.get("items", True), n.get("items", True), f"{path}/items")
            return
        rest_kw = "additionalItems" if "additionalItems" in (old_kw, new_kw) else "items"
        self.extra(
            {rest_kw: old_rest}, {rest_kw: new_rest}, path, rest_kw, "ADDITIONAL_ITEMS", "items"
        )
        prefix_kw = "items" if rest_kw == "additionalItems" else "prefixItems"
        for index in range(max(len(old_prefix), len(new_prefix))):
            at = f"{path}/{prefix_kw}/{index}"
            where = path_label(at)
            if index < len(old_prefix) and index < len(new_prefix):
                self.compare(old_prefix[index], new_prefix[index], at)
            elif index < len(old_prefix):
                self.item_removed(old_prefix[index], new_rest, at, where)
            else:
                self.item_added(old_rest, new_prefix[index], at, where)

    def item_removed(self, schema: Any, rest: Any, at: str, where: str) -> None:
        resolved_rest, _ = self.resolve(rest, self.new_root)
        if _empty(resolved_rest):
            self.emit(
                "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL",
                at,
                schema,
                None,
                f"position {where} removed (open content model)",
            )
        elif resolved_rest is False:
            if self.resolve(schema, self.old_root)[0] is False:
                self.emit(
                    "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                    at,
                    schema,
                    None,
                    f"forbidden position {where} removed",
                )
            else:
                self.emit(
                    "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                    at,
                    schema,
                    None,
                    f"position {where} removed (closed content model)",
                )
        else:
            trial = self.trial(schema, rest, at)
            self.changes += trial.changes
            covered = "IS_COVERED" if trial.ok() else "NOT_COVERED"
            self.emit(
                f"ITEM_REMOVED_{covered}_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                at,
                schema,
                rest,
                f"position {where} removed",
            )

    def item_added(self, rest: Any, schema: Any, at: str, where: str) -> None:
        resolved_rest, _ = self.resolve(rest, self.old_root)
        if _empty(resolved_rest):
            if _empty(self.resolve(schema, self.new_root)[0]):
                self.emit(
                    "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
                    at,
                    None,
                    schema,
                    f"position {where} added (empty schema, open content model)",
                )
            else:
                self.emit(
                    "ITEM_ADDED_TO_OPEN_CONTENT_MODEL",
                    at,
                    None,
                    schema,
                    f"position {where} added (open content model)",
                )
        elif resolved_rest is False:
            self.emit(
                "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL",
                at,
                None,
                schema,
                f"position {where} added (closed content model)",
            )
        else:
            trial = self.trial(rest, schema, at)
            self.changes += trial.changes
            covered = "IS_COVERED" if trial.ok() else "NOT_COVERED"
            self.emit(
                f"ITEM_ADDED_{covered}_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                at,
                rest,
                schema,
                f"position {where} added",
            )

    # -- combinations

    def combinations(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        where = path_label(path)
        self.branches(
            _list(o.get("allOf")),
            _list(n.get("allOf")),
            f"{path}/allOf",
            ("PRODUCT_TYPE_EXTENDED", "allOf conditions of {} added"),
            ("PRODUCT_TYPE_NARROWED", "allOf conditions of {} removed"),
        )
        sums = {"anyOf", "oneOf"}
        o_sums, n_sums = sums & set(o), sums & set(n)
        if o_sums == {"oneOf"} and n_sums == {"anyOf"}:
            self.emit(
                "COMBINED_TYPE_EXTENDED",
                f"{path}/anyOf",
                "oneOf",
                "anyOf",
                f"{where}: oneOf relaxed to anyOf",
            )
            self.sum_branches(_list(o["oneOf"]), _list(n["anyOf"]), f"{path}/anyOf")
        elif o_sums == {"anyOf"} and n_sums == {"oneOf"}:
            self.emit(
                "COMBINED_TYPE_CHANGED",
                f"{path}/oneOf",
                "anyOf",
                "oneOf",
                f"{where}: anyOf turned into oneOf",
            )
        else:
            for keyword in ("anyOf", "oneOf"):
                at = f"{path}/{keyword}"
                if keyword in o and keyword in n:
                    self.sum_branches(_list(o[keyword]), _list(n[keyword]), at)
                elif keyword in o:
                    self.emit(
                        "COMBINED_TYPE_REMOVED",
                        at,
                        o[keyword],
                        None,
                        f"{keyword} conditions of {where} removed",
                    )
                elif keyword in n:
                    self.emit(
                        "COMBINED_TYPE_ADDED",
                        at,
                        None,
                        n[keyword],
                        f"{keyword} conditions of {where} added",
                    )
        if "not" in o or "not" in n:
            at = f"{path}/not"
            if "not" not in n:
                self.emit(
                    "NOT_TYPE_REMOVED", at, o["not"], None, f"not condition of {where} removed"
                )
            elif "not" not in o:
                self.emit("NOT_TYPE_ADDED", at, None, n["not"], f"not condition of {where} added")
            else:
                # what the new `not` excludes must already have been excluded: compare reversed
                reversed_ = _Differ(self.new_root, self.old_root, set())
                reversed_.compare(n["not"], o["not"], at)
                if reversed_.changes:
                    kind = "NOT_TYPE_NARROWED" if reversed_.ok() else "NOT_TYPE_EXTENDED"
                    verb = "excludes less" if reversed_.ok() else "excludes more or other values"
                    self.emit(kind, at, o["not"], n["not"], f"not condition of {where} {verb}")

    def sum_branches(self, old: list[Any], new: list[Any], at: str) -> None:
        self.branches(
            old,
            new,
            at,
            ("SUM_TYPE_EXTENDED", "alternatives of {} extended"),
            ("SUM_TYPE_NARROWED", "alternatives of {} narrowed"),
        )

    def branches(
        self,
        old: list[Any],
        new: list[Any],
        at: str,
        more: tuple[str, str],
        fewer: tuple[str, str],
    ) -> None:
        """Pair old and new branches (a maximum matching of compatible pairs) and compare."""
        if not old and not new:
            return
        where = path_label(at.rsplit("/", 1)[0])
        if len(new) > len(old):
            self.emit(
                more[0],
                at,
                len(old),
                len(new),
                f"{more[1].format(where)}: {len(old)} -> {len(new)} branches",
            )
        elif len(new) < len(old):
            self.emit(
                fewer[0],
                at,
                len(old),
                len(new),
                f"{fewer[1].format(where)}: {len(old)} -> {len(new)} branches",
            )
        trials = {
            (i, j): self.trial(a, b, f"{at}/{i}")
            for i, a in enumerate(old)
            for j, b in enumerate(new)
        }
        match = _matching(len(old), len(new), {pair for pair, t in trials.items() if t.ok()})
        unmatched_new = [j for j in range(len(new)) if j not in match.values()]
        for i in range(len(old)):
            if i in match:
                self.changes += trials[(i, match[i])].changes
            elif unmatched_new:
                self.changes += trials[(i, unmatched_new.pop(0))].changes

    def into_sum(self, o: Mapping[str, Any], n: Mapping[str, Any], keyword: str, path: str) -> None:
        """A plain schema became ``anyOf``/``oneOf``: one branch must take all it accepted."""
        branches, at = _list(n[keyword]), f"{path}/{keyword}"
        plain = _validation(o)
        if len(branches) == 1:
            self.compare(plain, branches[0], f"{at}/0")
            return
        trials = [self.trial(plain, branch, f"{at}/{j}") for j, branch in enumerate(branches)]
        for trial in trials:
            if trial.ok():
                self.changes += trial.changes
                self.emit(
                    "SUM_TYPE_EXTENDED",
                    at,
                    plain,
                    n[keyword],
                    f"{path_label(path)} extended to {keyword} of {len(branches)} alternatives",
                )
                return
        self.emit(
            "TYPE_CHANGED",
            path,
            plain,
            n[keyword],
            f"{path_label(path)} changed to {keyword} with no branch accepting the old schema",
        )

    def from_sum(self, o: Mapping[str, Any], n: Mapping[str, Any], keyword: str, path: str) -> None:
        """``anyOf``/``oneOf`` became a plain schema: it must take every branch."""
        branches, at = _list(o[keyword]), f"{path}/{keyword}"
        plain = _validation(n)
        if len(branches) == 1:
            self.compare(branches[0], plain, f"{at}/0")
            return
        trials = [self.trial(branch, plain, f"{at}/{i}") for i, branch in enumerate(branches)]
        if all(t.ok() for t in trials):
            for trial in trials:
                self.changes += trial.changes
            return
        self.emit(
            "SUM_TYPE_NARROWED",
            at,
            o[keyword],
            plain,
            f"{path_label(path)} narrowed from {keyword} of {len(branches)} alternatives",
        )

    def unanalysed(self, o: Mapping[str, Any], n: Mapping[str, Any], path: str) -> None:
        for keyword in sorted(_UNANALYSED & (set(o) | set(n))):
            self.keyword_change(o, n, path, keyword, "KEYWORD")


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _strings(value: Any) -> set[str]:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _dependencies(node: Mapping[str, Any]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """``dependentRequired`` and ``dependentSchemas``, with draft-07 ``dependencies`` folded in."""
    arrays: dict[str, list[str]] = {}
    schemas: dict[str, Any] = {}
    for name, value in _mapping(node.get("dependencies")).items():
        if isinstance(value, list):
            arrays[name] = [v for v in value if isinstance(v, str)]
        else:
            schemas[name] = value
    for name, value in _mapping(node.get("dependentRequired")).items():
        arrays[name] = [v for v in _list(value) if isinstance(v, str)]
    schemas.update(_mapping(node.get("dependentSchemas")))
    return arrays, schemas


def _tuple(node: Mapping[str, Any]) -> tuple[list[Any], Any, str]:
    """(positional item schemas, schema of the rest, keyword of the rest) of an array schema."""
    items = node.get("items")
    if isinstance(items, list):  # draft-07 tuple form
        return items, node.get("additionalItems", True), "additionalItems"
    prefix = _list(node.get("prefixItems"))
    return prefix, node.get("items", True), "items"


def _matching(left: int, right: int, edges: set[tuple[int, int]]) -> dict[int, int]:
    """A maximum bipartite matching (left index -> right index), same-index pairs tried first."""
    match_right: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        order = ([i] if i < right else []) + [j for j in range(right) if j != i]
        for j in order:
            if (i, j) not in edges or j in seen:
                continue
            seen.add(j)
            if j not in match_right or augment(match_right[j], seen):
                match_right[j] = i
                return True
        return False

    for i in range(left):
        augment(i, set())
    return {i: j for j, i in match_right.items()}
