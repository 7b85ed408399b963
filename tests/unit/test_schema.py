"""The shipped JSON Schema: generated from the field table, committed up to date, usable by
editors, and in agreement with the validator's structural pass."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jelmore_infra import fields as F
from jelmore_infra.diagnostics import Diagnostic
from jelmore_infra.topology.load import merge_files
from jelmore_infra.topology.schema import build_schema, schema_text
from jelmore_infra.topology.validate import convert_buckets, convert_topology
from tests.unit.test_topology_validate import VALID

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "jelmore_infra" / "topology" / "topology.schema.json"
VALIDATOR = jsonschema.Draft7Validator(build_schema())


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "regenerate: python -m jelmore_infra.topology.schema > "
        "jelmore_infra/topology/topology.schema.json"
    )
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == build_schema()


def test_schema_ships_as_package_data() -> None:
    shipped = resources.files("jelmore_infra.topology").joinpath("topology.schema.json")
    assert json.loads(shipped.read_text(encoding="utf-8")) == build_schema()


def test_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(build_schema())


def test_topology_files_reference_the_schema_and_pass_it() -> None:
    for path in sorted((REPO / "topology").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert text.splitlines()[0] == (
            "# yaml-language-server: $schema=../jelmore_infra/topology/topology.schema.json"
        )
        assert (path.parent / "../jelmore_infra/topology/topology.schema.json").resolve() == (
            SCHEMA_FILE.resolve()
        )
        assert list(VALIDATOR.iter_errors(yaml.safe_load(text))) == []


def _walk(table: tuple[F.Field, ...], props: dict[str, Any], where: str) -> None:
    for fld in table:
        if fld.name in ("name", "durable_name") and where in ("stream", "consumer"):
            assert fld.name not in props
            continue
        assert fld.name in props, f"{where}.{fld.name} missing from the schema"
        prop = props[fld.name]
        assert prop.get("description"), f"{where}.{fld.name} has no description"
        if fld.sub_fields:
            obj = prop if fld.kind is F.ValueKind.OBJECT else prop["items"]
            assert obj["additionalProperties"] is False
            _walk(fld.sub_fields, obj["properties"], f"{where}.{fld.name}")


def test_schema_covers_every_field_with_a_description() -> None:
    schema = build_schema()
    stream = schema["definitions"]["stream"]
    group = schema["definitions"]["consumer_group"]
    assert stream["additionalProperties"] is False and group["additionalProperties"] is False
    _walk(F.STREAM_FIELDS, stream["properties"], "stream")
    _walk(F.CONSUMER_FIELDS, group["properties"], "consumer")
    for name in F.PUSH_ONLY_FIELDS:
        assert "push consumer" in group["properties"][name]["description"]


def test_schema_documents_versions_units_and_update_rules() -> None:
    props = build_schema()["definitions"]["stream"]["properties"]
    assert "Needs nats-server 2.12.0 or newer." in props["allow_msg_counter"]["description"]
    assert "powers of 1000" in props["max_bytes"]["description"]
    assert "7d" in props["max_age"]["description"]
    assert "Changing it replaces the resource." in props["storage"]["description"]
    assert "never off again" in props["deny_delete"]["description"]


def _structural_errors(doc: object) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    raw = merge_files([("t.yaml", yaml.safe_dump(doc, allow_unicode=True))], diags)
    convert_topology(raw, diags)
    convert_buckets(raw, diags)
    return diags


@pytest.mark.parametrize("name", list(VALID))
def test_schema_accepts_the_valid_topologies(name: str) -> None:
    assert list(VALIDATOR.iter_errors(yaml.safe_load(VALID[name]))) == []


REJECTED: list[object] = [
    ["streams"],
    {"stream": {}},
    {"streams": {"S": {"max_mesages": 1}}},
    {"streams": {"S": {"name": "S"}}},
    {"streams": {"S": {"max_age": "7x"}}},
    {"streams": {"S": {"max_age": "1s1h"}}},
    {"streams": {"S": {"max_bytes": "10GG"}}},
    {"streams": {"S": {"retention": "workqueues"}}},
    {"streams": {"S": {"subjects": ["a..b"]}}},
    {"streams": {"S": {"subjects": "a.b"}}},
    {"streams": {"S": {"metadata": {"jelmore.x": "y"}}}},
    {"streams": {"S": {"metadata": {"x": 1}}}},
    {"streams": {"a.b": {}}},
    {"streams": {"S": [1]}},
    {"streams": {"S": {"placement": {"bogus": 1}}}},
    {"consumer_groups": {"g": {"ack_policy": "explicit"}}},
    {"consumer_groups": {"g": {"stream": "S", "idle_heartbeat": "5s"}}},
    {"consumer_groups": {"g": {"stream": "S", "deliver_subject": "x", "max_waiting": 5}}},
    {"consumer_groups": {"g": {"stream": "S", "durable_name": "g"}}},
    {"consumer_groups": {"g": {"stream": "S", "jelmore": {"retry_delay": []}}}},
    {"consumer_groups": {"g": {"stream": "S", "jelmore": {"dead_letter": {"stream": "D"}}}}},
    {"consumer_groups": {"g": {"stream": "S", "sample_freq": "often"}}},
    {"kv_buckets": {"a.b": {}}},
    {"kv_buckets": {"b": {"history": 65}}},
    {"kv_buckets": {"b": {"history": 0}}},
    {"kv_buckets": {"b": {"ttl": "-5s"}}},
    {"kv_buckets": {"b": {"max_msgs_per_subject": 5}}},
    {"kv_buckets": {"b": {"allow_msg_ttl": True}}},
    {"object_stores": {"o": {"history": 3}}},
    {"object_stores": {"o": {"storage": "disk"}}},
]


def test_schema_accepts_the_issues_bucket_example() -> None:
    doc = {
        "kv_buckets": {
            "jelmore-config": {
                "description": "Runtime settings",
                "history": 5,
                "ttl": "1h",
                "max_value_size": "1MiB",
                "max_bytes": "1GiB",
                "storage": "file",
                "replicas": 1,
                "compression": True,
                "mirror": {"name": "origin"},
            }
        },
        "object_stores": {"jelmore-artifacts": {"max_bytes": "10GiB", "storage": "file"}},
    }
    assert list(VALIDATOR.iter_errors(doc)) == []
    assert _structural_errors(doc) == []


@pytest.mark.parametrize("doc", REJECTED, ids=[json.dumps(d)[:60] for d in REJECTED])
def test_schema_and_validator_both_reject(doc: object) -> None:
    assert list(VALIDATOR.iter_errors(doc)) != []
    assert _structural_errors(doc) != []


# Candidate values per kind; each is either accepted by both or refused by both.
CANDIDATES: dict[F.ValueKind, list[object]] = {
    F.ValueKind.DURATION: ["1s", "1h30m", "7d", " 2m ", 0, "0", "7x", 60, "1s1h", True, None],
    F.ValueKind.SIZE: [1024, 0, "10GB", "512KiB", "10 GB", "10GG", -2, "big", 1.5, None],
    F.ValueKind.COUNT: [5, 0, "100_000", "many", -2, 1.5, [1], None],
    F.ValueKind.INT: [0, 3, -1, "3", True, 1.5, None],
    F.ValueKind.BOOL: [True, False, "yes", 1, None],
    F.ValueKind.STRING: ["x", "", 5, [], None],
    F.ValueKind.SUBJECT: ["a.b", "a.*", "a.>", "a..b", "a b", "a*", 5, None],
    F.ValueKind.TIME: ["2026-01-31T12:00:00Z", "2026-01-31T12:00:00.25+02:00", "yesterday", 5],
    F.ValueKind.METADATA: [{"a": "b"}, {}, None, {"jelmore.x": "y"}, {"a": 1}, ["a"]],
    F.ValueKind.SUBJECT_LIST: [["a.b", "c.*"], [], "a.b", ["a..b"], [5]],
    F.ValueKind.STRING_LIST: [["a", "b"], [], "a", [5]],
    F.ValueKind.DURATION_LIST: [["1s", "5s"], [], "1s", ["7x"], [60]],
}
UNLIMITED = ["unlimited", -1, "-1"]


@st.composite
def field_values(draw: st.DrawFn, fld: F.Field, depth: int = 0) -> object:
    kind = fld.kind
    if kind in (F.ValueKind.OBJECT, F.ValueKind.OBJECT_LIST):
        choice = draw(st.integers(min_value=0, max_value=3))
        if choice == 0:
            return "not a map"
        subs = draw(st.lists(st.sampled_from(fld.sub_fields), unique=True, max_size=3))
        obj = {s.name: draw(field_values(s, depth + 1)) for s in subs}
        if choice == 1:
            obj["bogus"] = 1
        return [obj] if kind is F.ValueKind.OBJECT_LIST else obj
    if kind is F.ValueKind.ENUM:
        return draw(st.sampled_from([*fld.choices, "bogus", 1]))
    pool = list(CANDIDATES[kind])
    if fld.unlimited:
        pool += UNLIMITED
    if fld.name == "max_msg_size":  # int32: a string size may be too large for it
        pool = [v for v in pool if v != "10GB"] + [2**31, "1MB"]
    if fld.name == "sample_freq":
        pool += ["50%", 50, "often"]
    return draw(st.sampled_from(pool))


@st.composite
def documents(draw: st.DrawFn) -> dict[str, object]:
    table = draw(st.sampled_from(["stream", "consumer"]))
    fields = F.STREAM_FIELDS if table == "stream" else F.CONSUMER_FIELDS
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, min_size=1, max_size=3))
    settings_: dict[str, object] = {f.name: draw(field_values(f)) for f in chosen}
    if table == "stream":
        return {"streams": {"S": settings_}}
    settings_["stream"] = "S"
    return {"consumer_groups": {"g": settings_}}


@settings(max_examples=300, deadline=None)
@given(documents())
def test_schema_and_validator_agree_on_random_settings(doc: dict[str, object]) -> None:
    schema_ok = not list(VALIDATOR.iter_errors(doc))
    ours = _structural_errors(doc)
    # A size written with a unit ("10 GB") can exceed a 32-bit field; a schema pattern cannot
    # compute the product, so only the validator catches that one.
    if schema_ok and ours and all("is too large" in d.message for d in ours):
        return
    assert schema_ok == (not ours), (doc, [d.format() for d in ours])
