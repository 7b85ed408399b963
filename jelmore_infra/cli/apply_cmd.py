"""``jelmore-infra apply`` and ``force-unlock``: carry a plan out safely.

``apply`` without a file plans afresh, shows the plan and asks for ``yes`` on a terminal
(``--auto-approve`` for CI; then more than :data:`BRIEF_CREATES_OVER` creates are listed one line
each, without their fields); ``apply FILE`` carries out a saved plan after re-checking it against
the live server (staleness, ownership, actions; :func:`jelmore_infra.apply.recheck_saved_plan`).
Gates (plan errors, data loss, deletes without a terminal) are computed from the live state and
refuse before anything is sent. Every exit path releases the apply lock; a run that loses the
lock (another apply took it over) stops sending and reports what was and was not done.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import click

from jelmore_infra.cli.common import (
    STRICT_BOOL,
    WAIT,
    connection_options,
    is_quiet,
    note,
)
from jelmore_infra.cli.envs import env_option
from jelmore_infra.cli.plan_cmd import (
    TARGET_OPTION,
    TOPOLOGY_OPTION,
    check_targets,
    print_plan,
    short_lived_to_the_end,
)
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ApplyError, LockError

if TYPE_CHECKING:
    from jelmore_infra.apply import ApplyResult
    from jelmore_infra.plan import Plan, ResourceChange

PROMPT = "Do you want to perform these actions? Only 'yes' will be accepted"
#: An apply nobody approves (``--auto-approve``, a saved plan) of more creates than this lists
#: each create in one line, without its fields (thousands of defaults help no one in a CI log).
BRIEF_CREATES_OVER = 100

_VERBS = {
    "create": ("Creating", "created"),
    "update": ("Updating", "updated"),
    "replace": ("Replacing", "replaced"),
    "migrate": ("Migrating", "migrated"),
    "delete": ("Destroying", "destroyed"),
}


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _lock_timeout(value: str) -> float:
    from jelmore_infra.units import UnitError, parse_duration

    try:
        return parse_duration(value) / 1e9
    except UnitError as exc:
        raise click.BadParameter(str(exc), param_hint="--lock-timeout") from None


@click.command()
@click.argument("planfile", required=False, metavar="[PLANFILE]")
@TOPOLOGY_OPTION
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (for CI).")
@click.option("--allow-destroy", is_flag=True, help="Allow deletes without a terminal.")
@click.option(
    "--allow-data-loss", is_flag=True, help="Allow changes the plan flags as losing data."
)
@TARGET_OPTION
@click.option(
    "--lock",
    "use_lock",
    type=STRICT_BOOL,
    default=True,
    show_default=True,
    metavar="BOOL",
    help="Take the apply lock (--lock=false skips it).",
)
@click.option(
    "--lock-timeout",
    type=WAIT,
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="How long to wait for another apply's lock.",
)
@env_option
@connection_options
@click.pass_context
def apply(
    ctx: click.Context,
    planfile: str | None,
    topology_dir: str,
    env_name: str | None,
    auto_approve: bool,
    allow_destroy: bool,
    allow_data_loss: bool,
    targets: tuple[str, ...],
    use_lock: bool,
    lock_timeout: str,
    settings: ConnectionSettings,
) -> int:
    """Make the server match the topology (or carry out a saved PLANFILE)."""
    check_targets(targets)
    if planfile and targets:
        raise click.UsageError("--target cannot be combined with a saved plan")
    wait = _lock_timeout(lock_timeout)
    short_lived_to_the_end()
    from jelmore_infra.apply import ApplyHooks, Gates
    from jelmore_infra.workflow import ApplyRequest, run, run_apply, with_api

    saved = None
    if planfile:
        from jelmore_infra.planfile import read_plan_file

        saved = read_plan_file(planfile)
    topology = None
    if saved is None or env_name:
        from jelmore_infra.topology import load_topology

        # with a saved plan, the environment's policy as it is now is checked again
        topology = load_topology(topology_dir, env_name)
    terminal = _stdin_is_terminal()
    unattended = saved is not None or auto_approve  # nobody is asked to approve the plan
    steps = _StepLines(quiet=is_quiet(ctx))
    request = ApplyRequest(
        # On a terminal a person approved the plan (or watches a saved plan being applied).
        gates=Gates(
            allow_data_loss=allow_data_loss, allow_destroy=allow_destroy, interactive=terminal
        ),
        topology=topology,
        targets=targets,
        saved=saved,
        use_lock=use_lock,
        lock_timeout=wait,
        environment=env_name,
        on_audit_failure=_warn,
    )
    hooks = ApplyHooks(
        # --quiet leaves out the plan only when nobody is asked to approve it
        on_plan=lambda plan: (
            None
            if unattended and is_quiet(ctx)
            else print_plan(
                ctx,
                plan,
                as_json=False,
                markdown=False,
                brief_creates=unattended and plan.summary().add > BRIEF_CREATES_OVER,
            )
        ),
        confirm=None if unattended else _confirmation(terminal),
        on_step_start=steps.started,
        on_step_done=steps.done,
        on_progress=steps.progress,
        on_lock_takeover=_lock_taken_over,
        on_result=steps.then(_report),
    )
    try:
        result = run(with_api(settings, lambda api: run_apply(api, request, hooks)))
    finally:
        steps.flush()
    return _exit_code(result)


def _confirmation(terminal: bool) -> Callable[[Plan], Awaitable[bool]]:
    """Ask for ``yes`` on the terminal; without one, refuse (nothing is changed)."""

    async def confirm(plan: Plan) -> bool:
        if not terminal:
            raise ApplyError(
                "apply needs confirmation: run it in a terminal, or pass --auto-approve "
                "(nothing was changed)"
            )
        answer = await _ask(f"\n{PROMPT}\n  Enter a value: ")
        return answer.strip() == "yes"

    return confirm


def _warn(line: str) -> None:
    from jelmore_infra.render.controls import escape_controls

    click.echo(f"Warning: {escape_controls(line)}", err=True)


def _lock_taken_over(holder: str) -> None:
    from jelmore_infra.render.controls import escape_controls

    click.echo(
        f"Warning: took over the apply lock of a crashed apply: {escape_controls(holder)}",
        err=True,
    )


async def _ask(question: str) -> str:
    """Show ``question`` and read one answer line from the terminal through the event loop.

    A blocking ``input()`` would stop the loop, so SIGINT and SIGTERM would wait for Enter; read
    this way, a signal cancels the apply at once and the lock is released. End of input aborts.
    """
    import asyncio
    import os

    sys.stdout.write(question)
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    line: asyncio.Future[str | None] = loop.create_future()
    buffer = bytearray()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if line.done():
            return
        if not chunk:
            line.set_result(None)  # end of input
            return
        buffer.extend(chunk)
        if b"\n" in buffer:
            line.set_result(bytes(buffer).split(b"\n", 1)[0].decode(errors="replace"))

    loop.add_reader(fd, readable)
    try:
        answer = await line
    finally:
        loop.remove_reader(fd)
    if answer is None:
        raise click.Abort
    return answer


class _StepLines:
    """The progress of the steps on stderr: one plain line per step event (under ``--quiet``
    only failures), the lines of one turn of the event loop written together.

    Thousands of steps start and end in a few hundred turns, so this is a few hundred writes
    instead of one per line. Lines are kept only until the loop's next turn, and
    :meth:`flush` writes what is left before the result is reported and when the command ends.
    """

    def __init__(self, quiet: bool) -> None:
        from jelmore_infra.render.controls import escape_controls

        self._quiet = quiet
        self._pending: list[str] = []
        self._escape = escape_controls  # (imported once, not once per line)

    def line(self, text: str, *, failure: bool = False) -> None:
        if self._quiet and not failure:
            return
        self._pending.append(self._escape(text))
        if len(self._pending) == 1:
            import asyncio

            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop: nothing to wait for
                self.flush()

    def flush(self) -> None:
        if self._pending:
            text = "\n".join(self._pending) + "\n"
            self._pending.clear()
            sys.stderr.write(text)
            sys.stderr.flush()

    def started(self, change: ResourceChange) -> None:
        doing, _ = _VERBS.get(change.action.value, ("Applying", "applied"))
        self.line(f"{change.address}: {doing}...")

    def progress(self, change: ResourceChange, line: str) -> None:
        self.line(f"{change.address}: {line}")

    def done(self, change: ResourceChange, error: str | None) -> None:
        if error is not None:
            self.line(f"{change.address}: failed: {error}", failure=True)
            return
        _, done = _VERBS.get(change.action.value, ("Applying", "applied"))
        self.line(f"{change.address}: {done[0].upper()}{done[1:]}.")

    def then(self, report: Callable[[ApplyResult], None]) -> Callable[[ApplyResult], None]:
        """``report`` after the lines still kept are written."""

        def flushed_first(result: ApplyResult) -> None:
            self.flush()
            report(result)

        return flushed_first


def _report(result: ApplyResult) -> None:
    """Show how the apply ended (called before the lock is released)."""
    if not result.steps:
        note(f"Apply complete! {result.summary_line()}", err=False)
        return
    if result.ok:
        note(f"\nApply complete! {result.summary_line()}", err=False)
        return
    failed = result.failed
    lines: list[str] = []
    if failed is not None or result.lock_lost:
        done = [s.change.address for s in result.steps if s.status == "done"]
        skipped = [s.change.address for s in result.steps if s.status == "not attempted"]
        if result.lock_lost:
            lines.append(f"apply stopped: {result.lock_lost}; nothing more was sent")
        for step in (s for s in result.steps if s.status == "failed"):
            lines.append(
                f"apply stopped: {step.change.address} ({step.change.action.value}) failed: "
                f"{step.error}"
            )
        lines.append(f"  done: {', '.join(done) if done else 'nothing'}")
        lines.append(f"  not attempted: {', '.join(skipped) if skipped else 'nothing'}")
        lines.append(
            "  Let the other apply finish, then plan again."
            if result.lock_lost
            else "  Re-run apply once the cause is fixed; it continues from the server's state."
        )
    for problem in result.convergence_errors:
        lines.append(problem)
    from jelmore_infra.render.controls import escape_controls

    click.echo("\n".join(["", *map(escape_controls, lines)]), err=True)
    click.echo(f"Apply incomplete. {result.summary_line()}", err=True)


def _exit_code(result: ApplyResult) -> int:
    """0 for a complete apply; otherwise the error that ends the command."""
    if result.ok:
        return 0
    if result.lock_lost:
        raise ApplyError(f"apply stopped: {result.lock_lost}")
    failed = result.failed
    raise ApplyError(
        "apply did not converge"
        if failed is None
        else f"apply stopped at {failed.change.address}: {failed.error}"
    )


@click.command("force-unlock")
@click.option("--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@TOPOLOGY_OPTION
@env_option
@connection_options
def force_unlock(
    assume_yes: bool, topology_dir: str, env_name: str | None, settings: ConnectionSettings
) -> int:
    """Remove the apply lock left by a crashed or stuck apply (recorded in the audit trail)."""
    from jelmore_infra.live.audit import force_unlock_recorded
    from jelmore_infra.workflow import run, with_api

    if not assume_yes:
        if not _stdin_is_terminal():
            raise LockError("force-unlock needs confirmation: pass --yes")
        click.confirm("Remove the apply lock? Another apply may still be running", abort=True)
    holder, problem = run(with_api(settings, lambda api: force_unlock_recorded(api, env_name)))
    if holder is None:
        click.echo("No apply lock was held.")
    else:
        from jelmore_infra.render.controls import escape_controls

        click.echo(f"Removed the apply lock held by {escape_controls(holder)}.")
    if problem is not None:
        from jelmore_infra.audit import AuditError, not_written

        raise AuditError(not_written("this force-unlock", problem))
    return 0
