"""The payload schema compatibility engine (``jelmore_infra.catalogue.compat``).

The table below was written from the rules in docs/schema-compatibility.md, one row per kind of
change, before the engine was run: for each pair of schemas it gives the verdict under the four
modes and the change types that ``schema_diff(old, new)`` must report. The reasoning for each
row is in its note: BACKWARD reads ``diff(old -> new)``, FORWARD reads ``diff(new -> old)`` with
the same rules, FULL needs both, NONE never breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from jelmore_infra.catalogue.compat import (
    Verdict,
    check_compatibility,
    is_compatible_change,
    schema_diff,
)

MODES = ("none", "backward", "forward", "full")


def obj(properties: dict[str, Any], *, required: tuple[str, ...] = (), **more: Any) -> Any:
    return {"type": "object", "properties": properties, "required": list(required), **more}


def open_(properties: dict[str, Any], required: tuple[str, ...] = ("id",)) -> Any:
    return obj({"id": {"type": "string"}, **properties}, required=required)


def closed(properties: dict[str, Any], required: tuple[str, ...] = ("id",)) -> Any:
    return obj(
        {"id": {"type": "string"}, **properties}, required=required, additionalProperties=False
    )


def prop(schema: dict[str, Any]) -> Any:
    """A payload whose one extra property ``x`` has ``schema`` (open content model)."""
    return open_({"x": schema})


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
USER = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 50}}}
ADDRESS_DEFS = {
    "Address": {
        "type": "object",
        "properties": {"zip": {"type": "string", "maxLength": 10}},
    }
}
TREE = {
    "type": "object",
    "properties": {
        "value": {"type": "integer"},
        "children": {"type": "array", "items": {"$ref": "#"}},
    },
}
PARTIAL = obj({}, patternProperties={"^x_": {"type": "string"}}, additionalProperties=False)


@dataclass(frozen=True)
class Row:
    id: str
    old: Any
    new: Any
    #: Verdicts under none, backward, forward, full: OK or BREAKS.
    verdicts: str
    #: The change types of schema_diff(old, new).
    types: frozenset[str]
    note: str = ""


def row(id: str, old: Any, new: Any, verdicts: str, types: set[str], note: str = "") -> Row:
    return Row(id, old, new, verdicts, frozenset(types), note)


TABLE = [
    row(
        "optional property added to an open model",
        open_({}),
        open_({"timeout": INTEGER}),
        "OK BREAKS OK BREAKS",
        {"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"},
        "old events may already carry timeout with any value; forward sees a removal from an "
        "open model",
    ),
    row(
        "optional property added to a closed model",
        closed({}),
        closed({"timeout": INTEGER}),
        "OK OK BREAKS BREAKS",
        {"OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"},
        "forward sees timeout removed from the closed old schema",
    ),
    row(
        "property with the empty schema added to an open model",
        open_({}),
        open_({"extra": {}}),
        "OK OK OK OK",
        {"PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"},
        "the way out for FULL: {} accepts whatever old events carried",
    ),
    row(
        "required property without default added to an open model",
        open_({}),
        open_({"provider": STRING}, required=("id", "provider")),
        "OK BREAKS OK BREAKS",
        {"REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"},
        "old events lack provider; forward sees a removal from an open model",
    ),
    row(
        "required property without default added to a closed model",
        closed({}),
        closed({"provider": STRING}, required=("id", "provider")),
        "OK BREAKS BREAKS BREAKS",
        {"REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"},
        "forward sees a removal from a closed model",
    ),
    row(
        "required property with default added to a closed model",
        closed({}),
        closed({"provider": {"type": "string", "default": "x"}}, required=("id", "provider")),
        "OK OK BREAKS BREAKS",
        {"REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"},
        "the default fills old events in; forward sees a removal from a closed model",
    ),
    row(
        "required property with default added to an open model",
        open_({}),
        open_({"provider": {"type": "string", "default": "x"}}, required=("id", "provider")),
        "OK BREAKS OK BREAKS",
        {"REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"},
        "STRICT: old events may carry provider with any value",
    ),
    row(
        "property removed from an open model",
        open_({"note": STRING}),
        open_({}),
        "OK OK BREAKS BREAKS",
        {"PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL"},
        "forward sees an optional typed property added to an open model",
    ),
    row(
        "property removed from a closed model",
        closed({"note": STRING}),
        closed({}),
        "OK BREAKS OK BREAKS",
        {"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"},
        "old events with note are rejected; forward sees an optional property added to a closed "
        "model",
    ),
    row(
        "forbidden property removed from a closed model",
        closed({"note": False}),
        closed({}),
        "OK OK OK OK",
        {"PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"},
        "no old event had note; forward adds an optional property to a closed model",
    ),
    row(
        "existing property made required",
        open_({"timeout": INTEGER}),
        open_({"timeout": INTEGER}, required=("id", "timeout")),
        "OK BREAKS OK BREAKS",
        {"REQUIRED_ATTRIBUTE_ADDED"},
        "forward sees the property made optional",
    ),
    row(
        "existing property made optional",
        open_({"timeout": INTEGER}, required=("id", "timeout")),
        open_({"timeout": INTEGER}),
        "OK OK BREAKS BREAKS",
        {"REQUIRED_ATTRIBUTE_REMOVED"},
        "forward sees it made required",
    ),
    row(
        "existing property with a default made required",
        open_({"timeout": {"type": "integer", "default": 30}}),
        open_({"timeout": {"type": "integer", "default": 30}}, required=("id", "timeout")),
        "OK OK OK OK",
        {"REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED"},
        "the default fills old events in; forward sees it made optional",
    ),
    row(
        "additionalProperties false to true",
        closed({}),
        {**closed({}), "additionalProperties": True},
        "OK OK BREAKS BREAKS",
        {"ADDITIONAL_PROPERTIES_ADDED"},
        "forward sees additional properties removed",
    ),
    row(
        "additionalProperties true to false",
        {**closed({}), "additionalProperties": True},
        closed({}),
        "OK BREAKS OK BREAKS",
        {"ADDITIONAL_PROPERTIES_REMOVED"},
    ),
    row(
        "additionalProperties narrowed to a schema",
        open_({}),
        {**open_({}), "additionalProperties": STRING},
        "OK BREAKS OK BREAKS",
        {"ADDITIONAL_PROPERTIES_NARROWED"},
        "forward sees it extended",
    ),
    row(
        "integer widened to number",
        prop(INTEGER),
        prop({"type": "number"}),
        "OK OK BREAKS BREAKS",
        {"TYPE_EXTENDED"},
    ),
    row(
        "number narrowed to integer",
        prop({"type": "number"}),
        prop(INTEGER),
        "OK BREAKS OK BREAKS",
        {"TYPE_NARROWED"},
    ),
    row(
        "string made nullable with a type list",
        prop(STRING),
        prop({"type": ["string", "null"]}),
        "OK OK BREAKS BREAKS",
        {"SUM_TYPE_EXTENDED"},
    ),
    row(
        "nullable string made non-null",
        prop({"type": ["string", "null"]}),
        prop(STRING),
        "OK BREAKS OK BREAKS",
        {"SUM_TYPE_NARROWED"},
    ),
    row(
        "string changed to integer",
        prop(STRING),
        prop(INTEGER),
        "OK BREAKS BREAKS BREAKS",
        {"TYPE_CHANGED"},
    ),
    row(
        "string made nullable with anyOf",
        prop(STRING),
        prop({"anyOf": [STRING, {"type": "null"}]}),
        "OK OK BREAKS BREAKS",
        {"SUM_TYPE_EXTENDED"},
        "the string branch takes the old schema; forward loses the null branch",
    ),
    row(
        "type list rewritten as the same anyOf",
        prop({"type": ["string", "null"]}),
        prop({"anyOf": [STRING, {"type": "null"}]}),
        "OK OK OK OK",
        set(),
    ),
    row(
        "anyOf branch added",
        prop({"anyOf": [STRING, INTEGER]}),
        prop({"anyOf": [STRING, INTEGER, {"type": "null"}]}),
        "OK OK BREAKS BREAKS",
        {"SUM_TYPE_EXTENDED"},
    ),
    row(
        "enum extended",
        prop({"type": "string", "enum": ["a", "b"]}),
        prop({"type": "string", "enum": ["a", "b", "c"]}),
        "OK OK BREAKS BREAKS",
        {"ENUM_ARRAY_EXTENDED"},
    ),
    row(
        "enum narrowed",
        prop({"type": "string", "enum": ["a", "b", "c"]}),
        prop({"type": "string", "enum": ["a", "b"]}),
        "OK BREAKS OK BREAKS",
        {"ENUM_ARRAY_NARROWED"},
    ),
    row(
        "enum value swapped",
        prop({"type": "string", "enum": ["a", "b"]}),
        prop({"type": "string", "enum": ["a", "c"]}),
        "OK BREAKS BREAKS BREAKS",
        {"ENUM_ARRAY_CHANGED"},
    ),
    row(
        "const widened to an enum",
        prop({"const": "a"}),
        prop({"enum": ["a", "b"]}),
        "OK OK BREAKS BREAKS",
        {"ENUM_ARRAY_EXTENDED"},
        "a const is a one-value enum",
    ),
    row(
        "maxLength increased",
        prop({"type": "string", "maxLength": 10}),
        prop({"type": "string", "maxLength": 20}),
        "OK OK BREAKS BREAKS",
        {"MAX_LENGTH_INCREASED"},
    ),
    row(
        "maxLength decreased",
        prop({"type": "string", "maxLength": 20}),
        prop({"type": "string", "maxLength": 10}),
        "OK BREAKS OK BREAKS",
        {"MAX_LENGTH_DECREASED"},
    ),
    row(
        "minimum added",
        prop(INTEGER),
        prop({"type": "integer", "minimum": 0}),
        "OK BREAKS OK BREAKS",
        {"MINIMUM_ADDED"},
    ),
    row(
        "minimum removed",
        prop({"type": "integer", "minimum": 0}),
        prop(INTEGER),
        "OK OK BREAKS BREAKS",
        {"MINIMUM_REMOVED"},
    ),
    row(
        "multipleOf reduced to a divisor",
        prop({"type": "integer", "multipleOf": 10}),
        prop({"type": "integer", "multipleOf": 5}),
        "OK OK BREAKS BREAKS",
        {"MULTIPLE_OF_REDUCED"},
        "every multiple of 10 is a multiple of 5; forward sees it expanded",
    ),
    row(
        "pattern added",
        prop(STRING),
        prop({"type": "string", "pattern": "^[a-z]+$"}),
        "OK BREAKS OK BREAKS",
        {"PATTERN_ADDED"},
    ),
    row(
        "pattern removed",
        prop({"type": "string", "pattern": "^[a-z]+$"}),
        prop(STRING),
        "OK OK BREAKS BREAKS",
        {"PATTERN_REMOVED"},
    ),
    row(
        "format added",
        prop(STRING),
        prop({"type": "string", "format": "date-time"}),
        "OK BREAKS OK BREAKS",
        {"FORMAT_ADDED"},
    ),
    row(
        "descriptions and title changed only",
        {**prop({"type": "string", "description": "old"}), "title": "A"},
        {**prop({"type": "string", "description": "new"}), "title": "B"},
        "OK OK OK OK",
        {"DESCRIPTION_CHANGED", "TITLE_CHANGED"},
    ),
    row(
        "identical schemas",
        open_({"timeout": INTEGER}),
        open_({"timeout": INTEGER}),
        "OK OK OK OK",
        set(),
    ),
    row(
        "required property added to a nested closed object",
        open_({"user": {**USER, "additionalProperties": False}}),
        open_(
            {
                "user": {
                    **USER,
                    "properties": {**USER["properties"], "email": STRING},
                    "required": ["email"],
                    "additionalProperties": False,
                }
            }
        ),
        "OK BREAKS BREAKS BREAKS",
        {"REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"},
        "forward sees email removed from the closed nested object",
    ),
    row(
        "nested property maxLength decreased",
        open_({"user": USER}),
        open_({"user": {**USER, "properties": {"name": {"type": "string", "maxLength": 20}}}}),
        "OK BREAKS OK BREAKS",
        {"MAX_LENGTH_DECREASED"},
    ),
    row(
        "array items widened from integer to number",
        prop({"type": "array", "items": INTEGER}),
        prop({"type": "array", "items": {"type": "number"}}),
        "OK OK BREAKS BREAKS",
        {"TYPE_EXTENDED"},
    ),
    row(
        "array items changed from string to integer",
        prop({"type": "array", "items": STRING}),
        prop({"type": "array", "items": INTEGER}),
        "OK BREAKS BREAKS BREAKS",
        {"TYPE_CHANGED"},
    ),
    row(
        "uniqueItems added",
        prop({"type": "array", "items": STRING}),
        prop({"type": "array", "items": STRING, "uniqueItems": True}),
        "OK BREAKS OK BREAKS",
        {"UNIQUE_ITEMS_ADDED"},
    ),
    row(
        "property added under a matching patternProperties schema",
        PARTIAL,
        {**PARTIAL, "properties": {"x_a": STRING}},
        "OK OK OK OK",
        {
            "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        },
        "old events could only carry x_a as a string; forward: the pattern still covers it",
    ),
    row(
        "property added narrower than its patternProperties schema",
        PARTIAL,
        {**PARTIAL, "properties": {"x_a": {"type": "string", "maxLength": 5}}},
        "OK BREAKS OK BREAKS",
        {
            "MAX_LENGTH_ADDED",
            "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
            "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
        },
    ),
    row(
        "referenced definition narrowed",
        {**open_({"addr": {"$ref": "#/$defs/Address"}}), "$defs": ADDRESS_DEFS},
        {
            **open_({"addr": {"$ref": "#/$defs/Address"}}),
            "$defs": {
                "Address": {
                    "type": "object",
                    "properties": {"zip": {"type": "string", "maxLength": 5}},
                }
            },
        },
        "OK BREAKS OK BREAKS",
        {"MAX_LENGTH_DECREASED"},
        "local $ref is resolved in each document",
    ),
    row(
        "inline schema moved into $defs unchanged",
        open_({"addr": ADDRESS_DEFS["Address"]}),
        {**open_({"addr": {"$ref": "#/$defs/Address"}}), "$defs": ADDRESS_DEFS},
        "OK OK OK OK",
        set(),
    ),
    row(
        "sibling constraint added beside a $ref",
        {**prop({"$ref": "#/$defs/Name"}), "$defs": {"Name": STRING}},
        {**prop({"$ref": "#/$defs/Name", "maxLength": 3}), "$defs": {"Name": STRING}},
        "OK BREAKS OK BREAKS",
        {"MAX_LENGTH_ADDED"},
        "siblings that cannot interact with the referenced schema are merged into it",
    ),
    row(
        "position added to a closed tuple",
        prop({"type": "array", "prefixItems": [STRING], "items": False}),
        prop({"type": "array", "prefixItems": [STRING, INTEGER], "items": False}),
        "OK OK BREAKS BREAKS",
        {"ITEM_ADDED_TO_CLOSED_CONTENT_MODEL"},
        "old events never had a second item; forward sees a position removed from a closed tuple",
    ),
    row(
        "oneOf relaxed to anyOf",
        prop({"oneOf": [STRING, INTEGER]}),
        prop({"anyOf": [STRING, INTEGER]}),
        "OK OK BREAKS BREAKS",
        {"COMBINED_TYPE_EXTENDED"},
        "forward sees anyOf turned into oneOf",
    ),
    row(
        "recursive schema widened deep down",
        TREE,
        {**TREE, "properties": {**TREE["properties"], "value": {"type": "number"}}},
        "OK OK BREAKS BREAKS",
        {"TYPE_EXTENDED"},
        "the recursion through $ref # stops when the same pair comes round again",
    ),
]


def expected(row: Row) -> dict[str, bool]:
    words = row.verdicts.split()
    assert len(words) == 4 and set(words) <= {"OK", "BREAKS"}, row.verdicts
    return {mode: word == "OK" for mode, word in zip(MODES, words, strict=True)}


def test_the_table_covers_at_least_24_schema_pairs() -> None:
    assert len(TABLE) >= 24
    assert len({r.id for r in TABLE}) == len(TABLE)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", TABLE, ids=[r.id for r in TABLE])
def test_compatibility_table(case: Row, mode: str) -> None:
    verdict = check_compatibility(case.old, case.new, mode)
    assert verdict.compatible is expected(case)[mode], [b.message for b in verdict.breaking]
    assert verdict.mode == mode


@pytest.mark.parametrize("case", TABLE, ids=[r.id for r in TABLE])
def test_diff_reports_the_change_types_of_the_table(case: Row) -> None:
    assert {c.type for c in schema_diff(case.old, case.new)} == case.types


@pytest.mark.parametrize("case", TABLE, ids=[r.id for r in TABLE])
def test_each_change_is_flagged_compatible_exactly_when_backward_accepts_it(case: Row) -> None:
    changes = schema_diff(case.old, case.new)
    backward = check_compatibility(case.old, case.new, "backward")
    assert all(c.compatible == is_compatible_change(c.type) for c in changes)
    assert backward.compatible is all(c.compatible for c in changes)
    assert [b.change for b in backward.breaking] == [c for c in changes if not c.compatible]


@pytest.mark.parametrize("case", TABLE, ids=[r.id for r in TABLE])
def test_every_breaking_message_names_its_direction_path_and_rule(case: Row) -> None:
    for breaking in check_compatibility(case.old, case.new, "full").breaking:
        assert breaking.message.startswith(f"{breaking.direction}: {breaking.change.path}: ")
        assert breaking.change.type in breaking.message
        assert "\n" not in breaking.message


# --- text and paths ------------------------------------------------------------------------------


def only(changes: list[Any]) -> Any:
    assert len(changes) == 1, changes
    return changes[0]


def test_an_added_optional_property_reads_as_added_to_the_open_model() -> None:
    change = only(schema_diff(open_({}), open_({"timeout": INTEGER})))
    assert change.path == "#/properties/timeout"
    assert change.text == "property timeout added (optional, open content model)"
    assert change.old is None and change.new == INTEGER
    assert change.compatible is False


def test_a_narrowed_type_names_the_property_and_both_types() -> None:
    change = only(
        schema_diff(open_({"provider": {"type": "number"}}), open_({"provider": INTEGER}))
    )
    assert change.type == "TYPE_NARROWED"
    assert change.path == "#/properties/provider/type"
    assert change.text == "type of provider narrowed: number -> integer"
    assert (change.old, change.new) == ("number", "integer")


def test_a_property_made_required_reads_as_made_required() -> None:
    change = only(
        schema_diff(open_({"timeout": INTEGER}), open_({"timeout": INTEGER}, ("id", "timeout")))
    )
    assert change.path == "#/properties/timeout"
    assert change.text == "timeout made required"


def test_a_nested_change_names_the_nested_property() -> None:
    old = open_({"user": USER})
    new = open_({"user": {**USER, "properties": {"name": {"type": "string", "maxLength": 20}}}})
    change = only(schema_diff(old, new))
    assert change.path == "#/properties/user/properties/name/maxLength"
    assert change.text == "maxLength of user.name decreased: 50 -> 20"


def test_an_array_items_change_names_the_items() -> None:
    change = only(
        schema_diff(
            open_({"tags": {"type": "array", "items": INTEGER}}),
            open_({"tags": {"type": "array", "items": {"type": "number"}}}),
        )
    )
    assert change.path == "#/properties/tags/items/type"
    assert change.text == "type of tags[] extended: integer -> number"


def test_a_root_change_is_located_at_the_root() -> None:
    change = only(schema_diff({"type": "object"}, {"type": "array"}))
    assert change.path == "#/type"
    assert change.text == "type of the payload changed: object -> array"
    closing = only(schema_diff(open_({}), {**open_({}), "additionalProperties": False}))
    assert closing.path == "#/additionalProperties"
    assert closing.text == "the payload no longer allows additional properties"


def test_a_property_name_with_a_slash_is_escaped_in_the_path() -> None:
    change = only(schema_diff(closed({}), closed({"a/b": STRING})))
    assert change.path == "#/properties/a~1b"
    assert change.text == "property a/b added (optional, closed content model)"


def test_the_backward_message_explains_the_rule_for_readers_of_old_events() -> None:
    verdict = check_compatibility(
        open_({}), open_({"provider": STRING}, ("id", "provider")), "backward"
    )
    assert [b.message for b in verdict.breaking] == [
        "backward: #/properties/provider: REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL "
        "(the new schema requires a property without a default that old events may lack)"
    ]
    assert verdict.breaking[0].direction == "backward"


def test_the_forward_check_reads_the_diff_from_new_to_old() -> None:
    verdict = check_compatibility(closed({}), closed({"timeout": INTEGER}), "forward")
    (breaking,) = verdict.breaking
    assert breaking.direction == "forward"
    assert breaking.change.type == "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
    assert breaking.message == (
        "forward: #/properties/timeout: PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL "
        "(the old schema is a closed content model that no longer lists a property new events "
        "may carry)"
    )
    # the changes shown are still old -> new
    assert [c.type for c in verdict.changes] == ["OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"]


def test_full_reports_breaks_from_both_directions() -> None:
    verdict = check_compatibility(
        closed({"note": STRING}), closed({"provider": STRING}, ("id", "provider")), "full"
    )
    assert [(b.direction, b.change.path) for b in verdict.breaking] == [
        ("backward", "#/properties/note"),
        ("backward", "#/properties/provider"),
        # new -> old: note comes back as an optional property of a closed model (compatible)
        ("forward", "#/properties/provider"),
    ]
    assert verdict.summary() == "breaking under full: 3 changes"


def test_the_summary_says_compatible_or_how_many_changes_break() -> None:
    assert check_compatibility(open_({}), open_({}), "backward").summary() == (
        "compatible under backward"
    )
    one = check_compatibility(prop(STRING), prop(INTEGER), "backward")
    assert one.summary() == "breaking under backward: 1 change"
    assert check_compatibility(prop(STRING), prop(INTEGER), "none").summary() == (
        "compatible under none"
    )


def test_mode_none_still_lists_the_changes() -> None:
    verdict = check_compatibility(prop(STRING), prop(INTEGER), "none")
    assert isinstance(verdict, Verdict)
    assert verdict.compatible and not verdict.breaking
    assert [c.type for c in verdict.changes] == ["TYPE_CHANGED"]


def test_an_unknown_mode_is_refused_with_the_valid_modes() -> None:
    with pytest.raises(ValueError, match=r"unknown compatibility mode 'transitive'.*backward"):
        check_compatibility(open_({}), open_({}), "transitive")


def test_the_diff_order_does_not_depend_on_key_order() -> None:
    old = open_({"b": STRING, "a": STRING})
    new = open_({"c": INTEGER, "a": INTEGER})
    shuffled_old = open_({"a": STRING, "b": STRING})
    shuffled_new = open_({"a": INTEGER, "c": INTEGER})
    paths = [c.path for c in schema_diff(old, new)]
    assert paths == ["#/properties/a/type", "#/properties/b", "#/properties/c"]
    assert schema_diff(shuffled_old, shuffled_new) == schema_diff(old, new)


def test_lenient_accepts_an_optional_property_added_to_an_open_model_under_full() -> None:
    old, new = open_({}), open_({"timeout": INTEGER})
    assert not check_compatibility(old, new, "full").compatible
    lenient = check_compatibility(old, new, "full", policy="lenient")
    assert lenient.compatible
    assert lenient.summary() == "compatible under full (lenient)"
    # a required property without a default breaks under both policies
    required = open_({"timeout": INTEGER}, ("id", "timeout"))
    assert not check_compatibility(old, required, "backward", policy="lenient").compatible


def test_an_unanalysed_keyword_is_breaking_when_added_and_compatible_when_removed() -> None:
    plain = prop(STRING)
    with_names = prop({"type": "string", "if": {"minLength": 3}, "then": {"pattern": "^a"}})
    added = check_compatibility(plain, with_names, "backward")
    assert {b.change.type for b in added.breaking} == {"KEYWORD_ADDED"}
    assert check_compatibility(with_names, plain, "backward").compatible


def test_an_unresolvable_ref_is_compared_by_its_text() -> None:
    old = prop({"$ref": "https://example.com/a.json"})
    assert schema_diff(old, old) == []
    change = only(schema_diff(old, prop({"$ref": "https://example.com/b.json"})))
    assert change.type == "REF_CHANGED" and not change.compatible
