"""The plan builder's contract beyond the golden cases: what ``before``/``after`` hold, fingerprints,
determinism, purity, and the derived values that must not cause perpetual diffs."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from jelmore_infra.diff import build_plan
from jelmore_infra.model import (
    LOCK_STREAM,
    ConsumerSpec,
    LiveConsumer,
    LiveState,
    LiveStream,
    ServerIdentity,
    StreamSpec,
    Topology,
    parse_version,
)
from jelmore_infra.normalize import fingerprint, normalize_consumer, normalize_stream, wire_config
from jelmore_infra.plan import Action
from tests.support.natsserver import SUPPORTED_VERSIONS

S = 1_000_000_000
NOW = datetime(2026, 6, 1, tzinfo=UTC)
MARK = {"jelmore.managed-by": "jelmore-infra"}
V = (2, 12, 8)

#: ``$JS.API.STREAM.INFO`` config of a minimal managed stream on nats-server 2.12.8.
LIVE_ORDERS: dict[str, Any] = {
    "allow_direct": False,
    "allow_msg_ttl": False,
    "allow_rollup_hdrs": False,
    "compression": "none",
    "consumer_limits": {},
    "deny_delete": False,
    "deny_purge": False,
    "discard": "old",
    "duplicate_window": 120 * S,
    "max_age": 0,
    "max_bytes": -1,
    "max_consumers": -1,
    "max_msg_size": -1,
    "max_msgs": -1,
    "max_msgs_per_subject": -1,
    "metadata": {"_nats.level": "3", "_nats.req.level": "0", "_nats.ver": "2.12.8", **MARK},
    "mirror_direct": False,
    "name": "ORDERS",
    "num_replicas": 1,
    "retention": "limits",
    "sealed": False,
    "storage": "file",
    "subjects": ["orders.>"],
}
#: ``$JS.API.CONSUMER.INFO`` config of a durable pull consumer with explicit ack on 2.12.8.
LIVE_WORKER: dict[str, Any] = {
    "ack_policy": "explicit",
    "ack_wait": 30 * S,
    "deliver_policy": "all",
    "durable_name": "worker",
    "max_ack_pending": 1000,
    "max_deliver": -1,
    "max_waiting": 512,
    "metadata": {"_nats.level": "3", "_nats.req.level": "0", "_nats.ver": "2.12.8", **MARK},
    "name": "worker",
    "num_replicas": 0,
    "replay_policy": "instant",
}


def server(version: str = "2.12.8") -> ServerIdentity:
    return ServerIdentity(server_name="n1", server_id="NID", version=version, api_level=3)


def topology(
    stream: dict[str, Any] | None = None, worker: dict[str, Any] | None = None
) -> Topology:
    streams = {}
    consumers = {}
    if stream is not None:
        streams["ORDERS"] = StreamSpec("ORDERS", {"name": "ORDERS", "metadata": MARK, **stream})
    if worker is not None:
        consumers[("ORDERS", "worker")] = ConsumerSpec(
            "ORDERS", "worker", {"durable_name": "worker", "metadata": MARK, **worker}
        )
    return Topology(streams, consumers)


def live(stream: dict[str, Any] | None = None, worker: dict[str, Any] | None = None) -> LiveState:
    streams = {"ORDERS": LiveStream("ORDERS", stream)} if stream is not None else {}
    consumers = (
        {("ORDERS", "worker"): LiveConsumer("ORDERS", "worker", worker)}
        if worker is not None
        else {}
    )
    return LiveState(server=server(), streams=streams, consumers=consumers)


def test_a_config_the_server_produced_from_the_desired_one_is_a_noop() -> None:
    plan = build_plan(
        topology({"subjects": ["orders.>"]}, {"ack_policy": "explicit"}),
        live(LIVE_ORDERS, LIVE_WORKER),
        now=NOW,
    )
    assert plan.changes == ()
    assert plan.messages == ()
    assert set(plan.fingerprints) == {"stream.ORDERS", "consumer.ORDERS.worker"}


def test_a_field_changed_out_of_band_is_detected() -> None:
    drifted = {**LIVE_ORDERS, "max_msgs": 10}
    plan = build_plan(topology({"subjects": ["orders.>"]}), live(drifted), now=NOW)
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert [(f.path, f.before, f.after) for f in change.fields] == [("max_msgs", 10, -1)]


def test_a_start_time_edit_below_a_microsecond_is_planned_and_sent_in_full() -> None:
    at = {"deliver_policy": "by_start_time", "opt_start_time": "2025-06-01T11:58:30.123456789Z"}
    live_worker = {**LIVE_WORKER, **at, "opt_start_time": "2025-06-01T11:58:30.123456Z"}
    plan = build_plan(
        topology({"subjects": ["orders.>"]}, {"ack_policy": "explicit", **at}),
        live(LIVE_ORDERS, live_worker),
        now=NOW,
    )
    (change,) = plan.changes
    assert [(f.path, f.before, f.after) for f in change.fields] == [
        ("opt_start_time", "2025-06-01T11:58:30.123456Z", "2025-06-01T11:58:30.123456789Z")
    ]
    assert change.after is not None
    assert change.after["opt_start_time"] == "2025-06-01T11:58:30.123456789Z"


def test_update_sends_the_full_config_and_shows_the_normalised_live_one() -> None:
    plan = build_plan(
        topology({"subjects": ["orders.>"], "description": "d"}), live(LIVE_ORDERS), now=NOW
    )
    (change,) = plan.changes
    desired = normalize_stream(
        {"name": "ORDERS", "metadata": MARK, "subjects": ["orders.>"], "description": "d"}, V
    )
    assert change.after == wire_config(desired, V)
    assert change.after is not None
    assert change.after["max_msgs"] == -1
    assert change.after["deny_delete"] is False
    assert change.before == normalize_stream(LIVE_ORDERS, V)
    assert "_nats.ver" not in (change.before or {}).get("metadata", {})
    assert change.fingerprint == fingerprint(normalize_stream(LIVE_ORDERS, V))
    assert plan.fingerprints["stream.ORDERS"] == change.fingerprint


def test_the_live_fingerprint_changes_when_the_live_config_changes() -> None:
    a = build_plan(topology({"subjects": ["orders.>"]}), live(LIVE_ORDERS), now=NOW)
    b = build_plan(
        topology({"subjects": ["orders.>"]}), live({**LIVE_ORDERS, "max_msgs": 5}), now=NOW
    )
    assert a.fingerprints["stream.ORDERS"] != b.fingerprints["stream.ORDERS"]


def test_server_metadata_changes_do_not_change_the_fingerprint() -> None:
    other = {**LIVE_ORDERS, "metadata": {**LIVE_ORDERS["metadata"], "_nats.ver": "2.12.9"}}
    a = build_plan(topology({"subjects": ["orders.>"]}), live(LIVE_ORDERS), now=NOW)
    b = build_plan(topology({"subjects": ["orders.>"]}), live(other), now=NOW)
    assert a.fingerprints == b.fingerprints


def test_subject_order_is_kept_from_the_desired_side() -> None:
    plan = build_plan(
        topology({"subjects": ["orders.b", "orders.a"], "description": "x"}),
        live({**LIVE_ORDERS, "subjects": ["orders.a", "orders.b"]}),
        now=NOW,
    )
    (change,) = plan.changes
    assert [f.path for f in change.fields] == ["description"]
    assert change.after is not None
    assert change.after["subjects"] == ["orders.b", "orders.a"]


def test_build_plan_does_not_modify_its_inputs() -> None:
    desired = topology({"subjects": ["orders.>"], "storage": "memory"}, {"ack_policy": "explicit"})
    state = live(copy.deepcopy(LIVE_ORDERS), copy.deepcopy(LIVE_WORKER))
    before_desired = copy.deepcopy(desired.streams["ORDERS"].config)
    build_plan(desired, state, now=NOW)
    assert desired.streams["ORDERS"].config == before_desired
    assert state.streams["ORDERS"].config == LIVE_ORDERS
    assert state.consumers[("ORDERS", "worker")].config == LIVE_WORKER


def test_the_plan_is_deterministic() -> None:
    desired = topology({"subjects": ["orders.>"], "storage": "memory"}, {"ack_policy": "all"})
    state = live(LIVE_ORDERS, LIVE_WORKER)
    assert (
        build_plan(desired, state, now=NOW).to_dict()
        == build_plan(desired, state, now=NOW).to_dict()
    )


def test_a_consumer_on_a_replaced_stream_keeps_its_own_field_changes() -> None:
    plan = build_plan(
        topology(
            {"subjects": ["orders.>"], "storage": "memory"},
            {"ack_policy": "explicit", "max_deliver": 4},
        ),
        live(LIVE_ORDERS, LIVE_WORKER),
        now=NOW,
    )
    consumer = plan.changes[-1]
    assert consumer.action is Action.REPLACE
    assert [(f.path, f.forces_replace) for f in consumer.fields] == [
        ("stream", True),
        ("max_deliver", False),
    ]
    assert consumer.replace_reasons == ("stream ORDERS is replaced",)


def test_a_mirror_inherits_direct_get_from_its_origin_without_a_diff() -> None:
    origin = {**LIVE_ORDERS, "allow_direct": True}
    mirror = {
        **{k: v for k, v in LIVE_ORDERS.items() if k not in ("subjects", "duplicate_window")},
        "name": "MIR",
        "mirror": {"name": "ORDERS"},
        "mirror_direct": True,
    }
    desired = Topology(
        {
            "ORDERS": StreamSpec(
                "ORDERS",
                {
                    "name": "ORDERS",
                    "subjects": ["orders.>"],
                    "allow_direct": True,
                    "metadata": MARK,
                },
            ),
            "MIR": StreamSpec(
                "MIR", {"name": "MIR", "mirror": {"name": "ORDERS"}, "metadata": MARK}
            ),
        }
    )
    state = LiveState(
        server=server(),
        streams={"ORDERS": LiveStream("ORDERS", origin), "MIR": LiveStream("MIR", mirror)},
    )
    assert build_plan(desired, state, now=NOW).changes == ()


def test_the_lock_stream_is_ignored_completely() -> None:
    lock = {**LIVE_ORDERS, "name": LOCK_STREAM, "subjects": ["$KV.jelmore-infra-locks.>"]}
    state = LiveState(server=server(), streams={LOCK_STREAM: LiveStream(LOCK_STREAM, lock)})
    plan = build_plan(Topology(), state, now=NOW)
    assert plan.changes == ()
    assert plan.unmanaged == ()
    assert LOCK_STREAM not in str(plan.to_dict())


def test_targets_are_recorded_in_the_plan() -> None:
    plan = build_plan(
        topology({"subjects": ["orders.>"]}), live(LIVE_ORDERS), targets=["stream.ORDERS"], now=NOW
    )
    assert plan.targets == ("stream.ORDERS",)
    assert plan.errors == ()


def test_a_one_way_error_blocks_the_plan() -> None:
    plan = build_plan(
        topology({"subjects": ["orders.>"]}), live({**LIVE_ORDERS, "deny_purge": True}), now=NOW
    )
    assert [(m.kind, m.field) for m in plan.errors] == [("one-way", "deny_purge")]


def test_an_update_on_2_10_never_sends_fields_2_10_does_not_know() -> None:
    state = LiveState(
        server=server("2.10.26"),
        streams={
            "ORDERS": LiveStream(
                "ORDERS",
                {
                    **{k: v for k, v in LIVE_ORDERS.items() if k != "allow_msg_ttl"},
                    "metadata": MARK,
                },
            )
        },
    )
    plan = build_plan(topology({"subjects": ["orders.>"], "description": "x"}), state, now=NOW)
    (change,) = plan.changes
    assert change.after is not None
    assert "allow_msg_ttl" not in change.after
    assert "allow_msg_counter" not in change.after


def test_the_live_consumer_is_normalised_with_the_live_stream_limits() -> None:
    stream = {**LIVE_ORDERS, "consumer_limits": {"max_ack_pending": 50}}
    worker = {**LIVE_WORKER, "max_ack_pending": 50}
    plan = build_plan(
        topology(
            {"subjects": ["orders.>"], "consumer_limits": {"max_ack_pending": 50}},
            {"ack_policy": "explicit"},
        ),
        live(stream, worker),
        now=NOW,
    )
    assert plan.changes == ()
    expected = normalize_consumer(worker, V, stream_config=stream)
    assert plan.fingerprints["consumer.ORDERS.worker"] == fingerprint(expected)


def test_replicas_above_one_on_a_server_without_a_cluster_are_a_plan_error() -> None:
    plan = build_plan(
        topology({"subjects": ["orders.>"], "num_replicas": 3}), live(LIVE_ORDERS), now=NOW
    )
    (message,) = [m for m in plan.messages if m.severity == "error"]
    assert message.field == "num_replicas"
    assert "num_replicas 3 needs a clustered server, and n1 is not clustered" in message.message


def _kitchen_sink_topology(version: tuple[int, int, int]) -> Topology:
    from tests.support import kitchen_sink

    streams = {
        c["name"]: StreamSpec(c["name"], {**c, "metadata": {**c.get("metadata", {}), **MARK}})
        for c in kitchen_sink.streams(version)
    }
    consumers = {
        (s, c["durable_name"]): ConsumerSpec(
            s, c["durable_name"], {**c, "metadata": {**c.get("metadata", {}), **MARK}}
        )
        for s, c in kitchen_sink.consumers(version)
    }
    return Topology(streams, consumers)


def _check_expected(plan: Any, version: tuple[int, int, int]) -> int:
    """Each change's ``expected`` is what normalising its ``after`` gives, with its parent's
    expected config (apply's reply check takes one for the other); the number checked."""
    from jelmore_infra.kinds import kind_at

    by_address = {c.address: c for c in plan.changes}
    checked = 0
    for change in plan.changes:
        if change.expected is None:
            continue
        kind = kind_at(change.addr)
        assert kind is not None
        parent = kind.parent_of(change.addr)
        parent_change = by_address.get(str(parent)) if parent is not None else None
        parent_config = parent_change.expected if parent_change is not None else None
        assert change.after is not None
        again = kind.normalize_config(change.after, version, parent_config)
        assert again == change.expected, change.address
        checked += 1
    return checked


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_the_expected_config_of_a_create_is_its_after_normalised_again(version: str) -> None:
    v = parse_version(version)
    desired = _kitchen_sink_topology(v)
    plan = build_plan(desired, LiveState(server=server(version)), now=NOW)
    assert {c.action for c in plan.changes} == {Action.CREATE}
    assert _check_expected(plan, v) == len(plan.changes)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_the_expected_config_of_an_update_is_its_after_normalised_again(version: str) -> None:
    from tests.support import kitchen_sink

    v = parse_version(version)
    desired = _kitchen_sink_topology(v)
    live_state = LiveState(
        server=server(version),
        streams={n: LiveStream(n, dict(s.config)) for n, s in desired.streams.items()},
        consumers={
            k: LiveConsumer(k[0], k[1], {**c.config, "name": k[1]})
            for k, c in desired.consumers.items()
        },
    )
    streams = dict(desired.streams)
    consumers = dict(desired.consumers)
    for address, key, value in kitchen_sink.in_place_edits(v):
        parts = address.split(".")
        if parts[0] == "stream":
            spec = streams[parts[1]]
            streams[parts[1]] = StreamSpec(spec.name, {**spec.config, key: value})
        else:
            c = consumers[(parts[1], parts[2])]
            consumers[(parts[1], parts[2])] = ConsumerSpec(
                c.stream, c.name, {**c.config, key: value}
            )
    plan = build_plan(Topology(streams, consumers), live_state, now=NOW)
    updates = [c for c in plan.changes if c.action is Action.UPDATE]
    assert updates
    assert _check_expected(plan, v) >= len(updates)


def test_a_plan_read_back_from_its_document_knows_no_expected_config() -> None:
    plan = build_plan(topology({"subjects": ["orders.>"]}), live(), now=NOW)
    (change,) = plan.changes
    assert change.expected is not None
    assert "expected" not in change.to_dict()
    again = type(change).from_dict(change.to_dict())
    assert again.expected is None
    assert again == change
