"""What an unquoted YAML value means in a topology file: :func:`plain_value`.

Both readers of topology files use it (:mod:`jelmore_infra.topology.load`, from the YAML
parser's events, and :mod:`jelmore_infra.topology.blockyaml`), so a value means the same
whichever read it. Pure: no I/O.
"""

from __future__ import annotations

import math
import re

#: Plain (unquoted) words that are not text. Only spellings that mean the same in YAML 1.1 (what
#: PyYAML and ``import`` use) and in YAML 1.2 (what editors use), and booleans only as ``true`` and
#: ``false``: ``yes``, ``on``, ``True`` and the like stay text, so a boolean setting refuses them.
_WORDS: dict[str, object] = {
    "": None,
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    "true": True,
    "false": False,
}
for _inf in ("inf", "Inf", "INF"):
    _WORDS[f".{_inf}"] = _WORDS[f"+.{_inf}"] = math.inf
    _WORDS[f"-.{_inf}"] = -math.inf
for _nan in ("nan", "NaN", "NAN"):
    _WORDS[f".{_nan}"] = math.nan
#: Whole numbers: ASCII decimal digits, an optional sign, no leading zero (``010`` is octal 8 in
#: YAML 1.1 but 10 in YAML 1.2, so it stays text). ``0x10``, ``0o17``, ``1_000`` and ``1:30``
#: are text too.
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
#: Decimal fractions with a point; an exponent needs its sign (``1.5e+3``).
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+][0-9]+)?\Z")
_NUMBER_START = frozenset("0123456789+-.")


def plain_value(text: str) -> object:
    """What an unquoted, untagged YAML scalar means: ``None``, a bool, an int, a float or text."""
    if text in _WORDS:
        return _WORDS[text]
    if text[0] in _NUMBER_START:
        if _INT.match(text):
            try:
                return int(text)
            except ValueError:  # more digits than Python converts; no setting is that large
                return text
        if _FLOAT.match(text):
            return float(text)
    return text


__all__ = ["plain_value"]
