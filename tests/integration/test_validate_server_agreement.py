"""Offline ``validate`` refuses exactly the stream subjects and the stream and consumer names that a
real nats-server refuses, on the oldest and the newest supported version.

Each case is sent the way ``apply`` sends it (the provisioner's own JetStream client, pedantic on
2.11+) to a real server, and checked offline with the same settings. Where validation is knowingly
stricter than a server version, the case says so, and the test checks that the server really
accepts it there (so the list stays true when servers change). docs/server-semantics.md, "Subjects
and names the server refuses", restates the rules and where each one comes from.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ConnectionFailed, JetStreamAPIError
from jelmore_infra.live.jsapi import JetStreamAPI
from jelmore_infra.topology.load import parse_sources
from tests.support.natsserver import SUPPORTED_VERSIONS, NatsServer, binary_for

OLDEST, NEWEST = SUPPORTED_VERSIONS[0], SUPPORTED_VERSIONS[-1]
BOTH = (OLDEST, NEWEST)
#: The stream each consumer case is created on (and deleted with).
HOST = "HOST"


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    consumer: bool = False
    #: Versions that accept it although validation refuses it on purpose.
    stricter_than: tuple[str, ...] = ()
    #: What the server answers when it refuses: an error code, or "client" when nats-py will
    #: not send the request at all (whitespace in the API subject).
    refusal: int | str | dict[str, int] | None = None


def subjects(*subs: str, **more: Any) -> dict[str, Any]:
    return {"subjects": list(subs), **more}


CASES = [
    # subjects the server keeps for itself (checkStreamCfg, "no-ack to be true")
    Case("js_api", "S", subjects("$JS.API.>"), refusal=10052),
    Case("js_all", "S", subjects("$JS.>"), refusal=10052),
    Case("js_one_token_wildcard", "S", subjects("$JS.*"), refusal=10052),
    Case("js_api_literal", "S", subjects("$JS.API.STREAM.INFO.X"), refusal=10052),
    Case("jsc", "S", subjects("$JSC.>"), refusal=10052),
    Case("nrg", "S", subjects("$NRG.>"), stricter_than=(OLDEST,), refusal=10052),
    Case("sys", "S", subjects("$SYS.REQ.>"), refusal=10052),
    Case("two_token_wildcard", "S", subjects("*.>"), stricter_than=(OLDEST,), refusal=10052),
    Case("two_wildcards", "S", subjects("*.*"), stricter_than=(OLDEST,), refusal=10052),
    Case("wildcard_then_literal", "S", subjects("*.API.>"), stricter_than=(OLDEST,), refusal=10052),
    Case("capture_all", "S", subjects(">"), refusal=10052),
    Case(
        "capture_all_replicated",
        "S",
        subjects(">", no_ack=True, num_replicas=3),
        refusal=10052,
    ),
    Case("js_event_is_exempt", "S", subjects("$JS.EVENT.>")),
    Case("sys_account_is_exempt", "S", subjects("$SYS.ACCOUNT.>")),
    Case("one_token_wildcard", "S", subjects("*")),
    Case("lowercase_is_not_reserved", "S", subjects("$js.api.>")),
    Case("js_api_with_no_ack", "S", subjects("$JS.API.>", no_ack=True)),
    Case("sys_with_no_ack", "S", subjects("$SYS.>", no_ack=True)),
    Case("two_token_wildcard_with_no_ack", "S", subjects("*.>", no_ack=True)),
    Case("capture_all_with_no_ack", "S", subjects(">", no_ack=True)),
    # malformed subjects
    Case("space_in_subject", "S", subjects("a b"), refusal=10052),
    Case("tab_in_subject", "S", subjects("a\tb"), refusal=10052),
    Case("empty_token", "S", subjects("a..b"), refusal=10052),
    Case("trailing_dot", "S", subjects("a."), refusal=10052),
    Case("nul_in_subject", "S", subjects("a.\0"), stricter_than=BOTH),
    Case("vertical_tab_in_subject", "S", subjects("a\vb"), stricter_than=BOTH),
    # stream names
    Case("plain_stream_name", "ORDERS", subjects("o.>")),
    Case("nul_in_stream_name", "A\0", subjects("n.>"), refusal=10049),
    Case("slash_in_stream_name", "a/b", subjects("n.>"), refusal=10128),
    Case("backslash_in_stream_name", "a\\b", subjects("n.>"), refusal=10128),
    Case("star_in_stream_name", "a*b", subjects("n.>"), refusal=10052),
    Case("gt_in_stream_name", "a>b", subjects("n.>"), refusal=10052),
    Case("dot_in_stream_name", "a.b", subjects("n.>"), refusal="unaddressable"),
    Case("space_in_stream_name", "a b", subjects("n.>"), refusal="client"),
    Case("tab_in_stream_name", "a\tb", subjects("n.>"), refusal="client"),
    Case("form_feed_in_stream_name", "a\fb", subjects("n.>"), refusal=10052),
    Case("vertical_tab_in_stream_name", "a\vb", subjects("n.>"), stricter_than=BOTH),
    Case("no_break_space_in_stream_name", "a\u00a0b", subjects("n.>"), stricter_than=BOTH),
    Case("control_character_in_stream_name", "a\x01b", subjects("n.>")),
    Case("longest_stream_name", "x" * 255, subjects("n.>")),
    Case("stream_name_too_long", "x" * 256, subjects("n.>"), refusal=10052),
    # consumer names (on a file stream, the default storage)
    Case("plain_consumer_name", "worker", consumer=True),
    Case("nul_in_consumer_name", "w\0", consumer=True, refusal=10012),
    Case("slash_in_consumer_name", "w/x", consumer=True, refusal=10127),
    Case("backslash_in_consumer_name", "w\\x", consumer=True, refusal=10127),
    Case(
        "star_in_consumer_name",
        "w*x",
        consumer=True,
        refusal={OLDEST: 10103, NEWEST: 10052},
    ),
    Case("dot_in_consumer_name", "w.x", consumer=True, refusal=10017),
    Case("space_in_consumer_name", "w x", consumer=True, refusal="client"),
    Case("vertical_tab_in_consumer_name", "w\vx", consumer=True, stricter_than=BOTH),
    Case("consumer_name_too_long", "w" * 256, consumer=True, refusal=10102),
    Case("nul_in_filter", "f", {"filter_subject": "h.\0"}, consumer=True, stricter_than=BOTH),
    Case("space_in_filter", "f", {"filter_subject": "h.a b"}, consumer=True, refusal=10052),
]


def topology_text(case: Case) -> str:
    """The case as a topology file (JSON is YAML; its escapes carry NUL and friends)."""
    if case.consumer:
        doc: dict[str, Any] = {
            "streams": {HOST: {"subjects": ["h.>"]}},
            "consumer_groups": {
                case.name: {"stream": HOST, "ack_policy": "explicit", **case.settings}
            },
        }
    else:
        doc = {"streams": {case.name: case.settings}}
    return json.dumps(doc)


def validation_refuses(case: Case) -> bool:
    topology, _ = parse_sources([("t.yaml", topology_text(case))])
    return topology is None


async def _create(url: str, case: Case) -> int | str | None:
    """Create the case's resource as apply does and remove it again; the refusal, if any."""
    if not case.consumer and "." in case.name:
        return "unaddressable"  # $JS.API.STREAM.CREATE.a.b is no API subject: nothing answers
    api = await JetStreamAPI.connect(ConnectionSettings(url=url))
    try:
        if case.consumer:
            await api.create_stream({"name": HOST, "subjects": ["h.>"], "num_replicas": 1})
            try:
                config = {"durable_name": case.name, "ack_policy": "explicit", **case.settings}
                await api.create_consumer(HOST, config)
            finally:
                await api.delete_stream(HOST)
        else:
            await api.create_stream({"name": case.name, "num_replicas": 1, **case.settings})
            await api.delete_stream(case.name)
    except JetStreamAPIError as exc:
        return exc.err_code
    except ConnectionFailed as exc:
        if "invalid subject" not in str(exc):
            raise
        return "client"  # nats-py refuses to send it
    finally:
        await api.close()
    return None


@pytest.fixture(scope="module", params=BOTH)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, NatsServer]]:
    version = str(request.param)
    with NatsServer(binary=binary_for(version)) as srv:
        yield version, srv


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_offline_validate_refuses_exactly_what_the_server_refuses(
    case: Case, server: tuple[str, NatsServer]
) -> None:
    version, srv = server
    refusal = asyncio.run(_create(srv.url, case))
    refused_offline = validation_refuses(case)
    if version in case.stricter_than:
        assert refused_offline, "validation must refuse it"
        assert refusal is None, f"nats-server {version} now refuses it too ({refusal})"
        return
    expected = case.refusal[version] if isinstance(case.refusal, dict) else case.refusal
    assert refusal == expected, f"nats-server {version}"
    assert refused_offline == (refusal is not None)
