"""No perpetual diffs, checked against every supported nats-server.

For each version: create representative streams and consumer groups, once from the configs as
written (the server fills its defaults: this checks the normaliser models the server) and once by
sending exactly what apply sends (``wire_config`` of the normalised desired config, pedantic from
2.11: this checks the server accepts it unchanged), read them back with
``$JS.API.STREAM.INFO`` / ``CONSUMER.INFO``, and check that the normalised live config equals the
normalised desired one and that the whole plan is empty. Then change one field out of band and
check the plan sees it. Raw nats-py requests with JSON dicts, no client dataclasses.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from jelmore_infra.diff import build_plan
from jelmore_infra.model import (
    ConsumerSpec,
    LiveConsumer,
    LiveState,
    LiveStream,
    ServerIdentity,
    StreamSpec,
    Topology,
    parse_version,
)
from jelmore_infra.normalize import normalize_consumer, normalize_stream, wire_config
from jelmore_infra.plan import Action
from tests.support.natsserver import SUPPORTED_VERSIONS, NatsServer, binary_for

pytestmark = pytest.mark.matrix

S = 1_000_000_000
#: Fresh stream names: a stream created right after one of the same name was deleted can, on a busy
#: machine, still see the old store, so tests that recreate streams never reuse a name.
_FRESH = itertools.count()
MARK = {"jelmore.managed-by": "jelmore-infra"}
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def desired_streams(version: tuple[int, int, int]) -> dict[str, dict[str, Any]]:
    streams: dict[str, dict[str, Any]] = {
        "MIN": {},
        "JELMORE": {
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
        },
        "JELMORE_DLQ": {
            "subjects": ["jelmore.dlq.>"],
            "storage": "file",
            "max_age": 30 * 86400 * S,
            "max_msgs": 10000,
            "max_bytes": 1_000_000_000,
        },
        "SHORT": {"subjects": ["short.>"], "max_age": 30 * S, "storage": "memory"},
        "SRC": {"sources": [{"name": "JELMORE"}, {"name": "SHORT", "filter_subject": "short.a"}]},
        "MIR": {"mirror": {"name": "JELMORE"}},
        "LIM": {
            "subjects": ["lim.b", "lim.a"],
            "consumer_limits": {"inactive_threshold": 3600 * S, "max_ack_pending": 50},
        },
        "REPUB": {"subjects": ["rp.>"], "republish": {"dest": "out.>"}, "deny_delete": True},
    }
    if version >= (2, 11, 0):
        streams["SDM"] = {"subjects": ["sdm.>"], "subject_delete_marker_ttl": 60 * S}
    return {name: {"name": name, "metadata": MARK, **cfg} for name, cfg in streams.items()}


def desired_consumers() -> dict[tuple[str, str], dict[str, Any]]:
    consumers: dict[tuple[str, str], dict[str, Any]] = {
        ("MIN", "plain"): {},
        # Written by Go clients with nanoseconds and an offset; the server keeps all nine digits.
        ("MIN", "from_time"): {
            "deliver_policy": "by_start_time",
            "opt_start_time": "2025-06-01T13:58:30.123456789+02:00",
        },
        ("JELMORE", "session_handlers"): {
            "description": "General session event processing",
            "filter_subjects": ["jelmore.session.>"],
            "ack_policy": "explicit",
            "ack_wait": 30 * S,
            "max_deliver": 3,
            "max_ack_pending": 1000,
            "metadata": {**MARK, "jelmore.retry-delays": "2s,4s,8s"},
        },
        ("JELMORE", "file_watchers"): {
            "filter_subjects": [
                "jelmore.session.file_modified",
                "jelmore.session.directory_changed",
            ],
            "ack_policy": "explicit",
            "backoff": [2 * S, 4 * S],
            "max_deliver": 3,
        },
        ("LIM", "inherits"): {"ack_policy": "explicit", "inactive_threshold": 3600 * S},
        ("MIN", "pusher"): {"ack_policy": "explicit", "deliver_subject": "push.out"},
    }
    return {
        key: {"durable_name": key[1], **cfg, "metadata": {**MARK, **(cfg.get("metadata") or {})}}
        for key, cfg in consumers.items()
    }


@pytest.fixture(scope="module", params=SUPPORTED_VERSIONS)
def server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    binary = binary_for(request.param)
    with NatsServer(binary=binary) as srv:
        yield srv


@pytest.fixture
async def nc(server: NatsServer) -> AsyncIterator[Client]:
    conn = await nats.connect(server.url)
    try:
        yield conn
    finally:
        await conn.close()


async def api(nc: Client, subject: str, body: Any = None) -> dict[str, Any]:
    payload = b"" if body is None else json.dumps(body).encode()
    resp = await nc.request(subject, payload, timeout=10)
    data: dict[str, Any] = json.loads(resp.data)
    assert "error" not in data, f"{subject}: {data.get('error')}"
    return data


def version_of(server: NatsServer) -> tuple[int, int, int]:
    return parse_version(server.version)


#: A stream reset() never deletes: when an account's last stream is deleted the server removes its
#: streams directory in the background, and a stream created at that moment fails with "error
#: creating store for stream" (seen on busy machines), so the account is never left empty.
SENTINEL = "ZZ_SENTINEL"


async def reset(nc: Client) -> None:
    names = (await api(nc, "$JS.API.STREAM.NAMES")).get("streams") or []
    if SENTINEL not in names:
        await api(nc, f"$JS.API.STREAM.CREATE.{SENTINEL}", {"name": SENTINEL, "subjects": ["zz"]})
    for name in names:
        if name != SENTINEL:
            await api(nc, f"$JS.API.STREAM.DELETE.{name}")


async def create_all(nc: Client, version: tuple[int, int, int], how: str = "wire") -> Topology:
    """Create everything: ``wire`` sends what apply sends (pedantic from 2.11); ``raw`` sends the
    user's config as written, so the server fills its own defaults."""
    wire = how == "wire"
    pedantic = {"pedantic": True} if wire and version >= (2, 11, 0) else {}
    streams = desired_streams(version)
    for name in ("JELMORE", "SHORT", *sorted(set(streams) - {"JELMORE", "SHORT"})):
        body = (
            wire_config(normalize_stream(streams[name], version), version)
            if wire
            else streams[name]
        )
        await api(nc, f"$JS.API.STREAM.CREATE.{name}", {**body, **pedantic})
    consumers = desired_consumers()
    for (stream, name), cfg in consumers.items():
        norm = normalize_consumer(cfg, version, stream_config=streams[stream])
        config = wire_config(norm, version) if wire else cfg
        body = {"stream_name": stream, "config": config, **pedantic}
        await api(nc, f"$JS.API.CONSUMER.CREATE.{stream}.{name}", body)
    return Topology(
        {n: StreamSpec(n, c) for n, c in streams.items()},
        {k: ConsumerSpec(k[0], k[1], c) for k, c in consumers.items()},
    )


async def read_live(nc: Client, server: NatsServer, desired: Topology) -> LiveState:
    info = await api(nc, "$JS.API.INFO")
    streams = {}
    consumers = {}
    for name in desired.streams:
        data = await api(nc, f"$JS.API.STREAM.INFO.{name}")
        streams[name] = LiveStream(name, data["config"], data["state"])
    for stream, name in desired.consumers:
        data = await api(nc, f"$JS.API.CONSUMER.INFO.{stream}.{name}")
        consumers[(stream, name)] = LiveConsumer(stream, name, data["config"])
    identity = ServerIdentity(
        server_name="t",
        server_id="x",
        version=server.version,
        api_level=int((info.get("api") or {}).get("level") or 0),
    )
    return LiveState(server=identity, streams=streams, consumers=consumers)


@pytest.mark.parametrize("how", ["raw", "wire"])
async def test_created_configs_read_back_as_no_change(
    nc: Client, server: NatsServer, how: str
) -> None:
    version = version_of(server)
    await reset(nc)
    desired = await create_all(nc, version, how)
    live = await read_live(nc, server, desired)
    for name, spec in desired.streams.items():
        assert normalize_stream(spec.config, version) == normalize_stream(
            live.streams[name].config, version
        ), name
    for key, cspec in desired.consumers.items():
        stream_cfg = desired.streams[key[0]].config
        live_stream_cfg = live.streams[key[0]].config
        assert normalize_consumer(cspec.config, version, stream_config=stream_cfg) == (
            normalize_consumer(live.consumers[key].config, version, stream_config=live_stream_cfg)
        ), key
    plan = build_plan(desired, live, now=NOW)
    assert plan.changes == ()
    assert [m for m in plan.messages if m.kind != "note"] == []


async def test_an_out_of_band_change_is_planned_and_an_update_converges(
    nc: Client, server: NatsServer
) -> None:
    version = version_of(server)
    await reset(nc)
    desired = await create_all(nc, version)
    jelmore = (await api(nc, "$JS.API.STREAM.INFO.JELMORE"))["config"]
    await api(nc, "$JS.API.STREAM.UPDATE.JELMORE", {**jelmore, "max_msgs": 5000})
    worker = (await api(nc, "$JS.API.CONSUMER.INFO.JELMORE.session_handlers"))["config"]
    worker = {**worker, "max_deliver": 7}
    await api(
        nc,
        "$JS.API.CONSUMER.CREATE.JELMORE.session_handlers",
        {"stream_name": "JELMORE", "config": worker},
    )
    plan = build_plan(desired, await read_live(nc, server, desired), now=NOW)
    assert [(c.address, c.action) for c in plan.changes] == [
        ("stream.JELMORE", Action.UPDATE),
        ("consumer.JELMORE.session_handlers", Action.UPDATE),
    ]
    assert [(f.path, f.before, f.after) for f in plan.changes[0].fields] == [
        ("max_msgs", 5000, 100000)
    ]
    assert [(f.path, f.before, f.after) for f in plan.changes[1].fields] == [("max_deliver", 7, 3)]
    # Carry the plan out the way apply does: send the full `after` config.
    pedantic = {"pedantic": True} if version >= (2, 11, 0) else {}
    stream_change, consumer_change = plan.changes
    await api(nc, "$JS.API.STREAM.UPDATE.JELMORE", {**(stream_change.after or {}), **pedantic})
    await api(
        nc,
        "$JS.API.CONSUMER.CREATE.JELMORE.session_handlers",
        {"stream_name": "JELMORE", "config": consumer_change.after, **pedantic},
    )
    again = build_plan(desired, await read_live(nc, server, desired), now=NOW)
    assert again.changes == ()


async def test_a_one_way_flag_turned_off_is_an_error_and_the_rest_still_applies(
    nc: Client, server: NatsServer
) -> None:
    version = version_of(server)
    await reset(nc)
    desired = await create_all(nc, version)
    repub = {k: v for k, v in desired.streams["REPUB"].config.items() if k != "deny_delete"}
    changed = Topology(
        {**desired.streams, "REPUB": StreamSpec("REPUB", {**repub, "description": "now"})},
        desired.consumers,
    )
    plan = build_plan(changed, await read_live(nc, server, desired), now=NOW)
    assert [(m.kind, m.address, m.field) for m in plan.errors] == [
        ("one-way", "stream.REPUB", "deny_delete")
    ]
    (change,) = plan.changes
    assert [f.path for f in change.fields] == ["description"]
    # The config the plan would send keeps deny_delete on, so the server accepts it.
    await api(nc, "$JS.API.STREAM.UPDATE.REPUB", change.after)
    after = build_plan(changed, await read_live(nc, server, desired), now=NOW)
    assert after.changes == ()
    assert [m.field for m in after.errors] == ["deny_delete"]


async def test_consumer_limits_errors_match_what_the_server_refuses(
    nc: Client, server: NatsServer
) -> None:
    version = version_of(server)
    await reset(nc)
    desired = await create_all(nc, version)
    live = await read_live(nc, server, desired)
    jelmore = desired.streams["JELMORE"].config
    for limits in ({"max_ack_pending": 50}, {"inactive_threshold": 3600 * S}):
        changed = Topology(
            {
                **desired.streams,
                "JELMORE": StreamSpec("JELMORE", {**jelmore, "consumer_limits": limits}),
            },
            desired.consumers,
        )
        plan = build_plan(changed, live, now=NOW)
        planned_error = any(
            m.kind == "invalid" and (m.field or "").startswith("consumer_limits")
            for m in plan.errors
        )
        stream_change = next(c for c in plan.changes if c.address == "stream.JELMORE")
        resp = await nc.request(
            "$JS.API.STREAM.UPDATE.JELMORE", json.dumps(stream_change.after).encode(), timeout=10
        )
        refused = "error" in json.loads(resp.data)
        assert planned_error == refused, (limits, plan.errors, resp.data)
        # put the stream back for the next round
        await api(nc, "$JS.API.STREAM.UPDATE.JELMORE", live.streams["JELMORE"].config)


#: Single-field stream edits on a fresh stream: (edit, first version that knows the fields).
STREAM_EDITS: list[tuple[dict[str, Any], tuple[int, int, int]]] = [
    ({"storage": "memory"}, (2, 10, 0)),
    ({"retention": "interest"}, (2, 10, 0)),
    ({"retention": "workqueue"}, (2, 10, 0)),
    ({"max_consumers": 10}, (2, 10, 0)),
    ({"max_msgs": 10, "max_bytes": 1_000_000}, (2, 10, 0)),
    ({"description": "edited"}, (2, 10, 0)),
    ({"subjects": ["edit.>", "more.>"]}, (2, 10, 0)),
    ({"duplicate_window": 30 * S}, (2, 10, 0)),
    ({"deny_delete": True, "deny_purge": True}, (2, 10, 0)),
    ({"compression": "s2"}, (2, 10, 0)),
    ({"allow_direct": True}, (2, 10, 0)),
    ({"discard": "new", "max_msgs_per_subject": 5, "discard_new_per_subject": True}, (2, 10, 0)),
    ({"allow_msg_ttl": True}, (2, 11, 0)),
    ({"subject_delete_marker_ttl": 60 * S}, (2, 11, 0)),
    ({"allow_msg_counter": True}, (2, 12, 0)),
    ({"persist_mode": "async"}, (2, 12, 0)),
    ({"allow_atomic": True}, (2, 12, 0)),
    ({"allow_msg_schedules": True}, (2, 12, 0)),
    ({"allow_batched": True}, (2, 14, 0)),
]
#: Single-field consumer edits on a durable pull consumer with explicit ack.
CONSUMER_EDITS: list[tuple[dict[str, Any], tuple[int, int, int]]] = [
    ({"deliver_policy": "new"}, (2, 10, 0)),
    ({"ack_policy": "all"}, (2, 10, 0)),
    ({"max_waiting": 100}, (2, 10, 0)),
    ({"replay_policy": "original"}, (2, 10, 0)),
    ({"max_deliver": 5}, (2, 10, 0)),
    ({"ack_wait": 10 * S}, (2, 10, 0)),
    ({"backoff": [S, 2 * S], "max_deliver": 4}, (2, 10, 0)),
    ({"filter_subject": "edit.a"}, (2, 10, 0)),
    ({"filter_subjects": ["edit.a", "edit.b"]}, (2, 10, 0)),
    ({"description": "edited"}, (2, 10, 0)),
    ({"headers_only": True}, (2, 10, 0)),
    ({"max_ack_pending": 10}, (2, 10, 0)),
    ({"inactive_threshold": 3600 * S}, (2, 10, 0)),
    ({"max_batch": 10, "max_expires": 30 * S, "max_bytes": 1_000_000}, (2, 10, 0)),
    ({"deliver_subject": "edit.push"}, (2, 10, 0)),
    ({"mem_storage": True}, (2, 14, 4)),  # before 2.14.4 the server stores it without complaint
    ({"priority_groups": ["g1"], "priority_policy": "overflow"}, (2, 11, 0)),
    ({"priority_groups": ["g1"], "priority_policy": "pinned_client"}, (2, 11, 0)),
]


async def _accepted(nc: Client, subject: str, body: Any) -> tuple[bool, str]:
    resp = await nc.request(subject, json.dumps(body).encode(), timeout=10)
    data = json.loads(resp.data)
    return "error" not in data, str(data.get("error"))


async def test_update_or_replace_matches_what_the_server_accepts(
    nc: Client, server: NatsServer
) -> None:
    """Every edit the plan calls an update is accepted in place; every replace is refused."""
    version = version_of(server)
    base_consumer = {"durable_name": "c", "ack_policy": "explicit", "metadata": MARK}
    mismatches: list[str] = []

    async def fresh() -> tuple[str, dict[str, Any], LiveState]:
        await reset(nc)
        name = f"EDIT{next(_FRESH)}"
        stream = {"name": name, "subjects": ["edit.>"], "metadata": MARK}
        await api(nc, f"$JS.API.STREAM.CREATE.{name}", stream)
        await api(
            nc,
            f"$JS.API.CONSUMER.CREATE.{name}.c",
            {"stream_name": name, "config": base_consumer},
        )
        topo = Topology(
            {name: StreamSpec(name, stream)},
            {(name, "c"): ConsumerSpec(name, "c", base_consumer)},
        )
        return name, stream, await read_live(nc, server, topo)

    for edit, since in STREAM_EDITS:
        if version < since:
            continue
        name, stream, live = await fresh()
        desired = Topology({name: StreamSpec(name, {**stream, **edit})})
        plan = build_plan(desired, live, targets=[f"stream.{name}"], now=NOW)
        (change,) = [c for c in plan.changes if c.address == f"stream.{name}"]
        ok, err = await _accepted(nc, f"$JS.API.STREAM.UPDATE.{name}", change.after)
        if ok != (change.action is Action.UPDATE) or plan.errors:
            mismatches.append(f"stream {edit}: planned {change.action.value}, server: {err}")

    for edit, since in CONSUMER_EDITS:
        if version < since:
            continue
        name, stream, live = await fresh()
        desired = Topology(
            {name: StreamSpec(name, stream)},
            {(name, "c"): ConsumerSpec(name, "c", {**base_consumer, **edit})},
        )
        plan = build_plan(desired, live, now=NOW)
        (change,) = [c for c in plan.changes if c.address == f"consumer.{name}.c"]
        body = {"stream_name": name, "config": change.after, "action": "update"}
        ok, err = await _accepted(nc, f"$JS.API.CONSUMER.CREATE.{name}.c", body)
        if ok != (change.action is Action.UPDATE) or plan.errors:
            mismatches.append(f"consumer {edit}: planned {change.action.value}, server: {err}")

    assert mismatches == []


async def test_mirror_removal_is_planned_as_the_server_allows_it(
    nc: Client, server: NatsServer
) -> None:
    """2.10/2.11 refuse to remove a mirror (replace); 2.12+ promote it in place (update)."""
    version = version_of(server)
    await reset(nc)
    origin = {"name": "ORIGIN", "subjects": ["origin.>"], "metadata": MARK}
    mirror = {"name": "COPY", "mirror": {"name": "ORIGIN"}, "metadata": MARK}
    await api(nc, "$JS.API.STREAM.CREATE.ORIGIN", origin)
    await api(nc, "$JS.API.STREAM.CREATE.COPY", mirror)
    topo = Topology({"ORIGIN": StreamSpec("ORIGIN", origin), "COPY": StreamSpec("COPY", mirror)})
    live = await read_live(nc, server, topo)
    assert build_plan(topo, live, now=NOW).changes == ()
    promoted = {"name": "COPY", "subjects": ["copy.>"], "metadata": MARK}
    desired = Topology(
        {"ORIGIN": StreamSpec("ORIGIN", origin), "COPY": StreamSpec("COPY", promoted)}
    )
    plan = build_plan(desired, live, now=NOW)
    (change,) = plan.changes
    expected = Action.UPDATE if version >= (2, 12, 0) else Action.REPLACE
    assert change.action is expected
    ok, err = await _accepted(nc, "$JS.API.STREAM.UPDATE.COPY", change.after)
    assert ok == (expected is Action.UPDATE), err


@pytest.mark.parametrize(
    ("discard", "edit"),
    [
        ("old", {"max_msgs": 5}),
        ("new", {"max_msgs": 5}),
        ("old", {"max_bytes": 500}),
        ("new", {"max_bytes": 500}),
        ("old", {"max_msgs_per_subject": 1}),
    ],
)
async def test_data_loss_warnings_match_what_the_server_removes(
    nc: Client, server: NatsServer, discard: str, edit: dict[str, Any]
) -> None:
    """The estimate in a data-loss warning is what an apply removes at once (or, before 2.14 for
    max_msgs_per_subject, once each subject gets its next message); discard new removes nothing."""
    version = version_of(server)
    await reset(nc)
    name = f"D{next(_FRESH)}"
    prefix = name.lower()
    base = {"name": name, "subjects": [f"{prefix}.>"], "discard": discard, "metadata": MARK}
    await api(nc, f"$JS.API.STREAM.CREATE.{name}", base)
    for i in range(10):
        await nc.request(f"{prefix}.{i % 3}", b"x" * 100, timeout=5)
    topo = Topology({name: StreamSpec(name, base)})
    live = await read_live(nc, server, topo)
    assert live.streams[name].state["messages"] == 10
    plan = build_plan(Topology({name: StreamSpec(name, {**base, **edit})}), live, now=NOW)
    warned = [m for m in plan.messages if m.kind == "data-loss"]
    (change,) = plan.changes
    await api(nc, f"$JS.API.STREAM.UPDATE.{name}", change.after)
    if "max_msgs_per_subject" in edit and version < (2, 14, 0):
        # Trimmed lazily: one new message per subject; each displaces the one survivor the
        # new limit keeps, so the stream ends with as many messages as an immediate trim.
        for i in range(3):
            await nc.request(f"{prefix}.{i}", b"x" * 100, timeout=5)
        stored = (await api(nc, f"$JS.API.STREAM.INFO.{name}"))["state"]["messages"]
    else:
        stored = (await api(nc, f"$JS.API.STREAM.INFO.{name}"))["state"]["messages"]
    removed = 10 - stored
    if removed == 0:
        assert warned == []
    else:
        (warning,) = warned
        assert warning.data["messages"] == removed
