"""The AsyncAPI 3.0 document of the event catalogue (``jelmore-infra asyncapi``).

The generator is tested on topologies built here (streams, consumer groups and events from
``jelmore_infra.model``). Every generated document is validated against the official AsyncAPI
3.0.0 JSON Schema (``tests/support/asyncapi_schema.py``; a missing schema fails the tests) and
against the specification's rules that schema does not express (``reference_problems``). The
negative tests show that both checks can fail. The command-line tests run the real command on a
topology directory with an ``events:`` section.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from jelmore_infra.errors import JelmoreError
from jelmore_infra.model import ConsumerSpec, EventSpec, StreamSpec, Topology
from jelmore_infra.render.asyncapi import (
    asyncapi_document,
    reference_problems,
    server_entries,
)
from jelmore_infra.runtime.envelope import CONTROL_HEADER_PREFIX, build_event
from tests.support.asyncapi_schema import (
    MEMBER,
    SchemaUnavailable,
    extract_schema,
    integrity_matches,
    load_schema,
)
from tests.support.cli import assert_clean_error, copy_topology, run_cli
from tests.unit.test_cli_conventions import modules_loaded_by

CREATED_PAYLOAD = {
    "type": "object",
    "required": ["provider"],
    "properties": {
        "provider": {"type": "string"},
        "timeout": {"type": "integer", "minimum": 0},
    },
}

EVENTS_YAML = """\
events:
  session.created:
    description: New session started
    compatibility: backward
    sensitive: false
    payload: {type: object, required: [provider], properties: {provider: {type: string}, timeout: {type: integer, minimum: 0}}}
  session.file_modified:
    description: A file of the session changed
    sensitive: true
    payload: {type: object, required: [path], properties: {path: {type: string}}}
"""


# --- building topologies ----------------------------------------------------------------------


def stream(name: str, *subjects: str) -> StreamSpec:
    return StreamSpec(name=name, config={"name": name, "subjects": list(subjects)})


def group(stream_name: str, name: str, **config: Any) -> ConsumerSpec:
    return ConsumerSpec(
        stream=stream_name,
        name=name,
        config={"durable_name": name, "ack_policy": "explicit", **config},
    )


def event(
    type_: str,
    subject: str | None = None,
    *,
    payload: dict[str, Any] | None = None,
    sensitive: bool = False,
    description: str | None = None,
    stream_name: str | None = None,
) -> EventSpec:
    config: dict[str, Any] = {
        "subject": subject or f"jelmore.{type_}",
        "compatibility": "backward",
        "sensitive": sensitive,
        "payload": payload if payload is not None else {"type": "object"},
    }
    if description:
        config["description"] = description
    return EventSpec(type=type_, config=config, stream=stream_name)


def topology(
    streams: list[StreamSpec], groups: list[ConsumerSpec], events: list[EventSpec]
) -> Topology:
    return Topology(
        streams={s.name: s for s in streams},
        consumers={(g.stream, g.name): g for g in groups},
        events={e.type: e for e in events},
    )


def jelmore_topology() -> Topology:
    """The Jelmore streams and groups, a few events, and one event no stream captures."""
    return topology(
        [
            stream("JELMORE", "jelmore.session.>"),
            stream("JELMORE_DLQ", "jelmore.dlq.>"),
            stream("JELMORE_ADVISORIES", "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.JELMORE.*"),
        ],
        [
            group("JELMORE", "session_handlers", filter_subjects=["jelmore.session.>"]),
            group(
                "JELMORE",
                "file_watchers",
                filter_subjects=[
                    "jelmore.session.directory_changed",
                    "jelmore.session.file_modified",
                ],
            ),
            group("JELMORE", "git_monitors", filter_subject="jelmore.session.git_activity"),
            group("JELMORE_DLQ", "dlq_readers"),  # no filter: every subject of its stream
            group("JELMORE_ADVISORIES", "dlq_router"),
        ],
        [
            event(
                "session.created",
                "jelmore.session.created",
                payload=CREATED_PAYLOAD,
                description="New session started",
            ),
            event(
                "session.file_modified",
                "jelmore.session.file_modified",
                payload={"type": "object", "required": ["path"]},
                sensitive=True,
            ),
            event("session.git_activity", "jelmore.session.git_activity"),
            event("audit.recorded", "audit.recorded"),
        ],
    )


# --- validation -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official() -> jsonschema.Draft7Validator:
    """A validator for the official AsyncAPI 3.0.0 schema (fails when it was not fetched)."""
    schema = load_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def schema_errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def causes(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    """Every error message, including those under a failed ``oneOf``/``anyOf`` branch."""

    def walk(errors: Any) -> Iterator[str]:
        for error in errors:
            yield error.message
            yield from walk(error.context or ())

    return list(walk(validator.iter_errors(document)))


def assert_valid(validator: jsonschema.Draft7Validator, document: dict[str, Any]) -> None:
    assert schema_errors(validator, document) == []
    assert reference_problems(document) == []


def resolved(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for token in ref.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def in_document(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    """A validator for ``schema``, a part of ``document`` whose ``#/…`` references point into
    ``document``."""
    root = {"$ref": "#/__checked", "__checked": schema, **document}
    return jsonschema.Draft7Validator(
        root, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def receivers(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(channel address, queue) of every receive operation."""
    pairs = set()
    for operation in document["operations"].values():
        if operation["action"] == "receive":
            address = resolved(document, operation["channel"]["$ref"])["address"]
            pairs.add((address, operation["bindings"]["nats"]["queue"]))
    return pairs


@pytest.fixture
def document() -> dict[str, Any]:
    return asyncapi_document(jelmore_topology())


# --- the document -----------------------------------------------------------------------------


def test_document_validates_against_the_official_asyncapi_3_schema(
    official: jsonschema.Draft7Validator, document: dict[str, Any]
) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert schema_errors(official, document) == []


def test_document_keeps_the_reference_rules_the_schema_does_not_check(
    document: dict[str, Any],
) -> None:
    assert reference_problems(document) == []
    for operation in document["operations"].values():
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/")
            assert resolved(document, resolved(document, message["$ref"])["$ref"])


def test_a_topology_without_events_gives_a_valid_empty_document(
    official: jsonschema.Draft7Validator,
) -> None:
    doc = asyncapi_document(topology([stream("S", "a.>")], [group("S", "g")], []))
    assert_valid(official, doc)
    assert doc["channels"] == {} and doc["operations"] == {}


def test_one_channel_per_event_addressed_by_its_subject(document: dict[str, Any]) -> None:
    addresses = {cid: channel["address"] for cid, channel in document["channels"].items()}
    assert addresses == {
        "audit.recorded": "audit.recorded",
        "session.created": "jelmore.session.created",
        "session.file_modified": "jelmore.session.file_modified",
        "session.git_activity": "jelmore.session.git_activity",
    }
    created = document["channels"]["session.created"]
    assert created["description"] == "New session started"
    assert created["messages"] == {
        "session.created": {"$ref": "#/components/messages/session.created"}
    }
    assert created["x-jelmore-stream"] == "JELMORE"


def test_publishers_get_one_send_operation_per_event(document: dict[str, Any]) -> None:
    sends = {
        resolved(document, op["channel"]["$ref"])["address"]
        for op in document["operations"].values()
        if op["action"] == "send"
    }
    assert sends == {
        "audit.recorded",
        "jelmore.session.created",
        "jelmore.session.file_modified",
        "jelmore.session.git_activity",
    }
    assert len([op for op in document["operations"].values() if op["action"] == "send"]) == 4


def test_each_group_receives_exactly_the_events_its_filter_subjects_match(
    document: dict[str, Any],
) -> None:
    assert receivers(document) == {
        ("jelmore.session.created", "session_handlers"),
        ("jelmore.session.file_modified", "session_handlers"),
        ("jelmore.session.file_modified", "file_watchers"),
        ("jelmore.session.git_activity", "session_handlers"),
        ("jelmore.session.git_activity", "git_monitors"),
    }


def test_receive_operations_carry_the_nats_queue_binding(document: dict[str, Any]) -> None:
    op = document["operations"]["receive.session.file_modified.file_watchers"]
    assert op["action"] == "receive"
    assert op["channel"] == {"$ref": "#/channels/session.file_modified"}
    assert op["messages"] == [
        {"$ref": "#/channels/session.file_modified/messages/session.file_modified"}
    ]
    assert op["bindings"] == {"nats": {"queue": "file_watchers", "bindingVersion": "0.1.0"}}


def test_the_queue_is_the_durable_name_of_the_group() -> None:
    handlers = ConsumerSpec(
        stream="S", name="handlers", config={"durable_name": "handlers_v2", "filter_subject": "a.b"}
    )
    doc = asyncapi_document(topology([stream("S", "a.>")], [handlers], [event("b", "a.b")]))
    queues = [
        op["bindings"]["nats"]["queue"] for op in doc["operations"].values() if "bindings" in op
    ]
    assert queues == ["handlers_v2"]


def test_the_stream_found_by_validation_decides_which_groups_receive_an_event() -> None:
    streams = [stream("A", "x.>"), stream("B", "y.>")]
    groups = [group("A", "on_a"), group("B", "on_b")]
    # validation says stream B stores the event (e.g. through a source); A's subjects overlap it
    doc = asyncapi_document(topology(streams, groups, [event("e", "x.e", stream_name="B")]))
    assert receivers(doc) == {("x.e", "on_b")}


def test_message_headers_are_the_application_headers_and_never_nats_ones(
    document: dict[str, Any],
) -> None:
    messages = document["components"]["messages"]
    plain = messages["session.created"]["headers"]
    assert set(plain["properties"]) == {"Event-Type", "Session-Id", "Jelmore-Schema-Version"}
    assert plain["required"] == ["Event-Type", "Session-Id"]
    assert plain["properties"]["Event-Type"]["const"] == "session.created"
    sensitive = messages["session.file_modified"]["headers"]
    assert "Jelmore-Encryption" in sensitive["properties"]
    assert "Jelmore-Encryption" in sensitive["required"]
    for message in messages.values():
        assert not any(name.startswith("Nats-") for name in message["headers"]["properties"])


def test_message_payload_is_the_envelope_around_the_event_payload_schema(
    document: dict[str, Any],
) -> None:
    message = document["components"]["messages"]["session.created"]
    envelope = message["payload"]
    assert envelope["required"] == [
        "event_type",
        "session_id",
        "timestamp",
        "message_id",
        "retry_count",
        "payload",
    ]
    assert envelope["properties"]["event_type"]["const"] == "session.created"
    assert envelope["properties"]["payload"] == {"$ref": "#/components/schemas/session.created"}
    assert document["components"]["schemas"]["session.created"] == CREATED_PAYLOAD
    assert message["contentType"] == "application/json"
    assert message["x-jelmore-compatibility"] == "backward"
    assert message["x-jelmore-sensitive"] is False


def test_an_event_the_runtime_publishes_matches_its_message(document: dict[str, Any]) -> None:
    message = document["components"]["messages"]["session.created"]
    out = build_event(
        "jelmore.session.created",
        "session.created",
        "session-1",
        {"provider": "claude", "timeout": 30},
        now=datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
        headers={"Priority": "high"},
    )
    body = json.loads(out.data)
    app_headers = {k: v for k, v in out.headers.items() if not k.startswith(CONTROL_HEADER_PREFIX)}
    assert document["channels"]["session.created"]["address"] == out.subject
    payload_check = in_document(document, message["payload"])
    headers_check = in_document(document, message["headers"])
    assert list(payload_check.iter_errors(body)) == []
    assert list(headers_check.iter_errors(app_headers)) == []
    # and the message schema can reject: a bad payload, a wrong event type
    bad = {**body, "payload": {"provider": "claude", "timeout": -1}}
    assert list(payload_check.iter_errors(bad))
    assert list(headers_check.iter_errors({**app_headers, "Event-Type": "session.output"}))


def test_a_sensitive_event_says_its_payload_is_encrypted(document: dict[str, Any]) -> None:
    message = document["components"]["messages"]["session.file_modified"]
    field = message["payload"]["properties"]["payload"]
    assert field["allOf"] == [{"$ref": "#/components/schemas/session.file_modified"}]
    assert "Encrypted" in field["description"]
    assert message["x-jelmore-sensitive"] is True


def test_references_inside_a_payload_schema_point_into_the_document(
    official: jsonschema.Draft7Validator,
) -> None:
    payload = {
        "type": "object",
        "properties": {
            "item": {"$ref": "#/definitions/item"},
            "tag": {"const": {"$ref": "#/not/a/reference"}},
        },
        "definitions": {"item": {"type": "string"}},
    }
    doc = asyncapi_document(
        topology([stream("S", "a.>")], [], [event("thing", "a.thing", payload=payload)])
    )
    assert_valid(official, doc)
    schema = doc["components"]["schemas"]["thing"]
    ref = schema["properties"]["item"]["$ref"]
    assert ref == "#/components/schemas/thing/definitions/item"
    assert resolved(doc, ref) == {"type": "string"}
    assert schema["properties"]["tag"] == {"const": {"$ref": "#/not/a/reference"}}
    check = in_document(doc, doc["components"]["messages"]["thing"]["payload"])
    envelope = {
        "event_type": "thing",
        "session_id": "s",
        "timestamp": "2024-01-01T12:00:00.000Z",
        "message_id": "m",
        "retry_count": 0,
        "payload": {"item": 5},
    }
    assert [e.message for e in check.iter_errors(envelope)] == ["5 is not of type 'string'"]


def test_ids_are_valid_component_keys_even_for_odd_event_types(
    official: jsonschema.Draft7Validator,
) -> None:
    events = [event("a/b c", "x.one"), event("a_b_c", "x.two"), event("ü", "x.three")]
    doc = asyncapi_document(topology([stream("S", "x.>")], [group("S", "all")], events))
    assert_valid(official, doc)
    assert sorted(doc["channels"]) == ["_", "a_b_c", "a_b_c_2"]
    assert sorted(doc["components"]["messages"]) == sorted(doc["channels"])
    assert {m["name"] for m in doc["components"]["messages"].values()} == {"a/b c", "a_b_c", "ü"}


def test_servers_are_listed_without_credentials(official: jsonschema.Draft7Validator) -> None:
    servers = server_entries("nats://app:s3cret@nats.example.com:4333,tls://token@[::1]")
    assert servers == {
        "nats-1": {"host": "nats.example.com:4333", "protocol": "nats"},
        "nats-2": {
            "host": "[::1]:4222",
            "protocol": "nats",
            "description": "NATS over TLS (tls://)",
        },
    }
    doc = asyncapi_document(jelmore_topology(), servers=servers)
    assert_valid(official, doc)
    text = json.dumps(doc)
    assert "s3cret" not in text and "token" not in text
    assert server_entries("127.0.0.1") == {"nats": {"host": "127.0.0.1:4222", "protocol": "nats"}}


def test_a_durable_name_too_long_for_a_nats_queue_is_an_error() -> None:
    name = "g" * 256
    groups = [group("S", name)]
    with pytest.raises(JelmoreError, match="256 characters long"):
        asyncapi_document(topology([stream("S", "a.>")], groups, [event("e", "a.e")]))
    doc = asyncapi_document(
        topology([stream("S", "a.>")], [group("S", "g" * 255)], [event("e", "a.e")])
    )
    assert len(receivers(doc)) == 1


def test_a_subject_with_braces_cannot_be_a_channel_address() -> None:
    with pytest.raises(JelmoreError, match="braces"):
        asyncapi_document(topology([], [], [event("e", "a.{e}")]))


# --- the checks can fail ----------------------------------------------------------------------


def broken(document: dict[str, Any], change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    change(doc)
    return doc


def first_receive(doc: dict[str, Any]) -> dict[str, Any]:
    return next(op for op in doc["operations"].values() if op["action"] == "receive")


def test_official_schema_rejects_a_queue_longer_than_255_characters(
    official: jsonschema.Draft7Validator, document: dict[str, Any]
) -> None:
    def change(doc: dict[str, Any]) -> None:
        first_receive(doc)["bindings"]["nats"]["queue"] = "q" * 300

    errors = causes(official, broken(document, change))
    assert f"'{'q' * 300}' is too long" in errors, errors


def test_official_schema_rejects_the_action_publish(
    official: jsonschema.Draft7Validator, document: dict[str, Any]
) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["operations"]["send.session.created"]["action"] = "publish"

    errors = causes(official, broken(document, change))
    assert "'publish' is not one of ['send', 'receive']" in errors, errors


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["servers"]["nats"].pop("host"), id="server-without-host"),
        pytest.param(lambda d: d["info"].pop("version"), id="info-without-version"),
        pytest.param(
            lambda d: first_receive(d)["bindings"]["nats"].update(bindingVersion="0.2.0"),
            id="unknown-binding-version",
        ),
        pytest.param(
            lambda d: first_receive(d)["bindings"]["nats"].update(unsubAfter=1),
            id="unknown-binding-field",
        ),
        pytest.param(lambda d: d.update(asyncapi="2.6.0"), id="other-asyncapi-version"),
    ],
)
def test_official_schema_rejects_other_broken_documents(
    official: jsonschema.Draft7Validator, change: Any
) -> None:
    doc = asyncapi_document(jelmore_topology(), servers=server_entries("nats://127.0.0.1:4222"))
    assert schema_errors(official, doc) == []
    assert schema_errors(official, broken(doc, change))


def test_reference_check_rejects_an_operation_on_a_channel_outside_the_root(
    document: dict[str, Any],
) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["operations"]["send.session.created"]["channel"] = {
            "$ref": "#/components/channels/session.created"
        }

    assert reference_problems(broken(document, change)) == [
        "operation 'send.session.created': channel '#/components/channels/session.created' is "
        "not a root channel"
    ]


def test_reference_check_rejects_a_message_of_another_channel(document: dict[str, Any]) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["operations"]["send.session.created"]["messages"] = [
            {"$ref": "#/channels/session.git_activity/messages/session.git_activity"}
        ]

    problems = reference_problems(broken(document, change))
    assert len(problems) == 1 and "is not a message of channel" in problems[0]


def test_reference_check_rejects_a_message_the_channel_does_not_have_or_a_missing_one(
    document: dict[str, Any],
) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["operations"]["send.session.created"]["messages"] = [
            {"$ref": "#/channels/session.created/messages/other"}
        ]
        doc["channels"]["audit.recorded"]["messages"]["audit.recorded"]["$ref"] = (
            "#/components/messages/gone"
        )
        doc["operations"]["send.audit.recorded"]["channel"]["$ref"] = "#/channels/gone"

    assert reference_problems(broken(document, change)) == [
        "operation 'send.audit.recorded': channel '#/channels/gone' does not exist",
        "operation 'send.session.created': message "
        "'#/channels/session.created/messages/other' does not exist",
        "channel 'audit.recorded': message 'audit.recorded' refers to missing "
        "'#/components/messages/gone'",
    ]


# --- the official schema's download ---------------------------------------------------------


def test_a_download_without_the_pinned_integrity_is_refused() -> None:
    good = b"some tarball"
    digest = base64.b64encode(hashlib.sha512(good).digest()).decode()
    assert integrity_matches(good, f"sha512-{digest}")
    assert not integrity_matches(b"some tarbalL", f"sha512-{digest}")
    assert not integrity_matches(good)  # not the pinned @asyncapi/specs 6.11.1 tarball


def test_a_package_whose_schema_file_differs_is_refused() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = b'{"title": "not the official schema"}'
        info = tarfile.TarInfo(MEMBER)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(SchemaUnavailable, match="pinned sha256"):
        extract_schema(buffer.getvalue())


def test_a_missing_schema_is_an_error_not_a_skip(tmp_path: Path) -> None:
    with pytest.raises(SchemaUnavailable, match="make asyncapi-schema"):
        load_schema(tmp_path)
    (tmp_path / "3.0.0-without-$id.json").write_text("{}")
    with pytest.raises(SchemaUnavailable, match="not the pinned"):
        load_schema(tmp_path)


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def with_events(tmp_path: Path) -> Path:
    """A copy of the repository topology with an ``events:`` file."""
    target = copy_topology(tmp_path)
    (target / "events.yaml").write_text(EVENTS_YAML)
    return target


def test_asyncapi_command_writes_a_valid_yaml_document_of_the_topology(
    official: jsonschema.Draft7Validator, with_events: Path
) -> None:
    proc = run_cli("asyncapi", "--topology", str(with_events))
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)
    assert_valid(official, doc)
    assert doc["channels"]["session.created"]["address"] == "jelmore.session.created"
    assert doc["components"]["schemas"]["session.created"] == CREATED_PAYLOAD
    assert (
        "Jelmore-Encryption"
        in doc["components"]["messages"]["session.file_modified"]["headers"]["required"]
    )
    assert receivers(doc) == {
        ("jelmore.session.created", "session_handlers"),
        ("jelmore.session.file_modified", "session_handlers"),
        ("jelmore.session.file_modified", "file_watchers"),
    }
    assert "servers" not in doc


def test_asyncapi_command_writes_json_to_a_file_with_the_server_but_no_password(
    official: jsonschema.Draft7Validator, with_events: Path, tmp_path: Path
) -> None:
    out = tmp_path / "asyncapi.json"
    proc = run_cli(
        "asyncapi",
        "--topology",
        str(with_events),
        "--format",
        "json",
        "-o",
        str(out),
        "-s",
        "nats://app:hunter2@127.0.0.1:4222",
        "--api-version",
        "2.1.0",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    text = out.read_text()
    doc = json.loads(text)
    assert_valid(official, doc)
    assert doc["servers"] == {"nats": {"host": "127.0.0.1:4222", "protocol": "nats"}}
    assert doc["info"]["version"] == "2.1.0"
    assert "hunter2" not in text + proc.stderr


def test_asyncapi_command_reports_an_invalid_topology_in_one_line(tmp_path: Path) -> None:
    target = copy_topology(tmp_path)
    (target / "streams.yaml").write_text("streams:\n  S:\n    subjects: [a.>]\n    max_age: 7x\n")
    proc = run_cli("asyncapi", "--topology", str(target))
    assert_clean_error(proc)
    assert "streams.yaml:4:14" in proc.stderr
    assert proc.stdout == ""


def test_asyncapi_command_refuses_an_unusable_server_url(with_events: Path) -> None:
    proc = run_cli("asyncapi", "--topology", str(with_events), "-s", "nats://a:b@host:99999")
    assert_clean_error(proc)
    assert "b@" not in proc.stderr


def test_asyncapi_help_imports_no_heavy_library() -> None:
    assert modules_loaded_by("asyncapi", "--help") == []
