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
from dataclasses import dataclass

from jelmore_infra.plan import Action, Plan, PlanMessage, ResourceChange
from jelmore_infra.render.controls import escape_controls, escape_controls_keeping_lines
from jelmore_infra.render.graph import Picture, plan_mermaid
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
#: What each colour of the graph means (by Mermaid class), for the legend under it.
_LEGEND_ENTRIES = {
    "created": "🟩 `+` created",
    "changed": "🟨 `~` updated or `~>` migrated",
    "replaced": "🟧 `-/+` replaced",
    "deleted": "🟥 `-` deleted",
    "outside": "⬜ in another JetStream domain or account",
}
_LEGEND_SHAPES = (
    "Boxes are streams, rounded boxes consumer groups, cylinders KV buckets and object stores, "
    "flags event types; arrows follow the data."
)


def graph_legend(picture: Picture) -> str:
    """The line under the graph: the colours it uses, uncoloured neighbours, the shapes."""
    entries = [_LEGEND_ENTRIES[mark] for mark in picture.marks]
    if picture.plain:
        entries.append("no colour: a neighbour the plan leaves alone")
    return f"<sub>{' · '.join(entries)}. {_LEGEND_SHAPES}</sub>"


def _details(change: ResourceChange, adopted: bool) -> str:
    phrase = html.escape(action_phrase(change, adopted=adopted))
    summary_html = f"<code>{html.escape(change.address)}</code> {phrase}"
    lines = ["<details>", f"<summary>{summary_html}</summary>", "", *_diff_block(change), ""]
    return "\n".join([*lines, "</details>", "", ""])


def _graph_lines(picture: Picture | None) -> list[str]:
    """The ``#### Graph`` section: a Mermaid block of what the plan touches, and its legend."""
    if picture is None:
        return []
    lines = [
        "#### Graph",
        "",
        "```mermaid",
        picture.text.rstrip("\n"),
        "```",
        "",
        graph_legend(picture),
        "",
    ]
    if picture.shown < picture.total:
        lines += [
            f"_The graph shows {picture.shown:,} of the {picture.total:,} changed resources "
            "(replacements and deletions first): GitHub does not draw larger pictures._",
            "",
        ]
    return lines


def _title(plan: Plan) -> str:
    summary = summary_line(plan)
    title = "No changes" if summary == NO_CHANGES else summary.rstrip(".")
    if cannot_apply_line(plan):
        title = f"❌ {title} — cannot be applied"
    if plan.environment:
        title = f"{plan.environment}: {title}"
    return f"### {title}"


def _error_items(plan: Plan) -> list[str]:
    return [_message_item(m) for m in plan.errors]


def _warning_items(plan: Plan) -> list[str]:
    return [_message_item(m, bold=m.kind == "data-loss") for m in ordered_warnings(plan)]


def _footer(plan: Plan) -> str:
    identity = escape(server_description(plan.server))
    if plan.server.url:
        identity += f" at {code(plan.server.url)}"
    if plan.environment:
        identity += f" for environment {code(plan.environment)}"
    return f"<sub>Planned by jelmore-infra against {identity}.</sub>"


def render_plan_markdown(plan: Plan, *, max_length: int | None = GITHUB_COMMENT_LIMIT) -> str:
    """The plan as a Markdown pull-request comment (ends with a newline).

    When the comment would be longer than ``max_length`` characters (GitHub's comment limit by
    default; ``None`` for no limit), the short form is returned instead: the title, errors,
    warnings and graph, then every changed resource by address and action symbol, and a note
    that the full plan is in the saved-plan artifact. The short form never exceeds
    ``max_length``: a list that does not fit is cut and one line counts what was left out.
    """
    changes = [c for c in plan.changes if c.action is not Action.NOOP]
    picture = plan_mermaid(changes) if changes else None
    full = _full_comment(plan, changes, picture)
    if max_length is None or len(full) <= max_length:
        return full
    return _short_comment(plan, changes, picture, max_length, len(full))


def _full_comment(plan: Plan, changes: list[ResourceChange], picture: Picture | None) -> str:
    out: list[str] = [_title(plan), ""]
    refusal = cannot_apply_line(plan)
    if not plan.has_changes and not plan.errors:
        out += ["The server matches the topology.", ""]
    if plan.targets:
        out += ["Only these targets were planned: " + ", ".join(code(t) for t in plan.targets), ""]

    if plan.errors:
        out += [f"#### Errors ({len(plan.errors)})", "", *_error_items(plan)]
        out += ["", f"**{escape(refusal or '')}**", ""]
    warnings = _warning_items(plan)
    if warnings:
        out += [f"#### Warnings ({len(warnings)})", "", *warnings, ""]
    out += _graph_lines(picture)

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
    tail.append(_footer(plan))
    parts = ["\n".join(out) + "\n", *details, "\n".join(tail) + "\n"]
    return "".join(escape_controls_keeping_lines(part) for part in parts)


# --- the short form --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Section:
    """A part of the short form: ``head`` lines, then ``items`` (one line each) of which as
    many are kept as fit, then ``after`` lines; when items are left out, a line counts them
    (``word``: what an item is). Every text is escaped already, so its length is what the
    comment gets."""

    head: tuple[str, ...]
    items: tuple[str, ...]
    word: str
    after: tuple[str, ...] = ()

    def more(self, left_out: int) -> str:
        if left_out == len(self.items):
            return f"- _{_plural(left_out, self.word)}, not listed here: see the saved plan._"
        return f"- _… and {_plural(left_out, 'more ' + self.word)}: see the saved plan._"

    def text(self, kept: int) -> str:
        lines = [*self.head, *self.items[:kept]]
        if kept < len(self.items):
            lines.append(self.more(len(self.items) - kept))
        return "".join(f"{line}\n" for line in [*lines, *self.after])

    @property
    def smallest(self) -> int:
        return len(self.text(0))

    def fitted(self, budget: int) -> str:
        """The section with as many items as fit in ``budget`` characters (at least none)."""
        whole = self.text(len(self.items))
        if len(whole) <= budget:
            return whole
        used = len(self.text(0)) - len(self.more(len(self.items))) - 1
        kept = 0
        for item in self.items:
            remaining = len(self.items) - kept - 1
            extra = len(item) + 1 + (len(self.more(remaining)) + 1 if remaining else 0)
            if used + extra > budget:
                break
            used += len(item) + 1
            kept += 1
        return self.text(kept)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _items_section(
    title: str, items: list[str], word: str, *, after: tuple[str, ...] = ()
) -> _Section:
    return _Section(
        head=(title, ""),
        items=tuple(escape_controls(i) for i in items),
        word=word,
        after=("", *after),
    )


def _short_comment(
    plan: Plan,
    changes: list[ResourceChange],
    picture: Picture | None,
    max_length: int,
    full_length: int,
) -> str:
    head = escape_controls_keeping_lines(
        f"{_title(plan)}\n\n"
        f"_This plan is too long for a pull-request comment ({full_length:,} characters; GitHub "
        "takes at most 65,536), so the changes are listed by address only. The full plan is in "
        "the saved-plan artifact of this run (the file `jelmore-infra plan -out FILE` writes; "
        "`jelmore-infra apply FILE` applies it)._\n\n"
    )
    footer = escape_controls(_footer(plan)) + "\n"
    first: list[_Section] = []  # before the graph
    if plan.targets:
        targets = [f"- {code(t)}" for t in plan.targets]
        first.append(_items_section("Only these targets were planned:", targets, "target"))
    if plan.errors:
        refusal = escape_controls(f"**{escape(cannot_apply_line(plan) or '')}**")
        title = f"#### Errors ({len(plan.errors):,})"
        first.append(_items_section(title, _error_items(plan), "error", after=(refusal, "")))
    warnings = _warning_items(plan)
    if warnings:
        first.append(_items_section(f"#### Warnings ({len(warnings):,})", warnings, "warning"))
    then: list[_Section] = []  # after the graph
    if changes:
        listed = [f"- {code(f'{c.action.symbol} {c.address}')}" for c in changes]
        then.append(_items_section(f"#### Changes ({len(changes):,})", listed, "resource"))
    if plan.unmanaged:
        title = "#### Not managed by jelmore-infra (left alone)"
        unmanaged = [f"- {code(a)}" for a in plan.unmanaged]
        then.append(_items_section(title, unmanaged, "resource"))

    # Every section keeps at least its heading and its count line, and a graph left out leaves
    # a line saying so; in order, each section then takes what it needs of the room left, the
    # graph (whole or not at all) after the warnings.
    graph = "".join(f"{line}\n" for line in _graph_lines(picture))
    left_out = "_The graph is left out: it does not fit in the comment._\n\n" if graph else ""
    room = max_length - len(head) - len(footer)
    reserved = sum(s.smallest for s in [*first, *then]) + len(left_out)
    out = [head]

    def add(section: _Section) -> None:
        nonlocal room, reserved
        reserved -= section.smallest
        text = section.fitted(room - reserved)
        out.append(text)
        room -= len(text)

    for section in first:
        add(section)
    reserved -= len(left_out)
    if graph:
        drawn = graph if len(graph) <= room - reserved else left_out
        out.append(drawn)
        room -= len(drawn)
    for section in then:
        add(section)
    return "".join(out) + footer
