"""``jelmore-infra graph``: draw the topology as a Mermaid flowchart or a Graphviz DOT graph.

Offline: reads the topology files only. Streams → consumer groups → dead-letter streams, the
mirrors and sources between streams and buckets, KV buckets and object stores, and each event
type → the stream that captures it (``--no-events`` leaves event types out);
:mod:`jelmore_infra.render.graph` draws it and docs/graph.md describes the picture. The text goes
to stdout. Mermaid draws no flowchart of more than 500 edges or 50,000 characters by default: past
either, a warning on stderr suggests ``--format dot``.
"""

from __future__ import annotations

import click

from jelmore_infra.cli.common import short_lived
from jelmore_infra.cli.envs import env_option
from jelmore_infra.cli.plan_cmd import TOPOLOGY_OPTION

FORMATS = ("mermaid", "dot")


@click.command()
@TOPOLOGY_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="mermaid",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--events/--no-events",
    default=True,
    show_default=True,
    help="Draw each event type with the stream that captures it.",
)
@env_option
def graph(topology_dir: str, fmt: str, events: bool, env_name: str | None) -> int:
    """Draw streams → consumer groups → dead-letter streams, mirrors, sources and buckets."""
    short_lived()
    from jelmore_infra.render import graph as render
    from jelmore_infra.topology import load_topology

    topology = load_topology(topology_dir, env_name)
    picture = render.topology_graph(topology, events=events)
    text = render.render(picture, fmt)
    click.echo(text, nl=False)
    edges, size = len(picture.edges), len(text)
    if fmt == "mermaid" and (edges > render.MERMAID_MAX_EDGES or size > render.MERMAID_MAX_TEXT):
        click.echo(
            f"warning: the graph has {edges:,} edges and {size:,} characters; Mermaid draws at "
            f"most {render.MERMAID_MAX_EDGES:,} edges and {render.MERMAID_MAX_TEXT:,} characters "
            "by default (try --format dot)",
            err=True,
        )
    return 0
