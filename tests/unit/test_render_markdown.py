"""The pull-request comment view of a plan: its structure on GitHub, and escaping of user text."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from jelmore_infra.plan import Action, FieldChange, Plan
from jelmore_infra.render.markdown import (
    GITHUB_COMMENT_LIMIT,
    code,
    escape,
    render_plan_markdown,
)
from tests.support.render_plans import (
    CASES,
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
    assert heads[1:5] == ["#### Errors (2)", "#### Warnings (1)", "#### Changes", "#### Details"]
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


def _many_creates(n: int) -> Plan:
    base = plan_create().changes[0]
    changes = tuple(
        stream_change(f"S{i:03d}", Action.CREATE, None, {**(base.after or {}), "name": f"S{i:03d}"})
        for i in range(n)
    )
    return replace(plan_create(), changes=changes)


def test_a_comment_too_long_for_github_leaves_out_details_but_keeps_the_table() -> None:
    plan = _many_creates(300)
    md = render_plan_markdown(plan)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    shown = md.count("<details>")
    assert 0 < shown < 300
    assert f"_The details of {300 - shown} more resources are not shown" in md
    assert all(f"| `stream.S{i:03d}` | `+ create` |" in md for i in range(300))
    assert md.rstrip().endswith("</sub>")
    full = render_plan_markdown(plan, max_length=None)
    assert full.count("<details>") == 300
    assert "are not shown" not in full


def test_a_comment_within_the_limit_is_not_cut() -> None:
    md = render_plan_markdown(plan_mixed(), max_length=len(render_plan_markdown(plan_mixed())))
    assert md == render_plan_markdown(plan_mixed(), max_length=None)
