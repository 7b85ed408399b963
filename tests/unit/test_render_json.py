"""The JSON plan document: its shape, reading it back, and refusing damaged or edited plan files.

Also checks that the human and Markdown views of a plan read back from JSON are identical to the
views of the original plan: every view is drawn from the same data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jelmore_infra.errors import PlanFileError
from jelmore_infra.plan import FORMAT_VERSION, Plan
from jelmore_infra.render.human import render_plan_text
from jelmore_infra.render.json import (
    canonical_pieces,
    document_checksum,
    load_plan_json,
    plan_document,
    render_plan_json,
)
from jelmore_infra.render.markdown import render_plan_markdown
from tests.support.render_plans import (
    CASES,
    check_golden,
    plan_errors,
    plan_mixed,
    plan_no_changes,
    plan_update,
)

REPO = Path(__file__).resolve().parents[2]


def edited(plan: Plan, edit: Callable[[dict[str, Any]], None], *, reseal: bool = True) -> str:
    """The plan's JSON after ``edit``; ``reseal`` recomputes the checksum (a careful forger)."""
    doc = json.loads(render_plan_json(plan))
    edit(doc)
    if reseal:
        doc["checksum"] = document_checksum(doc)
    return json.dumps(doc)


@pytest.mark.parametrize("case", sorted(CASES))
def test_json_plan_matches_golden_file(case: str) -> None:
    check_golden(f"{case}.json", render_plan_json(CASES[case]()) + "\n")


def test_json_document_is_plan_to_dict_plus_ci_keys() -> None:
    plan = plan_mixed()
    doc = json.loads(render_plan_json(plan))
    extra = {"applyable", "has_changes", "checksum"}
    assert {k: v for k, v in doc.items() if k not in extra} == json.loads(
        json.dumps(plan.to_dict())
    )
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["tool"] == "jelmore-infra"
    assert doc["summary"] == {"add": 1, "change": 1, "replace": 1, "destroy": 1}
    assert doc["applyable"] is True
    assert doc["has_changes"] is True
    assert doc["checksum"].startswith("sha256:")
    assert list(doc)[:7] == [
        "format_version",
        "tool",
        "environment",
        "server",
        "summary",
        "applyable",
        "has_changes",
    ]


def test_json_says_when_a_plan_cannot_be_applied_or_changes_nothing() -> None:
    assert plan_document(plan_errors())["applyable"] is False
    assert plan_document(plan_no_changes())["has_changes"] is False
    assert plan_document(plan_no_changes())["applyable"] is True


def test_json_keeps_exact_wire_values_and_replace_reasons() -> None:
    doc = plan_document(CASES["replace"]())
    consumer = doc["changes"][0]
    assert consumer["replace_reasons"] == [
        "ack_policy cannot be changed on an existing consumer",
        "deliver_policy cannot be changed in place",
    ]
    update = plan_document(plan_update())["changes"][0]
    assert {k: update["fields"][2][k] for k in ("path", "before", "after")} == {
        "path": "max_age",
        "before": 604800000000000,
        "after": 1209600000000000,
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_read_back_from_json_is_the_same_plan(case: str) -> None:
    plan = CASES[case]()
    loaded = load_plan_json(render_plan_json(plan))
    assert loaded.to_dict() == plan.to_dict()
    assert render_plan_json(loaded) == render_plan_json(plan)


@pytest.mark.parametrize("case", sorted(CASES))
def test_human_and_markdown_views_are_identical_after_a_json_round_trip(case: str) -> None:
    plan = CASES[case]()
    text = render_plan_json(plan)
    for loaded in (Plan.from_dict(json.loads(text)), load_plan_json(text)):
        assert render_plan_text(loaded) == render_plan_text(plan)
        assert render_plan_text(loaded, color=True) == render_plan_text(plan, color=True)
        assert render_plan_markdown(loaded) == render_plan_markdown(plan)


# --- refusing bad plan files ----------------------------------------------------------------


def assert_refused(text: str, match: str) -> None:
    with pytest.raises(PlanFileError, match=match) as info:
        load_plan_json(text)
    assert "\n" not in str(info.value)


def test_load_refuses_text_that_is_not_json() -> None:
    assert_refused('{"format_version": 1,', r"not valid JSON \(line 1, column")


def test_load_refuses_json_that_is_not_an_object() -> None:
    assert_refused("[1, 2]", "expected a JSON object")


def test_load_refuses_a_document_of_another_tool() -> None:
    assert_refused(edited(plan_update(), lambda d: d.update(tool="terraform")), "not a jelmore")


def test_load_refuses_a_newer_format_version() -> None:
    text = edited(plan_update(), lambda d: d.update(format_version=FORMAT_VERSION + 1))
    assert_refused(text, "newer than this jelmore-infra understands")


@pytest.mark.parametrize("version", [0, "1", True, None])
def test_load_refuses_an_unsupported_format_version(version: object) -> None:
    text = edited(plan_update(), lambda d: d.update(format_version=version))
    assert_refused(text, "format_version|format version")


def test_load_refuses_a_plan_without_checksum() -> None:
    text = edited(plan_update(), lambda d: d.pop("checksum"), reseal=False)
    assert_refused(text, "no checksum")


def test_load_refuses_a_hand_edited_plan() -> None:
    def lift_limit(doc: dict[str, Any]) -> None:
        doc["changes"][0]["after"]["max_msgs"] = 1

    assert_refused(edited(plan_update(), lift_limit, reseal=False), "modified after it was saved")


def test_load_refuses_a_plan_whose_warnings_were_removed() -> None:
    text = edited(plan_update(), lambda d: d.update(warnings=[]), reseal=False)
    assert_refused(text, "checksum mismatch")


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.pop(key)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_drop("server"), "has no 'server'"),
        (_set(("server", "api_level"), "3"), "server has an invalid 'api_level'"),
        (_set(("summary", "add"), None), "summary has an invalid 'add'"),
        (_set(("summary", "change"), 5), "summary does not match its changes"),
        (_set(("changes", 0, "action"), "explode"), "unknown action 'explode'"),
        (_set(("changes", 0, "kind"), "bucket"), "unknown kind 'bucket'"),
        (_set(("changes", 0, "address"), "stream.OTHER"), "has address 'stream.OTHER'"),
        (_set(("changes", 0, "after"), None), "without both 'before' and 'after'"),
        (_set(("changes", 0, "action"), "create"), "is a create but"),
        (_set(("changes", 0, "action"), "delete"), "is a delete but"),
        (_set(("changes", 0, "fields"), "max_age"), "invalid 'fields'"),
        (_set(("changes", 0, "fields", 0, "forces_replace"), "yes"), "invalid 'forces_replace'"),
        (_set(("changes", 0, "replace_reasons"), ["because"]), "replace_reasons that do not"),
        (_set(("changes", 1), None), r"changes\[1\] is not an object"),
        (_set(("warnings", 0, "severity"), "error"), "does not have severity 'warning'"),
        (_set(("warnings", 0, "kind"), "gossip"), "unknown kind"),
        (_set(("warnings", 0, "data"), [1]), "invalid 'data'"),
        (_set(("unmanaged",), [1]), "unmanaged must list addresses"),
        (_set(("fingerprints", "stream.JELMORE"), 7), "fingerprints must map"),
        (_set(("applyable",), False), "applyable/has_changes do not match"),
    ],
)
def test_load_refuses_a_malformed_plan_with_a_clear_message(
    edit: Callable[[dict[str, Any]], None], match: str
) -> None:
    assert_refused(edited(plan_update(), edit), match)


def test_load_refuses_a_plan_that_names_a_resource_twice() -> None:
    def duplicate(doc: dict[str, Any]) -> None:
        doc["changes"].append(doc["changes"][0])
        doc["summary"]["change"] += 1

    assert_refused(edited(plan_update(), duplicate), "repeats 'stream.JELMORE'")


def test_json_renderer_does_not_import_rich() -> None:
    code = "import sys, jelmore_infra.render.json; print('rich' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "False"


def test_package_exports_every_renderer() -> None:
    import jelmore_infra.render as render

    for name in render.__all__:
        assert callable(getattr(render, name)), name
    with pytest.raises(AttributeError):
        _ = render.no_such_renderer


def _canonical_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


_JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(_JSON_LIKE)
def test_canonical_pieces_join_to_the_one_call_canonical_json(value: Any) -> None:
    for depth in (0, 1, 2, 3):
        assert "".join(canonical_pieces(value, depth)) == _canonical_text(value)


def test_canonical_pieces_write_a_dict_with_other_keys_whole() -> None:
    value = {"a": [{1: "x", 2: "y"}], "b": {3: 1}}
    assert "".join(canonical_pieces(value, 4)) == _canonical_text(value)


def test_canonical_pieces_split_a_plan_by_change() -> None:
    doc = plan_document(plan_mixed())
    body = {k: v for k, v in doc.items() if k != "checksum"}
    pieces = list(canonical_pieces(body))
    assert "".join(pieces) == _canonical_text(body)
    assert max(len(p) for p in pieces) < len(_canonical_text(body["changes"]))


def test_the_checksum_is_the_sha256_of_the_one_call_canonical_json() -> None:
    import hashlib

    doc = plan_document(plan_mixed())
    body = {k: v for k, v in doc.items() if k != "checksum"}
    digest = hashlib.sha256(_canonical_text(body).encode("utf-8")).hexdigest()
    assert doc["checksum"] == document_checksum(doc) == "sha256:" + digest
