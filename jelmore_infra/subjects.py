"""NATS subject helpers: validity, matching, overlap and containment of subject patterns.

Subjects are dot-separated tokens. In a pattern, ``*`` matches exactly one token and ``>`` (only as
the last token) matches one or more tokens. Used by topology validation (stream subjects must not
overlap, consumer filters must lie within their stream) and by the runtime. Pure: no I/O.
"""

from __future__ import annotations

_WHITESPACE = frozenset(" \t\r\n\f\v")


def is_valid_subject(subject: str, *, wildcards: bool = True) -> bool:
    """Whether ``subject`` is a well-formed subject.

    Tokens must be non-empty and contain no whitespace. With ``wildcards``, ``*`` and ``>`` are
    allowed as whole tokens (``>`` only last); without, they are not allowed at all. A wildcard
    character inside a longer token (``a*``, ``b>``) is always refused: it would be read literally
    by the server, which is never what a topology means.
    """
    if not isinstance(subject, str) or not subject:
        return False
    if any(c in _WHITESPACE for c in subject):
        return False
    tokens = subject.split(".")
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if not token:
            return False
        if token in ("*", ">"):
            if not wildcards or (token == ">" and i != last):
                return False
        elif "*" in token or ">" in token:
            return False
    return True


def subject_matches(pattern: str, literal: str) -> bool:
    """Whether the literal subject ``literal`` is matched by ``pattern``."""
    p = pattern.split(".")
    s = literal.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s):
            return False
        if token != "*" and token != s[i]:
            return False
    return len(p) == len(s)


def subjects_overlap(a: str, b: str) -> bool:
    """Whether some literal subject is matched by both patterns."""
    ta = a.split(".")
    tb = b.split(".")
    for i in range(max(len(ta), len(tb))):
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x == ">":
            return y is not None
        if y == ">":
            return x is not None
        if x is None or y is None:
            return False
        if x != "*" and y != "*" and x != y:
            return False
    return True


def subject_is_subset(a: str, b: str) -> bool:
    """Whether every subject matched by pattern ``a`` is also matched by pattern ``b``."""
    ta = a.split(".")
    tb = b.split(".")
    for i, y in enumerate(tb):
        if y == ">":
            return len(ta) > i
        if i >= len(ta):
            return False
        x = ta[i]
        if x == ">":
            return False
        if y == "*":
            continue
        if x != y:
            return False
    return len(ta) == len(tb)


def is_subset_of_any(subject: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """Whether ``subject`` lies within one of ``patterns``."""
    return any(subject_is_subset(subject, p) for p in patterns)


def subject_problem(subject: str, *, wildcards: bool = True) -> str | None:
    """Why ``subject`` is not valid (a phrase to follow "subject 'x' "), or ``None`` if it is.

    Agrees with :func:`is_valid_subject`: the result is ``None`` exactly when that is true.
    """
    if not subject:
        return "is empty"
    if any(c in _WHITESPACE for c in subject):
        return "contains whitespace"
    tokens = subject.split(".")
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if not token:
            return "has an empty token (a dot at the start or end, or two dots in a row)"
        if token in ("*", ">"):
            if not wildcards:
                return "must not contain wildcards ('*' or '>')"
            if token == ">" and i != last:
                return "has '>' before its last token ('>' may only be the last token)"
        elif "*" in token or ">" in token:
            return (
                f"has a wildcard inside the token '{token}' "
                "('*' and '>' must be whole tokens, e.g. 'a.*')"
            )
    return None


__all__ = [
    "is_subset_of_any",
    "is_valid_subject",
    "subject_is_subset",
    "subject_matches",
    "subject_problem",
    "subjects_overlap",
]


class SubjectIndex:
    """Subject patterns in a token trie, to find every stored pattern overlapping a new one.

    Checking n patterns pairwise costs n²; the trie visits only the branches a pattern can match,
    so finding the overlaps among thousands of streams' subjects stays close to linear.
    """

    __slots__ = ("_count", "_root")

    def __init__(self) -> None:
        self._root = _Node()
        self._count = 0

    def add(self, pattern: str, owner: object) -> None:
        entry = (self._count, pattern, owner)
        self._count += 1
        node = self._root
        tokens = pattern.split(".")
        for i, token in enumerate(tokens):
            if token == ">" and i == len(tokens) - 1:
                node.tails.append(entry)
                return
            node = node.children.setdefault(token, _Node())
        node.ends.append(entry)

    def overlapping(self, pattern: str) -> list[tuple[str, object]]:
        """Every stored ``(pattern, owner)`` that some literal subject matches together with
        ``pattern``, in the order they were added."""
        found: list[_Entry] = []
        _collect(self._root, pattern.split("."), 0, found)
        return [(p, owner) for _, p, owner in sorted(found, key=lambda e: e[0])]


_Entry = tuple[int, str, object]


class _Node:
    __slots__ = ("children", "ends", "tails")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ends: list[_Entry] = []  # patterns that end at this node
        self.tails: list[_Entry] = []  # patterns that end with ">" right below this node


def _everything_below(node: _Node, found: list[_Entry]) -> None:
    """Every stored pattern that needs at least one more token from ``node``."""
    found.extend(node.tails)
    for child in node.children.values():
        found.extend(child.ends)
        _everything_below(child, found)


def _collect(node: _Node, tokens: list[str], i: int, found: list[_Entry]) -> None:
    if i == len(tokens):
        found.extend(node.ends)
        return
    token = tokens[i]
    if token == ">":
        _everything_below(node, found)
        return
    found.extend(node.tails)  # a stored "…>" matches this token and whatever follows
    if token == "*":
        for child in node.children.values():
            _collect(child, tokens, i + 1, found)
        return
    for key in (token, "*"):
        nxt = node.children.get(key)
        if nxt is not None:
            _collect(nxt, tokens, i + 1, found)
