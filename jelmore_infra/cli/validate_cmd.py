"""``jelmore-infra validate`` (offline checks of topology files) and ``jelmore-infra schema``.

``validate`` prints the problems as ``FILE:LINE:COL: error: message`` on stderr, sorted, with a
count line, and exits 1; on success it prints one summary line and exits 0. Of each kind of problem
(the same message about different names) the first ``--limit`` are printed, then one line counts
the rest. ``--json`` prints one JSON document on stdout instead, with every diagnostic and the same
exit codes. Nothing here touches the network.
"""

from __future__ import annotations

import sys

import click

from jelmore_infra.cli.common import note, short_lived
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
@click.option(
    "--topology",
    "topology_dir",
    default="topology",
    show_default=True,
    metavar="DIR",
    help="Directory of topology files (*.yaml).",
)
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
@click.pass_context
def validate(ctx: click.Context, topology_dir: str, as_json: bool, limit: int) -> int:
    """Check topology files offline: schema and semantic checks, every problem at once."""
    short_lived()
    from jelmore_infra.topology import check_topology

    topology, diags = check_topology(topology_dir)
    errors = [d for d in diags if d.severity == "error"]
    streams = len(topology.streams) if topology else 0
    groups = len(topology.consumers) if topology else 0
    extra = {
        "kv_buckets": len(topology.kv_buckets) if topology else 0,
        "object_stores": len(topology.object_stores) if topology else 0,
        "events": len(topology.events) if topology else 0,
    }
    if as_json:
        import json

        doc = {
            "valid": topology is not None,
            "diagnostics": [d.to_dict() for d in diags],
            "streams": streams,
            "consumer_groups": groups,
            **extra,
        }
        click.echo(json.dumps(doc, indent=2))
        if topology is None:
            ctx.exit(1)
        return 0
    shown = _display_dir(topology_dir)
    if topology is None and len(errors) == 1 and errors[0].location is None:
        # the directory itself is the problem: one line, like every other CLI error
        from jelmore_infra.render.controls import escape_controls

        click.echo(f"Error: {escape_controls(errors[0].message)}", err=True)
        ctx.exit(1)
    color = _use_color(ctx)
    for line in capped_lines(diags, limit, lambda d: _format(d, color)):
        click.echo(line, err=True)
    if topology is None:
        count = len(errors)
        click.echo(f"{shown} is invalid: {count:,} error{'s' if count != 1 else ''}.", err=True)
        ctx.exit(1)
    words = {"kv_buckets": "KV bucket", "object_stores": "object store", "events": "event type"}
    parts = [
        f"{streams} stream{'s' if streams != 1 else ''}",
        f"{groups} consumer group{'s' if groups != 1 else ''}",
        *(f"{n} {words[k]}{'s' if n != 1 else ''}" for k, n in extra.items() if n),
    ]
    note(f"{shown} is valid: {', '.join(parts)}.", err=False)
    return 0


@click.command()
def schema() -> int:
    """Print the JSON Schema of topology files (for editors and CI checks)."""
    from jelmore_infra.topology.schema import schema_text

    click.echo(schema_text(), nl=False)
    return 0
