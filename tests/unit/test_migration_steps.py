"""The migration's pure rules: plan effects, refusals, configs it sends and where a run stands."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jelmore_infra.migration.steps import (
    META_CONSUMERS,
    META_MESSAGES,
    META_OF,
    META_ORIGINAL,
    META_STEP,
    MIN_WINDOW_NS,
    STEP_COPIED,
    STEP_COPYING,
    MigrationStateError,
    Step,
    copy_back_config,
    detached_config,
    freeze_subject,
    frozen_config,
    is_resumed_position,
    migration_in_progress,
    migration_steps,
    read_marker,
    refusals,
    resume_point,
    resumed_consumer_config,
    strategy_note,
    streams_sourcing,
    switch_over_seconds,
    temp_config,
    temp_name,
)

S = 1_000_000_000
NEW: tuple[int, int, int] = (2, 15, 1)
OLD: tuple[int, int, int] = (2, 10, 26)

LIVE = {"name": "ORDERS", "subjects": ["orders.>"], "storage": "file", "num_replicas": 1}
STATE = {"messages": 10_000, "bytes": 2_000_000, "first_seq": 5, "last_seq": 10_010}
DESIRED = {"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory"}
WORKER = {
    "name": "worker",
    "config": {"durable_name": "worker", "ack_policy": "explicit", "deliver_policy": "all"},
    "ack_floor": {"stream_seq": 3_000},
}


def messages(plan_diags: Any) -> list[str]:
    return [d.message for d in plan_diags]


# -- the plan's view ------------------------------------------------------------------------


def test_the_plan_states_messages_kept_renumbering_pause_times_and_consumer_positions() -> None:
    plan = migration_steps(LIVE, STATE, DESIRED, [WORKER], NEW)
    assert not plan.refused
    assert plan.messages == 10_000 and plan.temp_stream == "ORDERS_JELMORE_MIGRATE"
    text = "\n".join(plan.effects)
    assert "keeps all 10,000 messages" in text
    assert "Nats-Msg-Id included" in text
    assert "renumbered densely from 1 (now 5..10010)" in text
    assert f"refused for about {plan.switch_over_s:g} s" in text
    assert "the jelmore runtime retries them" in text
    assert "max_age and per-message TTLs count again" in text
    assert "consumer worker is re-created" in text and "stream sequence 3000" in text
    assert "acknowledged messages are not redelivered" in text
    assert [c.name for c in plan.consumers] == ["worker"]
    steps = [s for s, _ in plan.steps]
    assert (steps[0], steps[-1]) == (Step.CREATE_TEMP, Step.DELETE_TEMP)
    assert json.loads(json.dumps(plan.to_dict()))["messages"] == 10_000


def test_ephemeral_consumers_are_named_as_not_kept() -> None:
    ephemeral = {"name": "tmp1", "config": {"ack_policy": "none"}, "ack_floor": {}}
    plan = migration_steps(LIVE, STATE, DESIRED, [WORKER, ephemeral], NEW)
    assert [c.name for c in plan.consumers] == ["worker"]
    assert any("ephemeral consumers are not kept: tmp1" in e for e in plan.effects)


def test_before_2_12_the_plan_says_a_repeated_msg_id_delays_the_copy() -> None:
    assert any(
        "delays the copy" in e for e in migration_steps(LIVE, STATE, DESIRED, [], OLD).effects
    )
    assert not any("delays" in e for e in migration_steps(LIVE, STATE, DESIRED, [], NEW).effects)


def test_the_switch_over_estimate_grows_with_messages_and_bytes() -> None:
    assert switch_over_seconds(0, 0) == 0.5
    assert switch_over_seconds(100_000, 0) > switch_over_seconds(10_000, 0)
    assert switch_over_seconds(10, 200_000_000) > switch_over_seconds(10, 0)


@pytest.mark.parametrize("version", [(2, 12, 0), (2, 12, 8), (2, 13, 1)])
def test_2_12_and_2_13_are_refused_naming_the_version_and_the_reason(
    version: tuple[int, int, int],
) -> None:
    plan = migration_steps(LIVE, STATE, DESIRED, [], version)
    assert plan.refused
    (message,) = messages(plan.diagnostics)
    assert f"nats-server {'.'.join(map(str, version))}" in message
    assert "Nats-Msg-Id" in message and "2.14.0 or later" in message


@pytest.mark.parametrize("version", [(2, 10, 26), (2, 11, 11), (2, 14, 0), (2, 15, 1)])
def test_other_versions_are_allowed(version: tuple[int, int, int]) -> None:
    assert refusals("ORDERS", LIVE, DESIRED, version) == []


def test_a_mirror_is_refused_on_either_side() -> None:
    mirror = {**LIVE, "mirror": {"name": "UP"}}
    for live, desired in ((mirror, DESIRED), (LIVE, {**DESIRED, "mirror": {"name": "UP"}})):
        (error,) = refusals("ORDERS", live, desired, NEW)
        assert error.severity == "error" and "it is a mirror" in error.message


def test_a_stream_sourced_by_others_is_refused_naming_them() -> None:
    configs = [
        LIVE,
        {"name": "COPY", "sources": [{"name": "ORDERS"}]},
        {"name": "BACKUP", "mirror": {"name": "ORDERS"}},
        {"name": "ELSEWHERE", "sources": [{"name": "ORDERS", "external": {"api": "$JS.x.API"}}]},
        {"name": "OTHER", "sources": [{"name": "INVOICES"}]},
    ]
    sourced_by = streams_sourcing("ORDERS", configs)
    assert sourced_by == ["BACKUP", "COPY"]
    (error,) = refusals("ORDERS", LIVE, DESIRED, NEW, sourced_by)
    assert "BACKUP, COPY source or mirror it" in error.message


def test_own_sources_sealed_and_unverified_flags_are_refused() -> None:
    sourcing = {**LIVE, "sources": [{"name": "UP"}]}
    assert "sources of its own" in refusals("ORDERS", sourcing, DESIRED, NEW)[0].message
    assert "sealed" in refusals("ORDERS", LIVE, {**DESIRED, "sealed": True}, NEW)[0].message
    counter = {**DESIRED, "allow_msg_counter": True}
    assert "allow_msg_counter" in refusals("ORDERS", LIVE, counter, NEW)[0].message


def test_migrate_on_a_change_made_in_place_is_a_note() -> None:
    note = strategy_note("ORDERS")
    assert note.severity == "warning" and note.kind == "note"
    assert "made in place" in note.message


# -- configs sent -----------------------------------------------------------------------------


def test_the_temporary_stream_keeps_everything_and_carries_the_original_config() -> None:
    original = {**LIVE, "max_msgs": 10, "max_age": S, "allow_rollup_hdrs": True, "metadata": {}}
    config = temp_config(original, NEW)
    assert config["name"] == temp_name("ORDERS") == "ORDERS_JELMORE_MIGRATE"
    assert config["sources"] == [{"name": "ORDERS"}]
    assert "subjects" not in config and "duplicate_window" not in config
    assert (config["max_msgs"], config["max_age"], config["allow_rollup_hdrs"]) == (-1, 0, True)
    assert "jelmore.managed-by" not in config["metadata"]  # a plan never deletes it
    marker = read_marker({"config": config})
    assert marker is not None and marker.step == STEP_COPYING and marker.original == original
    assert temp_config(original, OLD)["duplicate_window"] == MIN_WINDOW_NS


def test_the_copy_of_a_stream_denying_deletes_keeps_its_per_subject_limit() -> None:
    """A KV bucket's copy keeps ``history`` revisions per key, as the bucket does; a stream whose
    single messages may be deleted gets no per-subject limit on its copy."""
    bucket = {**LIVE, "max_msgs_per_subject": 5, "deny_delete": True, "allow_rollup_hdrs": True}
    assert temp_config(bucket, NEW)["max_msgs_per_subject"] == 5
    assert temp_config({**bucket, "deny_delete": False}, NEW)["max_msgs_per_subject"] == -1
    assert temp_config({**bucket, "max_msgs_per_subject": -1}, NEW)["max_msgs_per_subject"] == -1
    assert temp_config({**LIVE, "deny_delete": True}, NEW)["max_msgs_per_subject"] == -1


def test_freezing_swaps_the_subjects_for_a_placeholder_and_drops_republish() -> None:
    config = frozen_config({**LIVE, "republish": {"src": ">", "dest": "x.>"}})
    assert config["subjects"] == [freeze_subject("ORDERS")]
    assert "republish" not in config and config["storage"] == "file"


def test_the_copy_back_config_has_no_subjects_limits_or_side_effects_until_opened() -> None:
    desired = {
        **DESIRED,
        "retention": "interest",
        "max_msgs_per_subject": 5,
        "max_msg_size": 1024,
        "discard": "new",
        "discard_new_per_subject": True,
        "republish": {"src": ">", "dest": "out.>"},
        "duplicate_window": 60 * S,
        "deny_delete": True,
    }
    config = copy_back_config(desired, LIVE, NEW)
    assert config["sources"] == [{"name": "ORDERS_JELMORE_MIGRATE"}]
    assert "subjects" not in config and "republish" not in config
    assert config["retention"] == "limits"
    assert (config["max_msgs_per_subject"], config["max_msg_size"], config["discard"]) == (
        -1,
        -1,
        "old",
    )
    assert "duplicate_window" not in config and config["deny_delete"] is False
    assert copy_back_config(desired, LIVE, OLD)["duplicate_window"] == MIN_WINDOW_NS
    assert copy_back_config({**DESIRED, "retention": "workqueue"}, LIVE, NEW)["retention"] == (
        "workqueue"
    )


def test_a_resumed_consumer_starts_at_a_sequence_the_plan_can_recognise() -> None:
    config = resumed_consumer_config(
        {**WORKER["config"], "opt_start_time": "2025-01-01T00:00:00Z"}, 42
    )
    assert (config["deliver_policy"], config["opt_start_seq"]) == ("by_start_sequence", 42)
    assert "opt_start_time" not in config
    assert is_resumed_position(config, WORKER["config"])
    assert not is_resumed_position(WORKER["config"], WORKER["config"])
    assert not is_resumed_position({**config, "opt_start_seq": 7}, WORKER["config"])


# -- where a run stands -----------------------------------------------------------------------

CREATED = "2025-06-01T10:00:00.123456789Z"
LATER = "2025-06-01T10:00:00.123456999Z"


def info(config: dict[str, Any], created: str = CREATED) -> dict[str, Any]:
    return {"config": config, "created": created, "state": {}}


def temp_info(step: str, *, sources: bool, created: str = CREATED) -> dict[str, Any]:
    config = temp_config(LIVE, NEW)
    if step == STEP_COPIED:
        config = detached_config(config, 10, [])
    if sources:
        config["sources"] = [{"name": "ORDERS"}]
    else:
        config.pop("sources", None)
    return info(config, created)


ORIGINAL = info(LIVE)
FROZEN = info(frozen_config(LIVE))
COPYING_BACK = info(copy_back_config(DESIRED, LIVE, NEW), LATER)
OPENED = info(DESIRED, LATER)


@pytest.mark.parametrize(
    ("original", "temp", "step"),
    [
        (ORIGINAL, None, Step.CREATE_TEMP),
        (FROZEN, None, Step.CREATE_TEMP),
        (ORIGINAL, temp_info(STEP_COPYING, sources=True), Step.WAIT_COPY),
        (FROZEN, temp_info(STEP_COPYING, sources=True), Step.VERIFY_COPY),
        (FROZEN, temp_info(STEP_COPIED, sources=False), Step.DELETE_ORIGINAL),
        (None, temp_info(STEP_COPIED, sources=False), Step.CREATE_NEW),
        (COPYING_BACK, temp_info(STEP_COPIED, sources=False), Step.VERIFY_COPY_BACK),
        (OPENED, temp_info(STEP_COPIED, sources=False), Step.DELETE_TEMP),
    ],
    ids=[
        "fresh",
        "frozen-without-copy",
        "copying",
        "frozen-copying",
        "detached",
        "original-deleted",
        "copying-back",
        "opened",
    ],
)
def test_the_next_step_is_read_from_the_two_streams(
    original: dict[str, Any] | None, temp: dict[str, Any] | None, step: Step
) -> None:
    assert resume_point("ORDERS", original, temp) is step


@pytest.mark.parametrize(
    ("original", "temp", "match"),
    [
        (None, None, "neither ORDERS nor ORDERS_JELMORE_MIGRATE exists"),
        (ORIGINAL, info({"name": "ORDERS_JELMORE_MIGRATE"}), "not a migration copy"),
        (None, temp_info(STEP_COPYING, sources=True), "deleted while"),
        (ORIGINAL, temp_info(STEP_COPIED, sources=False, created=LATER), "was changed while"),
        (ORIGINAL, temp_info(STEP_COPIED, sources=True), "unknown state"),
    ],
    ids=["nothing", "foreign-temp", "original-gone-mid-copy", "original-unfrozen", "odd-marker"],
)
def test_states_no_run_leaves_behind_stop_with_a_reason(
    original: dict[str, Any] | None, temp: dict[str, Any] | None, match: str
) -> None:
    with pytest.raises(MigrationStateError, match=match):
        resume_point("ORDERS", original, temp)


def test_the_marker_records_count_and_consumers_and_in_progress_migrations_are_found() -> None:
    consumers = [{"name": "worker", "config": {}, "ack_floor": 3, "pending": 7}]
    config = detached_config(temp_config(LIVE, NEW), 10, consumers)
    meta = config["metadata"]
    assert (meta[META_OF], meta[META_STEP], meta[META_MESSAGES]) == ("ORDERS", STEP_COPIED, "10")
    assert json.loads(meta[META_CONSUMERS]) == consumers
    assert json.loads(meta[META_ORIGINAL]) == LIVE
    marker = read_marker({"config": config})
    assert marker is not None and marker.messages == 10 and marker.consumers == consumers
    assert migration_in_progress([{"config": config}, ORIGINAL]) == {
        "ORDERS": "ORDERS_JELMORE_MIGRATE"
    }
