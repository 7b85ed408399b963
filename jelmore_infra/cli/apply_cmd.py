"""``jelmore-infra apply`` and ``force-unlock``: carry a plan out safely.

``apply`` without a file plans afresh, shows the plan and asks for ``yes`` on a terminal
(``--auto-approve`` for CI); ``apply FILE`` carries out a saved plan after re-checking it against
the live server (staleness, ownership, actions; :func:`jelmore_infra.apply.recheck_saved_plan`).
Gates (plan errors, data loss, deletes without a terminal) are computed from the live state and
refuse before anything is sent. Every exit path releases the apply lock; a run that loses the
lock (another apply took it over) stops sending and reports what was and was not done.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from jelmore_infra.cli.common import STRICT_BOOL, WAIT, connection_options, short_lived
from jelmore_infra.cli.plan_cmd import TARGET_OPTION, TOPOLOGY_OPTION, check_targets, print_plan
from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ApplyError, JelmoreError, LockError, StalePlanError

if TYPE_CHECKING:
    from jelmore_infra.apply import ApplyResult, GateRefusal
    from jelmore_infra.live.jsapi import JetStreamAPI
    from jelmore_infra.plan import ResourceChange

PROMPT = "Do you want to perform these actions? Only 'yes' will be accepted"

_VERBS = {
    "create": ("Creating", "created"),
    "update": ("Updating", "updated"),
    "replace": ("Replacing", "replaced"),
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
@connection_options
@click.pass_context
def apply(
    ctx: click.Context,
    planfile: str | None,
    topology_dir: str,
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
    short_lived()
    from jelmore_infra.apply import Gates
    from jelmore_infra.planfile import read_plan_file
    from jelmore_infra.workflow import run, with_api

    saved = read_plan_file(planfile) if planfile else None
    topology = None
    if saved is None:
        from jelmore_infra.topology import load_topology

        topology = load_topology(topology_dir)
    terminal = _stdin_is_terminal()
    state: dict[str, Any] = {}

    async def body(api: JetStreamAPI) -> int:
        from jelmore_infra.apply import (
            apply_plan,
            check_gates,
            identity_mismatch,
            recheck_saved_plan,
        )
        from jelmore_infra.live.lock import ApplyLock
        from jelmore_infra.workflow import plan_with

        lock = ApplyLock(api) if use_lock else None
        try:
            if lock is not None:
                await lock.acquire(timeout=wait)
                if lock.took_over_from:
                    from jelmore_infra.render.controls import escape_controls

                    click.echo(
                        "Warning: took over the apply lock of a crashed apply: "
                        f"{escape_controls(lock.took_over_from)}",
                        err=True,
                    )
            refused: list[GateRefusal] = []
            if saved is not None:
                plan = saved
                mismatch = identity_mismatch(plan, api)
                if mismatch:
                    raise StalePlanError(f"plan was made against another server: {mismatch}")
                check = await recheck_saved_plan(api, plan)
                if check.stale:
                    raise StalePlanError("plan is stale: " + "; ".join(check.stale))
                print_plan(ctx, plan, as_json=False, markdown=False)
                refused, gated = list(check.refusals), check.plan
            else:
                assert topology is not None
                plan = gated = await plan_with(api, topology, targets)
                print_plan(ctx, plan, as_json=False, markdown=False)
            if plan.errors:
                raise ApplyError(
                    f"the plan has {len(plan.errors)} error(s) and cannot be applied; "
                    "nothing was changed"
                )
            if not plan.has_changes:
                click.echo(
                    "Apply complete! Resources: 0 added, 0 changed, 0 replaced, 0 destroyed."
                )
                return 0
            interactive = False
            if saved is None and not auto_approve:
                if not terminal:
                    raise ApplyError(
                        "apply needs confirmation: run it in a terminal, or pass --auto-approve "
                        "(nothing was changed)"
                    )
                answer = await _ask(f"\n{PROMPT}\n  Enter a value: ")
                if answer.strip() != "yes":
                    raise ApplyError("Apply cancelled: nothing was changed.")
                interactive = True
            elif terminal:
                interactive = True
            gates = Gates(
                allow_data_loss=allow_data_loss,
                allow_destroy=allow_destroy,
                interactive=interactive,
            )
            refusals = refused + check_gates(gated, gates)
            if refusals:
                raise ApplyError(
                    "apply refused, nothing was changed: " + "; ".join(r.reason for r in refusals)
                )
            result = await apply_plan(api, plan, progress=_progress(ctx), lease=lock)
            state["result"] = result
            return _report(ctx, result)
        finally:
            if lock is not None:
                await lock.release()

    try:
        return run(with_api(settings, body))
    except (LockError, StalePlanError, ApplyError):
        raise
    except JelmoreError as exc:
        result = state.get("result")
        if result is not None:
            _report(ctx, result)
        raise exc


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


def _progress(ctx: click.Context) -> Any:
    """One plain line per step event on stderr (fast: thousands of steps print in no time)."""
    from jelmore_infra.render.controls import escape_controls

    def write(line: str) -> None:
        sys.stderr.write(escape_controls(line) + "\n")

    def report(change: ResourceChange, event: str, error: str | None) -> None:
        doing, done = _VERBS.get(change.action.value, ("Applying", "applied"))
        if event == "start":
            write(f"{change.address}: {doing}...")
        elif event == "done":
            write(f"{change.address}: {done[0].upper()}{done[1:]}.")
        else:
            write(f"{change.address}: failed: {error}")

    return report


def _report(ctx: click.Context, result: ApplyResult) -> int:
    failed = result.failed
    if result.ok:
        click.echo(f"\nApply complete! {result.summary_line()}")
        return 0
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
    if result.lock_lost:
        raise ApplyError(f"apply stopped: {result.lock_lost}")
    raise ApplyError(
        "apply did not converge"
        if failed is None
        else f"apply stopped at {failed.change.address}: {failed.error}"
    )


@click.command("force-unlock")
@click.option("--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@connection_options
def force_unlock(assume_yes: bool, settings: ConnectionSettings) -> int:
    """Remove the apply lock left by a crashed or stuck apply."""
    from jelmore_infra.live.lock import force_unlock as remove
    from jelmore_infra.workflow import run, with_api

    if not assume_yes:
        if not _stdin_is_terminal():
            raise LockError("force-unlock needs confirmation: pass --yes")
        click.confirm("Remove the apply lock? Another apply may still be running", abort=True)
    holder = run(with_api(settings, remove))
    if holder is None:
        click.echo("No apply lock was held.")
    else:
        from jelmore_infra.render.controls import escape_controls

        click.echo(f"Removed the apply lock held by {escape_controls(holder)}.")
    return 0
