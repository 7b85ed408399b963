"""The bucket kinds without a server: the bucket ↔ stream mapping against the golden configs
real servers stored (tests/support/bucket_configs.py, docs/buckets.md), and how plans treat
buckets (classification, client shapes, server rules, data impact, targets)."""

from __future__ import annotations

from typing import Any

import pytest

from jelmore_infra.diff import build_plan
from jelmore_infra.kinds import KV, OBJECT_STORE
from jelmore_infra.kinds.bucket import (
    canonical,
    duplicate_window,
    settings_from_stream,
    stream_from_settings,
)
from jelmore_infra.kinds.shape import bucket_of
from jelmore_infra.model import (
    LOCK_STREAM,
    BucketSpec,
    LiveConsumer,
    LiveState,
    LiveStream,
    Topology,
    parse_version,
)
from jelmore_infra.normalize import normalize_stream
from jelmore_infra.plan import Plan
from jelmore_infra.render.human import render_plan
from tests.support import bucket_configs as bc
from tests.unit.test_diff import MARK, NOW, server

S = 1_000_000_000
VERSIONS = tuple(bc.GOLDEN)
#: Every golden bucket (nats.go's mirror and sourcing buckets included).
BUCKET_KEYS = {
    "nats_go": (
        "kv_min",
        "kv_full",
        "kv_mirror",
        "kv_sources",
        "obj_min",
        "obj_full",
        "obj_natscli",
    ),
    "nats_py": ("kv_min", "kv_full", "obj_min", "obj_full"),
}
CASES = [(v, c, k) for v in VERSIONS for c, keys in BUCKET_KEYS.items() for k in keys]


def _comparable(config: dict[str, Any], version: tuple[int, int, int]) -> dict[str, Any]:
    out = normalize_stream(config, version)
    out.pop("metadata", None)  # the server's _nats.* keys; compared apart
    return out


@pytest.mark.parametrize(("version", "client", "key"), CASES)
def test_a_golden_bucket_read_back_as_settings_rebuilds_the_stream_the_server_stored(
    version: str, client: str, key: str
) -> None:
    stored = bc.golden(version, client, key)
    v = parse_version(version)
    found = bucket_of(stored)
    assert found is not None and found[0] == ("kv" if key.startswith("kv") else "objectstore")
    settings = canonical(found[0], settings_from_stream(found[0], stored, v), v)
    rebuilt = stream_from_settings(found[0], found[1], settings, v)
    assert _comparable(rebuilt, v) == _comparable(stored, v)
    user_meta = {k: x for k, x in (stored.get("metadata") or {}).items() if not k.startswith("_")}
    assert rebuilt.get("metadata", {}) == user_meta


@pytest.mark.parametrize("version", VERSIONS)
def test_nats_go_and_nats_py_minimal_buckets_differ_only_in_the_two_client_flags(
    version: str,
) -> None:
    v = parse_version(version)
    for key, kind in (("kv_min", "kv"), ("obj_min", "objectstore")):
        go = canonical(kind, settings_from_stream(kind, bc.golden(version, "nats_go", key), v), v)  # type: ignore[arg-type]
        py = canonical(kind, settings_from_stream(kind, bc.golden(version, "nats_py", key), v), v)  # type: ignore[arg-type]
        differing = {k for k in set(go) | set(py) if go.get(k) != py.get(k)}
        assert differing <= {"allow_direct", "allow_msg_ttl"}, (key, differing)
    assert settings_from_stream("kv", bc.golden(version, "nats_go", "kv_full"), v)["history"] == 5


def test_jelmore_sends_nats_go_shape_with_an_explicit_duplicate_window() -> None:
    v = (2, 12, 8)
    cfg = stream_from_settings("kv", "b", {"history": 3, "ttl": 30 * S}, v)
    assert cfg["name"] == "KV_b" and cfg["subjects"] == ["$KV.b.>"]
    assert cfg["duplicate_window"] == 30 * S  # ttl under 2 min caps the window
    assert cfg["max_msgs_per_subject"] == 3 and cfg["deny_delete"] and cfg["allow_rollup_hdrs"]
    assert cfg["discard"] == "new" and cfg["allow_msg_ttl"] is False
    assert stream_from_settings("kv", "b", {}, v)["duplicate_window"] == 120 * S
    obj = stream_from_settings("objectstore", "o", {"ttl": 10 * S}, v)
    assert obj["subjects"] == ["$O.o.C.>", "$O.o.M.>"] and obj["duplicate_window"] == 10 * S
    assert obj["deny_delete"] is False
    assert duplicate_window(0) == 120 * S and duplicate_window(600 * S) == 120 * S
    marker = stream_from_settings("kv", "b", {"limit_marker_ttl": 5 * S}, v)
    assert marker["allow_msg_ttl"] is True and marker["subject_delete_marker_ttl"] == 5 * S
    assert "allow_msg_ttl" not in stream_from_settings("kv", "b", {}, (2, 10, 26))


def test_only_streams_with_the_clients_name_and_subjects_are_buckets() -> None:
    assert bucket_of({"name": "KV_a", "subjects": ["$KV.a.>"], "max_msgs_per_subject": 1})
    assert not bucket_of({"name": "KV_a", "subjects": ["kv.a.>"], "max_msgs_per_subject": 1})
    assert not bucket_of({"name": "KV_a", "subjects": ["$KV.a.>"], "max_msgs_per_subject": -1})
    assert not bucket_of({"name": "KV_a.b", "subjects": ["$KV.a.b.>"], "max_msgs_per_subject": 1})
    assert not bucket_of({"name": "OBJ_o", "subjects": ["$O.o.C.>"]})
    assert bucket_of({"name": "OBJ_o", "subjects": ["$O.o.C.>", "$O.o.M.>"]})
    assert bucket_of(bc.golden("2.15.1", "nats_go", "kv_mirror")) == ("kv", "gokvmirror")
    assert bucket_of(bc.golden("2.15.1", "nats_go", "kv_sources")) == ("kv", "gokvsrc")
    assert not bucket_of({"name": "KV_m", "mirror": {"name": "ORDERS"}, "max_msgs_per_subject": 1})
    assert not bucket_of({"name": "OBJ_o", "mirror": {"name": "OBJ_p"}})


# ------------------------------------------------------------------------------------ plans


def _live(*configs: dict[str, Any], version: str = "2.12.8", **states: dict[str, Any]) -> LiveState:
    streams = {c["name"]: LiveStream(c["name"], c, states.get(c["name"], {})) for c in configs}
    return LiveState(server=server(version), streams=streams)


def _kv(name: str = "cfg", **settings: Any) -> Topology:
    return Topology(kv_buckets={name: BucketSpec(name, {"metadata": dict(MARK), **settings})})


def _managed(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "metadata": {**(config.get("metadata") or {}), **MARK}}


def _go_kv(version: str = "2.12.8", name: str = "cfg", **over: Any) -> dict[str, Any]:
    cfg = _managed(bc.golden(version, "nats_go", "kv_min"))
    cfg.update(name=f"KV_{name}", subjects=[f"$KV.{name}.>"], **over)
    return cfg


def _summary(plan: Plan) -> list[tuple[str, str, list[str]]]:
    return [(c.address, c.action.value, sorted(f.path for f in c.fields)) for c in plan.changes]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_nats_py_bucket_plans_clean_against_a_topology_that_does_not_mention_client_flags(
    version: str,
) -> None:
    py = _managed(bc.golden(version, "nats_py", "kv_min"))
    plan = build_plan(_kv("pykvmin"), _live(py, version=version), now=NOW)
    assert _summary(plan) == [] and not plan.messages


def test_a_new_bucket_gets_nats_go_flags_and_renders_with_its_label() -> None:
    plan = build_plan(_kv(history=5, ttl=3600 * S), _live(), now=NOW)
    (change,) = plan.changes
    assert (change.address, change.action.value, change.stream) == ("kv.cfg", "create", "KV_cfg")
    assert change.after is not None and change.after["allow_direct"] is True
    assert 'kv "cfg"' in render_plan(plan)
    obj = Topology(object_stores={"files": BucketSpec("files", {"metadata": dict(MARK)})})
    assert 'objectstore "files"' in render_plan(build_plan(obj, _live(), now=NOW))


def test_bucket_streams_are_never_streams_and_the_lock_bucket_is_invisible() -> None:
    lock = {**_go_kv(name="jelmore-infra-locks"), "metadata": {}}
    assert lock["name"] == LOCK_STREAM
    unmanaged = {**_go_kv(name="other"), "metadata": {}}
    live = _live(_go_kv(), unmanaged, lock)
    watcher = LiveConsumer("KV_cfg", "w", {"durable_name": "w", "ack_policy": "none"})
    live = LiveState(live.server, live.streams, {("KV_cfg", "w"): watcher})
    plan = build_plan(Topology(), live, now=NOW)
    assert _summary(plan) == [("kv.cfg", "delete", [])]
    assert plan.unmanaged == ("kv.other",)
    text = " ".join(m.message for m in plan.messages)
    assert "stream." not in text and "locks" not in text and "consumer." not in text


def test_lowering_history_is_in_place_and_counts_the_revisions_it_drops() -> None:
    live = _live(_go_kv(max_msgs_per_subject=5), KV_cfg={"messages": 50, "num_subjects": 4})
    plan = build_plan(_kv(history=2), live, now=NOW)
    assert _summary(plan) == [("kv.cfg", "update", ["history"])]
    (impact,) = [m for m in plan.messages if m.impact is not None]
    assert impact.data == {"stored_messages": 50, "num_keys": 4, "messages": 42}
    assert "at least 42 of 50 stored revisions (4 keys)" in impact.message


def test_a_storage_change_replaces_the_bucket_and_counts_what_is_lost() -> None:
    live = _live(_go_kv(), KV_cfg={"messages": 7, "bytes": 700})
    plan = build_plan(_kv(storage="memory"), live, now=NOW)
    assert _summary(plan) == [("kv.cfg", "replace", ["storage"])]
    (lost,) = [m for m in plan.messages if m.kind == "data-loss"]
    assert "replacing KV bucket cfg: 7 messages" in lost.message


def test_lowering_ttl_estimates_the_values_removed() -> None:
    state = {"messages": 10, "first_ts": "2026-05-31T00:00:00Z", "last_ts": "2026-06-01T00:00:00Z"}
    live = _live(_go_kv(max_age=7 * 24 * 3600 * S), KV_cfg=state)
    plan = build_plan(_kv(ttl=12 * 3600 * S), live, now=NOW)
    assert _summary(plan) == [("kv.cfg", "update", ["ttl"])]
    (impact,) = [m for m in plan.messages if m.impact is not None]
    assert impact.address == "kv.cfg" and impact.data["messages"] == 5


def test_a_2_11_setting_on_2_10_is_a_plan_error() -> None:
    plan = build_plan(_kv(limit_marker_ttl=5 * S), _live(version="2.10.26"), now=NOW)
    assert [(m.kind, m.field) for m in plan.errors] == [("needs-newer-server", "limit_marker_ttl")]


def test_allow_msg_ttl_cannot_be_turned_off_but_an_unmentioned_one_is_kept() -> None:
    live = _live(_go_kv(allow_msg_ttl=True, subject_delete_marker_ttl=5 * S))
    assert _summary(build_plan(_kv(limit_marker_ttl=5 * S), live, now=NOW)) == []
    dropped = build_plan(_kv(), live, now=NOW)
    assert _summary(dropped) == [("kv.cfg", "update", ["limit_marker_ttl"])]
    assert not dropped.errors
    refused = build_plan(_kv(allow_msg_ttl=False), live, now=NOW)
    assert [m.kind for m in refused.errors] == ["one-way"]


def test_replicas_above_one_need_a_cluster() -> None:
    plan = build_plan(_kv(replicas=3), _live(), now=NOW)
    assert [m.field for m in plan.errors] == ["replicas"]


def test_target_selects_one_bucket() -> None:
    live = _live(_go_kv(), _go_kv(name="other"))
    desired = Topology(
        kv_buckets={
            "cfg": BucketSpec("cfg", {"metadata": dict(MARK), "history": 3}),
            "other": BucketSpec("other", {"metadata": dict(MARK), "history": 4}),
        }
    )
    plan = build_plan(desired, live, targets=["kv.other"], now=NOW)
    assert _summary(plan) == [("kv.other", "update", ["history"])]
    bad = build_plan(desired, live, targets=["kv.nope"], now=NOW)
    assert bad.errors


def test_a_planned_bucket_config_and_the_live_stream_normalise_alike() -> None:
    v = (2, 15, 1)
    stored = bc.golden("2.15.1", "nats_go", "kv_full")
    planned = KV.normalize_config(stored, v, None)
    assert KV.normalize_config(planned, v, None) == planned
    obj = bc.golden("2.15.1", "nats_py", "obj_full")
    assert OBJECT_STORE.normalize_config(obj, v, None)["placement"] == {
        "cluster": "c1",
        "tags": ["t1"],
    }


def test_kv_mirrors_and_sources_read_back_as_bucket_names_without_the_default_transform() -> None:
    v = (2, 15, 1)
    mirror = settings_from_stream("kv", bc.golden("2.15.1", "nats_go", "kv_mirror"), v)
    assert mirror["mirror"] == {"name": "gokvmin"} and mirror["mirror_direct"] is True
    sources = settings_from_stream("kv", bc.golden("2.15.1", "nats_go", "kv_sources"), v)
    assert sources["sources"] == [{"name": "gokvmin"}]
    built = stream_from_settings("kv", "m", {"mirror": {"name": "o"}}, v)
    assert "subjects" not in built and built["mirror"] == {"name": "KV_o"}
    own = [{"src": "$KV.o.a.>", "dest": "$KV.s.a.>"}]
    src = stream_from_settings(
        "kv", "s", {"sources": [{"name": "o", "subject_transforms": own}]}, v
    )
    assert src["sources"] == [{"name": "KV_o", "subject_transforms": own}]


def test_a_kv_mirror_takes_direct_get_from_its_origin_and_cannot_have_limit_markers() -> None:
    origin = _go_kv(name="origin", allow_direct=False)
    desired = Topology(
        kv_buckets={
            "copy": BucketSpec("copy", {"metadata": dict(MARK), "mirror": {"name": "origin"}}),
        }
    )
    plan = build_plan(desired, _live(origin), now=NOW, targets=["kv.copy"])
    (change,) = plan.changes
    assert change.after is not None and change.after["mirror_direct"] is False
    marked = Topology(
        kv_buckets={
            "copy": BucketSpec(
                "copy",
                {"metadata": dict(MARK), "mirror": {"name": "o"}, "limit_marker_ttl": 5 * S},
            )
        }
    )
    errors = build_plan(marked, _live(), now=NOW).errors
    assert [m.field for m in errors] == ["limit_marker_ttl"]


@pytest.mark.parametrize(("version", "action"), [("2.11.11", "replace"), ("2.12.8", "update")])
def test_removing_a_kv_mirror_is_in_place_only_from_2_12(version: str, action: str) -> None:
    mirror = _managed(bc.golden(version, "nats_go", "kv_mirror"))
    plan = build_plan(_kv("gokvmirror"), _live(mirror, version=version), now=NOW)
    assert _summary(plan) == [("kv.gokvmirror", action, ["mirror", "mirror_direct"])]


def test_a_compression_change_is_in_place_with_a_note_that_it_waits_for_a_restart() -> None:
    plan = build_plan(_kv(compression=True), _live(_go_kv()), now=NOW)
    assert _summary(plan) == [("kv.cfg", "update", ["compression"])]
    (note,) = plan.messages
    assert note.kind == "note" and note.field == "compression"
    assert "only to data written after its next restart" in note.message


def test_a_source_written_with_nats_gos_own_transform_matches_the_live_one() -> None:
    live = _managed(bc.golden("2.15.1", "nats_go", "kv_sources"))
    transform = [{"src": "$KV.gokvmin.>", "dest": "$KV.gokvsrc.>"}]
    for source in ({"name": "gokvmin"}, {"name": "gokvmin", "subject_transforms": transform}):
        plan = build_plan(_kv("gokvsrc", sources=[source]), _live(live, version="2.15.1"), now=NOW)
        assert _summary(plan) == [], source
