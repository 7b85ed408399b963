"""The version matrix: on every supported nats-server version, a kitchen-sink live state that sets
every field the version knows is imported, planned (only the adoption: a metadata-only update per
resource; after apply, no changes), drifted field by field (the plan shows exactly that field, in
place, and apply reverts it), and edited with replace-forcing changes (the plan names the field,
apply converges). The Jelmore topology is applied from empty too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from jelmore_infra.model import ConsumerSpec, StreamSpec, Topology, parse_version
from jelmore_infra.plan import Action, Plan
from jelmore_infra.topology import load_topology
from tests.support import kitchen_sink as ks
from tests.support.cli import TOPOLOGY, run_cli
from tests.support.jsapi_helpers import apply_and_check, plan_against
from tests.support.natsserver import SUPPORTED_VERSIONS, NatsServer, binary_for

pytestmark = pytest.mark.matrix


@pytest.fixture(scope="module", params=SUPPORTED_VERSIONS)
def versioned_server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as server:
        yield server


def _version(server: NatsServer) -> tuple[int, int, int]:
    return parse_version(Path(server.binary).parent.name)


async def _raw(url: str, subject: str, body: Any = None) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        payload = b"" if body is None else json.dumps(body).encode()
        return dict(json.loads((await nc.request(subject, payload, timeout=10)).data))
    finally:
        await nc.close()


async def _create_kitchen_sink(url: str, version: tuple[int, int, int]) -> None:
    for config in ks.streams(version):
        reply = await _raw(url, f"$JS.API.STREAM.CREATE.{config['name']}", config)
        assert "error" not in reply, reply
    for stream, config in ks.consumers(version):
        body = {"stream_name": stream, "config": config, "action": "create"}
        reply = await _raw(url, f"$JS.API.CONSUMER.CREATE.{stream}.{config['durable_name']}", body)
        assert "error" not in reply, reply


def _edit(topology: Topology, address: str, field: str, value: Any) -> Topology:
    parts = address.split(".")
    if parts[0] == "stream":
        spec = topology.streams[parts[1]]
        config = {**spec.config, field: value}
        streams = {**topology.streams, parts[1]: dataclasses.replace(spec, config=config)}
        return Topology(streams=streams, consumers=topology.consumers)
    key = (parts[1], parts[2])
    cspec: ConsumerSpec = topology.consumers[key]
    cconfig = {**cspec.config, field: value}
    if value is None:
        cconfig.pop(field)
    consumers = {**topology.consumers, key: dataclasses.replace(cspec, config=cconfig)}
    return Topology(streams=topology.streams, consumers=consumers)


def _summary(plan: Plan) -> list[tuple[str, str, list[str]]]:
    return [(c.address, c.action.value, sorted(f.path for f in c.fields)) for c in plan.changes]


def test_jelmore_topology_applies_from_empty_and_then_plans_no_changes(
    versioned_server: NatsServer,
) -> None:
    topology = load_topology(TOPOLOGY)
    url = versioned_server.url
    first = asyncio.run(plan_against(url, topology))
    assert first.summary().add == 16 and not first.errors, first.messages  # 8 + 8 event types
    asyncio.run(apply_and_check(url, first))
    again = asyncio.run(plan_against(url, topology))
    assert _summary(again) == []
    for name in [*topology.streams, "KV_jelmore-catalogue"]:  # leave the shared server to the
        asyncio.run(_raw(url, f"$JS.API.STREAM.DELETE.{name}"))  # kitchen-sink tests


def test_kitchen_sink_imports_and_plans_only_its_adoption_then_each_drift_is_one_in_place_field(
    versioned_server: NatsServer, tmp_path: Path
) -> None:
    url = versioned_server.url
    version = _version(versioned_server)
    asyncio.run(_create_kitchen_sink(url, version))
    names = [s["name"] for s in ks.streams(version)]
    out = tmp_path / "imported"
    proc = run_cli("import", "-s", url, "-o", str(out), *names)
    assert proc.returncode == 0, proc.stderr
    for name in names:
        assert (out / f"{name}.yaml").exists()
    topology = load_topology(out)
    adoption = asyncio.run(plan_against(url, topology))
    assert not adoption.errors, adoption.errors
    expected = {f"stream.{n}" for n in names} | {
        f"consumer.{stream}.{c['durable_name']}" for stream, c in ks.consumers(version)
    }
    assert {c.address for c in adoption.changes} == expected
    for address, action, paths in _summary(adoption):
        assert (action, paths) == ("update", ["metadata.jelmore.managed-by"]), address
    asyncio.run(apply_and_check(url, adoption))
    planned = run_cli("plan", "-s", url, "--topology", str(out), "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes." in planned.stdout

    for address, field, value in ks.in_place_edits(version):
        parts = address.split(".")
        if parts[0] == "stream":
            info = asyncio.run(_raw(url, f"$JS.API.STREAM.INFO.{parts[1]}"))
            config = {**info["config"], field: value}
            reply = asyncio.run(_raw(url, f"$JS.API.STREAM.UPDATE.{parts[1]}", config))
        else:
            info = asyncio.run(_raw(url, f"$JS.API.CONSUMER.INFO.{parts[1]}.{parts[2]}"))
            config = {**info["config"], field: value}
            body = {"stream_name": parts[1], "config": config, "action": "update"}
            reply = asyncio.run(_raw(url, f"$JS.API.CONSUMER.CREATE.{parts[1]}.{parts[2]}", body))
        assert "error" not in reply, (address, field, reply)
        plan = asyncio.run(plan_against(url, topology))
        assert not plan.errors, (address, field, plan.errors)
        summary = _summary(plan)
        assert len(summary) == 1, (address, field, summary)
        got_address, action, paths = summary[0]
        assert (got_address, action) == (address, "update"), (field, summary)
        assert paths and all(p == field or p.startswith(f"{field}.") for p in paths), (
            field,
            paths,
        )
        asyncio.run(apply_and_check(url, plan))
        assert _summary(asyncio.run(plan_against(url, topology))) == [], (address, field)


def _replace_edits(version: tuple[int, int, int]) -> list[tuple[str, str, Any]]:
    edits: list[tuple[str, str, Any]] = [
        ("stream.KS_WQ", "storage", "memory"),
        ("stream.KS_WQ", "retention", "limits"),
        ("stream.KS_INTEREST", "first_seq", 500),
        ("stream.KS_MIRROR", "mirror", {"name": "KS_LIMITS", "filter_subject": "ks.limits.a.>"}),
        ("consumer.KS_LIMITS.last_msg", "deliver_policy", "new"),
        ("consumer.KS_LIMITS.last_msg", "ack_policy", "all"),
        ("consumer.KS_LIMITS.last_msg", "replay_policy", "original"),
        ("consumer.KS_LIMITS.last_msg", "max_waiting", 64),
        ("consumer.KS_LIMITS.last_msg", "mem_storage", True),
        ("consumer.KS_LIMITS.push_all", "idle_heartbeat", 10 * ks.S),
        ("consumer.KS_LIMITS.push_all", "flow_control", False),
    ]
    if version < (2, 12, 5):
        edits.append(("stream.KS_LIMITS", "max_consumers", 30))
    if version >= (2, 12, 0):
        edits.append(("stream.KS_FEATURES", "persist_mode", None))
    return edits


def test_replace_forcing_edits_name_the_field_and_apply_converges(
    versioned_server: NatsServer, tmp_path: Path
) -> None:
    url = versioned_server.url
    version = _version(versioned_server)
    names = [s["name"] for s in ks.streams(version)]
    out = tmp_path / "imported"
    if not asyncio.run(_raw(url, "$JS.API.STREAM.INFO.KS_LIMITS")).get("config"):
        asyncio.run(_create_kitchen_sink(url, version))
    proc = run_cli("import", "-s", url, "-o", str(out), *names)
    assert proc.returncode == 0, proc.stderr
    base = load_topology(out)
    for address, field, value in _replace_edits(version):
        topology = (
            _edit(base, address, field, value) if value is not None else _drop(base, address, field)
        )
        plan = asyncio.run(plan_against(url, topology))
        assert not plan.errors, (address, field, plan.errors)
        change = next(c for c in plan.changes if c.address == address)
        assert change.action is Action.REPLACE, (address, field, _summary(plan))
        assert any(f.forces_replace and f.path.split(".")[0] == field for f in change.fields), (
            address,
            field,
            [(f.path, f.forces_replace) for f in change.fields],
        )
        assert any(field in reason for reason in change.replace_reasons)
        asyncio.run(apply_and_check(url, plan))
        assert _summary(asyncio.run(plan_against(url, topology))) == [], (address, field)
        base = topology


def _drop(topology: Topology, address: str, field: str) -> Topology:
    parts = address.split(".")
    spec: StreamSpec = topology.streams[parts[1]]
    config = {k: v for k, v in spec.config.items() if k != field}
    streams = {**topology.streams, parts[1]: dataclasses.replace(spec, config=config)}
    return Topology(streams=streams, consumers=topology.consumers)


def test_turning_off_a_one_way_flag_is_a_plan_error_not_a_failed_apply(
    versioned_server: NatsServer, tmp_path: Path
) -> None:
    url = versioned_server.url
    version = _version(versioned_server)
    if not asyncio.run(_raw(url, "$JS.API.STREAM.INFO.KS_LIMITS")).get("config"):
        asyncio.run(_create_kitchen_sink(url, version))
    out = tmp_path / "imported"
    assert run_cli("import", "-s", url, "-o", str(out), "KS_LIMITS").returncode == 0
    topology = _edit(load_topology(out), "stream.KS_LIMITS", "deny_delete", False)
    plan = asyncio.run(plan_against(url, topology))
    errors = [m for m in plan.errors if m.kind == "one-way"]
    assert errors and errors[0].address == "stream.KS_LIMITS" and errors[0].field == "deny_delete"


def test_fields_newer_than_the_server_are_plan_errors_naming_the_versions(
    versioned_server: NatsServer,
) -> None:
    version = _version(versioned_server)
    topology = load_topology(TOPOLOGY)
    # On 2.14+ every field is known, but template_owner was removed: also a plan error.
    field, value, needed = {
        (2, 10): ("allow_msg_ttl", True, "2.11"),
        (2, 11): ("allow_atomic", True, "2.12"),
        (2, 12): ("allow_batched", True, "2.14"),
    }.get(version[:2], ("template_owner", "TEMPLATE", "2.14"))
    plan = asyncio.run(
        plan_against(versioned_server.url, _edit(topology, "stream.JELMORE", field, value))
    )
    errors = [m for m in plan.errors if m.kind == "needs-newer-server"]
    assert errors, plan.messages
    assert field in errors[0].message and needed in errors[0].message
    assert ".".join(map(str, version)) in errors[0].message
