"""NATS subject helpers: validity, matching, overlap and containment of subject patterns.

Subjects are dot-separated tokens. In a pattern, ``*`` matches exactly one token and ``>`` (only as
the last token) matches one or more tokens. Used by topology validation (stream subjects must not
overlap, consumer filters must lie within their stream) and by the runtime. Pure: no I/O.
"""

from __future__ import annotations

_WHITESPACE = frozenset(" \t\r\n\f\v")

#: Subject spaces the server keeps for itself, each with what it is and the part of it that is
#: exempt. A stream may store a subject overlapping one of them only with ``no_ack: true``
#: (docs/server-semantics.md, "Subjects and names the server refuses").
RESERVED_SUBJECT_SPACES: tuple[tuple[str, str, str], ...] = (
    ("$JS.>", "the JetStream API", "$JS.EVENT.>"),
    ("$JSC.>", "the JetStream API", "$JS.EVENT.>"),
    ("$NRG.>", "the JetStream API", "$JS.EVENT.>"),
    ("$SYS.>", "the system API", "$SYS.ACCOUNT.>"),
)


def is_valid_subject(subject: str, *, wildcards: bool = True) -> bool:
    """Whether ``subject`` is a well-formed subject.

    Tokens must be non-empty and contain no whitespace and no NUL character. With ``wildcards``,
    ``*`` and ``>`` are allowed as whole tokens (``>`` only last); without, they are not allowed at
    all. A wildcard character inside a longer token (``a*``, ``b>``) is always refused: it would be
    read literally by the server, which is never what a topology means. The server itself takes a
    NUL in a stream's subject, but its file store then reads the stream's index as corrupt on
    every restart (docs/server-semantics.md), so it is refused here.
    """
    if not isinstance(subject, str) or not subject:
        return False
    if "\0" in subject or any(c in _WHITESPACE for c in subject):
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
    if "\0" in subject:
        return "contains a NUL character"
    if not _WHITESPACE.isdisjoint(subject):
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


def reserved_space(subject: str) -> tuple[str, str] | None:
    """The reserved subject space ``subject`` overlaps, as ``(space, what it is)``, or ``None``.

    A subject overlaps a space when one literal subject matches both (``*.>`` overlaps ``$JS.>``);
    a subject lying wholly within the exempt part (``$JS.EVENT.>``, ``$SYS.ACCOUNT.>``) does not
    count. The capture-all ``>`` overlaps every space; it has a rule of its own.
    """
    for space, what, exempt in RESERVED_SUBJECT_SPACES:
        if subjects_overlap(subject, space) and not subject_is_subset(subject, exempt):
            return space, what
    return None


__all__ = [
    "RESERVED_SUBJECT_SPACES",
    "SubjectIndex",
    "is_subset_of_any",
    "is_valid_subject",
    "reserved_space",
    "subject_is_subset",
    "subject_matches",
    "subject_problem",
    "subjects_overlap",
]


class SubjectIndex:
    """Subject patterns in a token trie, to find the stored patterns overlapping a new one.

    Checking n patterns pairwise costs n²; the trie visits only the branches a pattern can match.
    Each node also keeps counts of the patterns below it, so :meth:`count_overlapping` answers
    "how many" without listing them, and :meth:`overlapping` can stop after ``limit`` finds: a
    topology where thousands of streams share a subject space stays close to linear.
    """

    __slots__ = ("_cache", "_count", "_root")

    def __init__(self) -> None:
        self._root = _Node()
        self._count = 0
        self._cache: dict[tuple[int, tuple[str, ...]], int] = {}

    def __len__(self) -> int:
        return self._count

    def add(self, pattern: str, owner: object) -> None:
        entry = (self._count, pattern, owner)
        self._count += 1
        self._cache.clear()
        node = self._root
        tokens = pattern.split(".")
        last = len(tokens) - 1
        for i, token in enumerate(tokens):
            node.below += 1
            if token == ">" and i == last:
                node.tails.append(entry)
                return
            child = node.children.get(token)
            if child is None:
                child = node.children[token] = _Node()
            if i == last:
                node.child_ends += 1
                child.ends.append(entry)
                return
            node = child

    def overlapping(self, pattern: str, limit: int | None = None) -> list[tuple[str, object]]:
        """The stored ``(pattern, owner)`` pairs that some literal subject matches together with
        ``pattern``, in the order they were added.

        With ``limit``, at most that many, found without visiting the rest (which of the
        overlapping patterns are returned then depends on the trie's order, not only on the
        order they were added in).
        """
        found: list[_Entry] = []
        budget = -1 if limit is None else limit
        if budget != 0:
            _collect(self._root, pattern.split("."), 0, found, budget)
        return [(p, owner) for _, p, owner in sorted(found, key=lambda e: e[0])]

    def count_overlapping(self, pattern: str) -> int:
        """How many stored patterns overlap ``pattern``, without listing them.

        Usually proportional to the length of ``pattern``: a final ``>``, a final ``*`` and
        ``*.>`` read counts kept in the nodes; a ``*`` followed by more tokens visits every branch
        once, and the result is remembered until the next :meth:`add`.
        """
        return self._count_at(self._root, tuple(pattern.split(".")))

    def _count_at(self, node: _Node, tokens: tuple[str, ...]) -> int:
        if not tokens:
            return len(node.ends)
        token = tokens[0]
        if token == ">":
            return node.below
        total = len(node.tails)  # a stored "…>" matches this token and whatever follows
        if token == "*":
            if len(tokens) == 1:
                return total + node.child_ends
            if len(tokens) == 2 and tokens[1] == ">":
                return node.below - node.child_ends
            memo = (id(node), tokens)
            cached = self._cache.get(memo)
            if cached is None:
                rest = tokens[1:]
                cached = sum(self._count_at(c, rest) for c in node.children.values())
                self._cache[memo] = cached
            return total + cached
        for key in (token, "*"):
            nxt = node.children.get(key)
            if nxt is not None:
                total += self._count_at(nxt, tokens[1:])
        return total


_Entry = tuple[int, str, object]


class _Node:
    __slots__ = ("below", "child_ends", "children", "ends", "tails")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ends: list[_Entry] = []  # patterns that end at this node
        self.tails: list[_Entry] = []  # patterns that end with ">" right below this node
        self.below = 0  # patterns with at least one more token after this node
        self.child_ends = 0  # patterns that end exactly one token below this node


def _take(items: list[_Entry], found: list[_Entry], budget: int) -> bool:
    """Add ``items`` to ``found`` within ``budget`` (negative: no limit); whether it is spent."""
    if budget < 0:
        found.extend(items)
        return False
    found.extend(items[: budget - len(found)])
    return len(found) >= budget


def _everything_below(node: _Node, found: list[_Entry], budget: int) -> bool:
    """Every stored pattern that needs at least one more token from ``node``."""
    if _take(node.tails, found, budget):
        return True
    for child in node.children.values():
        if _take(child.ends, found, budget) or _everything_below(child, found, budget):
            return True
    return False


def _collect(node: _Node, tokens: list[str], i: int, found: list[_Entry], budget: int) -> bool:
    """Add the patterns overlapping ``tokens[i:]`` below ``node``; whether the budget is spent."""
    if i == len(tokens):
        return _take(node.ends, found, budget)
    token = tokens[i]
    if token == ">":
        return _everything_below(node, found, budget)
    if _take(node.tails, found, budget):  # a stored "…>" matches this token and whatever follows
        return True
    if token == "*":
        for child in node.children.values():
            if _collect(child, tokens, i + 1, found, budget):
                return True
        return False
    for key in (token, "*"):
        nxt = node.children.get(key)
        if nxt is not None and _collect(nxt, tokens, i + 1, found, budget):
            return True
    return False
