"""The terminal view of a plan, and the value formatter every view shares.

Golden files (``tests/unit/cases/render/*.txt``) pin the whole output; the other tests assert the
lines that matter, so a wrongly regenerated golden file cannot hide a bug.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from jelmore_infra.plan import Action, FieldChange, Plan
from jelmore_infra.render.human import render_plan, render_plan_text
from jelmore_infra.render.values import change_lines, format_change, format_value
from tests.support.render_plans import (
    CASES,
    DAY,
    SEC,
    check_golden,
    plan_adopt,
    plan_create,
    plan_delete,
    plan_errors,
    plan_mixed,
    plan_no_changes,
    plan_replace,
    plan_update,
    stream_change,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def lines_of(plan: Plan) -> list[str]:
    return render_plan_text(plan).splitlines()


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"),
    [
        ("stream", "max_age", 7 * DAY, "7d"),
        ("stream", "max_age", 604800000000000, "7d"),
        ("stream", "max_age", 90 * 60 * SEC, "1h30m"),
        ("stream", "max_age", 0, "unlimited"),
        ("stream", "duplicate_window", 500_000_000, "500ms"),
        ("consumer", "ack_wait", 0, "0s"),
        ("stream", "max_bytes", 10_000_000_000, "10 GB (10000000000 bytes)"),
        ("stream", "max_bytes", 10 * 2**30, "10 GiB (10737418240 bytes)"),
        ("stream", "max_bytes", -1, "unlimited"),
        ("stream", "max_msg_size", 1500, "1500 B"),
        ("stream", "max_msgs", 100_000, "100,000"),
        ("stream", "max_msgs", -1, "unlimited"),
        ("consumer", "max_deliver", -1, "unlimited"),
        ("stream", "num_replicas", 3, "3"),
        ("stream", "deny_delete", True, "true"),
        ("stream", "allow_direct", False, "false"),
        ("stream", "retention", "limits", '"limits"'),
        ("stream", "description", 'say "hi"', '"say \\"hi\\""'),
        ("stream", "subjects", ["a", "b"], '["a", "b"]'),
        ("consumer", "backoff", [SEC, 5 * SEC, 30 * SEC], "[1s, 5s, 30s]"),
        ("stream", "description", None, "(default)"),
        ("stream", "republish", None, "(absent)"),
        ("stream", "metadata.jelmore.managed-by", None, "(absent)"),
        ("stream", "consumer_limits.max_ack_pending", 1000, "1,000"),
        ("stream", "consumer_limits.inactive_threshold", 300 * SEC, "5m"),
        ("stream", "republish.dest", "mirror.>", '"mirror.>"'),
        ("stream", "republish.headers_only", True, "true"),
        ("consumer", "metadata.jelmore.retry-delays", "2s,4s,8s", '"2s,4s,8s"'),
        ("stream", "sources[0].opt_start_seq", 12345, "12,345"),
        ("stream", "sources.0.filter_subject", "a.>", '"a.>"'),
        (
            "stream",
            "placement",
            {"cluster": "c1", "tags": ["ssd"]},
            '{cluster = "c1", tags = ["ssd"]}',
        ),
        (
            "stream",
            "consumer_limits",
            {"inactive_threshold": 60 * SEC, "max_ack_pending": 500},
            "{inactive_threshold = 1m, max_ack_pending = 500}",
        ),
        ("stream", "metadata", {"b": "2", "a": "1"}, '{"a" = "1", "b" = "2"}'),
        ("stream", "no_such_field", 5, "5"),
        ("stream", "no_such_field", None, "(absent)"),
    ],
)
def test_format_value_gives_exact_values_with_human_units(
    kind: str, path: str, value: object, expected: str
) -> None:
    assert format_value(kind, path, value) == expected


def test_format_value_does_not_guess_units_for_values_of_an_unexpected_type() -> None:
    assert format_value("stream", "max_age", "7d") == '"7d"'
    assert format_value("stream", "max_msgs", True) == "true"


def test_format_change_shows_old_and_new_with_an_arrow() -> None:
    assert format_change("stream", FieldChange("max_age", 7 * DAY, 14 * DAY)) == "7d → 14d"


def test_change_lines_mark_added_removed_and_changed_fields() -> None:
    lines = change_lines(plan_update().changes[1])
    assert [(line.symbol, line.path) for line in lines] == [
        ("~", "description"),
        ("+", "backoff"),
        ("~", "metadata.jelmore.retry-delays"),
        ("-", "metadata.owner"),
    ]


# --- golden ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_human_plan_matches_golden_file(case: str) -> None:
    check_golden(f"{case}.txt", render_plan_text(CASES[case]()))


# --- specific lines -------------------------------------------------------------------------


def test_summary_line_counts_each_action() -> None:
    assert lines_of(plan_mixed())[-1] == "Plan: 1 to add, 1 to change, 1 to replace, 1 to destroy."


def test_plan_without_changes_says_so_and_still_lists_warnings_and_unmanaged() -> None:
    lines = lines_of(plan_no_changes())
    assert lines[-1] == "No changes. The server matches the topology."
    assert "  ! stream.FLAKY: the server reported this stream offline; it was not planned" in lines
    assert "Not managed by jelmore-infra, left alone:" in lines
    assert "  stream.LEGACY" in lines
    assert "  consumer.LEGACY.reader" in lines
    assert not any(line.startswith("Plan:") for line in lines)


def test_unmanaged_warning_is_not_repeated_among_warnings() -> None:
    text = render_plan_text(plan_no_changes())
    assert "was not created by jelmore-infra" not in text


def test_header_names_the_server_version_name_and_account() -> None:
    assert lines_of(plan_update())[0] == (
        "jelmore-infra will perform the following actions against "
        "nats-server 2.14.6 (server n1, account ACC):"
    )
    assert "(server old1, cluster east, domain hub, account $G)" in lines_of(plan_errors())[0]


def test_update_shows_changed_fields_old_to_new_with_units() -> None:
    lines = lines_of(plan_update())
    assert "  # stream.JELMORE will be updated in place" in lines
    assert '  ~ stream "JELMORE" {' in lines
    joined = "\n".join(lines)
    assert re.search(r"~ max_age +\= 7d → 14d$", joined, re.M)
    assert re.search(r"~ max_msgs +\= 100,000 → 50,000$", joined, re.M)
    assert re.search(
        r"~ max_bytes +\= 10 GB \(10000000000 bytes\) → 20 GB \(20000000000 bytes\)$", joined, re.M
    )
    assert re.search(r"~ consumer_limits.max_ack_pending = 1,000 → 500$", joined, re.M)
    assert re.search(r'\+ republish.dest +\= \(absent\) → "mirror.jelmore.>"$', joined, re.M)
    assert re.search(r'~ metadata.jelmore.retry-delays = "2s,4s,8s" → "2s,4s"$', joined, re.M)
    assert re.search(r'- metadata.owner +\= "team-a" → \(absent\)$', joined, re.M)
    assert "duplicate_window" not in joined  # unchanged fields are not shown


def test_equals_signs_line_up_within_a_block() -> None:
    lines = lines_of(plan_update())
    start = lines.index('  ~ stream "JELMORE" {') + 1
    end = lines.index("    }", start)
    columns = {line.index(" = ") for line in lines[start:end]}
    assert len(columns) == 1


def test_create_shows_every_field_of_the_new_config() -> None:
    plan = plan_create()
    text = render_plan_text(plan)
    assert "  # stream.JELMORE will be created" in text
    assert '  + stream "JELMORE" {' in text
    assert re.search(r"\+ max_bytes +\= 10 GB \(10000000000 bytes\)$", text, re.M)
    assert re.search(r"\+ max_msgs +\= 100,000$", text, re.M)
    assert re.search(r"\+ max_age +\= 7d$", text, re.M)
    assert re.search(r"\+ duplicate_window +\= 1m$", text, re.M)
    assert re.search(r'\+ metadata.jelmore.retry-delays += "2s,4s,8s"$', text, re.M)
    for change in plan.changes:
        for key in change.after or {}:
            assert re.search(rf"\+ {re.escape(key)}[ .]", text), key


def test_brief_creates_lists_each_create_in_one_line_and_keeps_other_changes_in_full() -> None:
    plan = plan_mixed()
    full = render_plan_text(plan)
    brief = render_plan_text(plan, brief_creates=True)
    lines = brief.splitlines()
    assert '  + stream "JELMORE"' in lines
    assert "  # stream.JELMORE will be created" not in brief
    assert not re.search(r"\+ max_msgs +\=", brief)  # the created stream's fields are left out
    assert "`jelmore-infra plan` shows them" in brief
    # the update, replace and delete are shown exactly as in the full plan
    for change in plan.changes[1:]:
        assert f"  # {change.address} " in brief
    tail = full[full.index("  # " + plan.changes[1].address) :]
    assert tail.split("\nWarnings:")[0] in brief
    assert lines[-1] == full.splitlines()[-1]  # the same summary line


def test_replace_shows_symbol_and_reason_for_each_forcing_field() -> None:
    lines = lines_of(plan_replace())
    assert "  # consumer.JELMORE.git_monitors must be replaced" in lines
    assert '-/+ consumer "JELMORE/git_monitors" {' in lines
    assert any(
        line.endswith(
            '~ ack_policy     = "none" → "explicit"   '
            "# forces replacement: ack_policy cannot be changed on an existing consumer"
        )
        for line in lines
    )
    assert any(
        line.endswith("# forces replacement: deliver_policy cannot be changed in place")
        for line in lines
    )
    assert lines[-1] == "Plan: 0 to add, 0 to change, 3 to replace, 0 to destroy."


def test_replace_caused_by_something_else_shows_the_reason_without_a_fake_change() -> None:
    lines = lines_of(plan_replace())
    start = lines.index('-/+ consumer "JELMORE_DLQ/dlq_reader" {')
    assert lines[start + 1 : start + 3] == [
        "        # forces replacement: stream JELMORE_DLQ is replaced",
        "    }",
    ]


def test_delete_shows_a_summary_of_what_is_destroyed() -> None:
    lines = lines_of(plan_delete())
    assert "  # stream.OLD will be destroyed" in lines
    assert '  - stream "OLD" {' in lines
    assert any(re.fullmatch(r" +- subjects +\= \[\"old.>\"\]", line) for line in lines)
    assert any(re.fullmatch(r" +- max_msgs +\= unlimited", line) for line in lines)
    assert "        # (4 other fields not shown)" in lines
    # the consumer is removed before its stream: plan order is kept
    assert lines.index("  # consumer.OLD.worker will be destroyed") < lines.index(
        "  # stream.OLD will be destroyed"
    )


def test_changes_are_shown_in_plan_order() -> None:
    plan = plan_mixed()
    text = render_plan_text(plan)
    positions = [text.index(f"  # {c.address} ") for c in plan.changes]
    assert positions == sorted(positions)
    reversed_plan = replace(plan, changes=tuple(reversed(plan.changes)))
    text = render_plan_text(reversed_plan)
    positions = [text.index(f"  # {c.address} ") for c in reversed_plan.changes]
    assert positions == sorted(positions)


def test_noop_changes_are_not_shown() -> None:
    noop = stream_change("SAME", Action.NOOP, {"name": "SAME"}, {"name": "SAME"})
    plan = replace(plan_update(), changes=(*plan_update().changes, noop))
    assert "SAME" not in render_plan_text(plan)


def test_data_loss_warnings_come_first() -> None:
    lines = lines_of(plan_mixed())
    start = lines.index("Warnings:")
    assert lines[start + 1] == (
        "  ! data loss: stream.OLD: deleting the stream removes 1,000 messages (5 MB)"
    )
    assert lines[start + 2].startswith("  ! stream.JELMORE: description contains")


def test_errors_are_listed_and_the_plan_says_it_cannot_be_applied() -> None:
    lines = lines_of(plan_errors())
    assert (
        "Error: stream.JELMORE: deny_delete cannot be turned off once set "
        "(the server refuses false after true)"
    ) in lines
    assert (
        "Error: stream.EVENTS: allow_msg_ttl needs nats-server 2.11.0 or newer; "
        "the server runs 2.10.22"
    ) in lines
    assert lines[-2] == "Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."
    assert lines[-1] == "This plan cannot be applied: fix the 2 errors above first."


def test_errors_without_changes_do_not_claim_the_server_matches() -> None:
    plan = replace(plan_errors(), changes=())
    lines = lines_of(plan)
    assert "No changes. The server matches the topology." not in lines
    assert lines[-1] == "This plan cannot be applied: fix the 2 errors above first."


def test_adopted_resource_is_named_as_adopted_and_targets_are_listed() -> None:
    lines = lines_of(plan_adopt())
    assert "  # stream.LEGACY will be adopted and updated in place" in lines
    assert "Only these targets were planned: stream.LEGACY" in lines
    assert any(
        re.fullmatch(r' +\+ metadata.jelmore.managed-by = \(absent\) → "jelmore-infra"', line)
        for line in lines
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_plain_output_has_no_escape_codes(case: str) -> None:
    assert "\x1b" not in render_plan_text(CASES[case]())


def test_color_output_is_the_plain_text_with_ansi_styles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")  # colour was asked for explicitly: the env does not win
    plan = plan_mixed()
    colored = render_plan_text(plan, color=True)
    assert "\x1b[32m  +\x1b[0m" in colored  # green create symbol
    assert "\x1b[31m" in colored  # red delete symbol
    assert ANSI.sub("", colored) == render_plan_text(plan)


def test_render_plan_returns_a_rich_text_for_the_cli_console() -> None:
    text = render_plan(plan_update())
    assert text.plain + "\n" == render_plan_text(plan_update())
    assert text.spans  # styles are attached
