"""Resource addresses: parsing is per kind (event types hold dots), formatting round-trips, and a
malformed address is a one-line error naming the accepted forms."""

from __future__ import annotations

import pytest

from jelmore_infra.address import Address, AddressError, consumer, parse, stream, try_parse


@pytest.mark.parametrize(
    ("text", "kind", "parts"),
    [
        ("stream.JELMORE", "stream", ("JELMORE",)),
        ("consumer.JELMORE.workers", "consumer", ("JELMORE", "workers")),
        ("kv.jelmore-config", "kv", ("jelmore-config",)),
        ("objectstore.jelmore-artifacts", "objectstore", ("jelmore-artifacts",)),
        ("event.session.created", "event", ("session.created",)),
        ("event.ping", "event", ("ping",)),
    ],
)
def test_an_address_parses_into_its_kind_and_parts_and_formats_back(
    text: str, kind: str, parts: tuple[str, ...]
) -> None:
    address = parse(text)
    assert address == Address(kind, parts)
    assert str(address) == text
    assert address.name == parts[-1]


@pytest.mark.parametrize(
    "text",
    [
        "JELMORE",
        "stream",
        "stream.",
        "stream.A.B",
        "consumer.A",
        "consumer.A.",
        "consumer..B",
        "consumer.A.B.C",
        "queue.A",
        "event.",
        "kv.a.b",
    ],
)
def test_a_malformed_address_is_a_clear_error(text: str) -> None:
    with pytest.raises(AddressError, match=r"is not an address: use stream\.NAME"):
        parse(text)
    assert try_parse(text) is None


def test_the_error_names_only_the_accepted_kinds() -> None:
    with pytest.raises(AddressError) as info:
        parse("kv.config", ("stream", "consumer"))
    assert (
        str(info.value) == "'kv.config' is not an address: use stream.NAME or consumer.STREAM.NAME"
    )


def test_helpers_build_the_same_addresses_the_parser_reads() -> None:
    assert stream("S") == parse("stream.S")
    assert consumer("S", "c") == parse("consumer.S.c")
    assert sorted([consumer("B", "a"), consumer("A", "z")]) == [
        consumer("A", "z"),
        consumer("B", "a"),
    ]
