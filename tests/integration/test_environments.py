"""Environments against real servers: one topology with overlays applied to two servers (standing
for staging and prod), each policy rule refusing through the CLI, and a saved plan that only
applies in the environment it was made for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import raw
from tests.support.cli import copy_topology, run_cli
from tests.support.natsserver import NatsServer

STAGING = """\
connection:
  server: ${TEST_STAGING_URL}
streams:
  JELMORE:
    max_age: 1d
"""
PROD = """\
connection:
  server: ${TEST_PROD_URL}
policy:
  prevent_destroy: [stream.JELMORE, stream.JELMORE_DLQ]
  forbid_data_loss: true
  min_replicas: 1
streams:
  JELMORE:
    max_age: 30d
    max_msgs: 500000
"""


@pytest.fixture
def two_servers() -> Iterator[tuple[NatsServer, NatsServer]]:
    with NatsServer() as staging, NatsServer() as prod:
        yield staging, prod


def topology_with_envs(tmp_path: Path) -> Path:
    topology = copy_topology(tmp_path)
    envs = topology / "environments"
    for old in envs.glob("*.yaml"):
        old.unlink()
    (envs / "staging.yaml").write_text(STAGING)
    (envs / "prod.yaml").write_text(PROD)
    return topology


def cli(topology: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = run_cli(*args, "--topology", str(topology), env=env)
    return proc.returncode, proc.stdout, proc.stderr


def test_one_topology_applies_to_two_environments_with_their_overlays(
    two_servers: tuple[NatsServer, NatsServer], tmp_path: Path
) -> None:
    staging, prod = two_servers
    topology = topology_with_envs(tmp_path)
    env = {"TEST_STAGING_URL": staging.url, "TEST_PROD_URL": prod.url}
    for name in ("staging", "prod"):
        code, out, err = cli(topology, env, "apply", "--env", name, "--auto-approve")
        assert code == 0, out + err
        assert f"for environment {name}:" in out
    assert raw.stream_config(staging.url, "JELMORE")["max_age"] == 86_400 * 10**9
    prod_config = raw.stream_config(prod.url, "JELMORE")
    assert prod_config["max_age"] == 30 * 86_400 * 10**9
    assert prod_config["max_msgs"] == 500_000
    for name in ("staging", "prod"):  # each server now matches its environment
        code, out, err = cli(topology, env, "plan", "--env", name, "--detailed-exitcode")
        assert code == 0, out + err
    # and the other environment's view of a server is a difference
    swapped = {"TEST_STAGING_URL": prod.url, "TEST_PROD_URL": staging.url}
    code, out, _ = cli(topology, swapped, "plan", "--env", "staging", "--detailed-exitcode")
    assert code == 2 and "max_age" in out


def test_a_saved_plan_made_for_staging_is_refused_in_prod(
    two_servers: tuple[NatsServer, NatsServer], tmp_path: Path
) -> None:
    staging, _ = two_servers
    topology = topology_with_envs(tmp_path)
    env = {"TEST_STAGING_URL": staging.url, "TEST_PROD_URL": staging.url}
    saved = tmp_path / "staging.plan"
    code, out, err = cli(topology, env, "plan", "--env", "staging", "-out", str(saved))
    assert code == 0, out + err
    assert json.loads(saved.read_text())["environment"] == "staging"
    code, out, err = cli(topology, env, "apply", str(saved), "--env", "prod")
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "Error: the plan was made for environment staging, and this apply is for environment "
        "prod: plan again for this environment"
    )
    assert "JELMORE" not in raw.stream_names(staging.url)  # nothing was applied
    code, out, err = cli(topology, env, "apply", str(saved), "--env", "staging")
    assert code == 0, out + err


def test_the_policy_of_prod_refuses_destroying_losing_data_and_too_few_replicas(
    two_servers: tuple[NatsServer, NatsServer], tmp_path: Path
) -> None:
    _, prod = two_servers
    topology = topology_with_envs(tmp_path)
    env = {"TEST_STAGING_URL": prod.url, "TEST_PROD_URL": prod.url}
    code, out, err = cli(topology, env, "apply", "--env", "prod", "--auto-approve")
    assert code == 0, out + err
    prod_file = topology / "environments" / "prod.yaml"

    # prevent_destroy: replacing JELMORE_DLQ (storage cannot change in place) is refused,
    # naming the policy's line, whatever the flags
    prod_file.write_text(PROD + "  JELMORE_DLQ:\n    storage: memory\n")
    code, out, err = cli(
        topology,
        env,
        "apply",
        "--env",
        "prod",
        "--auto-approve",
        "--allow-destroy",
        "--allow-data-loss",
    )
    assert code == 1
    assert (
        "the plan replaces stream.JELMORE_DLQ, which the policy of prod protects (prevent_destroy "
        f"at {prod_file}:4:37)"
    ) in out + err
    assert raw.stream_config(prod.url, "JELMORE_DLQ")["storage"] == "file"

    # forbid_data_loss: lowering max_msgs below what is stored loses data, whatever the flags
    raw.publish(prod.url, "jelmore.session.output", 20)
    prod_file.write_text(PROD.replace("max_msgs: 500000", "max_msgs: 5"))
    code, out, err = cli(
        topology, env, "apply", "--env", "prod", "--auto-approve", "--allow-data-loss"
    )
    assert code == 1
    assert "the policy of prod forbids data loss (forbid_data_loss at" in out + err
    assert raw.stream_state(prod.url, "JELMORE")["messages"] == 20

    # min_replicas: a prod policy asking for 3 refuses every R1 resource
    prod_file.write_text(PROD.replace("min_replicas: 1", "min_replicas: 3"))
    code, out, err = cli(topology, env, "plan", "--env", "prod")
    assert code == 1
    assert (
        f"stream.JELMORE has 1 replica; the policy of prod asks for at least 3 (min_replicas at "
        f"{prod_file}:6:17)"
    ) in out + err


def test_an_environment_variable_that_is_not_set_is_named_and_nothing_connects(
    tmp_path: Path,
) -> None:
    topology = topology_with_envs(tmp_path)
    code, _, err = cli(topology, {}, "plan", "--env", "prod")
    assert code == 1
    assert "connection server reads ${TEST_PROD_URL}, which is not set in the environment" in err
    code, _, err = cli(topology, {}, "plan", "--env", "qa")
    assert code == 1
    assert err.strip() == "Error: unknown environment 'qa'; known: prod, staging"


def test_secrets_read_from_variables_never_reach_plans_or_output(tmp_path: Path) -> None:
    secret = "s3cret-from-the-ci-vault"
    with NatsServer(
        config='authorization { user: ci, password: "s3cret-from-the-ci-vault" }'
    ) as srv:
        topology = topology_with_envs(tmp_path)
        (topology / "environments" / "prod.yaml").write_text(
            "connection:\n  server: ${TEST_PROD_URL}\n  user: ci\n  password: ${TEST_PROD_PASSWORD}\n"
        )
        env = {"TEST_PROD_URL": srv.url, "TEST_PROD_PASSWORD": secret}
        saved = tmp_path / "prod.plan"
        outputs = []
        for args in (
            ("plan", "--env", "prod", "-out", str(saved)),
            ("plan", "--env", "prod", "--json"),
            ("plan", "--env", "prod", "--markdown"),
            ("apply", str(saved), "--env", "prod"),
            ("plan", "--env", "prod", "--detailed-exitcode"),
        ):
            code, out, err = cli(topology, env, *args)
            assert code == 0, out + err
            outputs.append(out + err)
        wrong = {**env, "TEST_PROD_PASSWORD": "not-" + secret}
        code, out, err = cli(topology, wrong, "plan", "--env", "prod")
        assert code == 1
        outputs.append(out + err)
    assert all(secret not in text for text in outputs)
    assert secret not in saved.read_text()
    assert "${TEST_PROD_PASSWORD}" in (topology / "environments" / "prod.yaml").read_text()
