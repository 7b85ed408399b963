"""``jelmore-infra import``: write topology YAML for live streams and their consumer groups, KV
buckets and object stores.

Import only reads the server; it never changes it. Resources jelmore-infra did not create stay
unmanaged until the user plans the imported files and applies that plan, which shows their
adoption (an update in place adding only the ``jelmore.managed-by`` metadata) for review first.
Names with control characters are written with visible escapes in file names and messages.
"""

from __future__ import annotations

from pathlib import Path

import click

from jelmore_infra.cli.common import connection_options, note, short_lived
from jelmore_infra.cli.envs import env_option
from jelmore_infra.cli.plan_cmd import TOPOLOGY_OPTION
from jelmore_infra.connection import ConnectionSettings


@click.command("import")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option(
    "-o",
    "--output-dir",
    "output_dir",
    metavar="DIR",
    help="Write one NAME.yaml per stream (KV_<bucket>.yaml / OBJ_<bucket>.yaml per bucket) into "
    "DIR instead of printing.",
)
@TOPOLOGY_OPTION
@env_option
@connection_options
def import_(
    names: tuple[str, ...],
    output_dir: str | None,
    topology_dir: str,
    env_name: str | None,
    settings: ConnectionSettings,
) -> int:
    """Write topology YAML for live streams NAME... (all when none given) and their consumers.

    KV buckets and object stores are written as kv_buckets: / object_stores: entries (name their
    streams, KV_<bucket> / OBJ_<bucket>, to pick them).

    Read-only: the server is not changed. Planning the written files shows the adoption of
    resources jelmore-infra did not create, applied only when you apply that plan.
    """
    short_lived()
    from jelmore_infra.live.jsapi import JetStreamAPI
    from jelmore_infra.live.read import read_live
    from jelmore_infra.render.controls import escape_controls
    from jelmore_infra.workflow import run, with_api

    async def body(api: JetStreamAPI) -> tuple[list[tuple[str, str]], list[str]]:
        from jelmore_infra.importer import (
            minimal_buckets,
            minimal_configs,
            unmanaged_addresses,
        )
        from jelmore_infra.topology.emit import dump_topology

        live = await read_live(api, streams=set(names) or None)
        streams, consumers = minimal_configs(live, names)
        kv, obj = minimal_buckets(live, names)
        docs = [
            (s["name"], dump_topology([s], [c for c in consumers if c[0] == s["name"]]))
            for s in streams
        ]
        docs += [(f"KV_{n}", dump_topology([], [], kv_buckets=[(n, c)])) for n, c in kv]
        docs += [(f"OBJ_{n}", dump_topology([], [], object_stores=[(n, c)])) for n, c in obj]
        imported = [s["name"] for s in streams] + [f"KV_{n}" for n, _ in kv]
        imported += [f"OBJ_{n}" for n, _ in obj]
        return docs, unmanaged_addresses(live, imported)

    docs, unmanaged = run(with_api(settings, body))
    if not docs:
        note("No streams to import.")
        return 0
    if output_dir:
        out = Path(output_dir)
        # the file name shows control characters as visible escapes; the file holds the exact name
        paths = [(out / f"{escape_controls(name)}.yaml", text) for name, text in docs]
        for path, _ in paths:
            if path.exists():
                raise click.ClickException(
                    f"{escape_controls(str(path))} already exists; not overwriting it "
                    "(nothing was written)"
                )
        out.mkdir(parents=True, exist_ok=True)
        for path, text in paths:
            path.write_text(text, encoding="utf-8")
            note(f"Wrote {escape_controls(str(path))}")
    else:
        click.echo("\n".join(text for _, text in docs), nl=False)
    if unmanaged:
        shown = ", ".join(escape_controls(a) for a in unmanaged)
        click.echo(
            f"Not managed by jelmore-infra yet: {shown}. Import changed nothing on the server; "
            "planning these files shows their adoption (an update in place that only adds the "
            "jelmore.managed-by metadata), made when you apply that plan.",
            err=True,
        )
    return 0
