"""The fast reader of plain block YAML (``topology/blockyaml.py``) either steps aside or reads a
file into exactly the nodes the YAML parser's reader builds: values, raw text and places."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jelmore_infra.diagnostics import Diagnostic
from jelmore_infra.topology.blockyaml import compose_plain
from jelmore_infra.topology.load import MAX_VALUES, parse_yaml, read_yaml
from tests.support.yaml_trees import tree_difference

#: Text with the characters that matter to YAML's plain scalars, and words that mean something.
_TRICKY = "ab1 :#-?[]{},&*!|>'\"%@`./~+_\\"
_WORDS = [
    "true", "false", "null", "Null", "~", "1", "-1", "010", "0x1F", "1.5", "1.5e+3", "1e3",
    ".inf", "-.inf", ".nan", "1h", "256KiB", "orders.>", "a b", "a  b", "a: b", "a #b", "a#b",
    "-", "- a", "-a", "--", "x:", ":x", "?x", "http://h:1/p", "a:b", "yes", "1_000", "1:30",
]  # fmt: skip
_SAFE = "abcxyz0189._/>*-"
_safe_text = st.text(alphabet=_SAFE, min_size=1, max_size=10).filter(
    lambda t: t[0] not in "-*>" and not t.endswith((" ",))
)
_tricky = st.one_of(st.sampled_from(_WORDS), st.text(alphabet=_TRICKY, min_size=1, max_size=8))
_scalars = st.sampled_from(["safe"] * 6 + ["two words", "tricky"]).flatmap(
    lambda n: {"safe": _safe_text, "two words": _safe_text.map(lambda t: f"{t} {t}")}.get(
        n, _tricky
    )
)
_odd_keys = st.one_of(
    st.text(alphabet="ab_1.-/:<' ", min_size=1, max_size=5),
    st.sampled_from(["streams", "<<", "true", "1", "a b", "k", "-x"]),
)
_keys = st.sampled_from(["plain"] * 7 + ["odd"]).flatmap(
    lambda n: st.from_regex(r"[a-z_][a-z0-9_.]{0,6}", fullmatch=True) if n == "plain" else _odd_keys
)
_trees = st.recursive(
    st.none() | _scalars,
    lambda inner: (
        st.lists(st.none() | _scalars, min_size=1, max_size=3)
        | st.dictionaries(_keys, inner, min_size=1, max_size=3)
        | st.lists(inner, min_size=1, max_size=2)
    ),
    max_leaves=12,
)


def _render(data: st.DataObject, value: Any, indent: int, lines: list[str], prefix: str) -> None:
    """Write ``value`` as the block under ``prefix`` (a ``key:`` or ``-`` already indented)."""
    comment = data.draw(st.sampled_from(["", "", " # c", "  #c", "   "]))
    if value is None or isinstance(value, str):
        text = prefix if value is None else f"{prefix} {value}"
        lines.append(text + comment)
        return
    lines.append(prefix + comment)
    step = data.draw(st.integers(min_value=0 if prefix.strip() != "-" else 1, max_value=3))
    inner = indent + step
    if isinstance(value, list):
        if step == 0 and not prefix.strip().endswith(":"):
            inner += 1
        for item in value:
            _render(data, item, inner + 2, lines, " " * inner + "-")
    else:
        inner = max(inner, indent + 1)
        for key, item in value.items():
            _render(data, item, inner, lines, " " * inner + f"{key}:")
    if data.draw(st.booleans()):
        lines.append(data.draw(st.sampled_from(["", "# note", "   # indented note", "  "])))


def _document(data: st.DataObject) -> str:
    tree = data.draw(st.dictionaries(_keys, _trees, min_size=1, max_size=3))
    lines: list[str] = []
    if data.draw(st.booleans()):
        lines.append("# generated")
    for key, value in tree.items():
        _render(data, value, 0, lines, f"{key}:")
    text = "\n".join(lines) + data.draw(st.sampled_from(["\n", "", "\n\n"]))
    if data.draw(st.sampled_from([False] * 4 + [True])):  # a near miss: one character changed
        at = data.draw(st.integers(0, len(text)))
        extra = data.draw(st.sampled_from([*" \t\r\n:#-'\"[{&*!|>é", "---\n"]))
        text = text[:at] + extra + text[at + data.draw(st.integers(0, 1)) :]
    return text


def _check(text: str) -> bool:
    """The fast reader's answer is the parser's (returns whether the fast reader answered)."""
    fast = compose_plain("t.yaml", text, MAX_VALUES)
    if fast is None:
        return False
    diags: list[Diagnostic] = []
    slow, ok = parse_yaml("t.yaml", text, diags)
    assert ok, f"the parser could not read what the fast reader read: {diags}\n{text}"
    assert diags == [], f"the parser reported what the fast reader took: {diags}\n{text}"
    assert tree_difference(fast, slow) is None, f"{tree_difference(fast, slow)}\n{text}"
    return True


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_fast_reader_reads_a_generated_file_as_the_parser_does_or_steps_aside(
    data: st.DataObject,
) -> None:
    _check(_document(data))


def test_generated_files_are_mostly_read_by_the_fast_reader() -> None:
    """The generator makes files the fast reader takes, so the test above compares trees."""
    answered = []

    # (a fixed seed: the share answered varies from 7% to 18% between random runs of 300)
    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(st.data())
    def sample(data: st.DataObject) -> None:
        answered.append(_check(_document(data)))

    sample()
    assert sum(answered) >= 15


@pytest.mark.parametrize(
    "text",
    [
        "a: 'quoted'\n",
        'a: "quoted"\n',
        "a: [1, 2]\n",
        "a: {b: 1}\n",
        "a: |\n  text\n",
        "a: >\n  text\n",
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a:\tb\n",
        "a: b\r\n",
        "---\na: b\n",
        "a: 1\na: 2\n",
        "a:\n  - b: 1\n",
        "a: é\n",
        "- a\n",
        "  a: 1\n",
        "a: hello\n  world\n",
        "a: b: c\n",
        "? a\n: b\n",
        "<<: {a: 1}\n",
        "a:\n  - x\n    - y\n",
        "",
        "# only a comment\n",
    ],
)
def test_the_fast_reader_steps_aside_for_what_it_does_not_read(text: str) -> None:
    assert compose_plain("t.yaml", text, MAX_VALUES) is None


def test_the_fast_reader_steps_aside_for_a_file_of_more_lines_than_values_allowed() -> None:
    text = "".join(f"k{i}: v\n" for i in range(20))
    assert compose_plain("t.yaml", text, 10) is None
    assert compose_plain("t.yaml", text, 100) is not None


def test_the_benchmark_topology_is_read_by_the_fast_reader(tmp_path: Any) -> None:
    from bench import topogen

    directory = topogen.write_topology(tmp_path, 200)
    for path in sorted(directory.glob("*.yaml")):
        text = path.read_text()
        assert _check(text), f"{path.name} was left to the parser"
        diags: list[Diagnostic] = []
        node, ok = read_yaml(path.name, text, diags)
        assert ok and node is not None and not diags
