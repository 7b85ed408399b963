"""Resource kinds: the registry, what every kind declares, the one phase order plan and apply
share, and impact records that survive a saved plan."""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import pytest

from jelmore_infra import apply
from jelmore_infra.address import FORMS
from jelmore_infra.apply import ApplyHooks, Gates, run_apply
from jelmore_infra.diff import build_plan
from jelmore_infra.diff.order import phase_of, phases
from jelmore_infra.errors import ApplyError
from jelmore_infra.impact import impact_from_dict
from jelmore_infra.kinds import KINDS, TARGET_KEYWORDS, kind_named, kind_of
from jelmore_infra.kinds.base import ResourceKind
from jelmore_infra.model import Topology
from jelmore_infra.plan import Action, Plan
from jelmore_infra.render.impact import impact_text
from jelmore_infra.render.json import load_plan_json, render_plan_json
from tests.unit.test_diff import LIVE_ORDERS, LIVE_WORKER, MARK, NOW, live, server, topology


def test_kinds_are_registered_in_dependency_order() -> None:
    assert [k.name for k in KINDS] == ["stream", "kv", "objectstore", "consumer", "event"]
    assert [k.tier for k in KINDS] == sorted(k.tier for k in KINDS)
    assert TARGET_KEYWORDS == ("stream", "kv", "objectstore", "consumer", "event")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_kind_declares_what_the_pipeline_needs(kind: ResourceKind) -> None:
    assert kind_named(kind.name) is kind
    assert kind.form is FORMS[kind.name]
    assert kind.fields and kind.not_found_codes
    assert kind.topology_field in Topology.__dataclass_fields__
    overridden = {
        name
        for name, member in inspect.getmembers(type(kind))
        if callable(member) and member is not getattr(ResourceKind, name, None)
    }
    for hook in (
        "desired_specs",
        "live_resources",
        "normalize_live",
        "normalize_desired",
        "normalize_config",
        "spec_from_change",
        "create",
        "update",
        "delete",
    ):
        assert hook in overridden, f"{kind.name} does not provide {hook}"


def _mixed_plan() -> Plan:
    """Every phase: a consumer delete, a stream create and update, a consumer create."""
    other = dict(LIVE_ORDERS, name="OLD", subjects=["old.>"])
    gone = dict(LIVE_WORKER, durable_name="gone", name="gone")
    state = live(LIVE_ORDERS, LIVE_WORKER)
    state = type(state)(
        server=server(),
        streams={**state.streams, "OLD": type(state.streams["ORDERS"])("OLD", other)},
        consumers={
            **state.consumers,
            ("ORDERS", "gone"): type(state.consumers[("ORDERS", "worker")])("ORDERS", "gone", gone),
        },
    )
    desired = topology({"subjects": ["orders.>"], "description": "x"}, {"ack_policy": "explicit"})
    from jelmore_infra.model import ConsumerSpec, StreamSpec

    desired = Topology(
        streams={
            **desired.streams,
            "NEW": StreamSpec("NEW", {"name": "NEW", "metadata": MARK}),
        },
        consumers={
            **desired.consumers,
            ("NEW", "w"): ConsumerSpec("NEW", "w", {"durable_name": "w", "metadata": MARK}),
        },
    )
    return build_plan(desired, state, now=NOW)


def test_plan_order_and_apply_phases_come_from_one_phase_order() -> None:
    plan = _mixed_plan()
    got = [(c.address, c.action.value) for c in plan.changes]
    assert got == [
        ("consumer.ORDERS.gone", "delete"),
        ("stream.OLD", "delete"),
        ("stream.NEW", "create"),
        ("stream.ORDERS", "update"),
        ("consumer.NEW.w", "create"),
    ]
    # phase 0 deletes event types (the highest tier), the last phase writes them
    assert [phase_of(c) for c in plan.changes] == [1, 2, 3, 3, 4]
    assert [[c.address for c in run] for run in phases(plan.changes)] == [
        ["consumer.ORDERS.gone"],
        ["stream.OLD"],
        ["stream.NEW", "stream.ORDERS"],
        ["consumer.NEW.w"],
    ]
    # apply keeps no phase order of its own
    assert not hasattr(apply, "_phase") and not hasattr(apply, "_phases")


def test_a_data_loss_message_carries_its_impact_record_and_its_text() -> None:
    state = live(LIVE_ORDERS, LIVE_WORKER)
    state.streams["ORDERS"].state.update(messages=5, bytes=500)
    plan = build_plan(topology(None, None), state, now=NOW)
    loss = plan.data_loss()
    assert loss and all(m.impact is not None for m in loss)
    for m in loss:
        assert m.impact is not None
        assert m.message == impact_text(m.impact)
        assert dict(m.data) == m.impact.data()
        assert impact_from_dict(json.loads(json.dumps(m.impact.to_dict()))) == m.impact


def test_impact_records_survive_a_saved_plan_and_an_edited_text_is_refused() -> None:
    state = live(LIVE_ORDERS, None)
    state.streams["ORDERS"].state.update(messages=5, bytes=500)
    plan = build_plan(topology(None, None), state, now=NOW)
    text = render_plan_json(plan)
    assert '"type": "stream-messages-lost"' in text
    assert load_plan_json(text).messages == plan.messages

    from jelmore_infra.errors import PlanFileError
    from jelmore_infra.render.json import document_checksum

    doc = json.loads(text)
    doc["warnings"][0]["message"] = "nothing is lost"
    doc["checksum"] = document_checksum(doc)
    with pytest.raises(PlanFileError, match="does not match its impact record"):
        load_plan_json(json.dumps(doc))


class _NoServer:
    """An API client that must not be used: any request is a test failure."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"apply sent {name} although it had to refuse")


def test_run_apply_sends_nothing_when_the_confirmation_is_declined() -> None:
    plan = _mixed_plan()
    asked: list[Plan] = []

    async def decline(p: Plan) -> bool:
        asked.append(p)
        return False

    with pytest.raises(ApplyError, match="Apply cancelled"):
        asyncio.run(
            run_apply(_NoServer(), plan, Gates(allow_destroy=True), ApplyHooks(confirm=decline))
        )  # type: ignore[arg-type]
    assert asked == [plan]


def test_run_apply_refuses_through_the_gates_before_asking_the_server() -> None:
    plan = _mixed_plan()
    assert any(c.action is Action.DELETE for c in plan.changes)
    with pytest.raises(ApplyError, match="--allow-destroy"):
        asyncio.run(run_apply(_NoServer(), plan, Gates()))  # type: ignore[arg-type]


def test_run_apply_of_a_plan_without_changes_reports_an_empty_result() -> None:
    plan = build_plan(topology({"subjects": ["orders.>"]}), live(LIVE_ORDERS), now=NOW)
    seen: list[Any] = []
    result = asyncio.run(
        run_apply(_NoServer(), plan, Gates(), ApplyHooks(on_result=seen.append))  # type: ignore[arg-type]
    )
    assert result.ok and not result.steps and seen == [result]


def test_every_change_finds_its_kind() -> None:
    for change in _mixed_plan().changes:
        assert kind_of(change).plan_kind is change.kind
        assert str(kind_of(change).address_of(change)) == change.address
