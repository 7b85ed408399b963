"""The shared transport's pure parts (no server): reply decoding, list paging, and the runtime
resolving its connection exactly as the CLI does, without showing secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jelmore_infra import transport
from jelmore_infra.connection import resolve_settings
from jelmore_infra.errors import ERR_STREAM_NOT_FOUND, JetStreamAPIError, TransportError
from jelmore_infra.runtime import Runtime
from jelmore_infra.runtime.bus import BusError, parse_pub_ack
from jelmore_infra.runtime.settings import from_env


def test_an_error_reply_becomes_a_jetstream_api_error_with_its_code() -> None:
    body = {"error": {"code": 404, "err_code": ERR_STREAM_NOT_FOUND, "description": "not found"}}
    with pytest.raises(JetStreamAPIError) as exc:
        transport.decode_reply("$JS.API.STREAM.INFO.X", json.dumps(body).encode())
    assert (exc.value.code, exc.value.err_code) == (404, ERR_STREAM_NOT_FOUND)
    assert str(exc.value) == "not found (JetStream error 10059, $JS.API.STREAM.INFO.X)"


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]"])
def test_a_reply_that_is_not_a_json_object_is_a_transport_error(data: bytes) -> None:
    with pytest.raises(TransportError, match=r"^\$JS.API.INFO answered with"):
        transport.decode_reply("$JS.API.INFO", data)


def test_publish_acknowledgements_are_decoded_by_the_same_rules() -> None:
    assert parse_pub_ack("s", b'{"stream":"S","seq":7}').seq == 7
    with pytest.raises(JetStreamAPIError, match="publish failed"):
        parse_pub_ack("s", b'{"error":{"code":400,"err_code":10060}}')
    with pytest.raises(BusError):
        parse_pub_ack("s", b"{}")


async def test_paging_counts_every_name_once_and_keeps_unavailable_ones_apart() -> None:
    replies = [
        {"total": 4, "streams": ["A", "B", "GONE"], "missing": ["GONE"]},
        {"total": 4, "streams": ["B", "C"]},
    ]
    sent: list[dict[str, Any] | None] = []

    async def send(body: dict[str, Any] | None) -> dict[str, Any]:
        sent.append(body)
        return replies[len(sent) - 1]

    result = await transport.collect(send, {"subject": "x.>"}, "streams")
    assert result.items == ["A", "B", "C"]
    assert result.missing == ["GONE"]
    assert sent == [{"subject": "x.>"}, {"subject": "x.>", "offset": 3}]


def test_the_runtime_resolves_its_connection_exactly_like_the_cli() -> None:
    env = {"NATS_URL": "tls://h:4222", "NATS_CA": "/ca.pem", "NATS_SUBJECT_PREFIX": "p"}
    settings = from_env(env)
    assert settings.connection == resolve_settings(url=None, env=env)
    assert settings.connection.tls_origin == "NATS_CA"
    assert settings.prefix == "p"


def test_a_runtime_never_shows_the_password_of_its_url() -> None:
    rt = Runtime(url="nats://user:s3cret-pw@127.0.0.1:4222", client_id="c")
    shown = f"{rt!r} {rt.settings!r} {rt.settings.safe_url()}"
    assert "s3cret-pw" not in shown
    assert "127.0.0.1:4222" in shown
