"""Whatever text or structure is fed to the loader, it answers with located diagnostics (or a
model), never with another exception."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jelmore_infra import fields as F
from jelmore_infra.topology.load import parse_sources

YAML_PIECES = [
    "streams:",
    "consumer_groups:",
    "  S:",
    "  g:",
    "    stream: S",
    "    subjects: [a.>]",
    "    max_age: 7d",
    "    - x",
    "- y",
    "&a",
    "*a",
    "<<: *a",
    "!!python/object:os.system",
    "!!binary aGk=",
    "? [a]",
    "---",
    "...",
    "{",
    "}",
    "[",
    "]",
    '"',
    "'",
    "|",
    ">",
    "%YAML 1.1",
    "\t",
    ": ",
    "#",
    "~",
    "null",
    "1e400",
    "2026-01-01",
    "\x00",
    "\ufeff",
    "\u2028",
]

KEYS = st.sampled_from(
    ["streams", "consumer_groups", "S", "g", "stream", "jelmore", "retry_delays", "dead_letter"]
    + [f.name for f in F.STREAM_FIELDS]
    + [f.name for f in F.CONSUMER_FIELDS]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["7d", "10GB", "a.>", "unlimited", "-1", "explicit", "2026-01-01T00:00:00Z"]),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=6)), children, max_size=5),
    ),
    max_leaves=30,
)


def _assert_well_formed(sources: list[tuple[str, str]]) -> None:
    topology, diags = parse_sources(sources)
    for d in diags:
        assert d.location is not None, d
        assert d.location.line >= 1 and d.location.col >= 1
        assert d.location.file in {name for name, _ in sources}
        assert d.message
    assert (topology is None) == any(d.severity == "error" for d in diags)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=8), max_size=25))
def test_random_yaml_text_gives_only_located_diagnostics(pieces: list[str]) -> None:
    text = "\n".join(pieces)
    _assert_well_formed([("t.yaml", text)])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STRUCTURES, STRUCTURES)
def test_random_structures_give_only_located_diagnostics(a: object, b: object) -> None:
    docs = [
        ("a.yaml", yaml.safe_dump(a, allow_unicode=True)),
        ("b.yaml", yaml.safe_dump({"streams": {"S": b}, "consumer_groups": {"g": b}})),
    ]
    _assert_well_formed(docs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(KEYS, STRUCTURES, max_size=6),
    st.dictionaries(KEYS, STRUCTURES, max_size=6),
)
def test_random_settings_give_only_located_diagnostics(stream: object, group: object) -> None:
    doc = {"streams": {"S": stream, "D": {"subjects": ["d.>"]}}, "consumer_groups": {"g": group}}
    _assert_well_formed([("t.yaml", yaml.safe_dump(doc, allow_unicode=True))])


def test_deeply_nested_yaml_is_an_error_not_a_crash() -> None:
    text = "streams:\n  S:\n    metadata: " + "[" * 5000 + "]" * 5000 + "\n"
    _assert_well_formed([("t.yaml", text)])
    text = "streams:\n  S:\n    metadata: " + "[" * 100 + "]" * 100 + "\n"
    topology, diags = parse_sources([("t.yaml", text)])
    assert topology is None
    assert any("nested" in d.message for d in diags)
