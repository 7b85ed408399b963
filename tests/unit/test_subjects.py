"""Subject validity, matching, overlap and containment, checked against brute force."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jelmore_infra.subjects import (
    is_valid_subject,
    subject_is_subset,
    subject_matches,
    subject_problem,
    subjects_overlap,
)


@pytest.mark.parametrize(
    "subject", ["a", "jelmore.session.>", "a.*.c", "*", ">", "a.b-c_d.é", "$JS.API.>"]
)
def test_valid_subjects(subject: str) -> None:
    assert is_valid_subject(subject)
    assert subject_problem(subject) is None


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("", "is empty"),
        ("a..b", "empty token"),
        (".a", "empty token"),
        ("a.", "empty token"),
        ("a b", "whitespace"),
        ("a.\tb", "whitespace"),
        ("a.>.b", "'>' may only be the last token"),
        ("a*", "wildcard inside the token"),
        ("a.b>", "wildcard inside the token"),
    ],
)
def test_invalid_subjects_say_why(subject: str, problem: str) -> None:
    assert not is_valid_subject(subject)
    reason = subject_problem(subject)
    assert reason is not None and problem in reason


def test_literal_subjects_refuse_wildcards() -> None:
    assert is_valid_subject("a.b", wildcards=False)
    assert not is_valid_subject("a.*", wildcards=False)
    assert not is_valid_subject(">", wildcards=False)
    assert subject_problem("a.>", wildcards=False) is not None


def test_examples_of_matching_and_overlap() -> None:
    assert subject_matches("jelmore.session.>", "jelmore.session.started")
    assert subject_matches("jelmore.session.>", "jelmore.session.a.b")
    assert not subject_matches("jelmore.session.>", "jelmore.session")
    assert subject_matches("a.*.c", "a.b.c")
    assert not subject_matches("a.*", "a.b.c")
    assert subjects_overlap("jelmore.>", "jelmore.dlq.>")
    assert subjects_overlap("a.*.c", "a.b.*")
    assert not subjects_overlap("a.*", "a.b.c")
    assert not subjects_overlap("jelmore.session.>", "jelmore.dlq.>")
    assert subject_is_subset("jelmore.dlq.g.>", "jelmore.dlq.>")
    assert subject_is_subset("a.b", "a.*")
    assert not subject_is_subset("a.*", "a.b")
    assert not subject_is_subset("a.>", "a.*")
    assert subject_is_subset("a.*", "a.>")


TOKENS = ["a", "b", "*", ">"]
LITERAL_TOKENS = ["a", "b", "c"]  # "c" stands for any token no pattern names


def patterns() -> st.SearchStrategy[str]:
    return (
        st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4)
        .map(".".join)
        .filter(is_valid_subject)
    )


def literals(max_len: int) -> list[str]:
    out: list[str] = []
    for n in range(1, max_len + 1):
        out.extend(".".join(p) for p in itertools.product(LITERAL_TOKENS, repeat=n))
    return out


ALL_LITERALS = literals(5)


@settings(max_examples=300, deadline=None)
@given(patterns(), patterns())
def test_overlap_agrees_with_brute_force(a: str, b: str) -> None:
    expected = any(subject_matches(a, s) and subject_matches(b, s) for s in ALL_LITERALS)
    assert subjects_overlap(a, b) == expected
    assert subjects_overlap(b, a) == expected


@settings(max_examples=300, deadline=None)
@given(patterns(), patterns())
def test_subset_agrees_with_brute_force(a: str, b: str) -> None:
    expected = all(subject_matches(b, s) for s in ALL_LITERALS if subject_matches(a, s))
    assert subject_is_subset(a, b) == expected


@given(patterns())
def test_a_pattern_overlaps_and_contains_itself(a: str) -> None:
    assert subjects_overlap(a, a)
    assert subject_is_subset(a, a)


@given(st.text(alphabet="ab*>. \t", max_size=8))
def test_problem_and_validity_agree(text: str) -> None:
    assert (subject_problem(text) is None) == is_valid_subject(text)
    assert (subject_problem(text, wildcards=False) is None) == is_valid_subject(
        text, wildcards=False
    )


@given(st.lists(st.sampled_from(LITERAL_TOKENS), min_size=1, max_size=4).map(".".join))
def test_a_literal_matches_itself_and_the_catch_all(literal: str) -> None:
    assert subject_matches(literal, literal)
    assert subject_matches(">", literal)


_PATTERN_TOKENS = st.sampled_from(["a", "b", "c", "*"])


@st.composite
def _patterns(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(_PATTERN_TOKENS, min_size=1, max_size=4))
    if draw(st.booleans()):
        tokens.append(">")
    return ".".join(tokens)


@settings(max_examples=300, deadline=None)
@given(st.lists(_patterns(), min_size=1, max_size=12), _patterns())
def test_subject_index_finds_exactly_the_overlapping_patterns(
    stored: list[str], query: str
) -> None:
    from jelmore_infra.subjects import SubjectIndex

    index = SubjectIndex()
    for n, pattern in enumerate(stored):
        index.add(pattern, n)
    expected = [(p, n) for n, p in enumerate(stored) if subjects_overlap(p, query)]
    assert index.overlapping(query) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_patterns(), min_size=1, max_size=12), st.lists(_patterns(), min_size=1, max_size=4)
)
def test_subject_index_counts_exactly_the_overlapping_patterns(
    stored: list[str], queries: list[str]
) -> None:
    from jelmore_infra.subjects import SubjectIndex

    index = SubjectIndex()
    for n, pattern in enumerate(stored):
        index.add(pattern, n)
        # counts stay right while patterns are added between queries (remembered counts reset)
        for query in queries:
            expected = sum(subjects_overlap(p, query) for p in stored[: n + 1])
            assert index.count_overlapping(query) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_patterns(), min_size=1, max_size=12),
    _patterns(),
    st.integers(min_value=0, max_value=6),
)
def test_subject_index_stops_listing_at_the_limit(
    stored: list[str], query: str, limit: int
) -> None:
    from jelmore_infra.subjects import SubjectIndex

    index = SubjectIndex()
    for n, pattern in enumerate(stored):
        index.add(pattern, n)
    every = index.overlapping(query)
    some = index.overlapping(query, limit)
    assert len(some) == min(limit, len(every))
    assert set(some) <= set(every)
    assert some == sorted(some, key=lambda pair: int(str(pair[1])))  # in the order added


def test_subject_index_counts_thousands_of_identical_patterns_without_listing_them() -> None:
    from jelmore_infra.subjects import SubjectIndex

    index = SubjectIndex()
    for n in range(5000):
        index.add("foo.>", n)
        index.add(f"foo.{n}", n)
        index.add("foo.*", n)
    assert index.count_overlapping("foo.>") == 15000
    assert index.count_overlapping("foo.*") == 15000
    assert index.count_overlapping("foo.7") == 5000 * 2 + 1
    assert index.count_overlapping("*.>") == 15000
    assert index.count_overlapping("foo.*.x") == 5000
    some = index.overlapping("foo.7", 3)
    assert len(some) == 3 and all(subjects_overlap(p, "foo.7") for p, _ in some)


@pytest.mark.parametrize(
    ("subject", "space"),
    [
        ("$JS.API.>", "$JS.>"),
        ("$JS.*", "$JS.>"),
        ("$JSC.x", "$JSC.>"),
        ("$NRG.>", "$NRG.>"),
        ("$SYS.REQ.x", "$SYS.>"),
        ("*.>", "$JS.>"),
        ("*.*", "$JS.>"),
        ("*.ACCOUNT.>", "$JS.>"),
    ],
)
def test_subjects_overlapping_the_server_api_are_reserved(subject: str, space: str) -> None:
    from jelmore_infra.subjects import reserved_space

    found = reserved_space(subject)
    assert found is not None and found[0] == space


@pytest.mark.parametrize(
    "subject",
    ["$JS.EVENT.>", "$JS.EVENT.ADVISORY.x", "$SYS.ACCOUNT.>", "*", "$JS", "$js.api.>", "$KV.a.>"],
)
def test_exempt_and_unrelated_subjects_are_not_reserved(subject: str) -> None:
    from jelmore_infra.subjects import reserved_space

    assert reserved_space(subject) is None


def test_a_nul_character_makes_a_subject_invalid() -> None:
    assert not is_valid_subject("a.\0")
    assert subject_problem("a\0b") == "contains a NUL character"
