"""Normalisation: every server default, per server version, and the canonical spelling rules.

The live side of these tests is a real server response (``cases/diff/_server_responses.yaml``,
captured from each supported nats-server), so "desired == live after normalisation" is checked
against what servers really return, not against guesses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from jelmore_infra.normalize import (
    canonical_time,
    fingerprint,
    normalize_consumer,
    normalize_stream,
    wire_config,
)

S = 1_000_000_000
V2_10 = (2, 10, 26)
V2_11 = (2, 11, 11)
V2_12 = (2, 12, 8)
V2_14 = (2, 14, 6)
V2_15 = (2, 15, 1)
ALL = (V2_10, V2_11, V2_12, V2_14, V2_15)
MARK = {"jelmore.managed-by": "jelmore-infra"}

RESPONSES: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "cases" / "diff" / "_server_responses.yaml").read_text()
)

#: The configs that were sent to produce ``_server_responses.yaml`` (see the capture in
#: tests/integration/test_normalize_roundtrip.py).
SENT_STREAMS: dict[str, dict[str, Any]] = {
    "MIN": {"name": "MIN", "metadata": MARK},
    "JELMORE": {
        "name": "JELMORE",
        "description": "Jelmore session events",
        "subjects": ["jelmore.session.>"],
        "retention": "limits",
        "storage": "file",
        "max_age": 7 * 86400 * S,
        "max_msgs": 100000,
        "max_bytes": 10_000_000_000,
        "discard": "old",
        "duplicate_window": 60 * S,
        "num_replicas": 1,
        "metadata": MARK,
    },
    "SHORT": {"name": "SHORT", "subjects": ["short.>"], "max_age": 30 * S, "metadata": MARK},
    "SRC": {"name": "SRC", "sources": [{"name": "JELMORE"}], "metadata": MARK},
    "MIR": {"name": "MIR", "mirror": {"name": "JELMORE"}, "metadata": MARK},
    "LIM": {
        "name": "LIM",
        "subjects": ["lim.>"],
        "consumer_limits": {"inactive_threshold": 3600 * S, "max_ack_pending": 50},
        "metadata": MARK,
    },
    "REPUB": {
        "name": "REPUB",
        "subjects": ["rp.>"],
        "republish": {"dest": "out.>"},
        "metadata": MARK,
    },
    "SDM": {
        "name": "SDM",
        "subjects": ["sdm.>"],
        "subject_delete_marker_ttl": 60 * S,
        "metadata": MARK,
    },
}
SENT_CONSUMERS: dict[str, dict[str, Any]] = {
    "MIN.c1": {"durable_name": "c1", "metadata": MARK},
    "MIN.c2": {"durable_name": "c2", "ack_policy": "explicit", "metadata": MARK},
    "JELMORE.session_handlers": {
        "durable_name": "session_handlers",
        "description": "x",
        "filter_subjects": ["jelmore.session.>"],
        "ack_policy": "explicit",
        "ack_wait": 30 * S,
        "max_deliver": 3,
        "max_ack_pending": 1000,
        "metadata": {**MARK, "jelmore.retry-delays": "2s,4s,8s"},
    },
    "JELMORE.bo": {
        "durable_name": "bo",
        "ack_policy": "explicit",
        "backoff": [2 * S, 4 * S],
        "max_deliver": 3,
        "metadata": MARK,
    },
    "LIM.lc": {"durable_name": "lc", "ack_policy": "explicit", "metadata": MARK},
    "MIN.push": {
        "durable_name": "push",
        "deliver_subject": "push.out",
        "ack_policy": "explicit",
        "metadata": MARK,
    },
}


def _line(version: tuple[int, int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _stream_cases() -> list[Any]:
    out = []
    for v in ALL:
        for name, live in RESPONSES[_line(v)]["streams"].items():
            out.append(pytest.param(v, name, live, id=f"{_line(v)}-{name}"))
    return out


def _consumer_cases() -> list[Any]:
    out = []
    for v in ALL:
        for key, live in RESPONSES[_line(v)]["consumers"].items():
            out.append(pytest.param(v, key, live, id=f"{_line(v)}-{key}"))
    return out


@pytest.mark.parametrize(("version", "name", "live"), _stream_cases())
def test_stream_as_sent_equals_stream_as_the_server_reports_it(
    version: tuple[int, int, int], name: str, live: dict[str, Any]
) -> None:
    assert normalize_stream(SENT_STREAMS[name], version) == normalize_stream(live, version)


@pytest.mark.parametrize(("version", "key", "live"), _consumer_cases())
def test_consumer_as_sent_equals_consumer_as_the_server_reports_it(
    version: tuple[int, int, int], key: str, live: dict[str, Any]
) -> None:
    stream = key.split(".")[0]
    desired = normalize_consumer(SENT_CONSUMERS[key], version, stream_config=SENT_STREAMS[stream])
    reported = normalize_consumer(
        live, version, stream_config=RESPONSES[_line(version)]["streams"][stream]
    )
    assert desired == reported


@pytest.mark.parametrize("version", ALL)
def test_minimal_stream_gets_every_server_default(version: tuple[int, int, int]) -> None:
    assert normalize_stream({"name": "S"}, version) == {
        "name": "S",
        "subjects": ["S"],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "compression": "none",
        "num_replicas": 1,
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_msgs_per_subject": -1,
        "max_msg_size": -1,
        "duplicate_window": 120 * S,
    }


def test_limits_below_minus_one_become_unlimited_only_from_2_12() -> None:
    assert normalize_stream({"name": "S", "max_msgs": -5}, V2_11)["max_msgs"] == -5
    assert normalize_stream({"name": "S", "max_msgs": -5}, V2_12)["max_msgs"] == -1
    assert normalize_stream({"name": "S", "max_msgs": 0}, V2_10)["max_msgs"] == -1


def test_duplicate_window_defaults_to_max_age_when_shorter() -> None:
    assert normalize_stream({"name": "S", "max_age": 30 * S}, V2_12)["duplicate_window"] == 30 * S


def test_duplicate_window_respects_the_server_limit() -> None:
    got = normalize_stream({"name": "S"}, V2_12, server_limits={"duplicate_window": 60 * S})
    assert got["duplicate_window"] == 60 * S


def test_sourced_streams_lose_the_default_duplicate_window_from_2_14() -> None:
    sourced = {"name": "S", "sources": [{"name": "A"}]}
    assert normalize_stream(sourced, V2_12)["duplicate_window"] == 120 * S
    assert "duplicate_window" not in normalize_stream(sourced, V2_14)
    assert "subjects" not in normalize_stream(sourced, V2_14)


def test_mirrors_get_no_subjects_and_no_duplicate_window() -> None:
    got = normalize_stream({"name": "M", "mirror": {"name": "A"}}, V2_10)
    assert "subjects" not in got
    assert "duplicate_window" not in got


def test_subject_delete_marker_ttl_forces_ttl_and_rollups_on() -> None:
    got = normalize_stream(
        {"name": "S", "subject_delete_marker_ttl": 60 * S, "deny_purge": True}, V2_11
    )
    assert got["allow_msg_ttl"] is True
    assert got["allow_rollup_hdrs"] is True
    assert "deny_purge" not in got


def test_message_schedules_force_rollups_on() -> None:
    got = normalize_stream({"name": "S", "allow_msg_schedules": True}, V2_12)
    assert got["allow_rollup_hdrs"] is True


def test_republish_source_defaults_to_everything() -> None:
    got = normalize_stream({"name": "S", "republish": {"dest": "out.>"}}, V2_12)
    assert got["republish"] == {"dest": "out.>", "src": ">"}


def test_empty_placement_and_consumer_limits_are_absent() -> None:
    got = normalize_stream({"name": "S", "placement": {}, "consumer_limits": {}}, V2_12)
    assert "placement" not in got
    assert "consumer_limits" not in got


def test_false_and_absent_booleans_are_the_same() -> None:
    assert normalize_stream({"name": "S", "deny_delete": False, "allow_direct": False}, V2_12) == (
        normalize_stream({"name": "S"}, V2_12)
    )


def test_server_metadata_is_stripped_and_empty_metadata_is_absent() -> None:
    got = normalize_stream({"name": "S", "metadata": {"_nats.req.level": "0"}}, V2_12)
    assert "metadata" not in got
    got = normalize_consumer(
        {"durable_name": "c", "metadata": {"_nats.ver": "2.12.8", "a": "b"}}, V2_12
    )
    assert got["metadata"] == {"a": "b"}


def test_fields_the_version_does_not_know_are_dropped() -> None:
    config = {"name": "S", "allow_msg_ttl": True, "allow_batched": True, "template_owner": "T"}
    assert "allow_msg_ttl" not in normalize_stream(config, V2_10)
    assert normalize_stream(config, V2_11)["allow_msg_ttl"] is True
    assert "allow_batched" not in normalize_stream(config, V2_12)
    assert normalize_stream(config, V2_14)["allow_batched"] is True
    assert normalize_stream(config, V2_12)["template_owner"] == "T"
    assert "template_owner" not in normalize_stream(config, V2_14)


def test_unknown_fields_are_dropped() -> None:
    assert "direct" not in normalize_consumer({"durable_name": "c", "direct": True}, V2_15)


def test_nested_fields_the_version_does_not_know_are_dropped() -> None:
    config = {"name": "S", "placement": {"tags": ["a"], "preferred": "n1"}}
    assert normalize_stream(config, V2_10)["placement"] == {"tags": ["a"]}
    assert normalize_stream(config, V2_11)["placement"] == {"tags": ["a"], "preferred": "n1"}


def test_persist_mode_default_is_absent() -> None:
    assert "persist_mode" not in normalize_stream({"name": "S", "persist_mode": "default"}, V2_12)


def test_sealed_stream_gets_the_settings_the_server_forces() -> None:
    got = normalize_stream({"name": "S", "sealed": True, "max_age": 60 * S}, V2_12)
    assert got["discard"] == "new"
    assert got["deny_delete"] is True
    assert got["deny_purge"] is True
    assert "max_age" not in got


@pytest.mark.parametrize("version", ALL)
def test_minimal_durable_pull_consumer_gets_every_server_default(
    version: tuple[int, int, int],
) -> None:
    assert normalize_consumer({"durable_name": "c"}, version) == {
        "durable_name": "c",
        "name": "c",
        "ack_policy": "none",
        "deliver_policy": "all",
        "replay_policy": "instant",
        "max_deliver": -1,
        "max_waiting": 512,
    }


def test_explicit_ack_gets_ack_wait_and_max_ack_pending_defaults() -> None:
    got = normalize_consumer({"durable_name": "c", "ack_policy": "explicit"}, V2_12)
    assert got["ack_wait"] == 30 * S
    assert got["max_ack_pending"] == 1000


def test_backoff_overrides_ack_wait() -> None:
    got = normalize_consumer(
        {"durable_name": "c", "ack_policy": "explicit", "ack_wait": 60 * S, "backoff": [2 * S]},
        V2_12,
    )
    assert got["ack_wait"] == 2 * S


def test_push_consumers_get_no_max_waiting() -> None:
    got = normalize_consumer({"durable_name": "c", "deliver_subject": "x"}, V2_12)
    assert "max_waiting" not in got


def test_max_ack_pending_is_capped_by_the_server_limit() -> None:
    got = normalize_consumer(
        {"durable_name": "c", "ack_policy": "explicit"},
        V2_12,
        server_limits={"max_ack_pending": 100},
    )
    assert got["max_ack_pending"] == 100


def test_consumers_inherit_the_stream_consumer_limits() -> None:
    stream = {"consumer_limits": {"inactive_threshold": 3600 * S, "max_ack_pending": 50}}
    got = normalize_consumer(
        {"durable_name": "c", "ack_policy": "explicit"}, V2_12, stream_config=stream
    )
    assert got["max_ack_pending"] == 50
    assert got["inactive_threshold"] == 3600 * S


def test_ephemeral_consumers_get_five_seconds_inactivity() -> None:
    assert normalize_consumer({"name": "e"}, V2_12)["inactive_threshold"] == 5 * S


def test_max_batch_defaults_to_the_server_limit_for_pull_consumers() -> None:
    got = normalize_consumer({"durable_name": "c"}, V2_12, server_limits={"max_request_batch": 7})
    assert got["max_batch"] == 7


def test_pinned_client_gets_the_default_pinned_ttl() -> None:
    got = normalize_consumer(
        {"durable_name": "c", "priority_policy": "pinned_client", "priority_groups": ["g"]}, V2_11
    )
    assert got["priority_timeout"] == 120 * S


def test_flow_control_ack_policy_forces_flow_control_and_heartbeat() -> None:
    got = normalize_consumer(
        {"durable_name": "c", "ack_policy": "flow_control", "deliver_subject": "x"}, V2_14
    )
    assert got["flow_control"] is True
    assert got["idle_heartbeat"] == S


def test_max_deliver_below_minus_one_is_unlimited_from_2_12() -> None:
    assert normalize_consumer({"durable_name": "c", "max_deliver": -3}, V2_11)["max_deliver"] == -3
    assert normalize_consumer({"durable_name": "c", "max_deliver": -3}, V2_12)["max_deliver"] == -1


def test_pause_until_is_never_part_of_the_canonical_form() -> None:
    got = normalize_consumer({"durable_name": "c", "pause_until": "2030-01-01T00:00:00Z"}, V2_12)
    assert "pause_until" not in got


def test_times_compare_as_instants() -> None:
    a = normalize_consumer(
        {
            "durable_name": "c",
            "deliver_policy": "by_start_time",
            "opt_start_time": "2026-01-01T01:00:00+01:00",
        },
        V2_12,
    )
    b = normalize_consumer(
        {
            "durable_name": "c",
            "deliver_policy": "by_start_time",
            "opt_start_time": "2026-01-01T00:00:00Z",
        },
        V2_12,
    )
    assert a == b
    assert canonical_time("2026-05-22T00:00:00.123456789Z") == "2026-05-22T00:00:00.123456789Z"


def test_times_keep_the_servers_nanosecond_precision() -> None:
    assert canonical_time("2025-06-01T13:58:30.123456789+02:00") == "2025-06-01T11:58:30.123456789Z"
    assert canonical_time("2025-06-01T11:58:30.120000000Z") == "2025-06-01T11:58:30.12Z"
    assert canonical_time("2025-06-01T11:58:30.000Z") == "2025-06-01T11:58:30Z"
    assert canonical_time("2025-06-01T11:58:30.1234567891Z") == "2025-06-01T11:58:30.1234567891Z"


def test_fingerprint_is_stable_and_order_independent() -> None:
    a = {"name": "S", "max_msgs": 1, "subjects": ["a"]}
    b = {"subjects": ["a"], "max_msgs": 1, "name": "S"}
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint({**a, "max_msgs": 2})
    assert fingerprint(a).startswith("sha256:")


def test_wire_config_spells_out_every_field_the_version_knows() -> None:
    normalized = normalize_stream({"name": "S", "metadata": MARK}, V2_10)
    wire = wire_config(normalized, V2_10)
    assert wire["deny_delete"] is False
    assert wire["metadata"] == MARK
    assert "allow_msg_ttl" not in wire
    wire_14 = wire_config(normalize_stream({"name": "S"}, V2_14), V2_14)
    assert wire_14["allow_msg_ttl"] is False
    assert wire_14["allow_batched"] is False
    assert "template_owner" not in wire_14


def test_wire_config_never_sends_server_metadata() -> None:
    wire = wire_config({"name": "S", "metadata": {"_nats.ver": "2.12.8", "a": "b"}}, V2_12)
    assert wire["metadata"] == {"a": "b"}


def test_wire_config_of_a_consumer_is_a_consumer_config() -> None:
    wire = wire_config(normalize_consumer({"durable_name": "c"}, V2_12), V2_12)
    assert wire["durable_name"] == "c"
    assert wire["flow_control"] is False
    assert "deny_delete" not in wire
    assert "pause_until" not in wire


@pytest.mark.parametrize("version", ALL)
def test_wire_config_normalises_back_to_itself(version: tuple[int, int, int]) -> None:
    for config in SENT_STREAMS.values():
        normalized = normalize_stream(config, version)
        assert normalize_stream(wire_config(normalized, version), version) == normalized
