"""``jelmore-infra doctor``: the preflight checks on their own, against the live servers: known
data-loss defects of the server version, servers that do not sync every write while streams are
marked ``durability: strict``, single-replica file streams where the policy asks for replicas,
and placement no server can satisfy (:mod:`jelmore_infra.preflight`)."""

from __future__ import annotations

import click

from jelmore_infra.cli.common import connection_options, make_console, short_lived
from jelmore_infra.cli.envs import env_option
from jelmore_infra.cli.plan_cmd import TOPOLOGY_OPTION
from jelmore_infra.connection import ConnectionSettings


@click.command()
@TOPOLOGY_OPTION
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when there are findings (0 when there are none, 1 on error).",
)
@connection_options
@click.pass_context
def doctor(
    ctx: click.Context,
    topology_dir: str,
    env_name: str | None,
    as_json: bool,
    detailed_exitcode: bool,
    settings: ConnectionSettings,
) -> int:
    """Warn about known server faults and risky settings for this topology."""
    short_lived()
    import json

    from jelmore_infra import preflight
    from jelmore_infra.live.jsapi import JetStreamAPI
    from jelmore_infra.render.controls import escape_controls
    from jelmore_infra.topology import load_topology
    from jelmore_infra.workflow import run, with_api

    topology = load_topology(topology_dir, env_name)

    async def read(api: JetStreamAPI) -> tuple[str, list[dict[str, object]] | None]:
        return api.identity.version, await api.server_varz()

    version, varz = run(with_api(settings, read, jetstream=False))
    found = preflight.findings(version, varz, topology)
    if as_json:
        doc = {
            "server_version": version,
            "servers_read": len(varz) if varz is not None else None,
            "findings": [
                {"topic": f.topic, "message": f.message, "source": f.source, "address": f.address}
                for f in found
            ],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        console = make_console(ctx)
        seen = f"{len(varz)} server(s)" if varz is not None else "the connected server only"
        console.print(f"Checked nats-server {version} ({seen}).", markup=False)
        if varz is None:
            console.print(
                "The servers' VARZ could not be read (it needs a system account connection): "
                "sync_interval and placement were not checked.",
                markup=False,
            )
        for f in found:
            console.print(f"! {escape_controls(f.text())}", markup=False)
        if not found:
            console.print("No findings.", markup=False)
    return 2 if detailed_exitcode and found else 0
