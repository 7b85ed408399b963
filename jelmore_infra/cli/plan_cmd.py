"""``jelmore-infra plan``: read the live server, diff it against topology/, show the plan."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import Any

import click

from jelmore_infra.cli.common import (
    complete_address,
    connection_options,
    make_console,
    note,
    short_lived,
)
from jelmore_infra.cli.envs import env_option
from jelmore_infra.connection import ConnectionSettings

TOPOLOGY_OPTION = click.option(
    "--topology",
    "topology_dir",
    default="topology",
    show_default=True,
    metavar="DIR",
    help="Directory of topology *.yaml files.",
)
TARGET_OPTION = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ADDR",
    shell_complete=complete_address,
    help="Limit to stream.NAME, consumer.STREAM.NAME, kv.NAME or objectstore.NAME (repeatable; a "
    "stream includes its groups).",
)


def short_lived_to_the_end() -> None:
    """``short_lived()``, and no collection at exit either: the interpreter's teardown would
    still walk every object the command made once (about 50 ms after a 5,000-resource apply),
    to free what the operating system frees at once. ``gc.freeze()`` at exit leaves them out
    of that walk; nothing else about the exit changes (output is flushed, atexit runs)."""
    short_lived()
    atexit.register(gc.freeze)


def check_targets(targets: tuple[str, ...]) -> None:
    """Refuse a ``--target`` that is not the address of a kind jelmore-infra plans."""
    if not targets:
        return  # (and nothing to import)
    from jelmore_infra.address import AddressError, parse
    from jelmore_infra.kinds import TARGET_KEYWORDS

    for t in targets:
        try:
            parse(t, TARGET_KEYWORDS)
        except AddressError as exc:
            raise click.BadParameter(str(exc), param_hint="--target") from None


def _may_be_terminal() -> bool:
    """False when stdout surely is no terminal: not a tty and no variable says it is one."""
    if any(name in os.environ for name in ("FORCE_COLOR", "TTY_COMPATIBLE")):
        return True
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def print_plan(
    ctx: click.Context, plan: Any, *, as_json: bool, markdown: bool, brief_creates: bool = False
) -> None:
    """Write the plan to stdout in the chosen format (``brief_creates``: see render.human)."""
    if as_json:
        from jelmore_infra.render.json import render_plan_json

        click.echo(render_plan_json(plan))
    elif markdown:
        from jelmore_infra.render.markdown import render_plan_markdown

        click.echo(render_plan_markdown(plan))
    else:
        from jelmore_infra.render.human import render_plan_text

        color = False
        if _may_be_terminal():  # rich (slow to import) decides only when colour is possible
            console = make_console(ctx)
            color = bool(console.is_terminal and not console.no_color)
        text = render_plan_text(plan, color=color, brief_creates=brief_creates)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


@click.command()
@TOPOLOGY_OPTION
@click.option("-out", "--out", "out", metavar="FILE", help="Save the plan for `apply FILE`.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as a JSON document.")
@click.option("--markdown", is_flag=True, help="Print the plan as a pull-request comment.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@TARGET_OPTION
@env_option
@connection_options
@click.pass_context
def plan(
    ctx: click.Context,
    topology_dir: str,
    env_name: str | None,
    out: str | None,
    as_json: bool,
    markdown: bool,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    settings: ConnectionSettings,
) -> int:
    """Show what `apply` would change so the server matches the topology."""
    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
    check_targets(targets)
    short_lived_to_the_end()
    from jelmore_infra.live.ahead import ReadAhead
    from jelmore_infra.workflow import plan_from, preflight_after_read, target_streams

    # The live read runs in a child process while the topology loads (a topology error wins).
    # The child starts before the loader is imported: it needs none of it.
    with ReadAhead(settings, target_streams(targets)) as ahead:
        from jelmore_infra.topology import load_topology

        topology = load_topology(topology_dir, env_name)
        live = ahead.result()
    result = preflight_after_read(plan_from(topology, live, targets), topology, settings)
    print_plan(ctx, result, as_json=as_json, markdown=markdown)
    if out:
        from jelmore_infra.planfile import KEY_ENV, plan_key, write_plan_file

        write_plan_file(out, result)
        if not as_json:
            signed = f" (signed with {KEY_ENV})" if plan_key() is not None else ""
            note(f"Saved the plan to {out}{signed}. Apply it with: jelmore-infra apply {out}")
    if result.errors:
        click.echo(
            f"Error: the plan has {len(result.errors)} error(s) and cannot be applied.", err=True
        )
        return 1
    if detailed_exitcode and result.has_changes:
        return 2
    return 0
