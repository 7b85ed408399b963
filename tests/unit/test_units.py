"""Durations, sizes and counts as topology files write them, and their exact human spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jelmore_infra.units import (
    UnitError,
    format_count,
    format_duration,
    format_size,
    parse_count,
    parse_duration,
    parse_size,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("500ms", 500_000_000),
        ("60s", 60 * S),
        ("2m", 120 * S),
        ("1h30m", 5400 * S),
        ("7d", 7 * 86400 * S),
        ("30d", 30 * 86400 * S),
        ("1w", 7 * 86400 * S),
        ("1d12h", 36 * 3600 * S),
        ("1.5s", 1_500_000_000),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("10ns", 10),
        ("0", 0),
        (0, 0),
        ("0s", 0),
        (" 60s ", 60 * S),
    ],
)
def test_durations_with_units_become_nanoseconds(text: object, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["unlimited", "-1", -1, "UNLIMITED"])
def test_unlimited_durations_are_zero_where_allowed(text: object) -> None:
    assert parse_duration(text, allow_unlimited=True) == 0


@pytest.mark.parametrize("text", ["unlimited", -1])
def test_unlimited_durations_are_refused_where_not_allowed(text: object) -> None:
    with pytest.raises(UnitError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("7x", "use a number with a unit"),
        ("60", "use a number with a unit"),
        (60, "a duration needs a unit: write '60s'"),
        ("30m1h", "units must go from largest to smallest"),
        ("1s1s", "units must go from largest to smallest"),
        ("0.5ns", "smaller than one nanosecond"),
        (True, "expected a duration"),
        ([1], "expected a duration"),
        ("", "use a number with a unit"),
    ],
)
def test_bad_durations_explain_what_is_accepted(text: object, hint: str) -> None:
    with pytest.raises(UnitError, match=hint):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("10GB", 10 * 10**9),
        ("10 GB", 10 * 10**9),
        ("1GB", 10**9),
        ("10GiB", 10 * 2**30),
        ("512KiB", 512 * 1024),
        ("1.5KiB", 1536),
        ("5MB", 5 * 10**6),
        ("2TiB", 2 * 2**40),
        ("1kb", 1000),
        ("100B", 100),
        (-1, -1),
        ("-1", -1),
        ("unlimited", -1),
        (0, 0),
    ],
)
def test_sizes_si_and_binary(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("10GG", "invalid size unit 'GG'"),
        ("10 gigabytes", "invalid size unit"),
        ("1.5B", "not a whole number of bytes"),
        ("lots", "use bytes or a unit"),
        (-5, "must be -1 \\(unlimited\\) or at least 0"),
        (True, "expected a size"),
        (1.5, "expected a size"),
    ],
)
def test_bad_sizes_explain_what_is_accepted(text: object, hint: str) -> None:
    with pytest.raises(UnitError, match=hint):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "count"),
    [(100000, 100000), ("100_000", 100000), ("100,000", 100000), (-1, -1), ("unlimited", -1)],
)
def test_counts(text: object, count: int) -> None:
    assert parse_count(text) == count


@pytest.mark.parametrize("text", ["many", -2, 1.5, True, "1e5"])
def test_bad_counts(text: object) -> None:
    with pytest.raises(UnitError, match=r"whole number|at least 0"):
        parse_count(text)


# Digits of other scripts: Arabic-Indic, Extended Arabic-Indic (Persian), Devanagari,
# fullwidth, superscript, a vulgar fraction. Python's int(), Decimal() and \\d accept most.
OTHER_DIGITS = ["٣", "۳", "३", "３", "³", "½"]


@pytest.mark.parametrize("digit", OTHER_DIGITS)
def test_durations_take_only_ascii_digits(digit: str) -> None:
    for text in (f"{digit}s", f"1h{digit}0m", f"{digit}"):
        with pytest.raises(UnitError, match="write numbers with the digits 0-9"):
            parse_duration(text)


@pytest.mark.parametrize("digit", OTHER_DIGITS)
def test_sizes_take_only_ascii_digits(digit: str) -> None:
    for text in (f"{digit}GB", f"1{digit}KiB", f"{digit}"):
        with pytest.raises(UnitError, match="write numbers with the digits 0-9"):
            parse_size(text)


@pytest.mark.parametrize("digit", OTHER_DIGITS)
def test_counts_take_only_ascii_digits(digit: str) -> None:
    for text in (f"{digit}", f"1{digit}0", f"1_{digit}00"):
        with pytest.raises(UnitError, match="write numbers with the digits 0-9"):
            parse_count(text)


def test_a_count_too_long_to_convert_is_an_error_not_a_crash() -> None:
    with pytest.raises(UnitError, match="the count of 5000 digits is too large"):
        parse_count("9" * 5000)


@pytest.mark.parametrize(
    ("ns", "text"),
    [(0, "0s"), (7 * 86400 * S, "7d"), (5400 * S, "1h30m"), (500_000_000, "500ms"), (60 * S, "1m")],
)
def test_durations_are_formatted_exactly(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_sizes_and_counts_are_formatted_exactly() -> None:
    assert format_size(10 * 10**9) == "10 GB"
    assert format_size(2**30) == "1 GiB"
    assert format_size(1500) == "1500 B"
    assert format_size(-1) == "unlimited"
    assert format_count(100000) == "100,000"
    assert format_count(-1) == "unlimited"


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_formatted_durations_read_back_exactly(ns: int) -> None:
    assert parse_duration(format_duration(ns)) == ns


@given(st.integers(min_value=-1, max_value=2**63 - 1))
def test_formatted_sizes_read_back_exactly(n: int) -> None:
    text = format_size(n)
    assert parse_size(text) == n


def test_a_text_read_again_gives_the_same_answer_and_a_bad_one_fails_every_time() -> None:
    for _ in range(3):
        assert parse_duration("1h30m") == 5_400 * 10**9
        assert parse_duration("-1", allow_unlimited=True) == 0
        with pytest.raises(UnitError, match="invalid duration '-1'"):
            parse_duration("-1")  # the same text read before with allow_unlimited
        assert parse_size("256KiB") == 262_144
        with pytest.raises(UnitError, match="invalid size"):
            parse_size("12 parsecs")
