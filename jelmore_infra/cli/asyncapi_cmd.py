"""``jelmore-infra asyncapi``: write the topology's events as an AsyncAPI 3.0 document.

Offline: reads the topology files only. The document (:mod:`jelmore_infra.render.asyncapi`,
docs/asyncapi.md) is written as YAML (default) or JSON to stdout or to ``-o FILE``. ``-s URL``
adds the server(s) to ``servers`` without credentials; without it the document names no server
(``NATS_URL`` is not read, so the output depends on the topology and the options alone).
"""

from __future__ import annotations

from pathlib import Path

import click

from jelmore_infra.cli.common import SERVER_URL, note, short_lived
from jelmore_infra.cli.plan_cmd import TOPOLOGY_OPTION
from jelmore_infra.errors import JelmoreError

FORMATS = ("yaml", "json")


@click.command()
@TOPOLOGY_OPTION
@click.option(
    "-o", "--output", "output", metavar="FILE", help="Write the document to FILE (default stdout)."
)
@click.option(
    "-s",
    "--server",
    "url",
    type=SERVER_URL,
    metavar="URL",
    help="NATS server URL(s) to list under servers (credentials are left out).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="yaml",
    show_default=True,
    help="Output format.",
)
@click.option("--title", default=None, metavar="TEXT", help="info.title (default Jelmore events).")
@click.option("--api-version", default=None, metavar="TEXT", help="info.version (default 1.0.0).")
@click.pass_context
def asyncapi(
    ctx: click.Context,
    topology_dir: str,
    output: str | None,
    url: str | None,
    fmt: str,
    title: str | None,
    api_version: str | None,
) -> int:
    """Write an AsyncAPI 3.0 document of the topology's events and consumer groups."""
    short_lived()
    from jelmore_infra.render import asyncapi as render
    from jelmore_infra.topology import load_topology

    topology = load_topology(topology_dir)
    servers = render.server_entries(url) if url else None
    document = render.asyncapi_document(
        topology,
        servers=servers,
        title=title or render.DEFAULT_TITLE,
        version=api_version or render.DEFAULT_API_VERSION,
    )
    text = _serialise(document, fmt)
    if not topology.events:
        click.echo(f"warning: {topology_dir} declares no events (events:)", err=True)
    if output and output != "-":
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise JelmoreError(f"cannot write {output}: {exc.strerror or exc}") from None
        note(
            f"Wrote the AsyncAPI document to {output} ({len(topology.events)} event(s), "
            f"{len(document['operations'])} operation(s))."
        )
    else:
        click.echo(text, nl=False)
    return 0


def _serialise(document: dict[str, object], fmt: str) -> str:
    if fmt == "json":
        import json

        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    import yaml

    text: str = yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return text
