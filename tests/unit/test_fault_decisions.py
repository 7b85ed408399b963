"""Decisions through faults, without a server: how long a publish is retried and when (across a
leader election), how a stream's replicas read in the health status, and which management
requests may be sent again when left unanswered."""

from __future__ import annotations

from typing import Any

import pytest

from jelmore_infra.live.jsapi import is_read
from jelmore_infra.runtime.health import (
    CRITICAL,
    DEGRADED,
    OK,
    classify,
    replica_reasons,
    replica_state,
)
from jelmore_infra.runtime.publish import DEFAULT_RETRY_FOR, Next, next_step, retry_limits

# -- how long and when a publish is retried ------------------------------------------------------


def test_an_election_is_covered_by_a_retry_deadline_of_at_least_thirty_seconds() -> None:
    assert DEFAULT_RETRY_FOR >= 30.0


@pytest.mark.parametrize("window", [None, 4.0, 10.0, 60.0, 3600.0])
def test_attempts_certainly_not_stored_are_retried_until_the_deadline_whatever_the_window(
    window: float | None,
) -> None:
    give_up_at, _ = retry_limits(100.0, window, None)
    assert give_up_at == 100.0 + DEFAULT_RETRY_FOR
    assert retry_limits(100.0, window, 45.0)[0] == 145.0  # the caller's deadline wins


def test_after_an_unknown_outcome_only_half_the_duplicate_window_is_safe() -> None:
    assert retry_limits(100.0, 10.0, None)[1] == 105.0
    assert retry_limits(100.0, None, None)[1] is None  # not known: no unsafe attempt yet


def _step(**overrides: Any) -> Next:
    args: dict[str, Any] = {
        "now": 10.0,
        "resume": 10.0,
        "timeout": 2.0,
        "give_up_at": 130.0,
        "safe_until": 130.0,
        "unknown": False,
        "connected": True,
    }
    args.update(overrides)
    return next_step(**args)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, Next.SEND),
        ({"resume": 10.5}, Next.WAIT),  # back-off not over
        ({"connected": False}, Next.WAIT),  # never into nats-py's reconnect buffer
        ({"now": 128.5}, Next.GIVE_UP),  # its ack would be due after the deadline
        ({"resume": 128.5}, Next.GIVE_UP),
        # certainly not stored so far: the window does not matter
        ({"safe_until": None}, Next.SEND),
        ({"safe_until": 11.0}, Next.SEND),
        # after an attempt whose outcome is unknown
        ({"unknown": True}, Next.SEND),
        ({"unknown": True, "safe_until": 11.0}, Next.GIVE_UP),  # past half the window
        ({"unknown": True, "safe_until": None}, Next.WAIT),  # read the window first
        ({"unknown": True, "safe_until": None, "now": 128.5}, Next.GIVE_UP),
    ],
)
def test_the_next_attempt_waits_is_sent_or_is_given_up_by_the_deadlines(
    overrides: dict[str, Any], expected: Next
) -> None:
    assert _step(**overrides) is expected


# -- replicas in the health status ----------------------------------------------------------------


def _info(cluster: dict[str, Any], replicas: int = 3) -> dict[str, Any]:
    return {"config": {"name": "JELMORE", "num_replicas": replicas}, "cluster": cluster}


def _peer(name: str, *, current: bool, active: float, **more: Any) -> dict[str, Any]:
    return {"name": name, "current": current, "active": int(active * 1e9), **more}


def test_a_healthy_r3_stream_has_a_leader_and_two_current_peers() -> None:
    state = replica_state(
        _info(
            {
                "name": "c",
                "leader": "n1",
                "replicas": [
                    _peer("n0", current=True, active=0.2),
                    _peer("n2", current=True, active=0.3),
                ],
            }
        )
    )
    assert state["replicas"] == 3 and state["leader"] == "n1"
    assert [(p["name"], p["state"]) for p in state["peers"]] == [
        ("n0", "current"),
        ("n2", "current"),
    ]
    assert replica_reasons({"JELMORE": state}) == []


def test_a_single_server_stream_has_its_server_as_leader_and_no_peers() -> None:
    state = replica_state(_info({"leader": "solo"}, replicas=1))
    assert state == {"replicas": 1, "leader": "solo", "peers": []}


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        # killed a moment ago: the server still calls it current for a while, but silent
        (_peer("n2", current=True, active=6.5), "offline"),
        (_peer("n2", current=False, active=0.0), "offline"),  # not heard from since the election
        (_peer("n2", current=False, active=12.0), "offline"),
        (_peer("n2", current=False, active=0.1, offline=True), "offline"),
        (_peer("n2", current=False, active=0.2, lag=42), "lagging"),  # restarted, catching up
        (_peer("n2", current=True, active=0.1), "current"),
    ],
)
def test_a_peer_is_current_lagging_or_offline(peer: dict[str, Any], expected: str) -> None:
    state = replica_state(_info({"leader": "n1", "replicas": [peer]}))
    assert state["peers"][0]["state"] == expected


def test_no_leader_is_critical_and_an_offline_or_lagging_peer_degraded() -> None:
    no_answer = replica_state(None)
    assert no_answer == {"replicas": None, "leader": None, "peers": []}
    electing = replica_state(_info({"replicas": [_peer("n0", current=False, active=0.0)]}))
    offline = replica_state(
        _info({"leader": "n1", "replicas": [_peer("n2", current=False, active=0)]})
    )
    lagging = replica_state(
        _info({"leader": "n1", "replicas": [_peer("n2", current=False, active=0.1, lag=7)]})
    )
    assert replica_reasons({"JELMORE": no_answer}) == [
        (CRITICAL, "JELMORE: no leader (no answer): an election under way or quorum lost")
    ]
    assert replica_reasons({"JELMORE": electing}) == [
        (CRITICAL, "JELMORE: no leader (R3): an election under way or quorum lost")
    ]
    assert replica_reasons({"JELMORE": offline}) == [(DEGRADED, "JELMORE: replica n2 offline")]
    assert replica_reasons({"JELMORE": lagging}) == [
        (DEGRADED, "JELMORE: replica n2 lagging, 7 behind")
    ]
    base: dict[str, Any] = {
        "main": "JELMORE",
        "groups_found": {"g": {"pending": 0}},
        "expected": ["g"],
        "dlq_names": ["JELMORE_DLQ"],
        "dlq_present": {"JELMORE_DLQ": 0},
        "advisory": "JELMORE_ADVISORIES",
        "router_present": True,
    }
    assert classify(**base, replicas={"JELMORE": offline})[0] == DEGRADED
    assert classify(**base, replicas={"JELMORE": electing})[0] == CRITICAL
    healthy = replica_state(_info({"leader": "n1", "replicas": []}))
    assert classify(**base, replicas={"JELMORE": healthy}) == (OK, [])
    # a dead-letter stream that does not answer is said to have no leader, not to be missing
    status, reasons = classify(**{**base, "dlq_present": {}}, replicas={"JELMORE_DLQ": no_answer})
    assert status == CRITICAL
    assert reasons == ["JELMORE_DLQ: no leader (no answer): an election under way or quorum lost"]


# -- management requests sent again ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "read"),
    [
        ("INFO", True),
        ("STREAM.INFO.JELMORE", True),
        ("STREAM.LIST", True),
        ("STREAM.NAMES", True),
        ("STREAM.MSG.GET.JELMORE", True),
        ("CONSUMER.INFO.JELMORE.g", True),
        ("CONSUMER.LIST.JELMORE", True),
        ("CONSUMER.NAMES.JELMORE", True),
        ("STREAM.CREATE.JELMORE", False),
        ("STREAM.UPDATE.JELMORE", False),
        ("STREAM.DELETE.JELMORE", False),
        ("STREAM.PURGE.JELMORE", False),
        ("STREAM.MSG.DELETE.JELMORE", False),
        ("CONSUMER.CREATE.JELMORE.g", False),
        ("CONSUMER.DELETE.JELMORE.g", False),
    ],
)
def test_only_reads_are_sent_again_when_left_unanswered(api: str, read: bool) -> None:
    assert is_read(api) is read
