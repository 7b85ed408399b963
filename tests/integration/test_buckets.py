"""KV buckets and object stores on every supported server version, against real servers.

One server per version for the whole module. Buckets made the way nats.go / ``nats kv add`` make
them (their stream bodies, tests/support/bucket_configs.py) and by nats-py's own
``create_key_value`` / ``create_object_store`` are imported, planned (only their adoption), applied
(then no changes); every single-setting edit of the kitchen-sink buckets is planned as the server
behaves (in place, or a replace for ``storage``: docs/buckets.md §6) and converges. Buckets made
by apply work through nats-py's ``js.key_value()`` / ``js.object_store()``; ``limit_marker_ttl`` is
gated to 2.11; ``replicas`` scale in place on the session's 3-node cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from jelmore_infra.model import BucketSpec, Topology, parse_version
from jelmore_infra.plan import Plan
from jelmore_infra.topology import load_topology
from tests.support import bucket_configs as bc
from tests.support.cli import run_cli
from tests.support.jsapi_helpers import apply_and_check, plan_against
from tests.support.natsserver import SUPPORTED_VERSIONS, NatsCluster, NatsServer, binary_for
from tests.support.waiting import kv_key_history

pytestmark = pytest.mark.matrix

S = 1_000_000_000
#: nats.go-shaped buckets created through the raw API (the origin before its mirror and source).
GO_KEYS = ("kv_min", "kv_full", "kv_mirror", "kv_sources", "obj_min", "obj_full", "obj_natscli")
PY_KEYS = ("kv_min", "kv_full", "obj_min", "obj_full")


@pytest.fixture(scope="module", params=SUPPORTED_VERSIONS)
def server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as srv:
        yield srv


def _version(server: NatsServer) -> str:
    return Path(server.binary).parent.name


async def _raw(url: str, subject: str, body: Any = None) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        payload = b"" if body is None else json.dumps(body).encode()
        return dict(json.loads((await nc.request(subject, payload, timeout=10)).data))
    finally:
        await nc.close()


async def _create_client_buckets(url: str, version: str) -> list[str]:
    """Every nats.go-shaped and nats-py-made bucket; returns their addresses."""
    addresses: list[str] = []
    for key in GO_KEYS:
        body = bc.nats_go_request(key, version)
        reply = await _raw(url, f"$JS.API.STREAM.CREATE.{body['name']}", body)
        assert "error" not in reply, (key, reply)
        addresses.append(_address_of(body["name"]))
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for key in PY_KEYS:
            addresses.append(_address_of(await bc.create_with_nats_py(js, key, version)))
    finally:
        await nc.close()
    return sorted(addresses)


def _address_of(stream: str) -> str:
    if stream.startswith("KV_"):
        return f"kv.{stream[3:]}"
    return f"objectstore.{stream[4:]}"


def _summary(plan: Plan) -> list[tuple[str, str, list[str]]]:
    return [(c.address, c.action.value, sorted(f.path for f in c.fields)) for c in plan.changes]


def _edit(topology: Topology, address: str, field: str, value: Any) -> Topology:
    kind, name = address.split(".")
    specs = topology.kv_buckets if kind == "kv" else topology.object_stores
    config = dict(specs[name].config)
    if value is None:
        config.pop(field, None)
    else:
        config[field] = value
    edited = {**specs, name: dataclasses.replace(specs[name], config=config)}
    if kind == "kv":
        return dataclasses.replace(topology, kv_buckets=edited)
    return dataclasses.replace(topology, object_stores=edited)


def _edits(version: tuple[int, int, int]) -> list[tuple[str, str, Any, str]]:
    """(address, setting, new value, expected action) for the nats.go kitchen sinks."""
    kv, obj = "kv.gokvfull", "objectstore.goobjfull"
    edits = [
        (kv, "history", 3, "update"),
        (kv, "history", 10, "update"),
        (kv, "ttl", 30 * S, "update"),
        (kv, "ttl", 10 * 60 * S, "update"),
        (kv, "max_value_size", 4096, "update"),
        (kv, "max_bytes", 2 * 1048576, "update"),
        (kv, "compression", None, "update"),
        (kv, "description", "changed", "update"),
        (kv, "metadata", {"owner": "team-b"}, "update"),
        (kv, "republish", {"src": "$KV.gokvfull.a.>", "dest": "repub.a.>"}, "update"),
        (kv, "republish", None, "update"),
        (kv, "placement", {"cluster": "c2"}, "update"),
        (kv, "allow_direct", False, "update"),
        (kv, "storage", "file", "replace"),
        (obj, "description", "changed", "update"),
        (obj, "ttl", 30 * S, "update"),
        (obj, "max_bytes", 4 * 1048576, "update"),
        (obj, "compression", None, "update"),
        (obj, "metadata", {"owner": "team-b"}, "update"),
        (obj, "placement", None, "update"),
        (obj, "allow_direct", False, "update"),
        (obj, "storage", "file", "replace"),
    ]
    if version >= (2, 11, 0):
        edits.insert(10, (kv, "limit_marker_ttl", 10 * S, "update"))
    mirror, sourcing = "kv.gokvmirror", "kv.gokvsrc"
    edits += [
        (sourcing, "sources", [{"name": "gokvfull"}], "update"),
        (sourcing, "sources", None, "update"),
        (mirror, "mirror", {"name": "gokvmin", "filter_subject": "$KV.gokvmin.a.>"}, "replace"),
        (mirror, "mirror", None, "update" if version >= (2, 12, 0) else "replace"),
    ]
    return edits


def test_client_buckets_import_and_plan_only_their_adoption_and_every_edit_converges(
    server: NatsServer, tmp_path: Path
) -> None:
    url = server.url
    version = _version(server)
    addresses = asyncio.run(_create_client_buckets(url, version))
    out = tmp_path / "imported"
    proc = run_cli("import", "-s", url, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    topology = load_topology(out)
    adoption = asyncio.run(plan_against(url, topology))
    assert not adoption.errors, adoption.errors
    summary = _summary(adoption)
    assert sorted(a for a, _, _ in summary) == addresses
    for address, action, paths in summary:
        assert (action, paths) == ("update", ["metadata.jelmore.managed-by"]), address
    assert "unmanaged" not in {m.kind for m in adoption.messages}
    asyncio.run(apply_and_check(url, adoption))
    planned = run_cli("plan", "-s", url, "--topology", str(out), "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes." in planned.stdout

    for address, field, value, action in _edits(parse_version(version)):
        topology = _edit(topology, address, field, value)
        plan = asyncio.run(plan_against(url, topology))
        assert not plan.errors, (address, field, plan.errors)
        summary = _summary(plan)
        assert len(summary) == 1, (address, field, summary)
        got_address, got_action, paths = summary[0]
        assert (got_address, got_action) == (address, action), (field, summary)
        # removing a mirror also drops the mirror_direct the server derived for it
        extra = {"mirror_direct"} if field == "mirror" and value is None else set()
        paths = [p for p in paths if p not in extra]
        assert paths and all(p == field or p.startswith(f"{field}.") for p in paths), (
            field,
            paths,
        )
        asyncio.run(apply_and_check(url, plan))
        assert _summary(asyncio.run(plan_against(url, topology))) == [], (address, field)


async def _use_through_nats_py(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        kv = await js.key_value("made-by-apply")
        watcher = await kv.watchall()
        await kv.put("greeting", b"hello")
        await kv.put("greeting", b"hello again")
        entry = await kv.get("greeting")
        assert entry.value == b"hello again" and entry.revision == 2
        seen: list[bytes | None] = []
        deadline = asyncio.get_running_loop().time() + 10
        while len([v for v in seen if v]) < 2 and asyncio.get_running_loop().time() < deadline:
            try:
                update = await watcher.updates(timeout=1)
            except nats.errors.TimeoutError:
                continue  # polled again until the deadline
            if update is not None:
                seen.append(update.value)
        assert [v for v in seen if v] == [b"hello", b"hello again"]
        await watcher.stop()
        history = await kv_key_history(kv, "greeting")
        assert [e.value for e in history] == [b"hello", b"hello again"]
        store = await js.object_store("files-by-apply")
        payload = bytes(range(256)) * 1200  # 300 KiB: several chunks
        await store.put("report.bin", payload)
        got = await store.get("report.bin")
        assert got.data == payload
    finally:
        await nc.close()


def test_buckets_made_by_apply_work_through_nats_py(server: NatsServer, tmp_path: Path) -> None:
    url = server.url
    topo = tmp_path / "topo"
    topo.mkdir()
    (topo / "buckets.yaml").write_text(
        "kv_buckets:\n"
        "  made-by-apply:\n"
        "    description: Runtime settings\n"
        "    history: 5\n"
        "    ttl: 1h\n"
        "    max_value_size: 1MiB\n"
        "    max_bytes: 1GiB\n"
        "    storage: file\n"
        "    replicas: 1\n"
        "    compression: true\n"
        "object_stores:\n"
        "  files-by-apply:\n"
        "    description: Session artifacts\n"
        "    max_bytes: 10GiB\n"
        "    storage: file\n"
    )
    topology = load_topology(topo)
    assert isinstance(topology.kv_buckets["made-by-apply"], BucketSpec)
    # the module's server also holds the other test's buckets: look only at these two
    only = ("kv.made-by-apply", "objectstore.files-by-apply")
    plan = asyncio.run(plan_against(url, topology, only))
    assert _summary(plan) == [
        ("kv.made-by-apply", "create", []),
        ("objectstore.files-by-apply", "create", []),
    ]
    asyncio.run(apply_and_check(url, plan))
    assert _summary(asyncio.run(plan_against(url, topology, only))) == []
    asyncio.run(_use_through_nats_py(url))
    assert _summary(asyncio.run(plan_against(url, topology, only))) == []
    proc = run_cli("plan", "-s", url, "--topology", str(topo), "--target", "kv.made-by-apply")
    assert proc.returncode == 0, proc.stderr
    assert "No changes." in proc.stdout

    # a saved plan of a bucket edit applies through the CLI (staleness and gates re-diff it)
    text = (topo / "buckets.yaml").read_text().replace("history: 5", "history: 1")
    (topo / "buckets.yaml").write_text(text)
    saved = tmp_path / "edit.plan"
    target = ("--target", "kv.made-by-apply")
    proc = run_cli("plan", "-s", url, "--topology", str(topo), *target, "-out", str(saved))
    assert proc.returncode == 0, proc.stderr
    assert 'kv "made-by-apply"' in proc.stdout and "history" in proc.stdout
    assert "at least 1 of 2 stored revisions (1 key)" in proc.stdout  # greeting's older one
    proc = run_cli("apply", "-s", url, str(saved), "--auto-approve", "--allow-data-loss")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = run_cli("plan", "-s", url, "--topology", str(topo), *target, "--detailed-exitcode")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_limit_markers_are_gated_to_2_11_and_turn_message_ttls_on(server: NatsServer) -> None:
    url = server.url
    spec = BucketSpec("markers", {"metadata": {"jelmore.managed-by": "jelmore-infra"}})
    spec = dataclasses.replace(spec, config={**spec.config, "limit_marker_ttl": 5 * S})
    topology = Topology(kv_buckets={"markers": spec})
    plan = asyncio.run(plan_against(url, topology, ("kv.markers",)))
    if parse_version(_version(server)) < (2, 11, 0):
        assert [(m.kind, m.field) for m in plan.errors] == [
            ("needs-newer-server", "limit_marker_ttl")
        ]
        return
    assert not plan.errors and _summary(plan) == [("kv.markers", "create", [])]
    asyncio.run(apply_and_check(url, plan))
    stored = asyncio.run(_raw(url, "$JS.API.STREAM.INFO.KV_markers"))["config"]
    assert stored["allow_msg_ttl"] is True and stored["subject_delete_marker_ttl"] == 5 * S
    assert _summary(asyncio.run(plan_against(url, topology, ("kv.markers",)))) == []


def test_kv_replicas_scale_in_place_in_a_cluster_and_keep_the_values(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    url = nats_cluster.url
    timeout = ("--timeout", "30")  # raft-replicated creates on a busy 2-core machine
    topo = tmp_path / "topo"
    topo.mkdir()
    (topo / "b.yaml").write_text("kv_buckets:\n  scaled:\n    history: 2\n    replicas: 3\n")
    done = run_cli("apply", "-s", url, "--topology", str(topo), "--auto-approve", *timeout)
    assert done.returncode == 0, done.stdout + done.stderr

    async def put_and_get(value: bytes | None) -> bytes | None:
        """Poll until the replicated bucket answers (a young stream may still elect a leader)."""
        nc = await nats.connect(nats_cluster.urls)
        deadline = asyncio.get_running_loop().time() + 30
        try:
            while True:
                try:
                    kv = await nc.jetstream(timeout=10).key_value("scaled")
                    if value is not None:
                        await kv.put("k", value)
                    return (await kv.get("k")).value
                except nats.errors.Error:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    assert asyncio.run(put_and_get(b"kept")) == b"kept"
    (topo / "b.yaml").write_text("kv_buckets:\n  scaled:\n    history: 2\n    replicas: 1\n")
    scaled = run_cli("plan", "-s", url, "--topology", str(topo), *timeout)
    assert "~ replicas = 3 → 1" in scaled.stdout, scaled.stdout + scaled.stderr
    assert "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy." in scaled.stdout
    done = run_cli("apply", "-s", url, "--topology", str(topo), "--auto-approve", *timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert asyncio.run(put_and_get(None)) == b"kept"
    again = run_cli("plan", "-s", url, "--topology", str(topo), "--detailed-exitcode", *timeout)
    assert again.returncode == 0, again.stdout + again.stderr
    asyncio.run(_raw(nats_cluster.urls[0], "$JS.API.STREAM.DELETE.KV_scaled"))
