"""The conventions every ``jelmore-infra`` command shares (the README's "Commands" section): exit code 1 for every error,
usage errors included (never 2); one ``Error: ...`` line on stderr and never a traceback;
``--version``; help when run without arguments; a fast ``--help`` that imports no heavy library;
colour only on a terminal, never with ``NO_COLOR`` or ``--no-color``.

Most checks run the real entry point in a subprocess (``python -m jelmore_infra``). A small probe
command (``probe_cmd`` below) is registered in ``COMMANDS`` to exercise error paths and coloured
output that no single real command covers.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import click
import pytest

from jelmore_infra import __version__
from jelmore_infra.cli import main as cli_main
from jelmore_infra.cli.common import make_console
from jelmore_infra.errors import ConnectionFailed

ROOT = Path(__file__).resolve().parents[2]
ANSI = "\x1b["
HEAVY = ("nats", "jsonschema")


# --- the probe command ------------------------------------------------------------------------


@click.command("probe")
@click.argument("what")
@click.option("--count", type=int, default=1)
@click.pass_context
def probe_cmd(ctx: click.Context, what: str, count: int) -> None:
    """Test-only command: prints coloured text or fails in the way WHAT names."""
    if what == "colour":
        console = make_console(ctx)
        console.print("[bold red]red[/] [green]green[/]")
    elif what == "jelmore-error":
        raise ConnectionFailed("nothing listens on nats://127.0.0.1:1")
    elif what == "bad-parameter":
        raise click.BadParameter("must be positive", param_hint="--count")
    elif what == "crash":
        raise ValueError("boom")
    elif what == "interrupt":
        raise KeyboardInterrupt
    else:
        click.echo(f"probe {what} x{count}")


PROBE_ENTRY = ("tests.unit.test_cli_conventions", "probe_cmd", "Test probe.")
PROBE_MAIN = (
    "import sys; sys.path.insert(0, {root!r}); from jelmore_infra.cli import main as m; "
    "m.COMMANDS['probe'] = {entry!r}; m.main()"
)


def env_for_test(**extra: str) -> dict[str, str]:
    drop = ("NO_COLOR", "FORCE_COLOR", "JELMORE_DEBUG", "CLICOLOR_FORCE", "TTY_COMPATIBLE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def jelmore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m jelmore_infra ARGS`` with stdout/stderr captured (pipes, not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "jelmore_infra", *args],
        cwd=ROOT,
        env=env or env_for_test(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def probe_argv(*args: str) -> list[str]:
    code = PROBE_MAIN.format(root=str(ROOT), entry=PROBE_ENTRY)
    return [sys.executable, "-c", code, *args]


def probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        probe_argv(*args),
        cwd=ROOT,
        env=env or env_for_test(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def probe_on_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the probe with stdout on a pseudo-terminal; (exit code, what the terminal received)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            probe_argv(*args),
            cwd=ROOT,
            env=env or env_for_test(),
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=60)
        assert proc.stderr is not None
        proc.stderr.close()
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def assert_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 1, nothing but one ``Error: ...`` line on stderr, no traceback anywhere."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- exit codes and error lines -----------------------------------------------------------------


def test_unknown_command_exits_1_with_one_error_line() -> None:
    assert_error_line(jelmore("no-such-command"), "no-such-command")


def test_unknown_group_option_exits_1_with_one_error_line() -> None:
    assert_error_line(jelmore("--no-such-option"), "--no-such-option")


def test_unknown_command_option_exits_1_with_one_error_line() -> None:
    assert_error_line(jelmore("server", "--no-such-option"), "--no-such-option")


def test_option_missing_its_value_exits_1_with_one_error_line() -> None:
    assert_error_line(jelmore("server", "--port"), "--port")


def test_invalid_option_value_exits_1_with_one_error_line() -> None:
    assert_error_line(jelmore("server", "--port", "many"), "--port")


def test_missing_argument_exits_1_with_one_error_line() -> None:
    assert_error_line(probe("probe"), "WHAT")


def test_probe_runs_when_used_correctly() -> None:
    result = probe("probe", "hello", "--count", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "probe hello x2\n"


@pytest.mark.parametrize(
    ("what", "needle"),
    [
        ("jelmore-error", "nothing listens on nats://127.0.0.1:1"),
        ("bad-parameter", "must be positive"),
        ("crash", "internal error: ValueError: boom"),
    ],
)
def test_command_errors_exit_1_with_one_error_line(what: str, needle: str) -> None:
    assert_error_line(probe("probe", what), needle)


def test_interrupt_is_one_line_without_traceback() -> None:
    result = probe("probe", "interrupt")
    assert result.returncode not in (0, 2)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- version, help, start-up cost -------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    result = jelmore("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"jelmore-infra, version {__version__}"


def test_console_script_prints_the_version_too() -> None:
    script = Path(sys.executable).parent / "jelmore-infra"
    if not script.exists():
        pytest.skip("the jelmore-infra console script is not installed next to this Python")
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_no_arguments_prints_help_and_exits_0() -> None:
    result = jelmore()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: jelmore-infra")
    assert "Commands:" in result.stdout
    assert result.stderr == ""


def test_help_lists_the_server_command() -> None:
    result = jelmore("--help")
    assert result.returncode == 0
    assert "server" in result.stdout
    assert "Run a local JetStream server." in result.stdout


def modules_loaded_by(*argv: str) -> list[str]:
    """The top-level heavy modules imported while running ``main(argv)`` in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from jelmore_infra.cli.main import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env_for_test(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "argv", [("--help",), ("--version",), ("server", "--help")], ids=lambda a: " ".join(a)
)
def test_help_imports_no_heavy_library(argv: tuple[str, ...]) -> None:
    assert modules_loaded_by(*argv) == []


def test_heavy_import_check_can_see_a_heavy_import() -> None:
    code = (
        "import json, sys, nats\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'nats'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == ["nats"]


# --- colour -----------------------------------------------------------------------------------


def test_terminal_output_is_coloured_by_default() -> None:
    code, out = probe_on_terminal("probe", "colour")
    assert code == 0
    assert ANSI in out
    assert "red" in out


def test_no_color_env_removes_colour_on_a_terminal() -> None:
    code, out = probe_on_terminal("probe", "colour", env=env_for_test(NO_COLOR="1"))
    assert code == 0
    assert "red green" in out
    assert ANSI not in out


def test_no_color_option_removes_colour_on_a_terminal() -> None:
    code, out = probe_on_terminal("--no-color", "probe", "colour")
    assert code == 0
    assert "red green" in out
    assert ANSI not in out


def test_no_color_wins_over_force_color() -> None:
    env = env_for_test(NO_COLOR="1", FORCE_COLOR="1")
    result = probe("probe", "colour", env=env)
    assert result.returncode == 0
    assert "red green" in result.stdout
    assert ANSI not in result.stdout
    result = probe("--no-color", "probe", "colour", env=env_for_test(FORCE_COLOR="1"))
    assert ANSI not in result.stdout


def test_force_color_colours_a_pipe_so_the_checks_above_can_fail() -> None:
    result = probe("probe", "colour", env=env_for_test(FORCE_COLOR="1"))
    assert ANSI in result.stdout


def test_output_to_a_pipe_has_no_colour() -> None:
    result = probe("probe", "colour")
    assert result.returncode == 0
    assert result.stdout.strip() == "red green"


def test_make_console_honours_the_no_color_flag_of_the_root_context(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    for no_color, coloured in ((False, True), (True, False)):
        ctx = click.Context(cli_main.cli, obj={"no_color": no_color})
        make_console(ctx).print("[bold]x[/]")
        assert (ANSI in capsys.readouterr().out) is coloured


def test_make_console_without_a_context_honours_no_color(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    make_console().print("[bold]x[/]")
    assert ANSI not in capsys.readouterr().out


def test_validate_loads_neither_the_plan_nor_the_resource_kinds() -> None:
    """`validate` is offline and runs in every pull request: it imports no plan machinery."""
    code = (
        "import json, sys\n"
        "from jelmore_infra.cli.main import main\n"
        "try:\n"
        "    main(['validate'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "plan_side = ('jelmore_infra.kinds', 'jelmore_infra.diff', 'jelmore_infra.migration')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(plan_side))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env_for_test(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
