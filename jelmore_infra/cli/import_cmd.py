"""``jelmore-infra import``: write topology YAML for live streams and their consumer groups."""

from __future__ import annotations

from pathlib import Path

import click

from jelmore_infra.cli.common import connection_options, short_lived
from jelmore_infra.connection import ConnectionSettings


@click.command("import")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option(
    "-o",
    "--output-dir",
    "output_dir",
    metavar="DIR",
    help="Write one NAME.yaml per stream into DIR instead of printing.",
)
@click.option(
    "--adopt/--no-adopt",
    default=True,
    show_default=True,
    help="Mark the imported resources as managed by jelmore-infra on the server "
    "(a metadata-only update), so planning the files shows no changes.",
)
@connection_options
def import_(
    names: tuple[str, ...], output_dir: str | None, adopt: bool, settings: ConnectionSettings
) -> int:
    """Write topology YAML for live streams NAME... (all when none given) and their consumers."""
    short_lived()
    from jelmore_infra.live.jsapi import JetStreamAPI
    from jelmore_infra.live.read import read_live
    from jelmore_infra.workflow import run, with_api

    async def body(api: JetStreamAPI) -> tuple[list[tuple[str, str]], list[str]]:
        from jelmore_infra.importer import adopt_live, minimal_configs
        from jelmore_infra.topology.emit import dump_topology

        live = await read_live(api, streams=set(names) or None)
        streams, consumers = minimal_configs(live, names)
        docs = [
            (s["name"], dump_topology([s], [c for c in consumers if c[0] == s["name"]]))
            for s in streams
        ]
        adopted = await adopt_live(api, live, [s["name"] for s in streams]) if adopt else []
        return docs, adopted

    docs, adopted = run(with_api(settings, body))
    if not docs:
        click.echo("No streams to import.", err=True)
        return 0
    if output_dir:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, text in docs:
            path = out / f"{name}.yaml"
            if path.exists():
                raise click.ClickException(f"{path} already exists; not overwriting it")
            path.write_text(text, encoding="utf-8")
            click.echo(f"Wrote {path}", err=True)
    else:
        click.echo("\n".join(text for _, text in docs), nl=False)
    if adopted:
        click.echo(
            f"Marked {len(adopted)} resource(s) as managed by jelmore-infra: {', '.join(adopted)}",
            err=True,
        )
    return 0
