"""Entry point of the ``jelmore-infra`` command: the click group, lazy command loading, and the
mapping of every error to one line on stderr with exit code 1 (never a traceback, never exit 2).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from jelmore_infra import __version__
from jelmore_infra.errors import JelmoreError, TopologyError
from jelmore_infra.render.controls import escape_controls

#: command name → (module, attribute, one-line help). Modules are imported only when used.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("jelmore_infra.cli.validate_cmd", "validate", "Check topology files offline."),
    "schema": ("jelmore_infra.cli.validate_cmd", "schema", "Print the topology JSON Schema."),
    "plan": ("jelmore_infra.cli.plan_cmd", "plan", "Show what apply would change on the server."),
    "apply": ("jelmore_infra.cli.apply_cmd", "apply", "Make the server match the topology."),
    "import": (
        "jelmore_infra.cli.import_cmd",
        "import_",
        "Write topology YAML for live resources.",
    ),
    "force-unlock": (
        "jelmore_infra.cli.apply_cmd",
        "force_unlock",
        "Remove a stuck apply lock.",
    ),
    "history": (
        "jelmore_infra.cli.history_cmd",
        "history",
        "List the audit trail of applies and force-unlocks.",
    ),
    "server": ("jelmore_infra.cli.server_cmd", "server", "Run a local JetStream server."),
    "doctor": (
        "jelmore_infra.cli.doctor_cmd",
        "doctor",
        "Warn about known server faults and risky settings.",
    ),
    "events": ("jelmore_infra.cli.events_cmd", "events", "Publish, consume and inspect events."),
    "asyncapi": (
        "jelmore_infra.cli.asyncapi_cmd",
        "asyncapi",
        "Write an AsyncAPI 3.0 document of the events.",
    ),
    "completion": (
        "jelmore_infra.cli.completion_cmd",
        "completion",
        "Print the shell completion script (bash, zsh, fish).",
    ),
    "graph": ("jelmore_infra.cli.graph_cmd", "graph", "Draw the topology (Mermaid or DOT)."),
    "permissions": (
        "jelmore_infra.cli.permissions_cmd",
        "permissions",
        "Print least-privilege NATS permissions per role.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or not _available(cmd_name):
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(name: str) -> bool:
    module = COMMANDS[name][0]
    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="jelmore-infra")
@click.option("--no-color", is_flag=True, help="Never use colour (NO_COLOR is honoured too).")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print no progress or notes; results, errors and exit codes are unchanged.",
)
@click.pass_context
def cli(ctx: click.Context, no_color: bool, quiet: bool) -> None:
    """Declarative infrastructure-as-code for NATS JetStream.

    Topology files (topology/*.yaml) describe streams and consumer groups; `plan` shows how the
    live server differs, `apply` makes it match.
    """
    ctx.ensure_object(dict)
    ctx.obj["no_color"] = no_color or bool(os.environ.get("NO_COLOR"))
    ctx.obj["quiet"] = quiet


def main(argv: list[str] | None = None) -> None:
    """Run the command line; every failure is one line on stderr and exit code 1."""
    if argv is None:  # the process's own command line (not a caller passing arguments)
        from jelmore_infra.cli.codecache import install
        from jelmore_infra.cli.proctitle import hide_secrets

        install()

        hide_secrets("jelmore-infra", sys.argv[1:])
    try:
        result: Any = cli.main(args=argv, prog_name="jelmore-infra", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        sys.exit(0)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"Error: {escape_controls(exc.format_message())}{hint}", err=True)
        sys.exit(1)
    except TopologyError as exc:
        from jelmore_infra.diagnostics import capped_lines

        for line in capped_lines(exc.diagnostics):
            click.echo(escape_controls(line), err=True)
        click.echo(f"Error: {escape_controls(str(exc))}", err=True)
        sys.exit(1)
    except JelmoreError as exc:
        click.echo(f"Error: {escape_controls(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader of stdout has gone (`… | head`): stop quietly, as other Unix tools do.
        from jelmore_infra.cli.common import handle_broken_pipe

        handle_broken_pipe()
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("JELMORE_DEBUG"):
            raise
        click.echo(
            f"Error: internal error: {type(exc).__name__}: {escape_controls(str(exc))}", err=True
        )
        sys.exit(1)
    code = result if isinstance(result, int) else 0
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
