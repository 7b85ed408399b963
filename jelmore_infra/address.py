"""Resource addresses: ``stream.NAME``, ``consumer.STREAM.NAME``, ``kv.NAME``, ``objectstore.NAME``,
``event.TYPE``.

An address is the kind's keyword followed by the kind's name parts, joined with dots. Stream,
consumer and bucket names can never hold a dot (the server refuses them, see
``docs/server-semantics.md``), so their parts split on dots; an event type is dotted itself
(``event.session.created``), so its one part is everything after ``event.``. Parsing is therefore
per kind (:data:`FORMS`), and every place that reads an address goes through :func:`parse`
instead of splitting on dots.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class AddressError(ValueError):
    """A text that is not an address (the message says which forms are accepted)."""


@dataclass(frozen=True, slots=True)
class AddressForm:
    """How one kind's addresses look: its keyword and the names of its parts.

    ``dotted_last``: the last part may itself hold dots (event types).
    """

    keyword: str
    parts: tuple[str, ...]
    dotted_last: bool = False

    @property
    def usage(self) -> str:
        """``consumer.STREAM.NAME``."""
        return ".".join((self.keyword, *self.parts))


#: Every address form jelmore-infra knows, by keyword. A kind module names its form from here.
FORMS: dict[str, AddressForm] = {
    form.keyword: form
    for form in (
        AddressForm("stream", ("NAME",)),
        AddressForm("consumer", ("STREAM", "NAME")),
        AddressForm("kv", ("NAME",)),
        AddressForm("objectstore", ("NAME",)),
        AddressForm("event", ("TYPE",), dotted_last=True),
    )
}


class Address(NamedTuple):
    """One resource's address: its kind keyword and its name parts (``("JELMORE", "workers")``).

    A named tuple: hashing and ordering are the tuple's (fast for plans of thousands).
    """

    kind: str
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join((self.kind, *self.parts))

    @property
    def name(self) -> str:
        """The resource's own name (the last part)."""
        return self.parts[-1]


def stream(name: str) -> Address:
    return Address("stream", (name,))


def consumer(stream_name: str, name: str) -> Address:
    return Address("consumer", (stream_name, name))


def usage(keywords: tuple[str, ...] | None = None) -> str:
    """``stream.NAME or consumer.STREAM.NAME`` for the given kinds (default: every form)."""
    forms = [FORMS[k].usage for k in keywords or tuple(FORMS)]
    return ", ".join(forms[:-1]) + (" or " if len(forms) > 1 else "") + forms[-1]


def parse(text: str, keywords: tuple[str, ...] | None = None) -> Address:
    """The address ``text`` names, or :class:`AddressError` with a one-line reason.

    ``keywords`` limits the accepted kinds (default: every form in :data:`FORMS`); the error
    message lists those forms.
    """
    allowed = keywords or tuple(FORMS)
    keyword, dot, rest = text.partition(".")
    form = FORMS.get(keyword) if keyword in allowed else None
    if form is None or not dot:
        raise AddressError(f"{text!r} is not an address: use {usage(allowed)}")
    head = rest.split(".", len(form.parts) - 1) if form.dotted_last else rest.split(".")
    if len(head) != len(form.parts) or not all(head):
        raise AddressError(f"{text!r} is not an address: use {usage(allowed)}")
    return Address(keyword, tuple(head))


def try_parse(text: str, keywords: tuple[str, ...] | None = None) -> Address | None:
    """Like :func:`parse`, but ``None`` for a text that is not an address."""
    try:
        return parse(text, keywords)
    except AddressError:
        return None
