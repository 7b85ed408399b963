"""Environments (``environments/<env>.yaml``): the overlay's merge rules, its connection and
policy blocks, bad input at file:line, and the policy's plan errors. Pure: no server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest

from jelmore_infra.diff import build_plan
from jelmore_infra.model import (
    LiveConsumer,
    LiveState,
    LiveStream,
    ServerIdentity,
    Topology,
)
from jelmore_infra.plan import Action, Plan
from jelmore_infra.render.human import render_plan_text
from jelmore_infra.render.json import load_plan_json, render_plan_json
from jelmore_infra.topology.environments import connection_values
from jelmore_infra.topology.load import (
    check_topology,
    environment_connection,
    environment_names,
    parse_sources,
)

NOW = datetime(2026, 11, 30, tzinfo=UTC)
BASE = """\
streams:
  ORDERS:
    subjects: [orders.>]
    max_age: 7d
    num_replicas: 1
    metadata: {team: a, tier: gold}
  AUDIT:
    subjects: [audit.>]
consumer_groups:
  workers:
    stream: ORDERS
    filter_subjects: [orders.created, orders.paid]
    max_deliver: 3
"""


def merged(overlay: str, env: str = "prod") -> tuple[Topology | None, list[str]]:
    topology, diags = parse_sources(
        [("base.yaml", BASE)],
        environment=(env, f"environments/{env}.yaml", dedent(overlay)),
    )
    return topology, [d.format() for d in diags]


def ok(overlay: str) -> Topology:
    topology, diags = merged(overlay)
    assert topology is not None, diags
    return topology


def test_maps_merge_deeply_and_lists_replace() -> None:
    topology = ok(
        """\
        streams:
          ORDERS:
            max_age: 30d
            metadata: {tier: platinum}
        consumer_groups:
          workers:
            filter_subjects: [orders.refunded]
        """
    )
    orders = topology.streams["ORDERS"].config
    assert orders["max_age"] == 30 * 24 * 3600 * 10**9
    assert orders["subjects"] == ["orders.>"]  # untouched
    assert orders["metadata"]["team"] == "a" and orders["metadata"]["tier"] == "platinum"
    assert topology.consumers[("ORDERS", "workers")].config["filter_subjects"] == [
        "orders.refunded"
    ]
    assert topology.environment == "prod"


def test_null_removes_a_setting_so_the_server_default_applies() -> None:
    topology = ok("streams:\n  ORDERS:\n    max_age: null\n")
    assert "max_age" not in topology.streams["ORDERS"].config


def test_name_null_removes_a_base_resource_in_that_environment() -> None:
    topology = ok("streams:\n  AUDIT: null\n")
    assert set(topology.streams) == {"ORDERS"}


def test_a_resource_may_exist_in_one_environment_only() -> None:
    topology = ok("streams:\n  PROD_ONLY:\n    subjects: [prod.>]\n")
    assert set(topology.streams) == {"ORDERS", "AUDIT", "PROD_ONLY"}
    base, _ = parse_sources([("base.yaml", BASE)])
    assert base is not None and "PROD_ONLY" not in base.streams and base.environment is None


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        (
            "streams:\n  ORDERS:\n    max_agee: 1d\n",
            "environments/prod.yaml:3:5: error: unknown stream setting 'max_agee' (did you mean "
            "'max_age'?)",
        ),
        (
            "consumer_groups:\n  lonely:\n    max_deliver: 2\n",
            "environments/prod.yaml:2:3: error: consumer group 'lonely' needs 'stream:'",
        ),
        (
            "policy:\n  prevent_destroy: [stream.NOPE]\n",
            "environments/prod.yaml:2:21: error: prevent_destroy names stream.NOPE, which the "
            "topology of this environment does not declare",
        ),
        (
            "policy:\n  prevent_destroy: [JELMORE]\n",
            "environments/prod.yaml:2:21: error: prevent_destroy: 'JELMORE' is not an address",
        ),
        (
            "policy:\n  min_replicas: 7\n",
            "environments/prod.yaml:2:17: error: min_replicas must be from 1 to 5, not 7",
        ),
        (
            "policy:\n  forbid_dataloss: true\n",
            "environments/prod.yaml:2:3: error: unknown policy 'forbid_dataloss' (did you mean "
            "'forbid_data_loss'?)",
        ),
        (
            "services:\n  x: 1\n",
            "environments/prod.yaml:1:1: error: an environment file cannot hold 'services'",
        ),
        (
            "connection:\n  sever: nats://x\n",
            "environments/prod.yaml:2:3: error: unknown connection setting 'sever' (did you mean "
            "'server'?)",
        ),
        (
            "streams:\n  GHOST: null\n",
            "environments/prod.yaml:2:3: error: 'GHOST: null' removes a resource, but the base "
            "topology has no stream 'GHOST'",
        ),
    ],
    ids=[
        "unknown-field",
        "incomplete-env-only-resource",
        "policy-unknown-address",
        "policy-not-an-address",
        "min-replicas-range",
        "unknown-policy",
        "unknown-top-level-key",
        "unknown-connection-key",
        "remove-what-is-not-there",
    ],
)
def test_bad_overlays_are_refused_at_the_overlays_file_and_line(
    overlay: str, expected: str
) -> None:
    topology, diags = merged(overlay)
    assert topology is None
    assert any(d.startswith(expected) for d in diags), diags


def test_connection_values_read_variables_and_never_show_them() -> None:
    topology_dir = {"server": ("${URL}", None), "creds": ("/secrets/${WHO}.creds", None)}
    values, problems = connection_values(topology_dir, {"URL": "tls://h:4222", "WHO": "ci"})  # type: ignore[arg-type]
    assert problems == [] and values == {"server": "tls://h:4222", "creds": "/secrets/ci.creds"}


def test_an_unset_variable_names_the_variable_not_a_value(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(BASE)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "prod.yaml").write_text(
        "connection:\n  server: nats://h:4222\n  password: ${PROD_PASSWORD}\n"
    )
    from jelmore_infra.errors import TopologyError

    with pytest.raises(TopologyError) as err:
        environment_connection(tmp_path, "prod", {"OTHER": "hunter2"})
    (diag,) = err.value.diagnostics
    assert diag.format().endswith(
        "prod.yaml:3:13: error: connection password reads ${PROD_PASSWORD}, which is not set in "
        "the environment"
    )
    assert environment_connection(tmp_path, "prod", {"PROD_PASSWORD": "hunter2"}) == {
        "server": "nats://h:4222",
        "password": "hunter2",
    }


def test_an_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(BASE)
    (tmp_path / "environments").mkdir()
    for env in ("staging", "prod"):
        (tmp_path / "environments" / f"{env}.yaml").write_text("")
    assert environment_names(tmp_path) == ["prod", "staging"]
    topology, diags = check_topology(tmp_path, "qa")
    assert topology is None
    assert [d.message for d in diags] == ["unknown environment 'qa'; known: prod, staging"]


# -- the policy in the plan -----------------------------------------------------------------------

MARK = {"jelmore.managed-by": "jelmore-infra"}


def live_with(*streams: str) -> LiveState:
    server = ServerIdentity("n1", "ID", "2.15.1", 3, cluster="c1")
    found = {
        name: LiveStream(
            name,
            {"name": name, "subjects": [f"{name.lower()}.>"], "storage": "file", "metadata": MARK},
            {"messages": 10, "bytes": 1000},
        )
        for name in streams
    }
    consumers = {}
    if "ORDERS" in streams:
        config = {"durable_name": "workers", "ack_policy": "explicit", "metadata": MARK}
        consumers[("ORDERS", "workers")] = LiveConsumer("ORDERS", "workers", config)
    return LiveState(server=server, streams=found, consumers=consumers)


def plan_for(overlay: str, live: LiveState) -> Plan:
    return build_plan(ok(overlay), live, now=NOW)


def test_prevent_destroy_refuses_a_delete_and_names_the_policy_line() -> None:
    plan = plan_for(
        "policy:\n  prevent_destroy: [stream.AUDIT]\nstreams:\n  AUDIT: null\n",
        live_with("ORDERS", "AUDIT"),
    )
    assert ("stream.AUDIT", Action.DELETE) in [(c.address, c.action) for c in plan.changes]
    (error,) = [m for m in plan.errors if m.data.get("policy") == "prevent_destroy"]
    assert error.message == (
        "the plan deletes stream.AUDIT, which the policy of prod protects (prevent_destroy at "
        "environments/prod.yaml:2:21)"
    )


def test_prevent_destroy_refuses_a_replace() -> None:
    plan = plan_for(
        "policy:\n  prevent_destroy: [stream.ORDERS]\nstreams:\n  ORDERS:\n    storage: memory\n",
        live_with("ORDERS", "AUDIT"),
    )
    errors = [m for m in plan.errors if m.data.get("policy") == "prevent_destroy"]
    assert [m.address for m in errors] == ["stream.ORDERS"]
    assert errors[0].message == (
        "the plan replaces stream.ORDERS, which the policy of prod protects (prevent_destroy at "
        "environments/prod.yaml:2:21)"
    )


def test_forbid_data_loss_makes_every_data_loss_warning_an_error() -> None:
    plan = plan_for(
        "policy:\n  forbid_data_loss: true\nstreams:\n  ORDERS:\n    storage: memory\n",
        live_with("ORDERS", "AUDIT"),
    )
    loss = [m for m in plan.messages if m.kind == "data-loss" and m.severity == "warning"]
    forbidden = [m for m in plan.errors if m.data.get("policy") == "forbid_data_loss"]
    assert loss and len(forbidden) == len(loss)
    assert forbidden[0].message.startswith(
        "the policy of prod forbids data loss (forbid_data_loss at environments/prod.yaml:2:21): "
    )


def test_min_replicas_refuses_every_resource_below_it() -> None:
    plan = plan_for(
        "policy:\n  min_replicas: 3\nstreams:\n  ORDERS:\n    num_replicas: 3\n",
        live_with(),
    )
    below = sorted(m.address for m in plan.errors if m.data.get("policy") == "min_replicas")
    # AUDIT has 1; the workers group inherits ORDERS' 3
    assert below == ["stream.AUDIT"]
    (message,) = [m.message for m in plan.errors if m.address == "stream.AUDIT"]
    assert message == (
        "stream.AUDIT has 1 replica; the policy of prod asks for at least 3 (min_replicas at "
        "environments/prod.yaml:2:17)"
    )


def test_a_plan_names_its_environment_in_every_view_and_keeps_it_when_saved() -> None:
    plan = plan_for("streams:\n  ORDERS:\n    max_age: 1d\n", live_with())
    assert plan.environment == "prod"
    assert "for environment prod:" in render_plan_text(plan).splitlines()[0]
    again = load_plan_json(render_plan_json(plan))
    assert again.environment == "prod"
    assert [c.action for c in again.changes][:1] == [Action.CREATE]
