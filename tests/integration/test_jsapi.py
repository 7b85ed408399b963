"""The JetStream management API client against real servers: identity, connect errors, paging,
create/update/delete helpers, consumer actions and pedantic mode on every supported version."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jelmore_infra.connection import ConnectionSettings
from jelmore_infra.errors import ConnectionFailed, JetStreamAPIError
from jelmore_infra.live.jsapi import (
    ERR_CONSUMER_ALREADY_EXISTS,
    ERR_CONSUMER_DOES_NOT_EXIST,
    ERR_PEDANTIC,
    JetStreamAPI,
)
from jelmore_infra.model import parse_version
from tests.support.jsapi_helpers import (
    SECOND,
    connect,
    make_tls_files,
    openssl_available,
    silent_listener,
)
from tests.support.natsserver import SUPPORTED_VERSIONS, NatsServer, binary_for, free_port

EXPECTED_API_LEVEL = {"2.10": 0, "2.11": 1, "2.12": 3, "2.14": 4, "2.15": 5}


@pytest.fixture(scope="module", params=SUPPORTED_VERSIONS)
def versioned_server(request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    with NatsServer(binary=binary_for(request.param)) as server:
        yield server


def one_line_failure(exc: pytest.ExceptionInfo[ConnectionFailed], *secrets: str) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert text.strip() == text
    assert text
    for secret in secrets:
        assert secret not in text
    return text


# -- identity ------------------------------------------------------------------------------------


async def test_connect_reads_version_api_level_and_account(versioned_server: NatsServer) -> None:
    version = versioned_server.version
    async with await connect(versioned_server.url) as api:
        assert api.identity.version == version
        assert api.version == parse_version(version)
        major_minor = ".".join(version.split(".")[:2])
        assert api.api_level == EXPECTED_API_LEVEL[major_minor]
        assert api.identity.api_level == api.api_level
        assert api.identity.server_name == f"jelmore-test-{versioned_server.port}"
        assert api.identity.server_id.startswith("N")
        assert api.identity.account == "$G"
        assert api.identity.url == versioned_server.url
        assert api.identity.cluster is None
        assert api.identity.domain is None
        assert api.pedantic == (api.version >= (2, 11, 0))


async def test_identity_url_never_carries_the_password() -> None:
    with NatsServer(config="authorization { user: a, password: s3cret }") as server:
        url = server.url.replace("nats://", "nats://a:s3cret@")
        async with await connect(url) as api:
            assert api.identity.url == server.url
            assert "s3cret" not in repr(api.identity)


# -- connect errors ------------------------------------------------------------------------------


async def test_connect_to_a_port_with_nothing_listening_says_connection_refused() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionFailed) as exc:
        await connect(url)
    assert one_line_failure(exc) == f"cannot connect to {url}: connection refused"


async def test_connect_to_a_silent_port_times_out_with_the_wait_in_the_message() -> None:
    with silent_listener() as url, pytest.raises(ConnectionFailed) as exc:
        await connect(url, timeout=0.5)
    assert one_line_failure(exc) == f"timed out after 0.5s waiting for {url} to answer"


async def test_connect_tries_every_url_of_a_list(versioned_server: NatsServer) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    async with await connect(f"{dead}, {versioned_server.url}") as api:
        assert api.identity.url == f"{dead},{versioned_server.url}"
        assert api.identity.server_name == f"jelmore-test-{versioned_server.port}"


async def test_connect_failures_log_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConnectionFailed):
        await connect(f"nats://127.0.0.1:{free_port()}")
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING] == []


@pytest.fixture(scope="module")
def password_server() -> Iterator[NatsServer]:
    config = """
    authorization {
      users: [
        {user: a, password: s3cret}
        {user: limited, password: lim1ted, permissions: {publish: {deny: ["$JS.API.>"]}}}
      ]
    }
    """
    with NatsServer(config=config) as server:
        yield server


@pytest.mark.parametrize(
    "given",
    [
        {"user": "a", "password": "wr0ngpass"},
        {"user": "a"},
        {},
        {"user": "nobody", "password": "s3cret"},
    ],
    ids=["wrong-password", "no-password", "no-credentials", "unknown-user"],
)
async def test_connect_with_bad_credentials_names_the_flags_and_no_secret(
    password_server: NatsServer, given: dict[str, str]
) -> None:
    with pytest.raises(ConnectionFailed) as exc:
        await connect(password_server.url, **given)
    text = one_line_failure(exc, "s3cret", "wr0ngpass")
    assert text.startswith("authorization violation: the server ")


async def test_connect_with_a_wrong_password_in_the_url_hides_it(
    password_server: NatsServer,
) -> None:
    url = password_server.url.replace("nats://", "nats://a:wr0ngpass@")
    with pytest.raises(ConnectionFailed) as exc:
        await connect(url)
    assert one_line_failure(exc, "s3cret", "wr0ngpass").startswith("authorization violation")


async def test_connect_with_the_right_password_works(password_server: NatsServer) -> None:
    async with await connect(password_server.url, user="a", password="s3cret") as api:
        assert await api.stream_info("NOPE") is None


async def test_connect_as_a_user_denied_the_jetstream_api_is_an_authorization_error(
    password_server: NatsServer,
) -> None:
    with pytest.raises(ConnectionFailed) as exc:
        await connect(password_server.url, user="limited", password="lim1ted")
    text = one_line_failure(exc, "lim1ted")
    assert text.startswith("authorization violation: check --user/--password")
    assert "$JS.API.INFO" in text


async def test_token_auth_accepts_the_token_and_hides_a_wrong_one() -> None:
    with NatsServer(config="authorization { token: t0kenvalue }") as server:
        async with await connect(server.url, token="t0kenvalue") as api:
            assert api.identity.version
        for given in ({"token": "n0tthetoken"}, {}):
            with pytest.raises(ConnectionFailed) as exc:
                await connect(server.url, **given)
            text = one_line_failure(exc, "t0kenvalue", "n0tthetoken")
            assert text.startswith("authorization violation")
        url = server.url.replace("nats://", "nats://n0tthetoken@")
        with pytest.raises(ConnectionFailed) as exc:
            await connect(url)
        one_line_failure(exc, "t0kenvalue", "n0tthetoken")


async def test_connect_to_a_server_without_jetstream_says_jetstream_is_not_enabled() -> None:
    # The harness always writes a jetstream block; a later "jetstream: disabled" overrides it.
    server = NatsServer(config="jetstream: disabled")
    with server, pytest.raises(ConnectionFailed) as exc:
        await connect(server.url)
    assert one_line_failure(exc) == (
        f"JetStream not enabled on {server.url} (no responders on $JS.API.INFO)"
    )


async def test_connect_as_an_account_without_jetstream_reports_the_server_reason() -> None:
    config = """
    accounts {
      JS: { jetstream: enabled, users: [{user: js, password: js}] }
      PLAIN: { users: [{user: plain, password: plain}] }
    }
    """
    with NatsServer(config=config) as server:
        async with await connect(server.url, user="js", password="js") as api:
            assert api.identity.account == "JS"
        with pytest.raises(ConnectionFailed) as exc:
            await connect(server.url, user="plain", password="plain")
    text = one_line_failure(exc)
    assert text.startswith("JetStream not enabled on")
    assert "for account" in text


async def test_js_domain_selects_the_domain_and_a_wrong_one_points_at_the_flag() -> None:
    with NatsServer(config="jetstream { domain: hub }") as server:
        async with await connect(server.url, js_domain="hub") as api:
            assert api.identity.domain == "hub"
            await api.create_stream({"name": "IN_HUB", "subjects": ["hub.>"]})
            info = await api.stream_info("IN_HUB")
            assert info is not None
            assert info["config"]["name"] == "IN_HUB"
        with pytest.raises(ConnectionFailed) as exc:
            await connect(server.url, js_domain="spoke")
    text = one_line_failure(exc)
    assert text.startswith("JetStream not enabled for domain 'spoke'")
    assert "$JS.spoke.API.INFO" in text
    assert text.endswith("check --js-domain")


async def test_a_missing_tls_certificate_file_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConnectionFailed) as exc:
        await connect("nats://127.0.0.1:4222", tls_cert=str(missing), tls_key=str(missing))
    assert one_line_failure(exc) == (
        f"cannot read TLS certificate {missing}: No such file or directory"
    )
    with pytest.raises(ConnectionFailed) as exc:
        await connect("nats://127.0.0.1:4222", tls_ca=str(missing))
    assert one_line_failure(exc).startswith(f"cannot read TLS CA file {missing}")
    with pytest.raises(ConnectionFailed) as exc:
        await connect("nats://127.0.0.1:4222", tls_cert=str(missing))
    assert one_line_failure(exc) == "--tls-cert and --tls-key must be given together"


async def test_a_missing_creds_file_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "user.creds"
    with pytest.raises(ConnectionFailed) as exc:
        await connect("nats://127.0.0.1:4222", creds=str(missing))
    assert one_line_failure(exc) == f"cannot read creds file {missing}: No such file or directory"


@pytest.mark.skipif(
    not openssl_available(), reason="needs the openssl command to make certificates"
)
async def test_tls_server_is_reached_with_the_ca_and_refused_without_it(tmp_path: Path) -> None:
    ca, cert, key = make_tls_files(tmp_path)
    with NatsServer(config=f'tls {{ cert_file: "{cert}", key_file: "{key}" }}') as server:
        async with await connect(server.url, tls_ca=str(ca)) as api:
            assert api.identity.version
        with pytest.raises(ConnectionFailed) as exc:
            await connect(server.url, timeout=1)
        assert one_line_failure(exc) == (
            f"TLS handshake with {server.url} failed: unable to get local issuer certificate"
        )


# -- requests and errors -------------------------------------------------------------------------


async def test_an_error_envelope_raises_with_err_code_and_subject(
    versioned_server: NatsServer,
) -> None:
    async with await connect(versioned_server.url) as api:
        with pytest.raises(JetStreamAPIError) as exc:
            await api.request("STREAM.DELETE.NOPE")
        assert exc.value.err_code == 10059
        assert exc.value.code == 404
        assert exc.value.subject == "$JS.API.STREAM.DELETE.NOPE"
        assert await api.stream_info("NOPE") is None
        assert await api.consumer_info("NOPE", "C") is None


async def test_stream_create_update_delete_round_trip(versioned_server: NatsServer) -> None:
    async with await connect(versioned_server.url) as api:
        created = await api.create_stream(
            {"name": "CRUD", "subjects": ["crud.>"], "storage": "memory", "max_msgs": 10}
        )
        assert created["config"]["max_msgs"] == 10
        updated = await api.update_stream(
            {"name": "CRUD", "subjects": ["crud.>"], "storage": "memory", "max_msgs": 20}
        )
        assert updated["config"]["max_msgs"] == 20
        info = await api.stream_info("CRUD")
        assert info is not None
        assert info["config"]["max_msgs"] == 20
        await api.delete_stream("CRUD")
        assert await api.stream_info("CRUD") is None
        with pytest.raises(JetStreamAPIError) as exc:
            await api.delete_stream("CRUD")
        assert exc.value.err_code == 10059


async def test_consumer_actions_distinguish_create_from_update(
    versioned_server: NatsServer,
) -> None:
    async with await connect(versioned_server.url) as api:
        await api.create_stream({"name": "ACT", "subjects": ["act.>"], "storage": "memory"})
        config = {"durable_name": "worker", "ack_policy": "explicit", "max_deliver": 3}
        with pytest.raises(JetStreamAPIError) as exc:
            await api.create_consumer("ACT", config, action="update")
        assert exc.value.err_code == ERR_CONSUMER_DOES_NOT_EXIST
        created = await api.create_consumer("ACT", config)
        assert created["config"]["durable_name"] == "worker"
        # Creating again with the same config is idempotent; with another config it is refused.
        await api.create_consumer("ACT", config)
        changed = {**config, "max_deliver": 5}
        with pytest.raises(JetStreamAPIError) as exc:
            await api.create_consumer("ACT", changed)
        assert exc.value.err_code == ERR_CONSUMER_ALREADY_EXISTS
        updated = await api.create_consumer("ACT", changed, action="update")
        assert updated["config"]["max_deliver"] == 5
        either = await api.create_consumer("ACT", {**config, "max_deliver": 7}, action="")
        assert either["config"]["max_deliver"] == 7
        info = await api.consumer_info("ACT", "worker")
        assert info is not None
        assert info["config"]["durable_name"] == "worker"
        await api.delete_consumer("ACT", "worker")
        assert await api.consumer_info("ACT", "worker") is None
        await api.delete_stream("ACT")


async def test_pedantic_refuses_a_republish_without_source_on_2_11_and_later(
    versioned_server: NatsServer,
) -> None:
    async with await connect(versioned_server.url) as api:
        config = {
            "name": "REPUB",
            "subjects": ["repub.in.>"],
            "storage": "memory",
            "republish": {"src": "", "dest": "repub.out.>"},
        }
        if api.version >= (2, 11, 0):
            with pytest.raises(JetStreamAPIError) as exc:
                await api.create_stream(config)
            assert exc.value.err_code == ERR_PEDANTIC
            assert "republish" in exc.value.description
            assert await api.stream_info("REPUB") is None
        else:
            # 2.10 has no pedantic mode: the empty source is silently rewritten to ">".
            created = await api.create_stream(config)
            assert created["config"]["republish"]["src"] == ">"
            await api.delete_stream("REPUB")


async def test_pedantic_refuses_backoff_that_overrides_ack_wait_on_2_11_and_later(
    versioned_server: NatsServer,
) -> None:
    async with await connect(versioned_server.url) as api:
        await api.create_stream({"name": "BACK", "subjects": ["back.>"], "storage": "memory"})
        config = {
            "durable_name": "retry",
            "ack_policy": "explicit",
            "ack_wait": 30 * SECOND,
            "backoff": [2 * SECOND, 4 * SECOND],
            "max_deliver": 3,
        }
        if api.version >= (2, 11, 0):
            with pytest.raises(JetStreamAPIError) as exc:
                await api.create_consumer("BACK", config)
            assert exc.value.err_code == ERR_PEDANTIC
            assert await api.consumer_info("BACK", "retry") is None
        else:
            # 2.10 silently replaces ack_wait by the first backoff value.
            created = await api.create_consumer("BACK", config)
            assert created["config"]["ack_wait"] == 2 * SECOND
        await api.delete_stream("BACK")


async def test_a_timed_out_request_is_a_connection_failure_naming_the_subject() -> None:
    with NatsServer() as server:
        assert server.proc is not None
        pid = server.proc.pid
        api = await connect(server.url, timeout=0.5)
        try:
            os.kill(pid, signal.SIGSTOP)
            try:
                _wait_until_stopped(pid)
                with pytest.raises(ConnectionFailed) as exc:
                    await api.request("STREAM.INFO.X")
            finally:
                os.kill(pid, signal.SIGCONT)
            assert one_line_failure(exc) == (
                f"timed out after 0.5s waiting for $JS.API.STREAM.INFO.X on {server.url}"
            )
        finally:
            await api.close()


def _wait_until_stopped(pid: int) -> None:
    """Signals arrive asynchronously: wait until the kernel shows the process as stopped."""
    stat = Path(f"/proc/{pid}/stat")
    for _ in range(200):
        if stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


# -- paging --------------------------------------------------------------------------------------


async def test_list_streams_pages_past_256_and_returns_each_stream_once(
    versioned_server: NatsServer,
) -> None:
    async with await connect(versioned_server.url) as api:
        names = [f"PAGE_{i:03d}" for i in range(300)]
        await _create_many(api, names)
        try:
            pages = [len(page) async for page in api.iter_stream_pages()]
            assert len(pages) >= 2
            assert max(pages) == 256
            listed = await api.list_streams()
            got = [s["config"]["name"] for s in listed.items]
            assert len(got) == len(set(got))
            assert set(names) <= set(got)
            assert listed.missing == []
            assert listed.offline == {}
            only = await api.list_streams(subject="page.7.x")
            assert [s["config"]["name"] for s in only.items] == ["PAGE_007"]
        finally:
            await _delete_many(api, names)


async def test_list_consumers_pages_past_256(versioned_server: NatsServer) -> None:
    async with await connect(versioned_server.url) as api:
        await api.create_stream({"name": "MANYC", "subjects": ["manyc.>"], "storage": "memory"})
        names = [f"c{i:03d}" for i in range(300)]
        gate = asyncio.Semaphore(32)

        async def make(name: str) -> None:
            async with gate:
                await api.create_consumer("MANYC", {"durable_name": name, "ack_policy": "none"})

        await asyncio.gather(*(make(n) for n in names))
        listed = await api.list_consumers("MANYC")
        assert sorted(c["name"] for c in listed.items) == names
        await api.delete_stream("MANYC")


async def _create_many(api: JetStreamAPI, names: list[str]) -> None:
    gate = asyncio.Semaphore(32)

    async def make(i: int, name: str) -> None:
        async with gate:
            await api.create_stream(
                {"name": name, "subjects": [f"page.{i}.>"], "storage": "memory", "max_msgs": 1}
            )

    await asyncio.gather(*(make(i, n) for i, n in enumerate(names)))


async def _delete_many(api: JetStreamAPI, names: list[str]) -> None:
    gate = asyncio.Semaphore(32)

    async def drop(name: str) -> None:
        async with gate:
            await api.delete_stream(name)

    await asyncio.gather(*(drop(n) for n in names))


def test_settings_api_prefix_is_used_for_requests() -> None:
    assert ConnectionSettings(js_domain="hub").api_prefix() == "$JS.hub.API"
