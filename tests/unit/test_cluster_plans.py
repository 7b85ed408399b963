"""Cluster topologies without a server: a new placement (a move) and more replicas are in-place
updates whose notes say what the server copies; removing a placement moves nothing; a move
together with a replica change is refused, without a note. Streams are covered by the golden
cases (``cases/diff/cluster_*.yaml``); these tests cover buckets, the records themselves, and a
validation rule that transformed streams need."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from textwrap import dedent
from typing import Any

import pytest

from jelmore_infra.diff import build_plan
from jelmore_infra.diff.order import phases
from jelmore_infra.impact import (
    PlacementDropped,
    ReplicasAdded,
    StreamMoved,
    impact_from_dict,
)
from jelmore_infra.kinds.stream import STREAM
from jelmore_infra.model import BucketSpec, LiveState, LiveStream, StreamSpec, Topology
from jelmore_infra.plan import Plan
from jelmore_infra.render.impact import impact_text
from jelmore_infra.render.json import render_plan_json
from jelmore_infra.topology.load import parse_sources
from tests.support import bucket_configs as bc
from tests.unit.test_diff import MARK, NOW, server


def _clustered(version: str = "2.15.1") -> Any:
    return replace(server(version), cluster="C1")


def _kv_stream(**over: Any) -> dict[str, Any]:
    cfg = {**bc.golden("2.15.1", "nats_go", "kv_min"), "metadata": dict(MARK)}
    cfg.update(name="KV_cfg", subjects=["$KV.cfg.>"], **over)
    return cfg


def _obj_stream(**over: Any) -> dict[str, Any]:
    cfg = {**bc.golden("2.15.1", "nats_go", "obj_min"), "metadata": dict(MARK)}
    cfg.update(name="OBJ_blobs", subjects=["$O.blobs.C.>", "$O.blobs.M.>"], **over)
    return cfg


def _plan(topology: Topology, config: dict[str, Any], state: dict[str, Any]) -> Plan:
    live = LiveState(
        server=_clustered(), streams={config["name"]: LiveStream(config["name"], config, state)}
    )
    return build_plan(topology, live, now=NOW)


def _kv(**settings: Any) -> Topology:
    return Topology(kv_buckets={"cfg": BucketSpec("cfg", {"metadata": dict(MARK), **settings})})


def _notes(plan: Plan) -> list[tuple[str, str | None, str]]:
    return [(m.address or "", m.field, m.message) for m in plan.messages if m.kind == "note"]


def test_moving_a_kv_bucket_is_in_place_and_notes_the_copy() -> None:
    live = _kv_stream(num_replicas=3, placement={"cluster": "C1"})
    plan = _plan(
        _kv(replicas=3, placement={"cluster": "C2"}), live, {"messages": 40, "bytes": 4000}
    )
    assert [(c.address, c.action.value) for c in plan.changes] == [("kv.cfg", "update")]
    ((address, field, text),) = _notes(plan)
    assert (address, field) == ("kv.cfg", "placement")
    assert text.startswith("moving KV bucket cfg from cluster C1 to cluster C2")
    assert "copies its 40 stored messages" in text


def test_more_object_store_replicas_note_the_copy_to_each_new_one() -> None:
    topology = Topology(
        object_stores={"blobs": BucketSpec("blobs", {"metadata": dict(MARK), "replicas": 3})}
    )
    plan = _plan(topology, _obj_stream(), {"messages": 5, "bytes": 500})
    ((address, field, text),) = _notes(plan)
    assert (address, field) == ("objectstore.blobs", "replicas")
    assert "raising replicas of object store blobs from 1 to 3" in text
    assert "to each of the 2 new replicas" in text


def test_removing_a_buckets_placement_moves_nothing() -> None:
    live = _kv_stream(placement={"tags": ["site:a"]})
    plan = _plan(_kv(), live, {"messages": 1, "bytes": 10})
    ((_, field, text),) = _notes(plan)
    assert field == "placement"
    assert "removing the placement of KV bucket cfg (tags site:a) moves nothing" in text


def test_a_server_without_a_cluster_moves_nothing_and_gets_no_note() -> None:
    config = _kv_stream(placement={"cluster": "C1"})
    live = LiveState(
        server=server("2.15.1"), streams={"KV_cfg": LiveStream("KV_cfg", config, {"messages": 3})}
    )
    plan = build_plan(_kv(placement={"cluster": "C2"}), live, now=NOW)
    assert [(c.address, c.action.value) for c in plan.changes] == [("kv.cfg", "update")]
    assert _notes(plan) == []


def test_a_bucket_move_with_a_replica_change_is_an_error_without_a_note() -> None:
    live = _kv_stream(placement={"cluster": "C1"})
    plan = _plan(_kv(replicas=3, placement={"cluster": "C2"}), live, {"messages": 1, "bytes": 1})
    assert _notes(plan) == []
    assert [(m.kind, m.field) for m in plan.errors] == [("invalid", "placement")]


@pytest.mark.parametrize(
    "record",
    [
        StreamMoved("stream.S", "stream S", "cluster C1", "cluster C2", 3, 300),
        StreamMoved("kv.c", "KV bucket c", "no placement", "tags a", 0, 0),
        ReplicasAdded("stream.S", "stream S", "num_replicas", 3, 5, 1, 10),
        PlacementDropped("stream.S", "stream S", "cluster C1"),
    ],
)
def test_cluster_notes_survive_a_saved_plan_and_read_as_one_sentence(record: Any) -> None:
    assert impact_from_dict(record.to_dict()) == record
    text = impact_text(record)
    assert "\n" not in text and text[0].islower()
    assert record.MESSAGE_KIND == "note"
    assert {f.name for f in dataclasses.fields(record)} >= {"address", "label"}


def test_the_json_plan_carries_the_move_notes_numbers() -> None:
    live = _kv_stream(num_replicas=3, placement={"cluster": "C1"})
    plan = _plan(_kv(replicas=3, placement={"cluster": "C2"}), live, {"messages": 2, "bytes": 20})
    text = render_plan_json(plan)
    assert '"stream-moved"' in text and '"messages": 2' in text


def test_a_group_may_filter_on_the_subjects_a_stream_transform_stores() -> None:
    text = """\
        streams:
          ORDERS:
            subjects: [orders.in.>]
            subject_transform: {src: orders.in.>, dest: orders.stored.>}
        consumer_groups:
          shippers: {stream: ORDERS, filter_subjects: [orders.stored.eu.>]}
    """
    topology, diagnostics = parse_sources([("t.yaml", dedent(text))])
    assert [d.message for d in diagnostics] == []
    assert topology is not None


def test_apply_creates_a_mirror_and_a_sourcing_stream_only_after_their_origins() -> None:
    def spec(name: str, **config: Any) -> StreamSpec:
        return StreamSpec(name, {"name": name, "metadata": dict(MARK), **config})

    desired = Topology(
        {
            "ORIGIN": spec("ORIGIN", subjects=["origin.>"]),
            "COPY": spec("COPY", mirror={"name": "ORIGIN"}),
            "MERGED": spec("MERGED", sources=[{"name": "COPY"}, {"name": "OTHER"}]),
            "OTHER": spec("OTHER", subjects=["other.>"]),
        }
    )
    plan = build_plan(desired, LiveState(server=_clustered()), now=NOW)
    runs = phases(plan.changes)
    assert [[c.address for c in run] for run in runs] == [
        ["stream.ORIGIN"],
        ["stream.COPY", "stream.OTHER"],
        ["stream.MERGED"],
    ]
    earlier: set[str] = set()
    for run in runs:  # every origin is created in an earlier run than what mirrors or sources it
        for change in run:
            assert set(STREAM.dependencies(change)) <= earlier, change.address
        earlier |= {c.name for c in run}


# -- a bucket whose stream the server lists as missing or offline -------------------------------


def _degraded(unavailable: dict[str, str]) -> LiveState:
    return LiveState(server=_clustered(), unavailable=unavailable)


def _warned(plan: Plan) -> list[str]:
    return [m.address or "" for m in plan.messages if m.kind == "unavailable"]


@pytest.mark.parametrize(
    ("topology", "stream", "address"),
    [
        (_kv(history=1), "KV_cfg", "kv.cfg"),
        (
            Topology(object_stores={"blobs": BucketSpec("blobs", {"metadata": dict(MARK)})}),
            "OBJ_blobs",
            "objectstore.blobs",
        ),
    ],
    ids=["kv", "objectstore"],
)
def test_a_declared_bucket_whose_stream_is_unavailable_is_never_planned_as_a_create(
    topology: Topology, stream: str, address: str
) -> None:
    plan = build_plan(topology, _degraded({f"stream.{stream}": "listed as missing"}), now=NOW)
    assert list(plan.changes) == []
    assert _warned(plan) == [address]  # the bucket says it, the stream kind does not repeat it
    (message,) = [m for m in plan.messages if m.kind == "unavailable"]
    assert "listed as missing" in message.message and "no change is planned" in message.message


def test_an_undeclared_bucket_stream_that_is_unavailable_is_left_alone_as_a_bucket() -> None:
    plan = build_plan(Topology(), _degraded({"stream.KV_other": "offline: no quorum"}), now=NOW)
    assert list(plan.changes) == []
    assert _warned(plan) == ["kv.other"]


def test_a_stream_declared_under_a_bucket_streams_name_stays_a_stream_when_unavailable() -> None:
    topology = Topology(
        streams={"KV_plain": StreamSpec("KV_plain", {"name": "KV_plain", "metadata": dict(MARK)})}
    )
    plan = build_plan(topology, _degraded({"stream.KV_plain": "offline: no quorum"}), now=NOW)
    assert list(plan.changes) == []
    assert _warned(plan) == ["stream.KV_plain"]
