"""``jelmore-infra completion SHELL``: print click's shell completion script for bash, zsh or fish.

The script calls ``jelmore-infra`` back with ``_JELMORE_INFRA_COMPLETE`` set (click's protocol,
handled before any command runs); commands, options, ``--target`` addresses and ``--env``
environments (from the topology files) and event types (from the server's catalogue) complete.
"""

from __future__ import annotations

import click

#: The shells click can complete for.
SHELLS = ("bash", "zsh", "fish")
PROG_NAME = "jelmore-infra"
#: The variable that makes ``jelmore-infra`` answer a completion request (click's naming).
COMPLETE_VAR = "_JELMORE_INFRA_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS), metavar="SHELL")
def completion(shell: str) -> int:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(jelmore-infra completion bash)"   (in ~/.bashrc; bash 4.4 or later)
    zsh:   eval "$(jelmore-infra completion zsh)"    (in ~/.zshrc)
    fish:  jelmore-infra completion fish > ~/.config/fish/completions/jelmore-infra.fish
    """
    from click.shell_completion import get_completion_class

    from jelmore_infra.cli.main import cli

    shell_class = get_completion_class(shell)
    if shell_class is None:  # pragma: no cover - every name in SHELLS is one of click's
        raise click.UsageError(f"no completion for {shell}")
    click.echo(shell_class(cli, {}, PROG_NAME, COMPLETE_VAR).source())
    return 0
