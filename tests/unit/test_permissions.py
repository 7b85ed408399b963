"""Least-privilege permissions derived from a topology (``jelmore-infra permissions``).

The roles are derived from the repository's topology (and small ones written here) without a
server; tests/integration/test_permissions.py installs the generated configuration on real
servers and shows each role doing its job and nothing else.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from jelmore_infra.connection import resolve_settings
from jelmore_infra.permissions import (
    PermissionOptions,
    Role,
    RoleError,
    derive_roles,
    select_role,
)
from jelmore_infra.render.permissions import (
    permission_json,
    render_json,
    render_nsc,
    render_server_config,
    variable_names,
)
from jelmore_infra.topology import load_topology
from tests.support.cli import TOPOLOGY, assert_clean_error, run_cli
from tests.unit.test_cli_conventions import modules_loaded_by

GROUPS = ("file_watchers", "git_monitors", "session_handlers", "system_monitors")
WRITES = ("CREATE", "UPDATE", "DELETE", "PURGE")


@pytest.fixture(scope="module")
def roles() -> dict[str, Role]:
    return {r.name: r for r in derive_roles(load_topology(TOPOLOGY))}


def pub(role: Role) -> list[str]:
    return role.publish.allowed


def test_the_repository_topology_has_one_role_per_event_type_and_consumer_group(
    roles: dict[str, Role],
) -> None:
    events = sorted(load_topology(TOPOLOGY).events)
    assert list(roles) == [
        "publisher",
        *(f"publisher:{t}" for t in events),
        *(f"worker:{g}" for g in GROUPS),
        "router",
        "planner",
        "applier",
        "operator",
    ]


def test_a_publisher_publishes_event_subjects_and_reads_only_what_publishing_needs(
    roles: dict[str, Role],
) -> None:
    publisher = roles["publisher"]
    events = [s for s in pub(publisher) if not s.startswith("$")]
    assert sorted(events) == sorted(e.subject for e in load_topology(TOPOLOGY).events.values())
    api = [s for s in pub(publisher) if s.startswith("$")]
    assert api == [
        "$JS.API.STREAM.INFO.KV_jelmore-catalogue",
        "$JS.API.STREAM.MSG.GET.KV_jelmore-catalogue",
        "$JS.API.STREAM.NAMES",
        "$JS.API.STREAM.INFO.JELMORE",
    ]
    assert publisher.subscribe.allowed == ["_INBOX.>", "$KV.jelmore-catalogue.>"]
    one = roles["publisher:session.created"]
    assert [s for s in pub(one) if not s.startswith("$")] == ["jelmore.session.created"]


@pytest.mark.parametrize("group", GROUPS)
def test_a_worker_touches_its_own_durable_and_dead_letter_subject_and_nothing_of_other_groups(
    roles: dict[str, Role], group: str
) -> None:
    worker = roles[f"worker:{group}"]
    subjects = pub(worker)
    assert f"$JS.API.CONSUMER.MSG.NEXT.JELMORE.{group}" in subjects
    assert f"$JS.ACK.JELMORE.{group}.>" in subjects
    assert f"$JS.API.CONSUMER.INFO.JELMORE.{group}" in subjects
    assert f"jelmore.dlq.{group}.>" in subjects
    for other in GROUPS:
        if other != group:
            assert not [s for s in subjects if other in s], other
    assert not [s for s in subjects if "*" in s or s.startswith("jelmore.session")]
    assert not [s for s in subjects if any(f".{w}." in s for w in WRITES)]
    assert not [s for s in subjects if "ADVISORIES" in s]


def test_the_router_alone_reads_every_group_and_writes_every_dead_letter_subject(
    roles: dict[str, Role],
) -> None:
    router = pub(roles["router"])
    for group in GROUPS:
        assert f"$JS.API.CONSUMER.INFO.JELMORE.{group}" in router
        assert f"jelmore.dlq.{group}.>" in router
        assert f"$JS.API.CONSUMER.MSG.NEXT.JELMORE.{group}" not in router
    assert "$JS.API.CONSUMER.MSG.NEXT.JELMORE_ADVISORIES.dlq_router" in router
    assert "$JS.ACK.JELMORE_ADVISORIES.dlq_router.>" in router
    assert "$JS.API.STREAM.MSG.GET.JELMORE" in router
    assert not [s for s in router if s.startswith("jelmore.session")]


def test_the_planner_reads_and_never_writes_nor_locks(roles: dict[str, Role]) -> None:
    planner = roles["planner"]
    assert pub(planner) == [
        "$JS.API.INFO",
        "$SYS.REQ.USER.INFO",
        "$JS.API.STREAM.NAMES",
        "$JS.API.STREAM.LIST",
        "$JS.API.STREAM.INFO.*",
        "$JS.API.CONSUMER.NAMES.*",
        "$JS.API.CONSUMER.LIST.*",
        "$JS.API.CONSUMER.INFO.*.*",
        "$JS.API.STREAM.MSG.GET.KV_jelmore-catalogue",
    ]
    assert planner.subscribe.allowed == ["_INBOX.>"]


def test_the_applier_may_do_what_the_planner_may_plus_the_topologys_writes_and_the_lock(
    roles: dict[str, Role],
) -> None:
    applier = pub(roles["applier"])
    assert set(pub(roles["planner"])) <= set(applier)
    for stream in ("JELMORE", "JELMORE_DLQ", "JELMORE_ADVISORIES"):
        for action in ("CREATE", "UPDATE", "DELETE"):
            assert f"$JS.API.STREAM.{action}.{stream}" in applier
    for group in (*GROUPS, "dlq_router"):
        stream = "JELMORE_ADVISORIES" if group == "dlq_router" else "JELMORE"
        assert f"$JS.API.CONSUMER.CREATE.{stream}.{group}" in applier
    assert "$KV.jelmore-infra-locks.apply" in applier
    assert "$JS.API.STREAM.PURGE.KV_jelmore-infra-locks" in applier
    assert "$KV.jelmore-catalogue.>" in applier
    assert "jelmore-infra.audit.>" in applier
    assert "$JS.API.STREAM.CREATE.JELMORE_INFRA_AUDIT" in applier
    # no stream beyond the topology's own, no data, no events
    assert "$JS.API.STREAM.CREATE.*" not in applier
    assert "$JS.API.STREAM.PURGE.JELMORE" not in applier
    assert not [s for s in applier if "MSG.NEXT" in s or s.startswith("jelmore.session")]
    assert "$JS.API.STREAM.MSG.GET.JELMORE" not in applier


def test_the_operator_replays_through_its_own_consumers_and_is_denied_the_groups_durables(
    roles: dict[str, Role],
) -> None:
    operator = roles["operator"]
    assert "$JS.API.CONSUMER.CREATE.JELMORE.*" in pub(operator)
    assert "$JS.API.STREAM.MSG.DELETE.JELMORE_DLQ" in pub(operator)
    for group in GROUPS:
        for action in ("CREATE", "MSG.NEXT", "DELETE"):
            assert f"$JS.API.CONSUMER.{action}.JELMORE.{group}" in operator.publish.denied
    assert not [s for s in pub(operator) if s.startswith("$JS.ACK")]
    assert not [s for s in pub(operator) if any(f"STREAM.{w}." in s for w in WRITES)]


def test_an_inbox_prefix_with_role_gives_each_role_an_inbox_space_of_its_own() -> None:
    topology = load_topology(TOPOLOGY)
    roles = derive_roles(topology, PermissionOptions(inbox_prefix="_INBOX_{role}"))
    worker = select_role(roles, "worker:file_watchers")
    assert worker.inbox == "_INBOX_worker_file_watchers"
    assert worker.subscribe.allowed[0] == "_INBOX_worker_file_watchers.>"
    inboxes = {r.inbox for r in roles}
    assert len(inboxes) == len(roles)
    with pytest.raises(RoleError, match="not a subject without wildcards"):
        derive_roles(topology, PermissionOptions(inbox_prefix="_INBOX.*"))


def test_a_jetstream_domain_changes_the_api_subjects_but_not_acks_or_buckets() -> None:
    roles = derive_roles(load_topology(TOPOLOGY), PermissionOptions(js_domain="hub"))
    worker = select_role(roles, "worker:git_monitors")
    assert "$JS.hub.API.CONSUMER.MSG.NEXT.JELMORE.git_monitors" in pub(worker)
    assert "$JS.ACK.JELMORE.git_monitors.>" in pub(worker)
    assert not [s for r in roles for s in pub(r) if s.startswith("$JS.API.")]
    with pytest.raises(RoleError, match="domain"):
        derive_roles(load_topology(TOPOLOGY), PermissionOptions(js_domain="a.b"))


def test_buckets_and_migrating_streams_get_their_streams_and_migration_copies(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.yaml").write_text(
        "streams:\n"
        "  ORDERS:\n"
        "    subjects: [orders.>]\n"
        "    jelmore: {replace_strategy: migrate}\n"
        "kv_buckets:\n"
        "  settings: {history: 5}\n"
        "object_stores:\n"
        "  blobs: {}\n"
    )
    roles = derive_roles(load_topology(tmp_path))
    assert [r.name for r in roles] == ["planner", "applier", "operator"]
    applier = pub(select_role(roles, "applier"))
    for stream in ("ORDERS", "ORDERS_JELMORE_MIGRATE", "KV_settings", "OBJ_blobs"):
        assert f"$JS.API.STREAM.CREATE.{stream}" in applier
    assert "$JS.API.STREAM.MSG.GET.ORDERS" in applier  # verifying the copies
    assert "$JS.API.CONSUMER.CREATE.ORDERS" in applier  # counting what is left to copy
    assert "$JS.API.STREAM.CREATE.KV_settings_JELMORE_MIGRATE" not in applier


def test_a_role_not_in_the_topology_is_a_one_line_error_naming_the_roles(
    roles: dict[str, Role],
) -> None:
    with pytest.raises(RoleError) as caught:
        select_role(roles.values(), "worker:nope")
    assert str(caught.value).startswith("role 'worker:nope' is not in the topology (its roles: ")
    assert "worker:file_watchers" in str(caught.value)


# -- the formats ----------------------------------------------------------------------------------


def test_server_config_variables_are_prefixed_so_no_role_reads_as_a_server_setting(
    roles: dict[str, Role],
) -> None:
    names = variable_names(list(roles.values()))
    assert names["operator"] == "JELMORE_OPERATOR"  # plain OPERATOR is the server's `operator`
    assert names["worker:file_watchers"] == "JELMORE_WORKER_FILE_WATCHERS"
    assert names["publisher:session.created"] == "JELMORE_PUBLISHER_SESSION_CREATED"
    twins = [Role("a.b", "", roles["planner"].publish, roles["planner"].subscribe, "_INBOX")]
    twins.append(Role("a_b", "", roles["planner"].publish, roles["planner"].subscribe, "_INBOX"))
    assert list(variable_names(twins).values()) == ["JELMORE_A_B", "JELMORE_A_B_2"]


def test_server_config_is_one_variable_per_role_with_quoted_subjects_and_reasons(
    roles: dict[str, Role],
) -> None:
    text = render_server_config([roles["planner"], roles["operator"]], source="topology/")
    assert "JELMORE_PLANNER = {" in text and "JELMORE_OPERATOR = {" in text
    assert '      "$JS.API.STREAM.LIST",' in text
    assert "    deny: [" in text
    assert "# planner: CI on pull requests" in text
    assert "permissions: $JELMORE_PLANNER" in text


def test_json_is_the_jwt_user_permissions_of_one_role_or_of_each_role_by_name(
    roles: dict[str, Role],
) -> None:
    planner = json.loads(render_json([roles["planner"]], single=True))
    assert set(planner) == {"pub", "sub"}
    assert "deny" not in planner["pub"]
    assert planner["sub"] == {"allow": ["_INBOX.>"]}
    both = json.loads(render_json([roles["planner"], roles["operator"]]))
    assert list(both) == ["planner", "operator"]
    assert both["operator"] == permission_json(roles["operator"])
    assert "$JS.API.CONSUMER.MSG.NEXT.JELMORE.git_monitors" in both["operator"]["pub"]["deny"]


def test_nsc_commands_quote_every_subject_for_the_shell(roles: dict[str, Role]) -> None:
    text = render_nsc([roles["operator"]])
    command = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    args = shlex.split(command.replace("\\\n", " "))
    assert args[:5] == ["nsc", "add", "user", "--name", "jelmore-operator"]
    pairs = list(zip(args[5::2], args[6::2], strict=True))
    assert ("--allow-pub", "$JS.API.CONSUMER.CREATE.JELMORE.*") in pairs
    assert ("--deny-pub", "$JS.API.CONSUMER.DELETE.JELMORE.file_watchers") in pairs
    assert ("--allow-sub", "_INBOX.>") in pairs


# -- the command ----------------------------------------------------------------------------------


def test_the_command_prints_one_role_in_each_format() -> None:
    config = run_cli("permissions", "--role", "worker:git_monitors")
    assert config.returncode == 0, config.stderr
    assert "JELMORE_WORKER_GIT_MONITORS = {" in config.stdout
    assert "JELMORE_WORKER_FILE_WATCHERS" not in config.stdout
    as_json = run_cli("permissions", "--role", "planner", "--format", "json")
    assert json.loads(as_json.stdout)["sub"] == {"allow": ["_INBOX.>"]}
    nsc = run_cli("permissions", "--role", "router", "--format", "nsc")
    assert "nsc add user --name jelmore-router" in nsc.stdout


def test_the_command_reads_an_environment_overlay(tmp_path: Path) -> None:
    topology = tmp_path / "topology"
    (topology / "environments").mkdir(parents=True)
    (topology / "t.yaml").write_text("streams:\n  S:\n    subjects: [s.>]\n")
    (topology / "environments" / "big.yaml").write_text("streams:\n  T:\n    subjects: [t.>]\n")
    plain = run_cli("permissions", "--topology", str(topology), "--role", "applier")
    assert "STREAM.CREATE.T" not in plain.stdout
    big = run_cli("permissions", "--topology", str(topology), "--env", "big", "--role", "applier")
    assert big.returncode == 0, big.stderr
    assert '"$JS.API.STREAM.CREATE.T",' in big.stdout
    assert "(environment big)" in big.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "worker:nope"), "role 'worker:nope' is not in the topology"),
        (("--inbox-prefix", "_INBOX.>"), "inbox prefix '_INBOX.>' is not a subject"),
        (("--env", "nowhere"), "nowhere"),
    ],
)
def test_bad_input_is_a_one_line_error(args: tuple[str, ...], message: str) -> None:
    proc = run_cli("permissions", *args)
    assert_clean_error(proc)
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_loads_no_heavy_module() -> None:
    assert modules_loaded_by("permissions", "--help") == []


def test_a_nats_context_can_name_the_inbox_prefix_a_role_connects_with(tmp_path: Path) -> None:
    context = tmp_path / "worker.json"
    context.write_text(json.dumps({"url": "nats://x:4222", "inbox_prefix": "_INBOX_worker_a"}))
    settings = resolve_settings(url=None, context=str(context), env={})
    assert settings.inbox_prefix == "_INBOX_worker_a"
