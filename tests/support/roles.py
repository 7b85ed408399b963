"""Test servers configured from ``jelmore-infra permissions``: one user per role, with the role's
generated permissions, plus an ``admin`` user without limits (used only to look at what the roles
did). Shared by the role tests and the runtime's no-loss test under role credentials."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from tests.support.cli import copy_topology, run_cli

ADMIN = "admin"


def user_of(role: str) -> str:
    return role.replace(":", "-")


def password_of(role: str) -> str:
    return f"pw-{user_of(role)}-s3cret"


def fast_topology(tmp: Path) -> Path:
    """The repository's topology with short retry delays (a failing event reaches the DLQ in a
    moment)."""
    topology = copy_topology(tmp)
    groups = topology / "consumer_groups.yaml"
    groups.write_text(groups.read_text().replace("[2s, 4s, 8s]", "[100ms, 200ms, 400ms]"))
    return topology


def users_block(variables: dict[str, str]) -> str:
    entries = [f'{{ user: "{ADMIN}", password: "{password_of(ADMIN)}" }}']
    for role, variable in variables.items():
        entries.append(
            f'{{ user: "{user_of(role)}", password: "{password_of(role)}", '
            f"permissions: ${variable} }}"
        )
    return "authorization { users = [\n  " + ",\n  ".join(entries) + "\n] }\n"


def generated_config(
    topology: Path, roles: Sequence[str], *extra: str
) -> tuple[str, dict[str, str]]:
    """The CLI's server-config output for ``roles``, and the variable of each role."""
    args = ["permissions", "--topology", str(topology), "--format", "server-config", *extra]
    for role in roles:
        args += ["--role", role]
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    variables = {}
    lines = out.stdout.splitlines()
    for role in roles:
        at = lines.index(next(line for line in lines if line.startswith(f"# {role}: ")))
        found = next(VARIABLE.match(line) for line in lines[at:] if VARIABLE.match(line))
        assert found is not None
        variables[role] = found.group(1)
    return out.stdout, variables


VARIABLE = re.compile(r"^(JELMORE_[A-Z0-9_]+) = \{$")


def admin_url(port: int) -> str:
    return f"nats://{ADMIN}:{password_of(ADMIN)}@127.0.0.1:{port}"
