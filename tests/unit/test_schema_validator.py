"""Payload validation: ``jsonschema-rs`` answers "valid?" fast only where it reads the schema as
``jsonschema`` (the reference) does, and the reference has the last word."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from jelmore_infra.runtime.catalogue import SchemaValidator, uses_shared_keywords_only

ROOT = Path(__file__).resolve().parents[2]


def topology_schemas() -> list[dict[str, Any]]:
    events = yaml.safe_load((ROOT / "topology" / "events.yaml").read_text())["events"]
    return [entry["payload"] for entry in events.values()]


#: Schemas of the shared keywords, written to reach the places where two validators could part:
#: integers against numbers (1.0, true), bounds at their edges, equality in enum, const and
#: uniqueItems, and the combinators.
SHARED = [
    *topology_schemas(),
    {"type": "integer", "minimum": 0, "exclusiveMaximum": 10},
    {"type": ["number", "null"], "exclusiveMinimum": -1.5, "maximum": 2**53},
    {"enum": [1, "a", None, True, [1, 2], {"k": 1}]},
    {"const": {"a": [1, 2.0]}},
    {"type": "array", "uniqueItems": True, "maxItems": 4},
    {"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"}},
    {"type": "array", "contains": {"type": "boolean"}, "minContains": 1, "maxContains": 2},
    {"type": "string", "minLength": 1, "maxLength": 3},
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
        "dependentRequired": {"b": ["a"]},
        "minProperties": 1,
        "maxProperties": 2,
        "propertyNames": {"maxLength": 1},
    },
    {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
    {"anyOf": [{"type": "string"}, {"type": "array"}], "not": {"const": "x"}},
    {"if": {"type": "object"}, "then": {"required": ["k"]}, "else": {"type": "integer"}},
    {"allOf": [{"type": "object"}, {"dependentSchemas": {"a": {"required": ["b"]}}}]},
]

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 10, 2**53, 1.0, 0.0, -1.5, 2.0])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
    | st.sampled_from(["a", "k", "x", "content", ""])
)
KEYS = st.sampled_from(["a", "b", "k", "content", "tokens", "provider", "timeout", "zz"])
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize("schema", SHARED, ids=[json.dumps(s)[:60] for s in SHARED])
def test_the_schemas_of_shared_keywords_take_the_fast_path(schema: dict[str, Any]) -> None:
    assert uses_shared_keywords_only(schema)
    assert SchemaValidator(schema).fast is not None


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^\\d+$"},
        {"type": "object", "properties": {"id": {"type": "string", "pattern": "^a"}}},
        {"patternProperties": {"^x": {"type": "integer"}}},
        {"type": "number", "multipleOf": 0.01},
        {"type": "string", "format": "email"},
        {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"},
        {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "x"}]},
        {"type": "array", "items": {"unevaluatedProperties": False}},
        {"contentMediaType": "application/json"},
    ],
)
def test_schemas_the_two_packages_may_read_differently_are_left_to_jsonschema(
    schema: dict[str, Any],
) -> None:
    assert not uses_shared_keywords_only(schema)
    assert SchemaValidator(schema).fast is None


def test_a_property_named_like_a_keyword_is_only_a_name() -> None:
    schema = {"type": "object", "properties": {"pattern": {"type": "string"}, "format": {}}}
    assert uses_shared_keywords_only(schema)


def test_python_regex_semantics_decide_even_where_rust_would_refuse() -> None:
    # Python's \\d matches any Unicode digit, Rust's only 0-9: the pattern keeps the schema on
    # jsonschema alone, which accepts "٣" as the reference does.
    validator = SchemaValidator({"type": "string", "pattern": "^\\d+$"})
    assert validator.quick_valid("٣")


@pytest.mark.parametrize("fast", [lambda _: False, lambda _: 1 / 0], ids=["refuses", "raises"])
def test_a_payload_the_fast_validator_refuses_or_cannot_take_is_judged_by_jsonschema(
    fast: Any,
) -> None:
    validator = SchemaValidator({"type": "object"})
    validator.fast = fast
    assert validator.quick_valid({"a": 1})
    assert not validator.quick_valid([1])


@pytest.mark.parametrize("schema", SHARED, ids=[json.dumps(s)[:60] for s in SHARED])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON_VALUES)
def test_the_fast_answer_is_always_the_reference_answer(
    schema: dict[str, Any], payload: Any
) -> None:
    validator = SchemaValidator(schema)
    assert validator.fast is not None
    reference = Draft202012Validator(schema).is_valid(payload)
    assert validator.quick_valid(payload) == reference
    try:
        fast = validator.fast(payload)
    except Exception:  # a value it cannot take: quick_valid asked the reference (checked above)
        return
    assert fast == reference, f"jsonschema-rs says {fast} for {payload!r} under {schema}"


def test_multiple_of_stays_with_jsonschema_whose_float_division_refuses_what_rust_accepts() -> None:
    # jsonschema: 0.07 / 0.01 is 7.000000000000001, not a whole number, so 0.07 is refused;
    # jsonschema-rs would accept it. The reference's answer is kept.
    assert not SchemaValidator({"type": "number", "multipleOf": 0.01}).quick_valid(0.07)


def test_jsonschema_is_imported_only_when_a_payload_needs_it() -> None:
    # Importing jsonschema costs ~80 ms; a process whose payloads all pass the quick check
    # (the common case) never pays it, and the first one that fails it gets its full verdict.
    code = (
        "import sys\n"
        "from jelmore_infra.runtime.catalogue import SchemaValidator\n"
        "v = SchemaValidator({'type': 'object', 'required': ['a']})\n"
        "print(v.quick_valid({'a': 1}), 'jsonschema' in sys.modules)\n"
        "print(v.quick_valid({'b': 1}), 'jsonschema' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split("\n")[:2] == ["True False", "False True"]
