"""``jelmore-infra permissions``: the least-privilege NATS permissions of each role, derived from
the topology (:mod:`jelmore_infra.permissions`), as nats-server configuration, JWT permission
JSON or nsc commands (:mod:`jelmore_infra.render.permissions`).

Offline: reads the topology files (with ``--env``, the environment's overlay) and nothing else.
"""

from __future__ import annotations

import click

from jelmore_infra.cli.common import short_lived
from jelmore_infra.cli.envs import env_option

FORMATS = ("server-config", "json", "nsc")


@click.command()
@click.option(
    "--topology",
    "topology_dir",
    default="topology",
    show_default=True,
    metavar="DIR",
    help="Directory of topology *.yaml files.",
)
@env_option
@click.option(
    "--role",
    "role_names",
    multiple=True,
    metavar="ROLE",
    help="Only this role (repeatable): publisher, publisher:TYPE, worker:GROUP, router, planner, "
    "applier or operator.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="server-config",
    show_default=True,
    help="nats-server config variables, JWT permission JSON, or nsc commands.",
)
@click.option(
    "--inbox-prefix",
    default="_INBOX",
    show_default=True,
    metavar="PREFIX",
    help="Inbox prefix the roles' clients use; {role} stands for the role's name "
    "(_INBOX_{role}: one inbox space per role).",
)
@click.option(
    "--js-domain",
    default=None,
    metavar="DOMAIN",
    help="JetStream domain the clients use ($JS.DOMAIN.API instead of $JS.API).",
)
def permissions(
    topology_dir: str,
    env_name: str | None,
    role_names: tuple[str, ...],
    fmt: str,
    inbox_prefix: str,
    js_domain: str | None,
) -> int:
    """Print the least-privilege permissions of each role of the topology."""
    short_lived()
    from jelmore_infra.permissions import PermissionOptions, derive_roles, select_role
    from jelmore_infra.render.permissions import render
    from jelmore_infra.topology import load_topology

    topology = load_topology(topology_dir, env_name)
    options = PermissionOptions(js_domain=js_domain, inbox_prefix=inbox_prefix)
    roles = derive_roles(topology, options)
    if role_names:
        roles = [select_role(roles, name) for name in dict.fromkeys(role_names)]
    source = topology_dir.rstrip("/") + "/" + (f" (environment {env_name})" if env_name else "")
    single = len(role_names) == 1
    click.echo(render(fmt, roles, single=single, source=source), nl=False)
    return 0
