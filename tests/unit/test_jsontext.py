"""``jsontext``: JSON written and read by orjson, with exactly the standard library's results."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jelmore_infra import jsontext
from jelmore_infra.runtime.envelope import EventError, decode_event

_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)


@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=6))
def test_written_json_reads_back_as_the_same_values(body: dict[str, Any]) -> None:
    assert json.loads(jsontext.dumps(body)) == body


@pytest.mark.parametrize(
    "body",
    [
        {"big": 2**70},
        {"lone": "\ud800"},
        {"keys": {1: "one"}},
        {"nan": float("nan")},
        {"inf": [float("-inf")]},
        {"none": None},
    ],
)
def test_what_orjson_would_write_otherwise_is_written_by_the_standard_library(
    body: dict[str, Any],
) -> None:
    assert jsontext.dumps(body) == json.dumps(body, separators=(",", ":")).encode()


@given(_JSON_VALUES | st.integers() | st.floats())
def test_json_text_reads_as_the_standard_library_reads_it(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert json.dumps(jsontext.loads(text.encode())) == json.dumps(json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        b'{"n": NaN}',
        b'{"f": 1e400}',
        b'{"s": "\\ud800"}',
        b'{"big": 123456789012345678901234567890}',
        b'{"big": 18446744073709551616}',
        b'{"neg": -9223372036854775809}',
        b'\xef\xbb\xbf{"bom": 1}',
        b'{"a": 1, "a": 2}',
    ],
)
def test_what_orjson_reads_otherwise_is_read_by_the_standard_library(text: bytes) -> None:
    decoded = jsontext.loads(text)
    assert json.dumps(decoded) == json.dumps(json.loads(text))
    assert type(decoded.popitem()[1]) is type(json.loads(text).popitem()[1])


def test_text_neither_can_read_is_the_standard_library_s_value_error() -> None:
    with pytest.raises(ValueError, match="Expecting value"):
        jsontext.loads(b'{"a": ')


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf{}", b'{"a": "\xff"}', b"[1]", b'{"a": NaN', b""])
def test_an_event_is_refused_with_the_standard_library_s_words(data: bytes) -> None:
    try:
        json.loads(data.decode("utf-8"))
        expected = None
    except ValueError as exc:
        expected = f"message is not a JSON event: {exc}"
    with pytest.raises(EventError) as caught:
        decode_event(data)
    if expected is not None:
        assert str(caught.value) == expected


def test_an_event_with_a_huge_integer_keeps_it_exact() -> None:
    assert decode_event(b'{"payload": {"n": 123456789012345678901234567890}}') == {
        "payload": {"n": 123456789012345678901234567890}
    }
