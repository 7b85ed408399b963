"""A fast reader for the plainest YAML: block maps and lists of unquoted one-line values.

Topology files are mostly written this way (and ``bench/topogen.py`` writes nothing else)::

    streams:
      ORDERS:
        subjects:
          - orders.>
        max_age: 1h   # a comment

:func:`compose_plain` reads such a file line by line with one regular expression per line and
builds the same located nodes (:mod:`jelmore_infra.topology.nodes`) as the YAML parser's events
do in :mod:`jelmore_infra.topology.load`, at the same lines and columns, in about half the time.
It reads only what it is sure of and answers ``None`` for anything else, and the file is then
read by the YAML parser as before. So it never decides what a file means, nor reports a problem:
a quoted value, a flow list, a block scalar, an anchor, a tag, a tab, a ``---``, a duplicate
key, a list item that is a map, text that is not ASCII, or anything it cannot place makes it
step aside. A test checks on generated files that whenever it answers, its nodes equal the
parser's, value, place and all.

Pure: no I/O.
"""

from __future__ import annotations

import re

from jelmore_infra.topology.nodes import Entry, LNode, Map, Scalar, Seq
from jelmore_infra.topology.scalars import plain_value

#: The deepest nesting read here (the YAML reader's own limit is larger and reports).
_MAX_DEPTH = 32

#: A plain one-line value YAML reads as written: it does not start with an indicator (``-`` only
#: when a non-space other than ``:`` follows), holds no ``": "`` and no ``" #"``, does not end with
#: ``:``, and has no trailing spaces (those and a comment are matched apart).
_VALUE = r"(?:[^\s\-?:,\[\]{}#&*!|>'\"%@`]|-[^\s:])(?:[^:\s]+|:(?=\S)| +(?=[^\s#]))*"
#: One line: its indentation, then ``- value``, ``key: value`` or ``key:`` (a key is a plain
#: name), then maybe a comment after a space.
_LINE = re.compile(
    r"( *)(?:-( +)(" + _VALUE + r")|([A-Za-z0-9_][A-Za-z0-9_./-]*):(?: +(" + _VALUE + r"))?)"
    r"(?: +#.*)? *\Z"
)


class _Frame:
    """A map or a list being read: where it starts and, for a map, a key waiting for a block."""

    __slots__ = ("col", "entries", "indent", "items", "key", "key_col", "key_line", "line")

    def __init__(self, indent: int, line: int, col: int, is_map: bool) -> None:
        self.indent = indent
        self.line = line
        self.col = col
        self.entries: dict[str, Entry] = {}
        self.items: list[LNode] | None = None if is_map else []
        #: A key written without a value on its line (its value is the block below, if any).
        self.key: str | None = None
        self.key_line = 0
        self.key_col = 0


def compose_plain(filename: str, text: str, max_values: int) -> LNode | None:
    """The root node of ``text`` when it is plain block YAML this reader is sure of, else
    ``None`` (the file is then for the YAML parser).

    A file of more than ``max_values`` lines is left to the YAML reader, whose limit on the
    values of one file that is (a line here holds at most one value).
    """
    if not text.isascii() or not text.replace("\n", "").isprintable():
        return None  # (a tab, a carriage return or another control character)
    lines = text.split("\n")
    if len(lines) > max_values:
        return None
    stack: list[_Frame] = []
    root: _Frame | None = None
    match = _LINE.match
    for number, raw in enumerate(lines, 1):
        content = raw.lstrip(" ")
        if not content or content[0] == "#":
            continue
        m = match(raw)
        if m is None:
            return None
        spaces, _, item, key, value = m.groups()
        indent = len(spaces)
        # Close what this line is not inside of.
        while stack and stack[-1].indent > indent:
            if not _close(stack, filename):
                return None
        if len(stack) >= _MAX_DEPTH:
            return None  # (whether or not this line opens one more)
        top = stack[-1] if stack else None
        if item is not None:
            if top is not None and top.items is not None and top.indent == indent:
                frame = top
            elif top is not None and top.key is not None and indent >= top.indent:
                frame = _Frame(indent, number, indent + 1, False)
                stack.append(frame)
            else:
                return None
            assert frame.items is not None
            frame.items.append(
                Scalar(plain_value(item), item, False, filename, number, m.start(3) + 1)
            )
            continue
        if top is not None and top.items is not None and top.indent == indent:
            # A list written at the same indentation as its map's key ends here.
            if not _close(stack, filename):
                return None
            top = stack[-1] if stack else None
        if top is None:
            if root is not None or indent != 0:
                return None
            frame = root = _Frame(0, number, 1, True)
            stack.append(frame)
        elif top.items is None and top.indent == indent:
            frame = top
            if frame.key is not None:
                _empty_value(frame, filename)
        elif top.items is None and top.key is not None and indent > top.indent:
            frame = _Frame(indent, number, indent + 1, True)
            stack.append(frame)
        else:
            return None
        if key in frame.entries:
            return None  # a duplicate key: the YAML reader reports it
        if value is None:
            frame.key, frame.key_line, frame.key_col = key, number, indent + 1
            continue
        node = Scalar(plain_value(value), value, False, filename, number, m.start(5) + 1)
        frame.entries[key] = Entry(key, node, filename, number, indent + 1)
    while stack:
        if not _close(stack, filename):
            return None
    if root is None:
        return None
    return Map(root.entries, filename, root.line, root.col)


def _empty_value(frame: _Frame, filename: str) -> None:
    """The waiting key of ``frame`` has no value: YAML reads an empty scalar right after its
    colon."""
    key = frame.key
    assert key is not None
    col = frame.key_col + len(key) + 1
    value = Scalar(None, "", False, filename, frame.key_line, col)
    frame.entries[key] = Entry(key, value, filename, frame.key_line, frame.key_col)
    frame.key = None


def _close(stack: list[_Frame], filename: str) -> bool:
    """Close the innermost map or list and give it to its parent's waiting key; ``False`` when
    it cannot be placed (never for a file this reader accepts)."""
    frame = stack.pop()
    if frame.items is not None:
        node: LNode = Seq(tuple(frame.items), filename, frame.line, frame.col)
    else:
        if frame.key is not None:
            _empty_value(frame, filename)
        node = Map(frame.entries, filename, frame.line, frame.col)
    if not stack:
        # The root map stays on record in compose_plain; a root list is not read here.
        return frame.items is None
    parent = stack[-1]
    key = parent.key
    if key is None:
        return False
    parent.entries[key] = Entry(key, node, filename, parent.key_line, parent.key_col)
    parent.key = None
    return True


__all__ = ["compose_plain"]
