"""``jelmore-infra history``: the audit trail of applies and force-unlocks, newest first.

A table (when, who, environment, command, outcome, what it changed) or, with ``--json``, one
JSON object per line: the stored record with its stream sequence (``seq``). ``--env E`` shows
only environment E's records (and, like every command, connects as that environment says);
``-n N`` how many. Reading writes nothing and needs no consumer (docs/audit.md).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from jelmore_infra.cli.common import connection_options, make_console, short_lived
from jelmore_infra.cli.envs import env_option
from jelmore_infra.cli.plan_cmd import TOPOLOGY_OPTION
from jelmore_infra.connection import ConnectionSettings

if TYPE_CHECKING:
    from jelmore_infra.live.audit import StoredRecord

#: The most records one ``history`` call shows.
MAX_RECORDS = 10_000


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line.")
@click.option(
    "-n",
    "--limit",
    "limit",
    type=click.IntRange(1, MAX_RECORDS),
    default=20,
    show_default=True,
    metavar="N",
    help="How many records to show (newest first).",
)
@TOPOLOGY_OPTION
@env_option
@connection_options
@click.pass_context
def history(
    ctx: click.Context,
    as_json: bool,
    limit: int,
    topology_dir: str,
    env_name: str | None,
    settings: ConnectionSettings,
) -> int:
    """List the audit trail: who applied what, when, and how it ended."""
    short_lived()
    from jelmore_infra.live.audit import read_records
    from jelmore_infra.workflow import run, with_api

    stored = run(with_api(settings, lambda api: read_records(api, env_name, limit)))
    if as_json:
        for item in stored:
            click.echo(json.dumps(item.to_dict(), ensure_ascii=False))
        return 0
    console = make_console(ctx)
    if not stored:
        where = f" for environment {env_name}" if env_name else ""
        console.print(f"No audit records{where}.", markup=False)
        return 0
    console.print(_table(stored))
    return 0


def _table(stored: list[StoredRecord]) -> object:
    from rich.table import Table
    from rich.text import Text

    from jelmore_infra.audit import summary_text, who_text
    from jelmore_infra.render.controls import escape_controls

    table = Table()
    for column in ("when", "who", "env", "command", "outcome", "summary"):
        table.add_column(column)
    for item in stored:
        record = item.record
        if record is None:
            cells = ["?", "?", "?", "?", "unreadable", f"seq {item.seq}: {item.problem}"]
        else:
            when = str(record.get("time") or "?")
            cells = [
                when[:19].replace("T", " ") + ("Z" if when.endswith("Z") else ""),
                who_text(record),
                str(record.get("environment") or "?"),
                str(record.get("command") or "?"),
                str(record.get("outcome") or "?"),
                summary_text(record),
            ]
        table.add_row(*(Text(escape_controls(cell)) for cell in cells))
    return table
