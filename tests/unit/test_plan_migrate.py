"""``replace_strategy: migrate`` in the plan, its views and the saved-plan re-check (no server).

An opted-in replace becomes a ``migrate`` with its steps and effects and no data loss; the
consumers of the stream are not replaced; an in-place change gets a note; a mirror, a stream
sourced by another and nats-server 2.12 give plan errors; a half-done migration is a migrate
that resumes and never a destructive change; consumers re-created at their position are no
drift; the three views show it; a saved plan's migrate is accepted and a forged one refused.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from jelmore_infra.apply import Gates, check_gates, recheck_plan
from jelmore_infra.diff import build_plan
from jelmore_infra.migration.steps import (
    META_CONSUMERS,
    META_MESSAGES,
    META_OF,
    META_ORIGINAL,
    META_RESUMED_AT,
    META_STEP,
    STEP_COPIED,
    freeze_subject,
    temp_name,
)
from jelmore_infra.model import (
    REPLACE_MIGRATE,
    ConsumerSpec,
    LiveConsumer,
    LiveState,
    LiveStream,
    StreamSpec,
    Topology,
)
from jelmore_infra.plan import Action, Plan
from jelmore_infra.render.human import render_plan_text
from jelmore_infra.render.json import load_plan_json, render_plan_json
from jelmore_infra.render.markdown import render_plan_markdown
from jelmore_infra.topology.load import parse_sources
from tests.unit.test_diff import LIVE_ORDERS, LIVE_WORKER, MARK, NOW, server

STATE = {"messages": 10_000, "bytes": 2_000_000, "first_seq": 1, "last_seq": 10_000}
WORKER_STATE = {"ack_floor": {"stream_seq": 3_000, "consumer_seq": 3_000}}


def desired(
    strategy: str = REPLACE_MIGRATE, worker: dict[str, Any] | None = None, **stream: Any
) -> Topology:
    config = {"name": "ORDERS", "subjects": ["orders.>"], "metadata": MARK, **stream}
    consumers = {
        ("ORDERS", "worker"): ConsumerSpec(
            "ORDERS",
            "worker",
            {
                "durable_name": "worker",
                "ack_policy": "explicit",
                "metadata": MARK,
                **(worker or {}),
            },
        )
    }
    return Topology({"ORDERS": StreamSpec("ORDERS", config, replace_strategy=strategy)}, consumers)


def live(
    version: str = "2.15.1",
    stream: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
    extra: dict[str, LiveStream] | None = None,
) -> LiveState:
    streams = {"ORDERS": LiveStream("ORDERS", stream or LIVE_ORDERS, STATE), **(extra or {})}
    consumers = {
        ("ORDERS", "worker"): LiveConsumer("ORDERS", "worker", worker or LIVE_WORKER, WORKER_STATE)
    }
    return LiveState(server=server(version), streams=streams, consumers=consumers)


def plan_of(topology: Topology, state: LiveState) -> Plan:
    return build_plan(topology, state, now=NOW)


# -- the plan ---------------------------------------------------------------------------------


def test_an_opted_in_storage_change_is_a_migrate_with_its_effects_and_no_data_loss() -> None:
    plan = plan_of(desired(storage="memory"), live())
    (change,) = plan.changes
    assert change.action is Action.MIGRATE
    assert change.after is not None and change.after["storage"] == "memory"
    migration = change.migration
    assert migration is not None and migration["resume"] is False
    assert migration["messages"] == 10_000
    effects = " ".join(migration["effects"])
    assert "keeps all 10,000 messages" in effects
    assert "sequence numbers change" in effects
    assert "refused for about" in effects and "jelmore runtime retries them" in effects
    assert "consumer worker is re-created" in effects and "stream sequence 3000" in effects
    assert "message times restart" in effects
    assert migration["steps"][0]["step"] == "create-temp"
    assert plan.data_loss() == () and plan.errors == ()
    assert plan.summary().migrate == 1 and plan.has_changes
    # The usual confirmation, but no --allow-data-loss.
    assert check_gates(plan, Gates(interactive=True)) == []


def test_without_the_opt_in_the_same_change_replaces_and_loses_the_messages() -> None:
    plan = plan_of(desired("recreate", storage="memory"), live())
    assert [c.action for c in plan.changes] == [Action.REPLACE, Action.REPLACE]
    assert plan.data_loss()


def test_consumer_changes_in_a_migrating_plan_are_updates_after_the_migration() -> None:
    plan = plan_of(desired(storage="memory", worker={"max_ack_pending": 900}), live())
    assert [(c.address, c.action) for c in plan.changes] == [
        ("stream.ORDERS", Action.MIGRATE),
        ("consumer.ORDERS.worker", Action.UPDATE),
    ]


def test_migrate_on_an_in_place_change_is_a_note() -> None:
    plan = plan_of(desired(max_msgs=10), live())
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    notes = [m for m in plan.warnings if m.kind == "note"]
    assert any("has no effect here" in m.message for m in notes)
    assert plan.errors == ()


def test_an_unchanged_stream_that_opts_in_gets_no_note() -> None:
    plan = plan_of(desired(), live())
    assert plan.changes == () and plan.messages == ()


def test_a_mirror_cannot_be_migrated() -> None:
    mirror = {**LIVE_ORDERS, "subjects": [], "mirror": {"name": "UPSTREAM"}}
    topology = desired(storage="memory", mirror={"name": "UPSTREAM"})
    del topology.streams["ORDERS"].config["subjects"]
    plan = plan_of(topology, live(stream=mirror))
    assert any("it is a mirror" in m.message for m in plan.errors)


def test_a_stream_sourced_by_another_cannot_be_migrated() -> None:
    other = {**LIVE_ORDERS, "name": "COPY", "subjects": [], "sources": [{"name": "ORDERS"}]}
    state = live(extra={"COPY": LiveStream("COPY", other)})
    plan = plan_of(desired(storage="memory"), state)
    assert any("COPY sources or mirrors it" in m.message for m in plan.errors)


def test_nats_server_2_12_refuses_the_migration_naming_the_version() -> None:
    plan = plan_of(desired(storage="memory"), live("2.12.8"))
    assert any("refused on nats-server 2.12.8" in m.message for m in plan.errors)


def test_a_stream_named_like_the_copy_that_is_no_copy_is_an_error() -> None:
    impostor = {**LIVE_ORDERS, "name": temp_name("ORDERS"), "subjects": ["other.>"]}
    state = live(extra={temp_name("ORDERS"): LiveStream(temp_name("ORDERS"), impostor)})
    plan = plan_of(desired(storage="memory"), state)
    assert any("is not a migration copy" in m.message for m in plan.errors)


# -- a half-done migration --------------------------------------------------------------------


def _temp(original: dict[str, Any]) -> LiveStream:
    name = temp_name("ORDERS")
    consumers = [{"name": "worker", "config": LIVE_WORKER, "ack_floor": 3_000, "pending": 7_000}]
    meta = {
        META_OF: "ORDERS",
        META_STEP: STEP_COPIED,
        META_ORIGINAL: json.dumps(original),
        META_MESSAGES: "10000",
        META_CONSUMERS: json.dumps(consumers),
    }
    config = {**LIVE_ORDERS, "name": name, "subjects": [], "metadata": meta}
    return LiveStream(name, config, STATE)


def test_a_half_done_migration_resumes_and_is_never_destructive() -> None:
    frozen = {**LIVE_ORDERS, "subjects": [freeze_subject("ORDERS")]}
    state = live(stream=frozen, extra={temp_name("ORDERS"): _temp(LIVE_ORDERS)})
    plan = plan_of(desired(storage="memory"), state)
    (change,) = plan.changes
    assert change.action is Action.MIGRATE
    assert change.migration is not None and change.migration["resume"] is True
    assert plan.data_loss() == () and plan.errors == ()
    assert plan.unmanaged == ()  # the copy is not listed as an unmanaged stream
    assert any("copy of an interrupted migration" in m.message for m in plan.warnings)
    text = render_plan_text(plan)
    assert "will be migrated (resume" in text and "0 to destroy" in text


def test_a_half_done_migration_whose_original_is_gone_is_not_a_create() -> None:
    state = dataclasses.replace(live(extra={temp_name("ORDERS"): _temp(LIVE_ORDERS)}), consumers={})
    del state.streams["ORDERS"]  # type: ignore[attr-defined]
    plan = plan_of(desired(storage="memory"), state)
    # The migration re-creates the worker itself: no consumer create is planned.
    assert [(c.address, c.action) for c in plan.changes] == [("stream.ORDERS", Action.MIGRATE)]
    assert plan.changes[0].before is None


def test_a_half_done_migration_of_a_stream_removed_from_the_topology_is_an_error() -> None:
    state = live(extra={temp_name("ORDERS"): _temp(LIVE_ORDERS)})
    plan = plan_of(Topology(), state)
    assert any("is being migrated" in m.message for m in plan.errors)
    assert all(c.action is not Action.DELETE or c.kind.value != "stream" for c in plan.changes)


def test_a_consumer_recreated_at_its_position_is_no_drift() -> None:
    resumed = {
        **LIVE_WORKER,
        "deliver_policy": "by_start_sequence",
        "opt_start_seq": 3_001,
        "metadata": {**LIVE_WORKER["metadata"], META_RESUMED_AT: "3001"},
    }
    migrated = {**LIVE_ORDERS, "storage": "memory"}
    plan = plan_of(desired(storage="memory"), live(stream=migrated, worker=resumed))
    assert plan.changes == ()
    # A real change to it is an update that keeps the position.
    plan = plan_of(
        desired(storage="memory", worker={"max_ack_pending": 900}),
        live(stream=migrated, worker=resumed),
    )
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert change.after is not None and change.after["opt_start_seq"] == 3_001
    assert [f.path for f in change.fields] == ["max_ack_pending"]


# -- views ------------------------------------------------------------------------------------


def test_the_three_views_show_the_migrate_and_json_round_trips() -> None:
    plan = plan_of(desired(storage="memory"), live())
    text = render_plan_text(plan)
    assert '~> stream "ORDERS" {' in text
    assert "# stream.ORDERS will be migrated, keeping its messages" in text
    assert "keeps all 10,000 messages" in text and "create-temp:" in text
    assert "Plan: 0 to add, 0 to change, 0 to replace, 1 to migrate, 0 to destroy." in text
    markdown = render_plan_markdown(plan)
    assert "~> migrate" in markdown and "keeping its 10,000 messages" in markdown
    document = json.loads(render_plan_json(plan))
    (change,) = document["changes"]
    assert change["action"] == "migrate" and change["migration"]["messages"] == 10_000
    assert document["summary"]["migrate"] == 1
    assert load_plan_json(render_plan_json(plan)) == plan


def test_a_plan_without_migrate_keeps_its_json_summary() -> None:
    plan = plan_of(desired(max_msgs=10), live())
    assert "migrate" not in json.loads(render_plan_json(plan))["summary"]


# -- saved plans ------------------------------------------------------------------------------


def test_a_saved_migrate_passes_the_recheck() -> None:
    state = live()
    plan = plan_of(desired(storage="memory"), state)
    check = recheck_plan(plan, state, now=NOW)
    assert check.stale == () and check.refusals == ()
    assert check.plan.changes == plan.changes


def test_a_forged_migrate_of_an_unmanaged_stream_is_refused() -> None:
    unmanaged = copy.deepcopy(LIVE_ORDERS)
    del unmanaged["metadata"]["jelmore.managed-by"]
    state = live(stream=unmanaged)
    plan = plan_of(desired(storage="memory"), live())
    check = recheck_plan(plan, state, now=NOW)
    assert any("migrates stream.ORDERS, which is not managed" in r.reason for r in check.refusals)


def test_a_forged_migrate_of_an_in_place_change_is_refused() -> None:
    state = live()
    honest = plan_of(desired(max_msgs=10), state)
    (change,) = honest.changes
    forged = dataclasses.replace(
        honest,
        changes=(dataclasses.replace(change, action=Action.MIGRATE, migration={"resume": False}),),
    )
    check = recheck_plan(forged, state, now=NOW)
    assert any("the plan says migrate stream.ORDERS" in r.reason for r in check.refusals)


# -- topology ---------------------------------------------------------------------------------


def test_replace_strategy_is_read_from_the_topology_and_never_sent() -> None:
    text = "streams:\n  S:\n    storage: memory\n    jelmore:\n      replace_strategy: migrate\n"
    topology, diags = parse_sources([("t.yaml", text)])
    assert diags == [] and topology is not None
    spec = topology.streams["S"]
    assert spec.replace_strategy == REPLACE_MIGRATE
    assert "jelmore" not in spec.config
    assert not any("replace" in key for key in spec.config.get("metadata") or {})
    plain, _ = parse_sources([("t.yaml", "streams:\n  S:\n    storage: memory\n")])
    assert plain is not None and plain.streams["S"].replace_strategy == "recreate"


def test_a_targeted_read_includes_the_migration_copy() -> None:
    from jelmore_infra.apply import read_streams

    assert read_streams(["consumer.ORDERS.worker"]) == {"ORDERS", temp_name("ORDERS")}


def test_adopting_an_unmanaged_stream_by_a_migrate_says_so() -> None:
    unmanaged = copy.deepcopy(LIVE_ORDERS)
    del unmanaged["metadata"]["jelmore.managed-by"]
    plan = plan_of(desired(storage="memory"), live(stream=unmanaged))
    (adopt,) = [m for m in plan.messages if m.kind == "adopt"]
    assert adopt.message.endswith("and migrates it")
    assert "adopted and migrated" in render_plan_text(plan)
