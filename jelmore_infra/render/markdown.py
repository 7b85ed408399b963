"""The plan as a GitHub pull-request comment (Markdown).

Layout, most important first:

1. a title carrying the summary (``### Plan: 1 to add, …`` or ``### No changes``);
2. errors, then warnings with data loss first and in bold;
3. a summary table: address | action | fields changed / reason;
4. one collapsible ``<details>`` section per resource holding a ``diff`` block (``+``/``-``/``~``
   lines with exact values and human units, the same lines as the terminal view);
5. resources left alone because jelmore-infra does not manage them;
6. the server the plan was made against.

User text (messages, values) is escaped for Markdown, HTML and code fences, so names and
descriptions cannot break the comment; control characters become visible escapes (``\\x1b``),
so a name from the server cannot drive a terminal that shows the comment. Everything comes from
the :class:`~jelmore_infra.plan.Plan` alone, like the human and JSON views.

Pure: no I/O.
"""

from __future__ import annotations

import html
import re

from jelmore_infra.plan import Action, Plan, PlanMessage, ResourceChange
from jelmore_infra.render.controls import escape_controls, escape_controls_keeping_lines
from jelmore_infra.render.human import (
    NO_CHANGES,
    adopted_addresses,
    cannot_apply_line,
    ordered_warnings,
    server_description,
    summary_line,
)
from jelmore_infra.render.impact import message_body
from jelmore_infra.render.values import (
    action_phrase,
    change_lines,
    migration_lines,
    resource_label,
)

_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")
#: Line starts that would make a heading, list, quote or rule (``\1.`` is no escape: ``1\.`` is).
_MD_LEADING = re.compile(r"^(\s*(?:\d+)?)([#+\-=>.)])")
_ACTION_LABEL = {
    Action.CREATE: "+ create",
    Action.UPDATE: "~ update",
    Action.REPLACE: "-/+ replace",
    Action.MIGRATE: "~> migrate",
    Action.DELETE: "- delete",
    Action.NOOP: "no-op",
}


def escape(text: str) -> str:
    """Text shown literally in Markdown, on one line (fit for table cells and list items)."""
    one_line = " ".join(text.splitlines())
    escaped = _MD_INLINE.sub(r"\\\1", one_line)
    return _MD_LEADING.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", escaped)


def code(text: str) -> str:
    """An inline code span that survives backticks inside ``text``."""
    text = " ".join(text.splitlines())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|")


def _fence(body: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", body)), default=0)
    return "`" * max(3, longest + 1)


def _message_item(m: PlanMessage, *, bold: bool = False) -> str:
    text = escape(message_body(m))
    if m.address:
        text = f"{code(m.address)}: {text}"
    if bold:
        return f"- **Data loss:** **{text}**"
    return f"- {text}"


def _diff_block(change: ResourceChange) -> list[str]:
    lines = change_lines(change)
    width = max((len(line.path) for line in lines if line.path), default=0)
    body = [f"{change.action.symbol} {resource_label(change)} {{"]
    for line in lines:
        if not line.path:
            body.append(f"      # {line.note}")
            continue
        text = f"{line.symbol}   {line.path:<{width}} = {line.text}"
        if line.note:
            text += f"   # {line.note}"
        body.append(text)
    body.extend(f"      # {note}" for note in migration_lines(change))
    body = [escape_controls(b) for b in body]  # one diff line each, whatever a key holds
    body.append("  }")
    text = "\n".join(body)
    fence = _fence(text)
    return [f"{fence}diff", text, fence]


def _table_detail(change: ResourceChange) -> str:
    changed = [f for f in change.fields if f.before != f.after]
    if change.action is Action.REPLACE:
        fields = ", ".join(code(f.path) for f in changed)
        reasons = "; ".join(escape(r) for r in change.replace_reasons)
        if not reasons:
            return fields
        return (
            f"{fields} — forces replacement: {reasons}"
            if fields
            else f"forces replacement: {reasons}"
        )
    if change.action is Action.UPDATE:
        return ", ".join(code(f.path) for f in changed)
    if change.action is Action.MIGRATE:
        fields = ", ".join(code(f.path) for f in changed)
        kept = (change.migration or {}).get("messages", 0)
        return f"{fields} — migrated, keeping its {kept:,} messages".lstrip(" —")
    if change.action is Action.CREATE:
        return "new"
    if change.action is Action.DELETE:
        return "removed"
    return ""


#: GitHub refuses comments longer than 65,536 characters; stay a little below.
GITHUB_COMMENT_LIMIT = 65_000


def _details(change: ResourceChange, adopted: bool) -> str:
    phrase = html.escape(action_phrase(change, adopted=adopted))
    summary_html = f"<code>{html.escape(change.address)}</code> {phrase}"
    lines = ["<details>", f"<summary>{summary_html}</summary>", "", *_diff_block(change), ""]
    return "\n".join([*lines, "</details>", "", ""])


def render_plan_markdown(plan: Plan, *, max_length: int | None = GITHUB_COMMENT_LIMIT) -> str:
    """The plan as a Markdown pull-request comment (ends with a newline).

    When the comment would be longer than ``max_length`` characters (GitHub's comment limit by
    default; ``None`` for no limit), the per-resource details that do not fit are left out and a
    line says so; the title, errors, warnings, the summary table and the footer always stay.
    """
    out: list[str] = []
    summary = summary_line(plan)
    refusal = cannot_apply_line(plan)
    title = "No changes" if summary == NO_CHANGES else summary.rstrip(".")
    if refusal:
        title = f"❌ {title} — cannot be applied"
    if plan.environment:
        title = f"{plan.environment}: {title}"
    out += [f"### {title}", ""]
    if not plan.has_changes and not plan.errors:
        out += ["The server matches the topology.", ""]
    if plan.targets:
        out += ["Only these targets were planned: " + ", ".join(code(t) for t in plan.targets), ""]

    if plan.errors:
        n = len(plan.errors)
        out += [f"#### Errors ({n})", ""]
        out += [_message_item(m) for m in plan.errors]
        out += ["", f"**{escape(refusal or '')}**", ""]
    warnings = ordered_warnings(plan)
    if warnings:
        out += [f"#### Warnings ({len(warnings)})", ""]
        out += [_message_item(m, bold=m.kind == "data-loss") for m in warnings]
        out.append("")

    changes = [c for c in plan.changes if c.action is not Action.NOOP]
    adopted = adopted_addresses(plan)
    details: list[str] = []
    if changes:
        out += [
            "#### Changes",
            "",
            "| Address | Action | Fields changed / reason |",
            "|---|---|---|",
        ]
        for c in changes:
            label = _ACTION_LABEL[c.action]
            if c.address in adopted:
                label += " (adopt)"
            out.append(f"| {code(c.address)} | {code(label)} | {_table_detail(c)} |")
        out += ["", "#### Details", ""]
        details = [_details(c, c.address in adopted) for c in changes]

    tail: list[str] = []
    if plan.unmanaged:
        tail += ["#### Not managed by jelmore-infra (left alone)", ""]
        tail += [f"- {code(a)}" for a in plan.unmanaged]
        tail.append("")
    identity = escape(server_description(plan.server))
    if plan.server.url:
        identity += f" at {code(plan.server.url)}"
    if plan.environment:
        identity += f" for environment {code(plan.environment)}"
    tail.append(f"<sub>Planned by jelmore-infra against {identity}.</sub>")

    head_text = escape_controls_keeping_lines("\n".join(out) + "\n")
    tail_text = escape_controls_keeping_lines("\n".join(tail) + "\n")
    details = [escape_controls_keeping_lines(block) for block in details]
    full = head_text + "".join(details) + tail_text
    if max_length is None or len(full) <= max_length:
        return full
    budget = max_length - len(head_text) - len(tail_text) - 200  # room for the omission note
    kept: list[str] = []
    for block in details:
        if len(block) > budget:
            break
        kept.append(block)
        budget -= len(block)
    body = "".join(kept)
    left_out = len(details) - len(kept)
    if left_out:
        body += (
            f"_The details of {left_out} more resource{'s' if left_out != 1 else ''} are not "
            "shown: the comment would be too long for GitHub. Run `jelmore-infra plan` for the "
            "full plan._\n\n"
        )
    return head_text + body + tail_text


__all__ = ["code", "escape", "render_plan_markdown"]
