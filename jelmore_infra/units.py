"""Durations and sizes: parsing topology values and formatting exact values for people.

Durations are strings with units: ``500ms``, ``60s``, ``2m``, ``1h30m``, ``7d``, ``1w`` (units
``ns``, ``us``/``µs``, ``ms``, ``s``, ``m``, ``h``, ``d`` = 24h, ``w`` = 7d; parts may be combined
from the largest unit down). They become integer nanoseconds, the JetStream wire form.

Numbers are written with the ASCII digits 0-9 only.

Sizes are integers (bytes) or a number with a unit. Binary units are powers of 1024
(``KiB``, ``MiB``, ``GiB``, ``TiB``, ``PiB``); SI units are powers of 1000 (``KB``, ``MB``, ``GB``,
``TB``, ``PB``), so ``10GB`` is 10,000,000,000 bytes and ``10GiB`` is 10,737,418,240 bytes. ``B``
is bytes. ``-1`` or ``unlimited`` mean no limit.

Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

NS_PER_UNIT: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
    "w": 7 * 86400 * 1_000_000_000,
}
_UNIT_ORDER = ["w", "d", "h", "m", "s", "ms", "us", "ns"]

BYTES_PER_UNIT: dict[str, int] = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
}
_SIZE_NAMES = {k: k.upper().replace("I", "i") for k in BYTES_PER_UNIT}
_SIZE_NAMES["b"] = "B"

UNLIMITED_WORDS = frozenset({"unlimited", "-1"})

# Numbers are ASCII digits only: Python's ``\d``, ``int()``, ``Decimal()`` and ``str.isdigit``
# also take other scripts' digits ('٣s' would be 3 s), which no NATS tool reads.
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w)")
_SIZE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]+)?\s*\Z")
_COUNT_RE = re.compile(r"[0-9]+\Z")


class UnitError(ValueError):
    """A value could not be read as a duration or a size. The message says what is accepted."""


def _refuse_other_digits(what: str, value: str) -> None:
    """Raise when ``value`` has a digit other than 0-9 (say '٣' or '³')."""
    if not value.isascii() and any(c.isnumeric() and not c.isascii() for c in value):
        raise UnitError(f"invalid {what} {value!r}: write numbers with the digits 0-9")


def parse_duration(value: object, *, allow_unlimited: bool = False) -> int:
    """Read a duration as integer nanoseconds.

    ``0`` (int or string) is zero. With ``allow_unlimited``, ``-1``/``unlimited`` give 0, which is
    how JetStream spells "no limit" for ages.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a duration like '60s' or '7d', got {value!r}")
    if isinstance(value, int):
        if value == 0:
            return 0
        if value == -1 and allow_unlimited:
            return 0
        raise UnitError(
            f"a duration needs a unit: write '{value}s' or '{value}ms' "
            "(units: ns, us, ms, s, m, h, d, w)"
        )
    if not isinstance(value, str):
        raise UnitError(f"expected a duration like '60s' or '7d', got {value!r}")
    return _duration_text(value, allow_unlimited)


#: How many distinct texts the unit readers remember. A topology repeats a few spellings
#: ('30s', '1h', '256KiB') thousands of times; remembering them skips reading each again.
_CACHED_TEXTS = 4096


@functools.lru_cache(maxsize=_CACHED_TEXTS)
def _duration_text(value: str, allow_unlimited: bool) -> int:
    """:func:`parse_duration` of a text (errors are raised, never remembered)."""
    _refuse_other_digits("duration", value)
    text = value.strip()
    if text == "0":
        return 0
    if allow_unlimited and text.lower() in UNLIMITED_WORDS:
        return 0
    pos = 0
    total = Decimal(0)
    last_rank = -1
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        unit = m.group(2)
        rank = _UNIT_ORDER.index("us" if unit == "µs" else unit)
        if rank <= last_rank:
            raise UnitError(f"invalid duration {value!r}: units must go from largest to smallest")
        last_rank = rank
        total += Decimal(m.group(1)) * NS_PER_UNIT[unit]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise UnitError(
            f"invalid duration {value!r}: use a number with a unit, "
            "e.g. 500ms, 60s, 2m, 1h30m, 7d, 1w"
        )
    if total != total.to_integral_value():
        raise UnitError(f"invalid duration {value!r}: smaller than one nanosecond")
    return int(total)


def parse_size(value: object) -> int:
    """Read a size as integer bytes; ``-1``/``unlimited`` give -1."""
    if isinstance(value, bool):
        raise UnitError(f"expected a size like 1024, '512KiB' or '10GB', got {value!r}")
    if isinstance(value, int):
        if value < -1:
            raise UnitError(f"invalid size {value}: must be -1 (unlimited) or at least 0")
        return value
    if not isinstance(value, str):
        raise UnitError(f"expected a size like 1024, '512KiB' or '10GB', got {value!r}")
    return _size_text(value)


@functools.lru_cache(maxsize=_CACHED_TEXTS)
def _size_text(value: str) -> int:
    """:func:`parse_size` of a text (errors are raised, never remembered)."""
    _refuse_other_digits("size", value)
    text = value.strip()
    if text.lower() in UNLIMITED_WORDS:
        return -1
    m = _SIZE_RE.match(text)
    if not m:
        raise UnitError(f"invalid size {value!r}: use bytes or a unit, e.g. 1024, 512KiB, 10GB")
    number, unit = m.group(1), (m.group(2) or "b")
    factor = BYTES_PER_UNIT.get(unit.lower())
    if factor is None:
        raise UnitError(
            f"invalid size unit {unit!r} in {value!r}: use B, KB/MB/GB/TB (powers of 1000) "
            "or KiB/MiB/GiB/TiB (powers of 1024)"
        )
    try:
        amount = Decimal(number) * factor
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise UnitError(f"invalid size {value!r}") from exc
    if amount != amount.to_integral_value():
        raise UnitError(f"invalid size {value!r}: not a whole number of bytes")
    return int(amount)


def parse_count(value: object) -> int:
    """Read a count (messages, consumers): an integer, ``-1`` or ``unlimited``."""
    if isinstance(value, bool):
        raise UnitError(f"expected a whole number or 'unlimited', got {value!r}")
    if isinstance(value, int):
        if value < -1:
            raise UnitError(f"invalid count {value}: must be -1 (unlimited) or at least 0")
        return value
    if isinstance(value, str):
        _refuse_other_digits("count", value)
        text = value.strip().replace("_", "").replace(",", "")
        if text.lower() in UNLIMITED_WORDS:
            return -1
        if _COUNT_RE.match(text):
            try:
                return int(text)
            except ValueError:  # more digits than Python converts
                raise UnitError(f"the count of {len(text)} digits is too large") from None
    raise UnitError(f"expected a whole number or 'unlimited', got {value!r}")


def format_duration(ns: int) -> str:
    """Exact spelling of a duration, largest units first: ``7d``, ``1h30m``, ``500ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    rest = abs(ns)
    parts: list[str] = []
    for unit in _UNIT_ORDER[1:]:  # weeks are written as days: 7d, 30d
        size = NS_PER_UNIT[unit]
        if rest >= size:
            count, rest = divmod(rest, size)
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def format_size(n: int) -> str:
    """Human size with its exact byte count: ``10 GB``, ``1 GiB``, ``1500 B``, ``unlimited``.

    Exact: a size is written with a unit only when the unit divides it evenly.
    """
    if n < 0:
        return "unlimited"
    exact = [u for u, f in BYTES_PER_UNIT.items() if u != "b" and n >= f and n % f == 0]
    if not exact:
        return f"{n} B"
    unit = max(exact, key=BYTES_PER_UNIT.__getitem__)
    return f"{n // BYTES_PER_UNIT[unit]} {_SIZE_NAMES[unit]}"


def format_count(n: int) -> str:
    """``100,000`` or ``unlimited``."""
    return "unlimited" if n < 0 else f"{n:,}"
