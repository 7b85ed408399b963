"""``jelmore-infra validate`` (offline checks of topology files) and ``jelmore-infra schema``.

``validate`` prints the problems as ``FILE:LINE:COL: error: message`` on stderr, sorted, with a
count line, and exits 1; on success it prints one summary line and exits 0. Of each kind of problem
(the same message about different names) the first ``--limit`` are printed, then one line counts
the rest. ``--json`` prints one JSON document on stdout instead, with every diagnostic and the same
exit codes. Nothing here touches the network.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from jelmore_infra.cli.common import note, short_lived
from jelmore_infra.cli.envs import env_option
from jelmore_infra.cli.plan_cmd import TOPOLOGY_OPTION
from jelmore_infra.diagnostics import PER_KIND, Diagnostic, capped_lines


def _display_dir(directory: str) -> str:
    return directory if directory.endswith(("/", "\\")) else directory + "/"


def _use_color(ctx: click.Context) -> bool:
    root = ctx.find_root()
    no_color = bool(root.obj and root.obj.get("no_color"))
    return not no_color and sys.stderr.isatty()


def _format(diag: Diagnostic, color: bool) -> str:
    from jelmore_infra.render.controls import escape_controls

    if not color:
        return escape_controls(diag.format())
    where = f"{click.style(str(diag.location), bold=True)}: " if diag.location else ""
    severity = click.style(diag.severity, fg="red" if diag.severity == "error" else "yellow")
    return f"{where}{severity}: {escape_controls(diag.message)}"


@click.command()
@TOPOLOGY_OPTION
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (every problem)."
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=PER_KIND,
    show_default=True,
    metavar="N",
    help="Print at most N problems of each kind, then count the rest (0: print all).",
)
@env_option
@click.option(
    "--all-envs",
    is_flag=True,
    help="Check the topology alone and with each environment of environments/.",
)
@click.pass_context
def validate(
    ctx: click.Context,
    topology_dir: str,
    as_json: bool,
    limit: int,
    env_name: str | None,
    all_envs: bool,
) -> int:
    """Check topology files offline: schema and semantic checks, every problem at once."""
    short_lived()
    from jelmore_infra.topology import check_topology
    from jelmore_infra.topology.load import environment_names

    if all_envs and env_name:
        raise click.UsageError("choose one of --env and --all-envs")
    envs: list[str | None] = [env_name]
    if all_envs:
        envs = [None, *environment_names(topology_dir)]
    docs = []
    failed = False
    for env in envs:
        topology, diags = check_topology(topology_dir, env)
        failed = failed or topology is None
        doc = _document(topology, diags)
        if env is not None:
            doc = {"environment": env, **doc}
        docs.append((env, topology, diags, doc))
    if as_json:
        import json

        out = (
            docs[0][3]
            if not all_envs
            else {"valid": not failed, "environments": [d for *_, d in docs]}
        )
        click.echo(json.dumps(out, indent=2))
        if failed:
            ctx.exit(1)
        return 0
    shown = _display_dir(topology_dir)
    color = _use_color(ctx)
    for env, topology, diags, doc in docs:
        where = f"{shown} ({env})" if env else shown
        errors = [d for d in diags if d.severity == "error"]
        if topology is None and len(errors) == 1 and errors[0].location is None and not all_envs:
            # the directory itself is the problem: one line, like every other CLI error
            from jelmore_infra.render.controls import escape_controls

            click.echo(f"Error: {escape_controls(errors[0].message)}", err=True)
            ctx.exit(1)
        for line in capped_lines(diags, limit, lambda d: _format(d, color)):
            click.echo(line, err=True)
        if topology is None:
            count = len(errors)
            click.echo(f"{where} is invalid: {count:,} error{'s' if count != 1 else ''}.", err=True)
            continue
        words = {"kv_buckets": "KV bucket", "object_stores": "object store", "events": "event type"}
        parts = [
            f"{doc['streams']} stream{'s' if doc['streams'] != 1 else ''}",
            f"{doc['consumer_groups']} consumer group{'s' if doc['consumer_groups'] != 1 else ''}",
            *(f"{doc[k]} {w}{'s' if doc[k] != 1 else ''}" for k, w in words.items() if doc[k]),
        ]
        note(f"{where} is valid: {', '.join(parts)}.", err=False)
    if failed:
        ctx.exit(1)
    return 0


def _document(topology: Any, diags: list[Any]) -> dict[str, Any]:
    """What ``--json`` prints for one topology (or one environment of it)."""
    return {
        "valid": topology is not None,
        "diagnostics": [d.to_dict() for d in diags],
        "streams": len(topology.streams) if topology else 0,
        "consumer_groups": len(topology.consumers) if topology else 0,
        "kv_buckets": len(topology.kv_buckets) if topology else 0,
        "object_stores": len(topology.object_stores) if topology else 0,
        "events": len(topology.events) if topology else 0,
    }


@click.command()
def schema() -> int:
    """Print the JSON Schema of topology files (for editors and CI checks)."""
    from jelmore_infra.topology.schema import schema_text

    click.echo(schema_text(), nl=False)
    return 0
