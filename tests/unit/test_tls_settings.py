"""What asks for TLS, and which source gets named when TLS cannot be had (no server needed)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
from nats import errors as nats_errors

from jelmore_infra.connection import ConnectionSettings, resolve_settings
from jelmore_infra.runtime.settings import from_env
from jelmore_infra.transport import explain_failure

TLS_VARIABLES = ("NATS_CA", "NATS_CERT", "NATS_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (*TLS_VARIABLES, "NATS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))


def write_context(tmp_path: Path, name: str, body: dict[str, object]) -> None:
    directory = tmp_path / "nats" / "context"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(body))


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (ConnectionSettings(url="nats://h:4222"), None),
        (ConnectionSettings(url="nats://a:4222, TLS://b:4222"), "tls:// URL"),
        (ConnectionSettings(url="nats://h:4222", tls_ca="ca.pem"), "TLS CA file"),
        (ConnectionSettings(url="nats://h:4222", tls_cert="c", tls_key="k"), "TLS certificate"),
        (ConnectionSettings(url="nats://h:4222", tls_first=True), "TLS-first"),
    ],
)
def test_a_tls_url_any_tls_file_or_tls_first_asks_for_tls(
    settings: ConnectionSettings, reason: str | None
) -> None:
    assert settings.tls_requested_by() == reason


def test_the_option_wins_over_the_variable_and_the_variable_over_the_context(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_context(tmp_path, "prod", {"url": "nats://ctx:4222", "ca": "ctx-ca.pem"})
    from_context = resolve_settings(url=None, context="prod")
    assert from_context.tls_ca == "ctx-ca.pem"
    assert from_context.tls_requested_by() == "nats context 'prod' (ca)"

    monkeypatch.setenv("NATS_CA", "env-ca.pem")
    from_env_var = resolve_settings(url=None, context="prod")
    assert from_env_var.tls_ca == "env-ca.pem"
    assert from_env_var.tls_requested_by() == "NATS_CA"

    from_option = resolve_settings(url=None, context="prod", tls_ca="opt-ca.pem")
    assert from_option.tls_ca == "opt-ca.pem"
    assert from_option.tls_requested_by() == "--tls-ca"


def test_client_certificate_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_CERT", "client.pem")
    monkeypatch.setenv("NATS_KEY", "client.key")
    settings = resolve_settings(url="nats://h:4222")
    assert (settings.tls_cert, settings.tls_key) == ("client.pem", "client.key")
    assert settings.tls_requested_by() == "NATS_CERT"


def test_tls_first_comes_from_the_option_or_the_context(tmp_path: Path) -> None:
    write_context(tmp_path, "first", {"url": "nats://h:4222", "tls_first": True})
    # An absent --tls-first (None) leaves the context's setting alone.
    from_context = resolve_settings(url=None, context="first", tls_first=None)
    assert from_context.tls_first is True
    assert from_context.tls_requested_by() == "nats context 'first' (tls_first)"
    assert resolve_settings(url=None, tls_first=True).tls_requested_by() == "--tls-first"
    assert resolve_settings(url=None, tls_first=None).tls_first is False


def test_the_runtime_reads_the_tls_variables_unless_given_a_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NATS_CA", "env-ca.pem")
    settings = from_env(url="nats://h:4222")
    assert settings.connection.tls_ca == "env-ca.pem"
    assert settings.connection.tls_requested_by() == "NATS_CA"
    given = from_env(connection=ConnectionSettings(url="nats://h:4222"))
    assert given.connection.tls_requested_by() is None


def test_tls_first_against_a_server_that_greets_first_gets_a_hint() -> None:
    settings = ConnectionSettings(url="nats://h:4222", tls_first=True)
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"
    assert explain_failure(error, settings) == (
        "TLS handshake with nats://h:4222 failed: WRONG_VERSION_NUMBER (TLS-first was requested: "
        "is the server configured with tls handshake_first?)"
    )
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert explain_failure(untrusted, settings) is None


def test_a_server_that_hangs_up_before_its_greeting_suggests_tls_first() -> None:
    closed = nats_errors.Error("nats: empty response from server when expecting INFO message")
    plain = ConnectionSettings(url="nats://h:4222")
    assert explain_failure(closed, plain) == (
        "nats://h:4222 closed the connection without a greeting (INFO): if the server wants the "
        "TLS handshake first (tls handshake_first), use --tls-first"
    )
    assert explain_failure(closed, ConnectionSettings(url="nats://h:4222", tls_first=True)) is None
    assert explain_failure(TimeoutError(), plain) is None


def test_connection_settings_never_show_their_secrets_in_repr() -> None:
    settings = ConnectionSettings(
        url="nats://alice:hunter2@h:4222,nats://tok3n@g:4222", password="pa55", token="t0ken"
    )
    text = repr(settings) + str(settings) + f"{settings!r}"
    for secret in ("hunter2", "tok3n", "pa55", "t0ken"):
        assert secret not in text
    assert "nats://h:4222" in text
    assert "password='<set>'" in text
