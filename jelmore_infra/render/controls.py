"""Text from the server made safe to show: control characters become visible escapes.

Stream and consumer names, descriptions, metadata keys and server error texts come from the
server, which accepts names holding terminal control sequences (a stream may be called
``EVIL\\x1b[2J``). Printed raw, such a name would clear the screen, move the cursor or hide the
rest of a plan line, with or without colour. :func:`escape_controls` turns every character that is
not printable (C0 and C1 controls, DEL, line and paragraph separators, format characters such as
bidirectional overrides, unassigned code points, and every space but the plain one) into a
visible escape: ``\\x1b``, ``\\u202e`` or ``\\U000e0001``. Printable text, backslashes included,
is left as it is, so escaping twice changes nothing and ordinary names look the same.

The same escapes are valid inside a YAML double-quoted string, which ``import`` relies on.
Every human-facing view (terminal plan, Markdown plan, apply progress, error lines, file names)
applies this at the point where text leaves the program; the JSON plan keeps exact names, since
JSON escapes control characters itself.

Pure: no I/O, standard library only (cheap enough for the CLI's error path).
"""

from __future__ import annotations


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_controls(text: str) -> str:
    """``text`` with every non-printable character written as a visible ``\\x1b``-style escape.

    A plain space stays; tabs and newlines are escaped too, so the result is always one line.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def escape_controls_keeping_lines(text: str) -> str:
    """:func:`escape_controls` applied line by line: line breaks stay, all else is escaped.

    For a finished multi-line document whose line breaks are its own, not the server's.
    """
    if text.isprintable():
        return text
    return "\n".join(escape_controls(line) for line in text.split("\n"))


__all__ = ["escape_controls", "escape_controls_keeping_lines"]
