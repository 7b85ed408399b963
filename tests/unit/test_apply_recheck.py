"""Applying a saved plan trusts nothing in the file but its configs: the re-check against the live
state (ownership, actions, staleness, data-loss gates), without a server."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from jelmore_infra.apply import Gates, check_gates, recheck_plan
from jelmore_infra.diff import build_plan
from jelmore_infra.model import LiveState, LiveStream
from jelmore_infra.normalize import fingerprint, normalize_stream, wire_config
from jelmore_infra.plan import Action, Kind, Plan, PlanMessage, ResourceChange
from tests.unit.test_diff import LIVE_ORDERS, MARK, NOW, V, live, server, topology
from tests.unit.test_diff_golden import CASE_FILES, load_case


def _loss(plan: Plan) -> set[tuple[str | None, str | None, str]]:
    return {(m.address, m.field, m.message) for m in plan.data_loss()}


def _replaces_unmanaged(plan: Plan) -> set[str]:
    return {
        c.address
        for c in plan.changes
        if c.action is Action.REPLACE
        and any(m.kind == "adopt" and m.address == c.address for m in plan.messages)
    }


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_an_honest_plan_passes_the_recheck_with_the_same_data_loss(path: Path) -> None:
    desired, state, _, targets, now = load_case(path)
    plan = build_plan(desired, state, targets=targets, now=now)
    check = recheck_plan(plan, state, now=now)
    assert check.stale == ()
    refused = {a for r in check.refusals for a in r.addresses}
    # A saved plan never replaces a resource jelmore-infra does not manage (adopting with a
    # replace needs `apply` from the topology); nothing else is refused.
    assert refused == _replaces_unmanaged(plan), [r.reason for r in check.refusals]
    assert check.plan.changes == plan.changes
    assert _loss(check.plan) == _loss(plan)


def _unmanaged_orders(messages: int = 0) -> LiveState:
    config = copy.deepcopy(LIVE_ORDERS)
    del config["metadata"]["jelmore.managed-by"]
    state = {"messages": messages, "bytes": messages * 100}
    return LiveState(server=server(), streams={"ORDERS": LiveStream("ORDERS", config, state)})


def _change(state: LiveState, action: Action, after: dict[str, Any] | None) -> ResourceChange:
    before = normalize_stream(state.streams["ORDERS"].config, V)
    return ResourceChange(
        address="stream.ORDERS",
        kind=Kind.STREAM,
        stream="ORDERS",
        name="ORDERS",
        action=action,
        before=None if action is Action.CREATE else before,
        after=after,
        fingerprint=fingerprint(before),
    )


def _forged(state: LiveState, change: ResourceChange) -> Plan:
    """A plan as someone editing the file could write it: consistent fingerprints, no warnings."""
    return Plan(
        server=state.server,
        changes=(change,),
        fingerprints={change.address: change.fingerprint},
    )


def test_a_forged_delete_of_an_unmanaged_stream_is_refused() -> None:
    state = _unmanaged_orders(messages=5)
    check = recheck_plan(_forged(state, _change(state, Action.DELETE, None)), state, now=NOW)
    assert [r.addresses for r in check.refusals] == [("stream.ORDERS",)]
    assert "not managed by jelmore-infra" in check.refusals[0].reason
    assert "deletes stream.ORDERS" in check.refusals[0].reason


def test_a_forged_replace_of_an_unmanaged_stream_is_refused() -> None:
    state = _unmanaged_orders()
    after = wire_config(
        normalize_stream(
            {
                **LIVE_ORDERS,
                "storage": "memory",
                "metadata": MARK,
            },
            V,
        ),
        V,
    )
    check = recheck_plan(_forged(state, _change(state, Action.REPLACE, after)), state, now=NOW)
    assert len(check.refusals) == 1
    assert "replaces stream.ORDERS, which is not managed" in check.refusals[0].reason


def test_an_update_of_an_unmanaged_stream_is_refused_unless_it_adopts_it() -> None:
    state = _unmanaged_orders()
    config = copy.deepcopy(state.streams["ORDERS"].config)
    config["max_msgs"] = 10
    plain = wire_config(normalize_stream(config, V), V)
    check = recheck_plan(_forged(state, _change(state, Action.UPDATE, plain)), state, now=NOW)
    assert len(check.refusals) == 1
    assert "without adopting it" in check.refusals[0].reason
    adopting = {**plain, "metadata": {**(plain.get("metadata") or {}), **MARK}}
    check = recheck_plan(_forged(state, _change(state, Action.UPDATE, adopting)), state, now=NOW)
    assert check.refusals == ()


def test_a_change_whose_action_the_live_state_does_not_give_is_refused() -> None:
    state = live(LIVE_ORDERS)
    # storage cannot change in place: the file claims an update, a fresh diff says replace.
    after = wire_config(normalize_stream({**LIVE_ORDERS, "storage": "memory"}, V), V)
    check = recheck_plan(_forged(state, _change(state, Action.UPDATE, after)), state, now=NOW)
    assert len(check.refusals) == 1
    assert "the plan says update stream.ORDERS" in check.refusals[0].reason
    assert "gives replace" in check.refusals[0].reason


def test_data_loss_is_gated_from_the_live_state_not_from_the_file() -> None:
    state = dataclasses.replace(
        live(LIVE_ORDERS),
        streams={"ORDERS": LiveStream("ORDERS", LIVE_ORDERS, {"messages": 20, "bytes": 2000})},
    )
    plan = build_plan(topology({"subjects": ["orders.>"], "max_msgs": 5}), state, now=NOW)
    assert plan.data_loss()
    stripped = dataclasses.replace(
        plan, messages=(PlanMessage("warning", "note", "nothing to see"),)
    )
    check = recheck_plan(stripped, state, now=NOW)
    assert check.refusals == ()
    refusals = check_gates(check.plan, Gates())
    assert any("--allow-data-loss" in r.reason for r in refusals)
    assert check_gates(check.plan, Gates(allow_data_loss=True)) == []


def test_a_change_without_a_recorded_fingerprint_is_still_checked_for_staleness() -> None:
    state = live(LIVE_ORDERS)
    # A forged create of a stream that exists, with no entry in the plan's fingerprints.
    after = wire_config(normalize_stream(LIVE_ORDERS, V), V)
    create = dataclasses.replace(
        _change(state, Action.CREATE, after), before=None, fingerprint=None
    )
    check = recheck_plan(Plan(server=state.server, changes=(create,)), state, now=NOW)
    assert check.stale == ("stream.ORDERS was created since the plan was made",)
