"""Keep secrets given on the command line out of the process title.

Any user of the machine can read another process's arguments (``ps``, ``/proc/PID/cmdline``), so a
password typed as ``--password`` would be on show for as long as a command runs (an ``apply``
waiting for confirmation, ``events dlq route`` for days). As soon as the command starts, the
process title is rewritten with each secret replaced by ``***``:

* the values of ``--password`` and ``--token``;
* the value of ``--user`` when no ``--password`` is given (the user is then a token);
* the password or token in the user information of ``-s``/``--server`` URLs.

``masked_arguments`` is pure; ``hide_secrets`` imports the ``setproctitle`` extension only when
there is something to hide, so commands without a secret on their command line start as fast as
before. What remains is the moment between the start of the process and that rewrite (tens of
milliseconds); docs/connection.md names the ways that never put a secret on a command line.
"""

from __future__ import annotations

from collections.abc import Sequence

#: options whose value is always a secret
SECRET_OPTIONS = ("--password", "--token")
#: the option whose value is a token when no password is given
USER_OPTION = "--user"
#: options whose value is a URL that may carry user information
URL_OPTIONS = ("-s", "--server")
MASK = "***"


def masked_arguments(args: Sequence[str]) -> list[str] | None:
    """``args`` (the command line without the program) with every secret replaced by ``***``, or
    ``None`` when it holds none. Options are recognised in all the forms click accepts:
    ``--password VALUE``, ``--password=VALUE`` and, for ``-s``, ``-sURL``; after ``--`` nothing is
    an option."""
    secret = set(SECRET_OPTIONS)
    if not any(_option_name(arg) == "--password" for arg in _options_part(args)):
        secret.add(USER_OPTION)
    out: list[str] = []
    changed = False
    expect: str | None = None  # the option whose value comes next
    for index, arg in enumerate(args):
        new = arg
        if expect is not None:
            new = MASK if expect in secret else mask_url(arg)
            expect = None
        elif arg == "--":
            out.extend(args[index:])
            break
        elif arg in secret or arg in URL_OPTIONS:
            expect = arg
        elif arg.startswith("--") and "=" in arg:
            name, _, value = arg.partition("=")
            if name in secret:
                new = f"{name}={MASK}"
            elif name in URL_OPTIONS:
                new = f"{name}={mask_url(value)}"
        elif arg.startswith("-s") and not arg.startswith("--") and len(arg) > 2:
            new = f"-s{mask_url(arg[2:])}"
        changed = changed or new != arg
        out.append(new)
    return out if changed else None


def mask_url(url: str) -> str:
    """``cli.common.mask_url``, imported only for a command line that has a URL option."""
    from jelmore_infra.cli.common import mask_url as mask

    return mask(url)


def _options_part(args: Sequence[str]) -> Sequence[str]:
    return args[: list(args).index("--")] if "--" in args else args


def _option_name(arg: str) -> str:
    return arg.partition("=")[0] if arg.startswith("--") else arg


def hide_secrets(program: str, args: Sequence[str]) -> None:
    """Rewrite this process's title to ``program`` and ``args`` with the secrets masked, when
    there are any."""
    masked = masked_arguments(args)
    if masked is None:
        return
    import setproctitle

    # Joined as ps joins arguments (unquoted): the title is for reading, never parsed.
    setproctitle.setproctitle(" ".join([program, *masked]))
