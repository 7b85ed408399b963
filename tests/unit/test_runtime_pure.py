"""The runtime's pure parts: envelope, retry decisions, group policy, DLQ records, metrics,
health classification and settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jelmore_infra.errors import JelmoreError, JetStreamAPIError
from jelmore_infra.runtime.bus import BusError, BusTimeout, BusUnavailable
from jelmore_infra.runtime.dlq import (
    REQUIRED_FIELDS,
    build_dead_letter,
    dlq_message_id,
    replay_from_dead_letter,
)
from jelmore_infra.runtime.envelope import (
    EventError,
    build_event,
    decode_event,
    format_timestamp,
    parse_timestamp,
    user_headers,
    wire_size,
)
from jelmore_infra.runtime.health import classify
from jelmore_infra.runtime.metrics import Metrics, percentile, summarise
from jelmore_infra.runtime.publish import (
    AttemptKind,
    Outcome,
    attempt_kind,
    retry_limits,
    unacknowledged_outcome,
)
from jelmore_infra.runtime.retry import (
    Action,
    PermanentError,
    decide,
    failure_reason,
    parse_delays,
    policy_from_consumer_info,
    retry_delay,
)
from jelmore_infra.runtime.settings import SettingsError, from_env

NOW = datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


# -- envelope --------------------------------------------------------------------------------------


def test_the_envelope_has_the_seed_fields_subject_and_headers() -> None:
    event = build_event(
        "jelmore.session.created",
        "session.created",
        "sid",
        {"provider": "claude"},
        now=NOW,
        message_id="m1",
        headers={"Priority": "high"},
    )
    assert event.subject == "jelmore.session.created"
    assert json.loads(event.data) == {
        "event_type": "session.created",
        "session_id": "sid",
        "timestamp": "2024-01-01T12:00:00.123Z",
        "message_id": "m1",
        "retry_count": 0,
        "payload": {"provider": "claude"},
    }
    assert event.headers == {
        "Priority": "high",
        "Nats-Msg-Id": "m1",
        "Event-Type": "session.created",
        "Session-Id": "sid",
    }


def test_custom_headers_cannot_override_the_message_id() -> None:
    event = build_event(
        "jelmore.session.output",
        "session.output",
        "s",
        {},
        now=NOW,
        message_id="m",
        headers={"Nats-Msg-Id": "x"},
    )
    assert event.headers["Nats-Msg-Id"] == "m"


def test_the_schema_version_an_event_was_validated_against_is_a_header() -> None:
    event = build_event(
        "jelmore.session.created", "session.created", "s", {}, now=NOW, schema_version=3
    )
    assert event.headers["Jelmore-Schema-Version"] == "3"
    assert (
        "Jelmore-Schema-Version"
        not in build_event("jelmore.session.created", "session.created", "s", {}, now=NOW).headers
    )


@pytest.mark.parametrize(
    ("event_type", "payload", "headers", "message"),
    [
        ("session.output", {"x": {1, 2}}, None, "not JSON-serialisable"),
        ("session.output", float("inf"), None, "not JSON-serialisable"),
        ("session.output", {}, {"Bad Name": "v"}, "invalid header name"),
        ("session.output", {}, {"X": "a\r\nb"}, "must not contain line breaks"),
        ("session.output", {}, {"X": None}, "must be a string"),
    ],
)
def test_invalid_events_are_refused_with_a_clear_error(
    event_type: str, payload: object, headers: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(EventError) as info:
        build_event(f"jelmore.{event_type}", event_type, "s", payload, now=NOW, headers=headers)
    assert message in str(info.value)
    assert isinstance(info.value, JelmoreError)


@pytest.mark.parametrize(
    ("session_id", "payload", "where"),
    [
        ("s", {"note": "\ud800"}, "payload.note (character 0: '\\ud800')"),
        ("s", {"items": ["ok", {"a b": "x\udcff"}]}, "payload.items[1]['a b'] (character 1"),
        ("s", {"k\ud800": 1}, "a key of payload ('k\\ud800')"),
        ("s", "\ud800", "payload (character 0"),
        ("s\ud800", {}, "session_id (character 1"),
    ],
)
def test_strings_utf8_cannot_encode_are_refused_naming_where_they_are(
    session_id: str, payload: object, where: str
) -> None:
    with pytest.raises(EventError) as info:
        build_event("jelmore.session.output", "session.output", session_id, payload, now=NOW)
    message = str(info.value)
    assert message.startswith("session.output event cannot be encoded as UTF-8: lone surrogate")
    assert where in message


def test_a_header_value_utf8_cannot_encode_is_refused() -> None:
    with pytest.raises(EventError, match="header Note cannot be encoded as UTF-8"):
        build_event(
            "jelmore.session.output", "session.output", "s", {}, now=NOW, headers={"Note": "\ud800"}
        )


def test_the_wire_size_counts_the_body_and_every_header_line() -> None:
    event = build_event(
        "jelmore.session.output",
        "session.output",
        "sid",
        {"n": "é"},
        now=NOW,
        message_id="m1",
        headers={},
    )
    lines = b"".join(f"{k}: {v}\r\n".encode() for k, v in event.headers.items())
    assert wire_size(event) == len(event.data) + len(b"NATS/1.0\r\n") + len(lines) + 2
    assert len(event.data) == len(event.data.decode("utf-8")) + 1  # "é" is two bytes


def test_an_empty_session_id_is_refused() -> None:
    with pytest.raises(EventError, match="session_id"):
        build_event("jelmore.session.output", "session.output", "", {}, now=NOW)


def test_timestamps_round_trip_with_milliseconds_and_nanosecond_server_times() -> None:
    assert format_timestamp(datetime(2024, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))) == (
        "2024-01-01T12:00:00.000Z"
    )
    assert parse_timestamp("2026-11-27T01:03:06.153040101Z") == datetime(
        2026, 11, 27, 1, 3, 6, 153040, tzinfo=UTC
    )
    assert parse_timestamp("2024-01-01T12:00:00Z") == datetime(2024, 1, 1, 12, tzinfo=UTC)


def test_decoding_refuses_bodies_that_are_not_json_objects() -> None:
    assert decode_event(b'{"a": 1}') == {"a": 1}
    with pytest.raises(EventError, match="not a JSON event"):
        decode_event(b"\xff\xfe")
    with pytest.raises(EventError, match="not a JSON object but list"):
        decode_event(b"[1]")


def test_nats_control_headers_are_never_copied() -> None:
    assert user_headers({"Nats-Msg-Id": "1", "nats-ttl": "5", "Priority": "high"}) == {
        "Priority": "high"
    }


# -- retries -------------------------------------------------------------------------------------


DELAYS = (2.0, 4.0, 8.0)


@pytest.mark.parametrize(
    ("num_delivered", "expected"),
    [(1, (Action.RETRY, 2.0)), (2, (Action.RETRY, 4.0)), (3, (Action.DEAD_LETTER, 0.0))],
)
def test_a_failure_is_retried_at_the_scheduled_delay_until_the_last_attempt(
    num_delivered: int, expected: tuple[Action, float]
) -> None:
    decision = decide(num_delivered, 3, DELAYS, RuntimeError("boom"))
    assert (decision.action, decision.delay) == expected
    assert decision.reason == "RuntimeError: boom"


def test_success_is_acknowledged_and_permanent_errors_skip_the_retries() -> None:
    assert decide(1, 3, DELAYS, None).action is Action.ACK
    assert decide(1, 3, DELAYS, PermanentError("bad")).action is Action.DEAD_LETTER


def test_unlimited_deliveries_retry_forever_with_the_last_delay_repeating() -> None:
    assert decide(10, -1, DELAYS, ValueError()).delay == 8.0
    assert retry_delay(5, DELAYS) == 8.0
    assert retry_delay(1, ()) == 0.0


def test_retry_delays_are_read_from_the_metadata_value() -> None:
    assert parse_delays("2s,4s,8s") == (2.0, 4.0, 8.0)
    assert parse_delays(" 200ms, 1m ") == (0.2, 60.0)


def test_failure_reasons_are_one_bounded_line() -> None:
    assert failure_reason(ValueError("a\nb")) == "ValueError: a b"
    assert failure_reason(KeyError()) == "KeyError"
    assert len(failure_reason(RuntimeError("x" * 5000))) == 1000


def test_a_group_policy_comes_from_consumer_info_metadata() -> None:
    info = {
        "stream_name": "JELMORE",
        "name": "file_watchers",
        "config": {
            "durable_name": "file_watchers",
            "ack_wait": 30_000_000_000,
            "max_deliver": 3,
            "filter_subjects": ["a", "b"],
            "metadata": {
                "jelmore.managed-by": "jelmore-infra",
                "jelmore.retry-delays": "2s,4s,8s",
                "jelmore.dead-letter-stream": "JELMORE_DLQ",
                "jelmore.dead-letter-subject": "jelmore.dlq.file_watchers",
            },
        },
    }
    policy = policy_from_consumer_info(info)
    assert policy.retry_delays == DELAYS
    assert policy.max_deliver == 3
    assert policy.ack_wait == 30.0
    assert policy.filter_subjects == ("a", "b")
    assert policy.dead_letter_stream == "JELMORE_DLQ"
    assert policy.dead_letter_subject_for("jelmore.session.file_modified") == (
        "jelmore.dlq.file_watchers.jelmore.session.file_modified"
    )
    assert policy.managed


def test_a_consumer_without_jelmore_metadata_has_no_dead_letter_target() -> None:
    policy = policy_from_consumer_info(
        {"stream_name": "S", "name": "c", "config": {"filter_subject": "x"}}
    )
    assert policy.dead_letter_subject_for("x") is None
    assert policy.filter_subjects == ("x",)
    assert not policy.managed


# -- dead letters ----------------------------------------------------------------------------------


def test_a_dead_letter_record_carries_every_field_and_an_idempotent_id() -> None:
    original = build_event(
        "jelmore.session.created",
        "session.created",
        "sid",
        {"k": 1},
        now=NOW,
        message_id="m1",
        headers={"Priority": "high"},
    )
    record = build_dead_letter(
        dlq_subject="jelmore.dlq.session_handlers.jelmore.session.created",
        original_subject=original.subject,
        original_data=original.data,
        original_headers=original.headers,
        stream="JELMORE",
        consumer="session_handlers",
        stream_seq=42,
        num_delivered=3,
        failure_reason="Connection timeout",
        now=NOW,
    )
    body = json.loads(record.data)
    assert set(REQUIRED_FIELDS) <= set(body)
    assert body["event_type"] == "session.created"
    assert body["session_id"] == "sid"
    assert body["original_subject"] == "jelmore.session.created"
    assert body["failure_reason"] == "Connection timeout"
    assert body["retry_count"] == 3
    assert body["payload"] == {"k": 1}
    assert body["message_id"] == "m1"
    assert body["stream_seq"] == 42
    assert body["dlq_timestamp"] == "2024-01-01T12:00:00.123Z"
    assert record.message_id == dlq_message_id("JELMORE", "session_handlers", 42)
    assert record.headers["Nats-Msg-Id"] == "dlq-JELMORE-session_handlers-42"
    assert record.headers["Priority"] == "high"
    assert record.headers["Jelmore-Failure-Reason"] == "Connection timeout"


def test_a_raw_body_becomes_the_payload_of_its_dead_letter() -> None:
    record = build_dead_letter(
        dlq_subject="d.x",
        original_subject="x",
        original_data=b"\xffraw",
        original_headers=None,
        stream="S",
        consumer="c",
        stream_seq=1,
        num_delivered=1,
        failure_reason="r",
        now=NOW,
    )
    assert json.loads(record.data)["payload"] == "\ufffdraw"


def test_replaying_a_dead_letter_targets_its_group_with_the_original_envelope() -> None:
    record = {
        "event_type": "session.failed",
        "session_id": "s",
        "original_subject": "jelmore.session.failed",
        "retry_count": 3,
        "payload": {"p": 1},
        "message_id": "m1",
        "consumer_group": "system_monitors",
        "original_timestamp": "2024-01-01T11:00:00.000Z",
    }
    event = replay_from_dead_letter(record, dlq_stream="JELMORE_DLQ", dlq_seq=7, now=NOW)
    assert event.subject == "jelmore.session.failed"
    assert event.headers["Nats-Msg-Id"] == "dlq-replay-JELMORE_DLQ-7"
    assert event.headers["Jelmore-Target-Group"] == "system_monitors"
    assert json.loads(event.data) == {
        "event_type": "session.failed",
        "session_id": "s",
        "timestamp": "2024-01-01T11:00:00.000Z",
        "message_id": "m1",
        "retry_count": 3,
        "payload": {"p": 1},
    }
    with pytest.raises(ValueError, match="no original_subject"):
        replay_from_dead_letter({}, dlq_stream="D", dlq_seq=1, now=NOW)


# -- metrics -------------------------------------------------------------------------------------


def test_percentiles_use_the_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([3.0], 1) == 3.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], 101)


def test_latency_summaries_are_in_milliseconds() -> None:
    assert summarise([0.001, 0.002, 0.010]) == {
        "count": 3,
        "p50_ms": 2.0,
        "p90_ms": 10.0,
        "p99_ms": 10.0,
        "max_ms": 10.0,
    }
    assert summarise([])["p50_ms"] is None


def test_metrics_count_redeliveries_and_rates() -> None:
    m = Metrics(started=100.0)
    m.record_publish(0.001)
    m.record_publish(0.003, duplicate=True)
    m.record_consumed("session.created", 1)
    m.record_consumed("session.created", 2)
    m.record_handled(0.01, ok=True)
    m.record_handled(0.02, ok=False)
    snap = m.snapshot(now=102.0)
    assert snap["publish"]["count"] == 2
    assert snap["publish"]["duplicates"] == 1
    assert snap["publish"]["rate_per_second"] == 1.0
    assert snap["consume"]["redeliveries"] == 1
    assert snap["consume"]["handler_errors"] == 1
    assert snap["consume"]["by_event_type"] == {"session.created": 2}


# -- health --------------------------------------------------------------------------------------


def _classify(**overrides: object) -> tuple[str, list[str]]:
    args: dict[str, object] = {
        "main": "JELMORE",
        "groups_found": {"g": {"pending": 0}},
        "expected": ["g"],
        "dlq_names": ["JELMORE_DLQ"],
        "dlq_present": {"JELMORE_DLQ": 0},
        "advisory": "JELMORE_ADVISORIES",
        "router_present": True,
    }
    args.update(overrides)
    return classify(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({}, "ok", None),
        ({"groups_found": {"g": {"pending": 100}}}, "ok", None),
        ({"groups_found": {"g": {"pending": 101}}}, "degraded", "g: lag 101 > 100"),
        ({"groups_found": {"g": {"pending": 1001}}}, "critical", "g: lag 1001 > 1000"),
        (
            {"dlq_present": {"JELMORE_DLQ": 11}},
            "degraded",
            "JELMORE_DLQ: 11 dead-lettered events > 10",
        ),
        ({"dlq_present": {"JELMORE_DLQ": 10}}, "ok", None),
        ({"groups_found": {}}, "critical", "consumer group g missing on stream JELMORE"),
        ({"main": None}, "critical", "event stream missing: run `jelmore-infra apply`"),
        ({"dlq_present": {}}, "critical", "dead-letter stream JELMORE_DLQ missing"),
        (
            {"router_present": False},
            "degraded",
            "consumer dlq_router missing on stream JELMORE_ADVISORIES",
        ),
    ],
)
def test_health_status_follows_the_seed_thresholds(
    overrides: dict[str, object], status: str, reason: str | None
) -> None:
    got_status, reasons = _classify(**overrides)
    assert got_status == status
    assert reasons == ([reason] if reason else [])


# -- settings ------------------------------------------------------------------------------------


def test_settings_come_from_arguments_then_environment_then_defaults() -> None:
    env = {"NATS_URL": "nats://env:4222", "NATS_SUBJECT_PREFIX": "acme", "NATS_CLIENT_ID": "api"}
    from_environment = from_env(env)
    assert (from_environment.url, from_environment.prefix, from_environment.client_id) == (
        "nats://env:4222",
        "acme",
        "api",
    )
    explicit = from_env(env, url="nats://x:1", prefix="p", client_id="c")
    assert (explicit.url, explicit.prefix, explicit.client_id) == ("nats://x:1", "p", "c")
    defaults = from_env({})
    assert (defaults.url, defaults.prefix) == ("nats://127.0.0.1:4222", "jelmore")
    assert defaults.main_subjects() == "jelmore.session.>"


def test_a_prefix_that_is_not_a_subject_is_refused() -> None:
    with pytest.raises(SettingsError, match="not a valid subject"):
        from_env({}, prefix="a b")
    with pytest.raises(SettingsError, match="not a valid subject"):
        from_env({}, prefix="a.>")


def test_safe_urls_never_show_credentials() -> None:
    settings = from_env({}, url="nats://user:secret@host:4222")
    assert "secret" not in settings.safe_url()


# -- publishing: what an unacknowledged attempt means, how long to retry ---------------------------


@pytest.mark.parametrize(
    ("exc", "sent", "kind"),
    [
        (BusTimeout("no acknowledgement"), True, AttemptKind.UNKNOWN),
        (BusError("publish to x: connection closed"), True, AttemptKind.UNKNOWN),
        (BusUnavailable("no stream answered"), True, AttemptKind.NOT_STORED),
        (
            JetStreamAPIError("x", 503, 10039, "JetStream not available"),
            True,
            AttemptKind.NOT_STORED,
        ),
        (
            JetStreamAPIError("x", 400, 10060, "expected stream does not match"),
            True,
            AttemptKind.REFUSED,
        ),
        (
            BusError("publish to x failed: OutboundBufferLimitError()"),
            False,
            AttemptKind.NOT_STORED,
        ),
    ],
)
def test_an_unacknowledged_attempt_is_refused_not_stored_or_of_unknown_outcome(
    exc: Exception, sent: bool, kind: AttemptKind
) -> None:
    assert attempt_kind(exc, sent=sent) is kind


def test_retries_after_an_unknown_outcome_end_at_half_the_duplicate_window() -> None:
    # (give up at, safe until) for an event first sent at t=100
    assert retry_limits(100.0, 60.0, None) == (130.0, 130.0)
    assert retry_limits(100.0, 60.0, 5.0) == (105.0, 130.0)  # retry_for only shortens patience
    assert retry_limits(100.0, 60.0, 50.0) == (150.0, 130.0)  # but never widens the safe part
    assert retry_limits(100.0, None, None) == (130.0, None)  # unknown window: no unsafe retry
    assert retry_limits(100.0, None, 3.0) == (103.0, None)


def test_an_event_whose_fate_is_unknown_is_not_confirmed_never_failed() -> None:
    outcome, reason = unacknowledged_outcome(
        4, 31.04, "no acknowledgement for jelmore.session.output", unknown=True, refused=False
    )
    assert outcome is Outcome.NOT_CONFIRMED and str(outcome) == "not confirmed"
    assert reason.startswith("not confirmed after 4 attempts in 31.0s")
    assert "same message id" in reason and "failed" not in reason
    outcome, reason = unacknowledged_outcome(
        1, 0.01, "expected stream does not match", unknown=True, refused=True
    )
    assert outcome is Outcome.FAILED and reason.startswith("failed (not stored) after 1 attempt:")
    outcome, _ = unacknowledged_outcome(3, 2.0, "no stream answered", unknown=False, refused=False)
    assert outcome is Outcome.FAILED
