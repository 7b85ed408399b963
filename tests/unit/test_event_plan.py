"""Plans of event types (``event.TYPE``): creates, schema changes judged under the event's
compatibility mode, removals, and how every view shows them. Pure: no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jelmore_infra.apply import recheck_plan
from jelmore_infra.catalogue.entry import canonical_entry
from jelmore_infra.diff import build_plan
from jelmore_infra.model import EventSpec, LiveEvent, LiveState, ServerIdentity, Topology
from jelmore_infra.plan import Action, Plan
from jelmore_infra.render.human import render_plan_text
from jelmore_infra.render.json import render_plan_json
from jelmore_infra.render.markdown import render_plan_markdown

NOW = datetime(2026, 11, 30, tzinfo=UTC)
OPEN = {"type": "object", "properties": {"provider": {"type": "string"}}}
CLOSED = {**OPEN, "additionalProperties": False}


def spec(payload: dict[str, Any], compatibility: str = "backward", **extra: Any) -> EventSpec:
    config = {
        "subject": "jelmore.session.created",
        "description": "",
        "compatibility": compatibility,
        "sensitive": False,
        "payload": payload,
        **extra,
    }
    return EventSpec("session.created", config, stream="JELMORE")


def live(
    payload: dict[str, Any] | None = None,
    *,
    version: int = 1,
    messages: int = 0,
    deleted: bool = False,
    compatibility: str = "backward",
) -> LiveState:
    events = {}
    if payload is not None:
        config = canonical_entry(
            "session.created", spec(payload, compatibility).config, "JELMORE", version
        )
        events["session.created"] = LiveEvent("session.created", config, version, messages, deleted)
    server = ServerIdentity("n1", "ID", "2.15.1", 3)
    return LiveState(server=server, events=events)


def plan_of(desired: EventSpec | None, state: LiveState) -> Plan:
    events = {desired.type: desired} if desired is not None else {}
    return build_plan(Topology(events=events), state, now=NOW)


def test_a_new_event_type_is_created_as_version_1() -> None:
    plan = plan_of(spec(OPEN), live())
    (change,) = plan.changes
    assert (change.address, change.action) == ("event.session.created", Action.CREATE)
    assert change.after is not None
    assert change.after["version"] == 1 and change.after["payload"] == OPEN
    assert change.after["stream"] == "JELMORE"
    assert plan.messages == ()


def test_an_unchanged_event_type_plans_nothing() -> None:
    assert plan_of(spec(OPEN), live(OPEN, version=4)).changes == ()


def test_a_description_change_keeps_the_schema_version() -> None:
    changed = spec(OPEN, description="New session started")
    (change,) = plan_of(changed, live(OPEN, version=4)).changes
    assert change.action is Action.UPDATE
    assert change.after is not None and change.after["version"] == 4
    assert [f.path for f in change.fields] == ["description"]


def test_a_compatible_schema_change_is_a_new_version_and_a_note_naming_the_changes() -> None:
    widened = {"type": "object", "properties": {"provider": {"type": ["string", "null"]}}}
    plan = plan_of(spec(widened), live(OPEN, version=2))
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert change.after is not None and change.after["version"] == 3
    (note,) = plan.messages
    assert (note.severity, note.kind, note.field) == ("warning", "note", "payload")
    assert note.message.startswith("payload schema version 2 → 3, compatible under backward: ")
    assert "provider" in note.message
    assert note.data["compatible"] is True


def test_adding_a_required_property_is_a_plan_error_naming_the_path_and_the_rule() -> None:
    required = {**CLOSED, "required": ["provider"]}
    plan = plan_of(spec(required), live(CLOSED))
    errors = [m for m in plan.messages if m.severity == "error"]
    assert len(errors) == 1
    assert errors[0].address == "event.session.created"
    assert "#/properties/provider" in errors[0].message
    assert "REQUIRED_ATTRIBUTE_ADDED" in errors[0].message
    assert errors[0].message.endswith(
        "to accept it, change the event's compatibility in the same pull request"
    )
    assert errors[0].data["rule"] == "REQUIRED_ATTRIBUTE_ADDED"
    assert plan.errors == tuple(errors)


def test_narrowing_a_type_is_breaking_under_backward() -> None:
    narrowed = {"type": "object", "properties": {"n": {"type": "integer"}}}
    before = {"type": "object", "properties": {"n": {"type": "number"}}}
    plan = plan_of(spec(narrowed), live(before))
    assert [m.data["rule"] for m in plan.messages if m.severity == "error"] == ["TYPE_NARROWED"]


def test_changing_the_compatibility_in_the_same_change_lets_a_breaking_schema_through() -> None:
    required = {**CLOSED, "required": ["provider"]}
    plan = plan_of(spec(required, compatibility="none"), live(CLOSED))
    assert [m.severity for m in plan.messages] == ["warning"]
    (change,) = plan.changes
    assert {f.path for f in change.fields} >= {"compatibility", "payload.required"}
    assert change.after is not None and change.after["version"] == 2


def test_the_mode_applied_is_the_one_the_topology_asks_for() -> None:
    # adding an optional property to a closed model: backward accepts it, forward does not
    added = {**CLOSED, "properties": {**CLOSED["properties"], "model": {"type": "string"}}}
    assert not plan_of(spec(added, "backward"), live(CLOSED, compatibility="backward")).errors
    forward = plan_of(spec(added, "forward"), live(CLOSED, compatibility="forward"))
    assert [m.data["rule"] for m in forward.errors] == [
        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
    ]


def test_removing_an_event_type_whose_messages_remain_is_a_data_impact_note() -> None:
    plan = plan_of(None, live(OPEN, messages=42))
    (change,) = plan.changes
    assert change.action is Action.DELETE
    (note,) = plan.messages
    assert (note.kind, note.data) == ("note", {"messages": 42})
    assert note.message.startswith(
        "event type session.created leaves the catalogue while stream JELMORE holds 42 of its "
        "messages"
    )


def test_removing_an_event_type_without_messages_says_nothing_more() -> None:
    plan = plan_of(None, live(OPEN, messages=0))
    assert [c.action for c in plan.changes] == [Action.DELETE] and plan.messages == ()


def test_a_type_declared_again_after_its_removal_continues_its_versions() -> None:
    (change,) = plan_of(spec(OPEN), live(OPEN, version=5, deleted=True)).changes
    assert change.action is Action.CREATE
    assert change.after is not None and change.after["version"] == 6


def test_schema_diffs_render_in_the_human_json_and_markdown_plans() -> None:
    widened = {
        "type": "object",
        "properties": {"provider": {"type": "string"}, "model": {}},
    }
    plan = plan_of(spec(widened), live(OPEN))
    human = render_plan_text(plan)
    assert '~ event "session.created"' in human
    assert "payload.properties.model" in human
    assert "payload schema version 1 → 2, compatible under backward" in human
    doc = json.loads(render_plan_json(plan))
    (change,) = doc["changes"]
    assert change["address"] == "event.session.created"
    assert any(f["path"] == "payload.properties.model" for f in change["fields"])
    (message,) = [m for m in doc["warnings"] if m["field"] == "payload"]
    assert message["data"]["changes"][0]["path"] == "#/properties/model"
    markdown = render_plan_markdown(plan)
    assert "event.session.created" in markdown
    assert "payload schema version 1 → 2, compatible under backward" in markdown


def test_a_saved_plan_forged_to_carry_a_breaking_schema_is_refused_on_apply() -> None:
    compatible = {"type": "object", "properties": {"provider": {"type": ["string", "null"]}}}
    plan = plan_of(spec(compatible), live(OPEN))
    (change,) = plan.changes
    assert change.after is not None
    forged_after = {**change.after, "payload": {**OPEN, "required": ["provider"]}}
    forged = Plan.from_dict(
        {**plan.to_dict(), "changes": [{**change.to_dict(), "after": forged_after}]}
    )
    checked = recheck_plan(forged, live(OPEN), now=NOW)
    assert any(
        m.severity == "error" and "REQUIRED_ATTRIBUTE_ADDED" in m.message
        for m in checked.plan.messages
    )
