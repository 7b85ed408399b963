"""Control characters in names and values from the server never reach a terminal raw.

The server accepts a stream called ``EVIL\\x1b[2J``; every human-facing view (terminal plan with
and without colour, Markdown plan, imported YAML and its comments) shows such characters as
visible escapes, while the JSON plan and the imported YAML keep the exact text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jelmore_infra.plan import Action, FieldChange, Plan, PlanMessage
from jelmore_infra.render.controls import escape_controls, escape_controls_keeping_lines
from jelmore_infra.render.human import render_plan_text
from jelmore_infra.render.json import load_plan_json, render_plan_json
from jelmore_infra.render.markdown import render_plan_markdown
from jelmore_infra.topology.emit import dump_topology
from jelmore_infra.topology.load import parse_sources
from tests.support.render_plans import MANAGED, SERVER, consumer_change, stream_change

EVIL = "EVIL\x1b[2J\x07"
EVIL_CONSUMER = "C\x1b]0;pwned\x07"
#: Our own colour codes: SGR sequences only.
SGR = re.compile(r"\x1b\[[0-9;]*m")


def raw_controls(text: str) -> list[str]:
    """Every character of ``text`` that is not printable, line breaks aside."""
    return [ch for ch in text if ch != "\n" and not ch.isprintable()]


def evil_plan() -> Plan:
    before = {"name": EVIL, "subjects": ["evil.>"], "description": "a\nb\x9b\u202ec"}
    after = {**before, "metadata": {**MANAGED, "k\x1bey\n": "v\x85"}}
    consumer = {"durable_name": EVIL_CONSUMER, "description": "d\x1b[31m"}
    return Plan(
        server=SERVER,
        changes=(
            stream_change(
                EVIL,
                Action.UPDATE,
                before,
                after,
                (
                    FieldChange("metadata.jelmore.managed-by", None, "jelmore-infra"),
                    FieldChange("metadata.k\x1bey\n", None, "v\x85"),
                ),
            ),
            consumer_change(EVIL, EVIL_CONSUMER, Action.CREATE, None, consumer),
            stream_change("GONE\x1b[1A", Action.DELETE, before, None),
        ),
        messages=(
            PlanMessage(
                "warning", "adopt", f"stream.{EVIL} is adopted\x1b[2K", address=f"stream.{EVIL}"
            ),
            PlanMessage("error", "one-way", "bad\x07thing", address=f"stream.{EVIL}"),
        ),
        unmanaged=("stream.OTHER\x1b[2J\u2028", f"consumer.{EVIL}.x\x9b"),
    )


# --- the helper ---------------------------------------------------------------------------------


def test_control_characters_become_visible_escapes() -> None:
    assert escape_controls("EVIL\x1b[2J") == "EVIL\\x1b[2J"
    assert escape_controls("a\x07b\x7fc\x9bd") == "a\\x07b\\x7fc\\x9bd"
    assert escape_controls("line\nbreak\ttab\r") == "line\\x0abreak\\x09tab\\x0d"
    assert escape_controls("bidi\u202e sep\u2028 nel\x85") == "bidi\\u202e sep\\u2028 nel\\x85"
    assert escape_controls("tag\U000e0001") == "tag\\U000e0001"


def test_printable_text_is_left_as_it_is_and_escaping_twice_changes_nothing() -> None:
    for text in ["JELMORE", "consumer.A.b", "é ü 漢字 😀", "back\\slash", "a b", ""]:
        assert escape_controls(text) == text
    once = escape_controls(EVIL)
    assert escape_controls(once) == once


@given(st.text())
def test_escaped_text_is_one_printable_line(text: str) -> None:
    assert escape_controls(text).isprintable()


def test_keeping_lines_escapes_all_but_the_line_breaks() -> None:
    assert escape_controls_keeping_lines("a\x1b\nb\x07\n") == "a\\x1b\nb\\x07\n"


# --- plan views ---------------------------------------------------------------------------------


def test_plain_terminal_plan_shows_control_characters_as_escapes() -> None:
    text = render_plan_text(evil_plan())
    assert raw_controls(text) == []
    assert '~ stream "EVIL\\x1b[2J\\x07" {' in text
    assert "  stream.OTHER\\x1b[2J\\u2028" in text
    assert "bad\\x07thing" in text
    assert "GONE\\x1b[1A" in text


def test_coloured_terminal_plan_holds_only_its_own_colour_codes() -> None:
    text = render_plan_text(evil_plan(), color=True)
    assert raw_controls(SGR.sub("", text)) == []
    assert "EVIL\\x1b[2J\\x07" in text


def test_markdown_plan_shows_control_characters_as_escapes() -> None:
    md = render_plan_markdown(evil_plan())
    assert raw_controls(md) == []
    assert "EVIL\\x1b\\[2J\\x07" in md or "EVIL\\x1b[2J\\x07" in md
    assert "k\\x1bey\\x0a" in md  # a metadata key cannot add a line to the diff block


def test_json_plan_keeps_the_exact_names() -> None:
    text = render_plan_json(evil_plan())
    assert raw_controls(text) == []  # JSON escapes them itself
    doc = json.loads(text)
    assert doc["changes"][0]["name"] == EVIL
    assert load_plan_json(text).changes[1].name == EVIL_CONSUMER


# --- import -------------------------------------------------------------------------------------


NAMES = [EVIL, "C1\x9bX", "BIDI\u202eX", "ZW\u200bX", "DEL\x7fX", "PLAIN"]


def test_imported_yaml_escapes_control_characters_and_reads_back_exactly() -> None:
    streams = [
        {
            "name": name,
            "subjects": [f"s{i}.>"],
            "description": f"multi\nline {name} \x85\u2028\xa0",
            "metadata": {"k": f"v{name}"},
            "future\x1b": 1,
        }
        for i, name in enumerate(NAMES)
    ]
    consumers = [(EVIL, {"durable_name": EVIL_CONSUMER, "description": "d\x1b"})]
    text = dump_topology(streams, consumers)
    assert raw_controls(text) == []
    assert "#   stream.EVIL\\x1b[2J\\x07: future\\x1b" in text
    topology, diags = parse_sources([("x.yaml", text)])
    assert diags == [] and topology is not None
    assert list(topology.streams) == NAMES
    for cfg in streams:
        spec = topology.streams[cfg["name"]]
        assert spec.config["description"] == cfg["description"]
        assert spec.config["metadata"]["k"] == cfg["metadata"]["k"]
    assert (EVIL, EVIL_CONSUMER) in topology.consumers


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20))
def test_any_description_and_metadata_value_survive_import_without_raw_controls(
    description: str, value: str
) -> None:
    stream: dict[str, Any] = {
        "name": "S",
        "subjects": ["s.>"],
        "description": description,
        "metadata": {"k": value},
    }
    text = dump_topology([stream], [])
    assert raw_controls(text) == []
    topology, diags = parse_sources([("x.yaml", text)])
    assert diags == [], text
    assert topology is not None
    config = topology.streams["S"].config
    assert config.get("description", "") == description
    assert config.get("metadata", {}).get("k", "") == value
