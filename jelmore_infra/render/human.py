"""The plan for people at a terminal, in Terraform's shape.

::

    jelmore-infra will perform the following actions against nats-server 2.14.6 (server n1, …):

      # stream.JELMORE will be updated in place
      ~ stream "JELMORE" {
          ~ max_age  = 7d → 14d
        }

    Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy.

Changes are listed in the plan's order (the apply order); creates show every field, deletes a
summary, updates and replaces only the changed fields as ``old → new`` with replacement reasons.
With ``brief_creates`` (a non-interactive apply of many creates) each create is one line without
its fields, followed by a note saying so; everything else is shown in full.
Warnings (data loss first), unmanaged resources, errors and the summary line follow.

:func:`render_plan` returns a rich ``Text`` (the CLI owns the Console and decides on colour);
:func:`render_plan_text` returns a plain string, or one with ANSI colours. Everything is drawn from
the :class:`~jelmore_infra.plan.Plan` alone, exactly like the JSON and Markdown views.

Pure: no I/O (colour export renders into an in-memory buffer, never to a terminal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jelmore_infra.model import ServerIdentity
from jelmore_infra.plan import Action, Plan, PlanMessage, ResourceChange
from jelmore_infra.render.controls import escape_controls
from jelmore_infra.render.impact import message_body
from jelmore_infra.render.values import (
    action_phrase,
    change_lines,
    migration_lines,
    resource_label,
)

if TYPE_CHECKING:
    from rich.text import Text as RichText

NO_CHANGES = "No changes. The server matches the topology."

#: SGR codes of the few styles the plan uses.
_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "magenta": "35"}


class Text:
    """A line of styled segments: the tiny part of rich's ``Text`` this view needs.

    Building thousands of plan lines through rich costs more than the whole diff, so lines are
    kept as ``(text, style)`` segments and turned into plain or ANSI text directly. Every
    segment passes through :func:`escape_controls`, so no name or message from the server can
    put a control character on the terminal; the colour codes are added afterwards.
    """

    __slots__ = ("segments",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self.segments: list[tuple[str, str]] = [(escape_controls(text), style)] if text else []

    def append(self, text: str, style: str = "") -> None:
        self.segments.append((escape_controls(text), style))

    @property
    def plain(self) -> str:
        return "".join(t for t, _ in self.segments)

    def ansi(self) -> str:
        out = []
        for text, style in self.segments:
            codes = ";".join(_SGR[w] for w in style.split() if w in _SGR)
            out.append(f"\x1b[{codes}m{text}\x1b[0m" if codes and text else text)
        return "".join(out)


_ACTION_STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REPLACE: "magenta",
    Action.MIGRATE: "yellow",
    Action.DELETE: "red",
    Action.NOOP: "",
}
_LINE_STYLE = {"+": "green", "-": "red", "~": "yellow", "": "dim"}


def server_description(server: ServerIdentity) -> str:
    """``nats-server 2.14.6 (server n1, cluster c1, domain hub, account ACC)``."""
    parts = [f"server {server.server_name}"]
    if server.cluster:
        parts.append(f"cluster {server.cluster}")
    if server.domain:
        parts.append(f"domain {server.domain}")
    if server.account:
        parts.append(f"account {server.account}")
    return f"nats-server {server.version} ({', '.join(parts)})"


def environment_words(plan: Plan) -> str:
    """`` for environment prod`` when the plan was made for an environment, else nothing."""
    return f" for environment {plan.environment}" if plan.environment else ""


def summary_line(plan: Plan) -> str:
    """``Plan: N to add, N to change, N to replace, N to destroy.`` or the no-changes sentence."""
    if not plan.has_changes and not plan.errors:
        return NO_CHANGES
    s = plan.summary()
    migrate = f"{s.migrate} to migrate, " if s.migrate else ""
    return (
        f"Plan: {s.add} to add, {s.change} to change, {s.replace} to replace, {migrate}"
        f"{s.destroy} to destroy."
    )


def cannot_apply_line(plan: Plan) -> str | None:
    """The sentence saying why the plan cannot be applied, or ``None`` when it can."""
    n = len(plan.errors)
    if not n:
        return None
    return f"This plan cannot be applied: fix the {n} error{'s' if n != 1 else ''} above first."


def adopted_addresses(plan: Plan) -> frozenset[str]:
    return frozenset(m.address for m in plan.messages if m.kind == "adopt" and m.address)


def ordered_warnings(plan: Plan) -> list[PlanMessage]:
    """Warnings to list: data loss first, then the rest in plan order.

    ``unmanaged`` warnings about an address in ``plan.unmanaged`` are left to the unmanaged list.
    """
    unmanaged = set(plan.unmanaged)
    shown = [m for m in plan.warnings if not (m.kind == "unmanaged" and m.address in unmanaged)]
    return sorted(shown, key=lambda m: m.kind != "data-loss")


def message_text(message: PlanMessage) -> str:
    body = message_body(message)
    return f"{message.address}: {body}" if message.address else body


def _resource_block(change: ResourceChange, adopted: bool) -> list[Text]:
    style = _ACTION_STYLE[change.action]
    header = Text(f"  # {change.address} {action_phrase(change, adopted=adopted)}", style="bold")
    opener = Text()
    opener.append(f"{change.action.symbol:>3}", style=style)
    opener.append(f" {resource_label(change)} {{")
    lines = change_lines(change)
    width = max((len(line.path) for line in lines if line.path), default=0)
    out = [header, opener]
    for line in lines:
        text = Text("      ")
        if not line.path:
            text.append(f"  # {line.note}", style="magenta" if line.forces_replace else "dim")
            out.append(text)
            continue
        text.append(line.symbol, style=_LINE_STYLE.get(line.symbol, ""))
        text.append(f" {line.path:<{width}} = {line.text}")
        if line.note:
            text.append(f"   # {line.note}", style="magenta" if line.forces_replace else "dim")
        out.append(text)
    for note in migration_lines(change):
        out.append(Text(f"        # {note}", style="dim"))
    out.append(Text("    }"))
    return out


def _create_line(change: ResourceChange) -> Text:
    """A create in one line, without its fields: ``  + stream "JELMORE"``."""
    text = Text()
    text.append(f"{change.action.symbol:>3}", style=_ACTION_STYLE[change.action])
    text.append(f" {resource_label(change)}")
    return text


def _plan_lines(plan: Plan, brief_creates: bool = False) -> list[Text]:
    lines: list[Text] = []
    if plan.has_changes:
        lines.append(
            Text(
                "jelmore-infra will perform the following actions against "
                f"{server_description(plan.server)}{environment_words(plan)}:"
            )
        )
    else:
        lines.append(
            Text(
                f"Compared the topology with {server_description(plan.server)}"
                f"{environment_words(plan)}."
            )
        )
    if plan.targets:
        lines.append(Text(f"Only these targets were planned: {', '.join(plan.targets)}"))
    adopted = adopted_addresses(plan)
    brief = 0
    for change in plan.changes:
        if change.action is Action.NOOP:
            continue
        if brief_creates and change.action is Action.CREATE:
            if not brief:
                lines.append(Text(""))
            brief += 1
            lines.append(_create_line(change))
            continue
        brief = 0
        lines.append(Text(""))
        lines.extend(_resource_block(change, change.address in adopted))
    if plan.changes:
        lines.append(Text(""))
    if brief_creates and plan.summary().add:
        lines.append(
            Text(
                "  (the fields of resources to create are not listed here; "
                "`jelmore-infra plan` shows them)",
                style="dim",
            )
        )
    warnings = ordered_warnings(plan)
    if warnings:
        lines.append(Text("Warnings:", style="bold yellow"))
        for m in warnings:
            loss = m.kind == "data-loss"
            text = Text("  ")
            text.append("!", style="bold red" if loss else "yellow")
            text.append(" ")
            text.append(
                ("data loss: " if loss else "") + message_text(m), style="bold" if loss else ""
            )
            lines.append(text)
    if plan.unmanaged:
        lines.append(Text("Not managed by jelmore-infra, left alone:", style="bold"))
        lines.extend(Text(f"  {address}") for address in plan.unmanaged)
    for m in plan.errors:
        text = Text("Error:", style="bold red")
        text.append(f" {message_text(m)}")
        lines.append(text)
    lines.append(Text(summary_line(plan), style="bold"))
    refusal = cannot_apply_line(plan)
    if refusal:
        lines.append(Text(refusal, style="bold red"))
    return lines


def render_plan(plan: Plan) -> RichText:
    """The whole plan as one rich ``Text`` (styles attached; print it on the CLI's Console)."""
    from rich.text import Text as RichText

    return RichText.from_ansi(render_plan_text(plan, color=True).rstrip("\n"))


def render_plan_text(plan: Plan, *, color: bool = False, brief_creates: bool = False) -> str:
    """The plan as a string ending in a newline; ``color=True`` adds ANSI colour codes.

    ``brief_creates``: each create in one line, without its fields (see the module doc).
    """
    lines = _plan_lines(plan, brief_creates)
    if color:
        return "\n".join(line.ansi() for line in lines) + "\n"
    return "\n".join(line.plain for line in lines) + "\n"


__all__ = [
    "NO_CHANGES",
    "render_plan",
    "render_plan_text",
    "server_description",
    "summary_line",
]
