"""``replace_strategy: migrate`` on KV buckets and object stores in the plan (no server).

A bucket's storage change that opts in is a ``migrate`` of the bucket (not of a stream) with the
stream migration's steps and effects plus the bucket's own (KV revisions change), no data loss,
and the final stream exactly what a created bucket gets; an in-place change gets a note; a KV
mirror, a bucket sourced by another and nats-server 2.12 give plan errors at the bucket; a
half-done bucket migration is a migrate of the bucket that resumes (its frozen or missing stream
is never planned as a stream); the migrated bucket plans clean; the views show it and a saved
plan passes the re-check.
"""

from __future__ import annotations

import json
from typing import Any

from jelmore_infra.apply import recheck_plan
from jelmore_infra.diff import build_plan
from jelmore_infra.kinds import KV, OBJECT_STORE
from jelmore_infra.kinds.bucket import stream_from_settings
from jelmore_infra.migration.steps import (
    META_CONSUMERS,
    META_MESSAGES,
    META_OF,
    META_ORIGINAL,
    META_STEP,
    STEP_COPIED,
    freeze_subject,
    temp_config,
    temp_name,
)
from jelmore_infra.model import REPLACE_MIGRATE, BucketSpec, LiveState, LiveStream, Topology
from jelmore_infra.plan import Action, Plan
from jelmore_infra.render.human import render_plan_text
from jelmore_infra.render.json import load_plan_json, render_plan_json
from jelmore_infra.render.markdown import render_plan_markdown
from jelmore_infra.topology.load import parse_sources
from tests.support import bucket_configs as bc
from tests.unit.test_diff import MARK, NOW, server

V = "2.15.1"
STATE = {"messages": 1_500, "bytes": 80_000, "first_seq": 1, "last_seq": 1_700}


def _managed(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "metadata": {**(config.get("metadata") or {}), **MARK}}


def live_kv(name: str = "cfg", **over: Any) -> dict[str, Any]:
    cfg = _managed(bc.golden(V, "nats_go", "kv_min"))
    cfg.update(name=f"KV_{name}", subjects=[f"$KV.{name}.>"], max_msgs_per_subject=5, **over)
    return cfg


def live_obj(name: str = "files") -> dict[str, Any]:
    cfg = _managed(bc.golden(V, "nats_go", "obj_min"))
    cfg.update(name=f"OBJ_{name}", subjects=[f"$O.{name}.C.>", f"$O.{name}.M.>"])
    return cfg


def state(*configs: dict[str, Any], version: str = V) -> LiveState:
    streams = {c["name"]: LiveStream(c["name"], c, dict(STATE)) for c in configs}
    return LiveState(server=server(version), streams=streams)


def kv(strategy: str = REPLACE_MIGRATE, name: str = "cfg", **settings: Any) -> Topology:
    config = {"metadata": dict(MARK), "history": 5, **settings}
    return Topology(kv_buckets={name: BucketSpec(name, config, replace_strategy=strategy)})


def plan_of(topology: Topology, live: LiveState) -> Plan:
    return build_plan(topology, live, now=NOW)


def test_an_opted_in_bucket_storage_change_is_a_migrate_of_the_bucket_without_data_loss() -> None:
    plan = plan_of(kv(storage="memory"), state(live_kv()))
    (change,) = plan.changes
    assert (change.address, change.action, change.stream) == ("kv.cfg", Action.MIGRATE, "KV_cfg")
    assert change.after is not None and change.after["storage"] == "memory"
    assert change.after["history"] == 5  # bucket settings, as a create or update carries them
    migration = change.migration
    assert migration is not None and migration["stream"] == "KV_cfg"
    assert migration["temp_stream"] == "KV_cfg_JELMORE_MIGRATE" and migration["messages"] == 1_500
    effects = " ".join(migration["effects"])
    assert "keeps all 1,500 messages" in effects and "revisions change" in effects
    assert plan.data_loss() == () and plan.errors == () and plan.summary().migrate == 1


def test_without_the_opt_in_the_bucket_is_replaced_and_its_values_lost() -> None:
    plan = plan_of(kv("recreate", storage="memory"), state(live_kv()))
    assert [c.action for c in plan.changes] == [Action.REPLACE] and plan.data_loss()


def test_an_object_store_migrates_keeping_its_chunks() -> None:
    topology = Topology(
        object_stores={
            "files": BucketSpec(
                "files", {"metadata": dict(MARK), "storage": "memory"}, replace_strategy="migrate"
            )
        }
    )
    plan = plan_of(topology, state(live_obj()))
    (change,) = plan.changes
    assert (change.address, change.action) == ("objectstore.files", Action.MIGRATE)
    assert change.migration is not None
    assert any("chunks and its meta message" in e for e in change.migration["effects"])
    assert plan.data_loss() == () and plan.errors == ()


def test_the_migration_ends_with_the_stream_a_created_bucket_gets() -> None:
    after = {"history": 5, "storage": "memory", "allow_direct": True, "metadata": dict(MARK)}
    version = (2, 15, 1)
    assert KV.migration_config("cfg", after, version) == stream_from_settings(
        "kv", "cfg", after, version
    )
    assert OBJECT_STORE.migration_config("f", {"storage": "memory"}, version)["name"] == "OBJ_f"


def test_the_copy_of_a_kv_bucket_keeps_its_history_limit_and_rollups() -> None:
    copy = temp_config(live_kv(), (2, 15, 1))
    assert (copy["max_msgs_per_subject"], copy["allow_rollup_hdrs"]) == (5, True)
    assert copy["discard"] == "old" and copy["max_bytes"] == -1


def test_migrate_on_an_in_place_bucket_change_is_a_note_at_the_bucket() -> None:
    plan = plan_of(kv(description="new"), state(live_kv()))
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    (note,) = [m for m in plan.warnings if m.kind == "note"]
    assert note.address == "kv.cfg" and "has no effect here" in note.message


def test_a_kv_mirror_cannot_be_migrated_and_the_error_names_the_bucket() -> None:
    mirror = live_kv("copy", mirror={"name": "KV_cfg"}, mirror_direct=True)
    del mirror["subjects"]
    topology = kv(name="copy", storage="memory", mirror={"name": "cfg"})
    plan = plan_of(topology, state(live_kv(), mirror))
    (error,) = [m for m in plan.errors if "it is a mirror" in m.message]
    assert error.address == "kv.copy"


def test_a_bucket_sourced_by_another_cannot_be_migrated() -> None:
    other = live_kv("agg", sources=[{"name": "KV_cfg"}])
    plan = plan_of(kv(storage="memory"), state(live_kv(), other))
    (error,) = [m for m in plan.errors if "KV_agg sources or mirrors it" in m.message]
    assert error.address == "kv.cfg"


def test_nats_server_2_12_refuses_a_bucket_migration() -> None:
    plan = plan_of(kv(storage="memory"), state(live_kv(), version="2.12.8"))
    assert [m.address for m in plan.errors if "refused on nats-server 2.12.8" in m.message] == [
        "kv.cfg"
    ]


# -- a half-done bucket migration -------------------------------------------------------------


def _temp(original: dict[str, Any]) -> LiveStream:
    name = temp_name(original["name"])
    meta = {
        META_OF: original["name"],
        META_STEP: STEP_COPIED,
        META_ORIGINAL: json.dumps(original),
        META_MESSAGES: "1500",
        META_CONSUMERS: "[]",
    }
    config = {**temp_config(original, (2, 15, 1)), "metadata": meta}
    del config["sources"]
    return LiveStream(name, config, dict(STATE))


def test_a_frozen_bucket_resumes_as_a_migrate_of_the_bucket_never_as_a_stream() -> None:
    original = live_kv()
    frozen = {**original, "subjects": [freeze_subject("KV_cfg")]}
    live = state(frozen)
    live.streams[temp_name("KV_cfg")] = _temp(original)  # type: ignore[index]
    plan = plan_of(kv(storage="memory"), live)
    (change,) = plan.changes
    assert (change.address, change.action) == ("kv.cfg", Action.MIGRATE)
    assert change.migration is not None and change.migration["resume"] is True
    assert plan.errors == () and plan.data_loss() == () and plan.unmanaged == ()
    (note,) = [m for m in plan.warnings if "copy of an interrupted migration" in m.message]
    assert note.address == "kv.cfg"
    assert "will be migrated (resume" in render_plan_text(plan)


def test_a_bucket_whose_stream_is_gone_mid_migration_resumes_and_is_not_created() -> None:
    live = state()
    live.streams[temp_name("KV_cfg")] = _temp(live_kv())  # type: ignore[index]
    plan = plan_of(kv(storage="memory"), live)
    assert [(c.address, c.action) for c in plan.changes] == [("kv.cfg", Action.MIGRATE)]


def test_a_bucket_copying_back_is_not_a_stream_and_leaving_the_topology_is_an_error() -> None:
    original = live_kv()
    copying = {**original, "storage": "memory", "sources": [{"name": temp_name("KV_cfg")}]}
    del copying["subjects"]
    live = state(copying)
    live.streams[temp_name("KV_cfg")] = _temp(original)  # type: ignore[index]
    plan = plan_of(Topology(), live)
    assert [m.address for m in plan.errors if "is being migrated" in m.message] == ["kv.cfg"]
    assert plan.changes == () and plan.unmanaged == ()


def test_a_migrated_bucket_plans_clean() -> None:
    migrated = live_kv(storage="memory")
    assert plan_of(kv(storage="memory"), state(migrated)).changes == ()


# -- views, saved plans and the topology ------------------------------------------------------


def test_the_views_show_the_bucket_migrate_and_json_round_trips() -> None:
    plan = plan_of(kv(storage="memory"), state(live_kv()))
    text = render_plan_text(plan)
    assert '~> kv "cfg" {' in text and "# kv.cfg will be migrated, keeping its messages" in text
    assert "revisions change" in text and "create-temp: create KV_cfg_JELMORE_MIGRATE" in text
    assert "1 to migrate, 0 to destroy" in text and "data loss" not in text.lower()
    assert "~> migrate" in render_plan_markdown(plan)
    assert load_plan_json(render_plan_json(plan)) == plan


def test_a_saved_bucket_migrate_passes_the_recheck() -> None:
    live = state(live_kv())
    plan = plan_of(kv(storage="memory"), live)
    check = recheck_plan(plan, live, now=NOW)
    assert check.stale == () and check.refusals == ()
    assert check.plan.changes == plan.changes


def test_a_buckets_replace_strategy_is_read_from_the_topology_and_never_sent() -> None:
    text = (
        "kv_buckets:\n  cfg:\n    storage: memory\n    jelmore:\n      replace_strategy: migrate\n"
        "object_stores:\n  files:\n    jelmore: {replace_strategy: migrate}\n"
    )
    topology, diags = parse_sources([("t.yaml", text)])
    assert diags == [] and topology is not None
    assert topology.kv_buckets["cfg"].replace_strategy == REPLACE_MIGRATE
    assert topology.object_stores["files"].replace_strategy == REPLACE_MIGRATE
    assert "jelmore" not in topology.kv_buckets["cfg"].config
    plain, _ = parse_sources([("t.yaml", "kv_buckets:\n  cfg: {}\n")])
    assert plain is not None and plain.kv_buckets["cfg"].replace_strategy == "recreate"
