"""The pull-request comment view of a plan: its structure on GitHub, and escaping of user text."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bench.topogen import write_topology
from jelmore_infra.diff import build_plan
from jelmore_infra.model import LiveState
from jelmore_infra.plan import Action, FieldChange, Plan, PlanMessage
from jelmore_infra.render.graph import MAX_CHARS, MAX_EDGES, plan_graph, render_mermaid
from jelmore_infra.render.markdown import (
    GITHUB_COMMENT_LIMIT,
    code,
    escape,
    render_plan_markdown,
)
from jelmore_infra.topology import load_topology
from tests.support.diagram_parsers import parse_diagrams
from tests.support.render_plans import (
    CASES,
    SERVER,
    check_golden,
    plan_adopt,
    plan_create,
    plan_errors,
    plan_mixed,
    plan_no_changes,
    plan_update,
    stream_change,
)


def sections(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("#")]


def details_blocks(markdown: str) -> list[str]:
    return re.findall(r"<details>\n(.*?)\n</details>", markdown, re.S)


@pytest.mark.parametrize("case", sorted(CASES))
def test_markdown_plan_matches_golden_file(case: str) -> None:
    check_golden(f"{case}.md", render_plan_markdown(CASES[case]()))


def test_title_carries_the_summary() -> None:
    first = render_plan_markdown(plan_mixed()).splitlines()[0]
    assert first == "### Plan: 1 to add, 1 to change, 1 to replace, 1 to destroy"


def test_title_says_when_the_plan_cannot_be_applied() -> None:
    md = render_plan_markdown(plan_errors())
    assert md.splitlines()[0] == (
        "### ❌ Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy — cannot be applied"
    )
    assert "**This plan cannot be applied: fix the 2 errors above first\\.**" not in md
    assert "**This plan cannot be applied: fix the 2 errors above first.**" in md


def test_errors_and_warnings_come_before_the_changes() -> None:
    heads = sections(render_plan_markdown(plan_errors()))
    assert heads[1:] == [
        "#### Errors (2)",
        "#### Warnings (1)",
        "#### Graph",
        "#### Changes",
        "#### Details",
    ]
    md = render_plan_markdown(plan_errors())
    assert "- `stream.EVENTS`: allow\\_msg\\_ttl needs nats-server 2.11.0 or newer" in md


def test_data_loss_warnings_are_first_and_bold() -> None:
    md = render_plan_markdown(plan_mixed())
    lines = md.splitlines()
    start = lines.index("#### Warnings (2)")
    assert lines[start + 2] == (
        "- **Data loss:** **`stream.OLD`: deleting the stream removes 1,000 messages (5 MB)**"
    )
    assert not lines[start + 3].startswith("- **")


def test_summary_table_has_one_row_per_change_in_plan_order() -> None:
    plan = plan_mixed()
    lines = render_plan_markdown(plan).splitlines()
    header = lines.index("| Address | Action | Fields changed / reason |")
    assert lines[header + 1] == "|---|---|---|"
    rows = lines[header + 2 : header + 2 + len(plan.changes)]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{c.address}`" for c in plan.changes]
    assert all(row.count(" | ") == 2 and row.endswith(" |") for row in rows)
    assert lines[header + 2 + len(plan.changes)] == ""
    update_row = rows[1]
    assert "`description`, `backoff`, `metadata.jelmore.retry-delays`" in update_row
    replace_row = rows[2]
    assert "`-/+ replace`" in replace_row
    assert (
        "forces replacement: ack\\_policy cannot be changed on an existing consumer" in replace_row
    )


def test_each_change_has_a_collapsible_diff_block() -> None:
    plan = plan_mixed()
    md = render_plan_markdown(plan)
    assert md.count("<details>") == md.count("</details>") == len(plan.changes)
    blocks = details_blocks(md)
    for change, block in zip(plan.changes, blocks, strict=True):
        assert block.startswith(f"<summary><code>{change.address}</code> ")
        assert "\n\n```diff\n" in block  # blank line after <summary>, or GitHub shows raw text
        assert block.endswith("```\n")
    update_block = blocks[1]
    assert re.search(r"^~   description +\= \"old text\" → \"General", update_block, re.M)
    assert re.search(r"^\+   backoff +\= \(default\) → \[2s, 4s\]$", update_block, re.M)
    assert re.search(r"^-   metadata.owner +\= \"team-a\" → \(absent\)$", update_block, re.M)


def test_diff_lines_use_human_units() -> None:
    md = render_plan_markdown(plan_update())
    assert re.search(r"^~   max_age +\= 7d → 14d$", md, re.M)
    assert re.search(
        r"^~   max_bytes +\= 10 GB \(10000000000 bytes\) → 20 GB \(20000000000 bytes\)$", md, re.M
    )
    create = render_plan_markdown(plan_create())
    assert re.search(r"^\+   max_msgs +\= 100,000$", create, re.M)


def test_no_changes_comment_says_so_and_lists_unmanaged_resources() -> None:
    md = render_plan_markdown(plan_no_changes())
    lines = md.splitlines()
    assert lines[0] == "### No changes"
    assert lines[2] == "The server matches the topology."
    assert "<details>" not in md
    assert "#### Not managed by jelmore-infra (left alone)" in lines
    assert "- `consumer.LEGACY.reader`" in lines


def test_comment_ends_with_the_server_identity() -> None:
    last = render_plan_markdown(plan_update()).splitlines()[-1]
    assert last == (
        "<sub>Planned by jelmore-infra against nats-server 2.14.6 (server n1, account ACC) "
        "at `nats://127.0.0.1:4222`.</sub>"
    )


def test_adopted_resources_are_marked_in_the_table_and_details() -> None:
    md = render_plan_markdown(plan_adopt())
    assert "| `stream.LEGACY` | `~ update (adopt)` |" in md
    assert (
        "<summary><code>stream.LEGACY</code> will be adopted and updated in place</summary>" in md
    )
    assert "Only these targets were planned: `stream.LEGACY`" in md


def test_user_text_cannot_break_the_markdown() -> None:
    md = render_plan_markdown(plan_mixed())
    assert (
        "description contains \\<b\\>markup\\</b\\> \\| pipes and \\`ticks\\` \\*stars\\* "
        "\\_under\\_"
    ) in md
    assert "<b>" not in md


def test_values_containing_backticks_get_a_longer_fence() -> None:
    change = stream_change(
        "X",
        Action.UPDATE,
        {"name": "X", "description": "a"},
        {"name": "X", "description": "```\nboom"},
        (FieldChange("description", "a", "```\nboom"),),
    )
    md = render_plan_markdown(replace(plan_update(), changes=(change,), messages=()))
    assert "````diff\n" in md
    assert md.count("````") == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a|b", "a\\|b"),
        ("# not a heading", "\\# not a heading"),
        ("1. not a list", "1\\. not a list"),
        ("- dash", "\\- dash"),
        ("10) item", "10\\) item"),
        ("v1.2 stays", "v1.2 stays"),
        ("two\nlines", "two lines"),
        ("x & <y>", "x \\& \\<y\\>"),
    ],
)
def test_escape_makes_text_literal(text: str, expected: str) -> None:
    assert escape(text) == expected


def test_code_span_survives_backticks_and_pipes() -> None:
    assert code("a`b") == "``a`b``"
    assert code("a|b") == "`a\\|b`"


def test_replace_caused_by_the_stream_lists_the_reason_but_no_changed_field() -> None:
    md = render_plan_markdown(CASES["replace"]())
    assert (
        "| `consumer.JELMORE_DLQ.dlq_reader` | `-/+ replace` | "
        "forces replacement: stream JELMORE\\_DLQ is replaced |"
    ) in md
    assert re.search(r"^      # forces replacement: stream JELMORE_DLQ is replaced$", md, re.M)


def test_a_comment_within_the_limit_is_not_cut() -> None:
    md = render_plan_markdown(plan_mixed(), max_length=len(render_plan_markdown(plan_mixed())))
    assert md == render_plan_markdown(plan_mixed(), max_length=None)


# --- the graph ------------------------------------------------------------------------------------


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, re.S | re.M)


def test_the_comment_draws_the_changed_resources_and_their_neighbours() -> None:
    md = render_plan_markdown(plan_mixed())
    (block,) = mermaid_blocks(md)
    assert block == render_mermaid(plan_graph(plan_mixed().changes))
    assert 'c1("-/+ git_monitors")' in block
    assert 's2["JELMORE_DLQ"]' in block  # the changed group's dead-letter stream, unmarked
    assert "  class s0 created\n" in block and "  class s1 deleted\n" in block
    legend = md.split("```mermaid\n", 1)[1].split("```\n\n", 1)[1].splitlines()[0]
    assert legend.startswith("<sub>🟩 `+` created · 🟨 `~` updated or `~>` migrated · ")
    assert "🟧 `-/+` replaced · 🟥 `-` deleted · no colour: a neighbour" in legend


def test_the_legend_names_only_the_colours_the_graph_uses() -> None:
    md = render_plan_markdown(plan_update())
    assert "<sub>🟨 `~` updated or `~>` migrated · no colour: a neighbour" in md
    assert "created" not in md.split("#### Graph", 1)[1].split("#### Changes", 1)[0]


def test_an_origin_in_another_domain_is_drawn_grey_and_explained() -> None:
    source = {"name": "REMOTE", "external": {"api": "$JS.hub.API"}}
    change = stream_change("AGG", Action.CREATE, None, {"name": "AGG", "sources": [source]})
    md = render_plan_markdown(replace(plan_update(), changes=(change,), messages=()))
    assert 'r0["REMOTE via #36;JS.hub.API"]' in md and "  class r0 outside\n" in md
    assert "<sub>🟩 `+` created · ⬜ in another JetStream domain or account. Boxes" in md


def test_the_legend_mentions_neighbours_only_when_the_graph_has_some() -> None:
    md = render_plan_markdown(CASES["delete"]())
    assert "<sub>🟥 `-` deleted. Boxes are streams, rounded boxes consumer groups," in md
    assert "neighbour" not in md


def test_a_plan_without_changes_has_no_graph() -> None:
    md = render_plan_markdown(plan_no_changes())
    assert "#### Graph" not in md and "```mermaid" not in md


# --- comments too long for GitHub -----------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_5000(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """Creating the 5,000 resources of bench/topogen.py's topology on an empty server."""
    directory = write_topology(tmp_path_factory.mktemp("topogen"), 5000)
    live = LiveState(server=SERVER)
    plan = build_plan(load_topology(str(directory)), live, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert len(plan.changes) == 5000
    return plan


def section(md: str, heading: str) -> str:
    """The text of the section whose heading starts with ``heading``, up to the next one."""
    body = md.split(f"\n{heading}", 1)[1].split("\n", 1)[1]
    return re.split(r"^(?:#### |<sub>Planned)", body, maxsplit=1, flags=re.M)[0]


def listed(md: str) -> list[str]:
    """The short form's address lines under ``#### Changes (N)``."""
    return [line for line in section(md, "#### Changes (").splitlines() if line.startswith("- `")]


def more_count(text: str, word: str) -> int:
    """The count of the line saying how many items of a list were left out (0: none was)."""
    some = rf"^- _… and ([0-9,]+) more {word}s?: see the saved plan\._$"
    none = rf"^- _([0-9,]+) {word}s?, not listed here: see the saved plan\._$"
    found = re.findall(some, text, re.M) + re.findall(none, text, re.M)
    assert len(found) <= 1
    return int(found[0].replace(",", "")) if found else 0


def test_a_5000_resource_plan_fits_a_github_comment(plan_5000: Plan) -> None:
    md = render_plan_markdown(plan_5000)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    full = render_plan_markdown(plan_5000, max_length=None)
    assert len(full) > 10 * GITHUB_COMMENT_LIMIT
    lines = md.splitlines()
    assert lines[0] == "### Plan: 5000 to add, 0 to change, 0 to replace, 0 to destroy"
    assert lines[2] == (
        f"_This plan is too long for a pull-request comment ({len(full):,} characters; GitHub "
        "takes at most 65,536), so the changes are listed by address only. The full plan is in "
        "the saved-plan artifact of this run (the file `jelmore-infra plan -out FILE` writes; "
        "`jelmore-infra apply FILE` applies it)._"
    )
    assert sections(md)[1:] == ["#### Graph", "#### Changes (5,000)"]
    (block,) = mermaid_blocks(md)
    assert len(block) <= MAX_CHARS and block.count(" --> ") <= MAX_EDGES
    assert re.search(r"^_The graph shows [0-9,]+ of the 5,000 changed resources", md, re.M)
    shown = listed(md)
    assert shown == [f"- `+ {c.address}`" for c in plan_5000.changes[: len(shown)]]
    assert len(shown) + more_count(section(md, "#### Changes ("), "resource") == 5000
    assert "<details>" not in md and "| Address |" not in md
    assert lines[-1].startswith("<sub>Planned by jelmore-infra against nats-server 2.14.6")


def test_the_short_form_keeps_every_error_and_warning(plan_5000: Plan) -> None:
    messages = (
        PlanMessage("error", "invalid", "stream BENCH_00001 cannot be created", "stream.X"),
        PlanMessage("warning", "note", "a note about the plan"),
        PlanMessage("warning", "data-loss", "deleting the stream removes 5 messages", "stream.Y"),
    )
    plan = replace(plan_5000, messages=messages)
    md = render_plan_markdown(plan)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    assert md.startswith("### ❌ Plan: 5000 to add")
    assert sections(md)[1:] == [
        "#### Errors (1)",
        "#### Warnings (2)",
        "#### Graph",
        "#### Changes (5,000)",
    ]
    assert "- `stream.X`: stream BENCH\\_00001 cannot be created" in md
    assert "**This plan cannot be applied: fix the 1 error above first.**" in md
    warnings = md.split("#### Warnings (2)\n\n", 1)[1].splitlines()[:2]
    assert warnings[0].startswith("- **Data loss:** **`stream.Y`: deleting the stream")
    assert warnings[1] == "- a note about the plan"


def pathological(plan: Plan) -> Plan:
    """Errors, warnings and unmanaged resources that alone are longer than a comment."""
    errors = tuple(
        PlanMessage("error", "invalid", f"error number {i} " + "e" * 80, f"stream.E{i}")
        for i in range(1500)
    )
    warnings = tuple(
        PlanMessage("warning", "data-loss", f"warning {i} " + "w" * 80, f"stream.W{i}")
        for i in range(3000)
    )
    unmanaged = tuple(f"stream.UNMANAGED_{i}" for i in range(2000))
    return replace(plan, messages=errors + warnings, unmanaged=unmanaged)


@pytest.mark.parametrize("limit", [2_000, 10_000, GITHUB_COMMENT_LIMIT])
def test_when_even_the_lists_are_too_long_the_rest_is_counted(plan_5000: Plan, limit: int) -> None:
    plan = pathological(plan_5000)
    md = render_plan_markdown(plan, max_length=limit)
    assert len(md) <= limit
    heads = sections(md)
    assert heads[1:3] == ["#### Errors (1,500)", "#### Warnings (3,000)"]
    assert heads[-2:] == ["#### Changes (5,000)", "#### Not managed by jelmore-infra (left alone)"]
    errors = section(md, "#### Errors")
    warnings = section(md, "#### Warnings")
    changes = section(md, "#### Changes")
    unmanaged = section(md, "#### Not managed")
    shown_errors = re.findall(r"^- `stream\.E[0-9]+`: error number", errors, re.M)
    shown_warnings = re.findall(r"^- \*\*Data loss:\*\* \*\*`stream\.W[0-9]+`", warnings, re.M)
    shown_unmanaged = re.findall(r"^- `stream\.UNMANAGED_[0-9]+`$", unmanaged, re.M)
    assert len(shown_errors) + more_count(errors, "error") == 1500
    assert len(shown_warnings) + more_count(warnings, "warning") == 3000
    assert len(listed(md)) + more_count(changes, "resource") == 5000
    assert len(shown_unmanaged) + more_count(unmanaged, "resource") == 2000
    assert more_count(warnings, "warning") > 0 and more_count(changes, "resource") > 0
    assert "#### Graph" not in md
    assert "_The graph is left out: it does not fit in the comment._" in md
    assert md.rstrip().endswith("</sub>")


def test_a_cut_list_fills_the_comment_instead_of_stopping_early(plan_5000: Plan) -> None:
    md = render_plan_markdown(plan_5000)
    next_line = f"- `+ {plan_5000.changes[len(listed(md))].address}`\n"
    assert len(md) + len(next_line) > GITHUB_COMMENT_LIMIT


def test_every_graph_in_a_comment_parses_with_mermaid(plan_5000: Plan) -> None:
    comments = [render_plan_markdown(build()) for build in CASES.values()]
    comments.append(render_plan_markdown(plan_5000))
    blocks = [b for md in comments for b in mermaid_blocks(md)]
    assert len(blocks) == len(comments) - 1  # the no-changes plan has none
    results = parse_diagrams([("mermaid", b) for b in blocks])
    assert [r.get("error") for r in results] == [None] * len(blocks)
