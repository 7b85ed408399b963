"""A plan's live fingerprints (``Plan.fingerprints``): digested when read, in address order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from jelmore_infra.diff import builder
from jelmore_infra.diff.builder import LiveFingerprints
from jelmore_infra.normalize import fingerprint

CONFIGS = {
    "stream.B": {"name": "B", "subjects": ["b.>"]},
    "consumer.A.w": {"durable_name": "w"},
    "stream.A": None,
}


def test_fingerprints_are_the_digests_of_the_live_normal_forms_in_address_order() -> None:
    prints = LiveFingerprints(dict(CONFIGS))
    assert list(prints) == ["consumer.A.w", "stream.A", "stream.B"]
    assert dict(prints) == {
        "consumer.A.w": fingerprint({"durable_name": "w"}),
        "stream.A": None,
        "stream.B": fingerprint({"name": "B", "subjects": ["b.>"]}),
    }
    assert len(prints) == 3
    assert prints == dict(prints)
    assert prints.get("stream.C") is None
    assert "stream.C" not in prints


def test_a_fingerprint_is_digested_once_and_only_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digested: list[object] = []

    def counting(config: Mapping[str, Any]) -> str:
        digested.append(config["name"])
        return fingerprint(config)

    monkeypatch.setattr(builder, "fingerprint", counting)
    prints = LiveFingerprints({"stream.B": {"name": "B"}, "stream.A": {"name": "A"}})
    assert "stream.B" in prints
    assert list(prints) == ["stream.A", "stream.B"]
    assert digested == []  # neither membership nor iteration digests anything
    first = prints["stream.B"]
    assert prints["stream.B"] == first
    assert digested == ["B"]
