"""Every way the ``nats`` CLI connects works here too, on real servers (issue 13 part 1).

Each method (user/password, token, nkey, creds in operator mode with a memory resolver, TLS with
server verification, mutual TLS, TLS-first) is used from command-line options, from the ``NATS_*``
variables and from a ``nats`` context by the CLI, and by the runtime from the variables
(``Runtime()``) and from ``configure(...)`` overriding them, on nats-server 2.10 and 2.15. Each
server admits only that method, so a command that works used it.

Bad credentials and TLS files are one line naming the cause (exit 1 for the CLI), never a secret;
and a sweep runs plan, apply and the events tools with secrets from options, variables and
contexts and finds the secrets in none of their output.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jelmore_infra import runtime
from jelmore_infra.connection import CONTEXT_FIELDS, ENV_VARS, OPTIONS, resolve_settings
from jelmore_infra.errors import ConnectionFailed
from jelmore_infra.runtime import Runtime
from tests.support.cli import run_cli
from tests.support.jsapi_helpers import make_tls_files
from tests.support.jwt_helpers import Operator, issue_certificate, user_seed
from tests.support.natsserver import NatsServer, binary_for

VERSIONS = ("2.10.26", "2.15.1")
CLI_VERSION = "2.15.1"
USER = "app"
PASSWORD = "pw-Secret-4u7h"
TOKEN = "tok-Secret-4u7h"
WRONG = "not-the-Secret"
#: The methods; ``Credentials`` has each one's server config and settings.
METHODS = ("user-password", "token", "nkey", "creds", "tls", "mutual-tls", "tls-first")
SOURCES = ("options", "variables", "context")


@dataclass
class Credentials:
    """Everything the methods need, made once per module in ``directory``."""

    directory: Path
    operator: Operator = field(default_factory=Operator)
    secrets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        d = self.directory
        self.seed, self.nkey_public = user_seed()
        self.seed_file = d / "user.nk"
        self.seed_file.write_text(self.seed + "\n")
        self.creds_file = d / "user.creds"
        self.user_jwt, self.creds_seed = self.operator.write_creds(self.creds_file)
        tls = d / "tls"
        tls.mkdir()
        self.ca, self.server_cert, self.server_key = make_tls_files(tls)
        self.client_cert, self.client_key = issue_certificate(tls, "client")
        other = d / "other-ca"
        other.mkdir()
        self.other_ca = make_tls_files(other)[0]
        self.secrets = [PASSWORD, TOKEN, self.seed, self.user_jwt, self.creds_seed]

    def tls(self, extra: str = "") -> str:
        more = f", {extra}" if extra else ""
        return f'tls {{ cert_file: "{self.server_cert}", key_file: "{self.server_key}"{more} }}'

    def server_config(self, method: str) -> str:
        return {
            "user-password": f'authorization {{ users: [ {{ user: {USER}, password: "{PASSWORD}" }},'
            f' {{ nkey: "{self.nkey_public}" }} ] }}',
            "token": f'authorization {{ token: "{TOKEN}" }}',
            "nkey": f'authorization {{ users: [ {{ nkey: "{self.nkey_public}" }} ] }}',
            "creds": self.operator.server_config(),
            "tls": self.tls(),
            "mutual-tls": self.tls(f'ca_file: "{self.ca}", verify: true'),
            "tls-first": self.tls("handshake_first: true, timeout: 1"),
        }[method]

    def settings(self, method: str) -> dict[str, Any]:
        """The method's settings, by ``resolve_settings`` name."""
        return {
            "user-password": {"user": USER, "password": PASSWORD},
            "token": {"token": TOKEN},
            "nkey": {"nkey": str(self.seed_file)},
            "creds": {"creds": str(self.creds_file)},
            "tls": {"tls_ca": str(self.ca)},
            "mutual-tls": {
                "tls_ca": str(self.ca),
                "tls_cert": str(self.client_cert),
                "tls_key": str(self.client_key),
            },
            "tls-first": {"tls_ca": str(self.ca), "tls_first": True},
        }[method]


class Sites:
    """One server per method and version, started on first use, stopped with the module."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.servers: dict[tuple[str, str], NatsServer] = {}

    def get(self, method: str, version: str = CLI_VERSION) -> NatsServer:
        key = (method, version)
        if key not in self.servers:
            server = NatsServer(binary=binary_for(version), config=self.creds.server_config(method))
            self.servers[key] = server.start()
        return self.servers[key]

    def close(self) -> None:
        for server in self.servers.values():
            server.cleanup()


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    return Credentials(tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="module")
def sites(creds: Credentials) -> Iterator[Sites]:
    found = Sites(creds)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("topology")
    (directory / "t.yaml").write_text("streams:\n  AUTH_CHECK:\n    subjects: [auth.>]\n")
    return directory


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``$XDG_CONFIG_HOME`` (and ``$HOME``) for nats contexts, for this process too."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for var in (*ENV_VARS.values(), "NATS_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    return home / ".config"


def write_context(config_home: Path, name: str, url: str, settings: dict[str, Any]) -> None:
    directory = config_home / "nats" / "context"
    directory.mkdir(parents=True, exist_ok=True)
    body = {"url": url, **{CONTEXT_FIELDS[k]: v for k, v in settings.items()}}
    (directory / f"{name}.json").write_text(json.dumps(body))


def as_options(url: str, settings: dict[str, Any]) -> list[str]:
    args = ["-s", url]
    for key, value in settings.items():
        args += [OPTIONS[key]] if value is True else [OPTIONS[key], str(value)]
    return args


def as_variables(url: str, settings: dict[str, Any]) -> dict[str, str]:
    """The ``NATS_*`` variables of ``settings`` (the ``nats`` CLI has none for TLS-first)."""
    return {"NATS_URL": url, **{ENV_VARS[k]: str(v) for k, v in settings.items()}}


def cli_source(
    source: str, url: str, settings: dict[str, Any], config_home: Path
) -> tuple[list[str], dict[str, str]]:
    """The arguments and environment that give ``settings`` through ``source``."""
    env = {"XDG_CONFIG_HOME": str(config_home)}
    if source == "options":
        return as_options(url, settings), env
    if source == "variables":
        return [], {**env, **as_variables(url, settings)}
    write_context(config_home, "site", url, settings)
    return ["--context", "site"], env


def assert_no_secret(proc: Any, creds: Credentials) -> None:
    for secret in creds.secrets:
        assert secret not in proc.stdout + proc.stderr


def one_error(proc: Any, creds: Credentials) -> str:
    """The single ``Error:`` line of a failed command (exit 1, no traceback, no secret)."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ")
    assert_no_secret(proc, creds)
    return str(lines[0]).removeprefix("Error: ")


# -- the CLI: every method from options, variables and a context -------------------------------


CLI_CASES = [
    (method, source)
    for method in METHODS
    for source in SOURCES
    # The nats CLI has no variable for TLS-first: only its option and the context's tls_first.
    if not (method == "tls-first" and source == "variables")
]


@pytest.mark.parametrize(("method", "source"), CLI_CASES)
def test_plan_connects_with_each_method_from_each_source(
    sites: Sites,
    creds: Credentials,
    topology: Path,
    config_home: Path,
    method: str,
    source: str,
) -> None:
    server = sites.get(method)
    args, env = cli_source(source, server.url, creds.settings(method), config_home)
    proc = run_cli("plan", "--topology", str(topology), *args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Plan: 1 to add" in proc.stdout
    assert_no_secret(proc, creds)


def test_tls_first_needs_its_option_or_context_even_with_the_variables(
    sites: Sites, creds: Credentials, topology: Path, config_home: Path
) -> None:
    """The variables give the CA; TLS-first comes from ``NATS_CONTEXT``'s context."""
    server = sites.get("tls-first")
    write_context(config_home, "first", server.url, {"tls_first": True})
    env = {"XDG_CONFIG_HOME": str(config_home), "NATS_CA": str(creds.ca), "NATS_CONTEXT": "first"}
    proc = run_cli("plan", "--topology", str(topology), env=env)
    assert proc.returncode == 0, proc.stderr


def test_options_win_over_variables_and_variables_over_the_context(
    sites: Sites, creds: Credentials, topology: Path, config_home: Path
) -> None:
    server = sites.get("user-password")
    write_context(config_home, "c", server.url, {"user": USER, "password": WRONG})
    base = {"XDG_CONFIG_HOME": str(config_home), "NATS_CONTEXT": "c"}
    plan = ("plan", "--topology", str(topology))
    refused = run_cli(*plan, env=base)
    assert one_error(refused, creds) == (
        "authorization violation: the server refused user 'app' with the password "
        "(from nats context 'c' (password))"
    )
    assert run_cli(*plan, env={**base, "NATS_PASSWORD": PASSWORD}).returncode == 0
    wrong_variable = {**base, "NATS_PASSWORD": WRONG}
    assert run_cli(*plan, "--password", PASSWORD, env=wrong_variable).returncode == 0
    # A method named by a higher source replaces the context's: the nkey, from the variables.
    nkey = {**base, "NATS_NKEY": str(creds.seed_file)}
    assert run_cli(*plan, env=nkey).returncode == 0


# -- the runtime: the same variables, and configure() over them ---------------------------------


@pytest.fixture
async def default_runtime_closed() -> AsyncIterator[None]:
    yield
    await runtime.close()


async def connected_account_info(rt: Runtime) -> dict[str, Any]:
    await rt.connect()
    return await rt.bus.api("INFO")


def runtime_variables(
    method: str, url: str, creds: Credentials, config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set the variables of ``method``; TLS-first through the context ``NATS_CONTEXT`` names."""
    settings = creds.settings(method)
    if settings.pop("tls_first", None):
        write_context(config_home, "first", url, {"tls_first": True})
        monkeypatch.setenv("NATS_CONTEXT", "first")
    for name, value in as_variables(url, settings).items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("method", METHODS)
async def test_the_runtime_connects_with_each_method_from_the_variables(
    sites: Sites,
    creds: Credentials,
    config_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    version: str,
) -> None:
    server = sites.get(method, version)
    runtime_variables(method, server.url, creds, config_home, monkeypatch)
    async with Runtime(client_id=f"rt-{method}", connect_timeout=10) as rt:
        info = await connected_account_info(rt)
        assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"
        for secret in creds.secrets:
            assert secret not in repr(rt.settings)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("method", METHODS)
async def test_configure_overrides_the_variables_with_each_method(
    sites: Sites,
    creds: Credentials,
    config_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    default_runtime_closed: None,
    method: str,
    version: str,
) -> None:
    server = sites.get(method, version)
    settings = creds.settings(method)
    # The variables name the right server and, for each setting of the method, a value that
    # does not work there (a wrong password or token, files that do not exist).
    monkeypatch.setenv("NATS_URL", server.url)
    for key in settings:
        if key in ENV_VARS:
            monkeypatch.setenv(ENV_VARS[key], wrong_value(key, creds))
    conn = resolve_settings(**settings)
    runtime.configure(connection=conn, client_id=f"cfg-{method}", connect_timeout=10)
    nc = await runtime.default_runtime().bus.connect()
    assert nc.is_connected
    assert conn.source_of("url") == "NATS_URL"  # what configure() does not override still counts


def wrong_value(setting: str, creds: Credentials) -> str:
    if setting == "user":
        return USER
    if setting in ("password", "token"):
        return WRONG
    return str(creds.directory / f"no-such-{setting}")


# -- one line naming the cause, never the secret ------------------------------------------------


def test_a_wrong_ca_names_the_ca_and_where_it_was_given(
    sites: Sites, creds: Credentials, config_home: Path
) -> None:
    url = sites.get("tls").url
    expected = (
        f"TLS handshake with {url} failed: the server's certificate is not signed by the CA in "
        f"{creds.other_ca} (from {{}}): unable to get local issuer certificate"
    )
    by_option = run_cli("plan", "-s", url, "--tls-ca", str(creds.other_ca))
    assert one_error(by_option, creds) == expected.format("--tls-ca")
    by_variable = run_cli("plan", "-s", url, env={"NATS_CA": str(creds.other_ca)})
    assert one_error(by_variable, creds) == expected.format("NATS_CA")


def test_an_expired_client_certificate_is_named_before_connecting(
    sites: Sites, creds: Credentials
) -> None:
    cert, key = issue_certificate(creds.directory / "tls", "expired-client", expired=True)
    env = {"NATS_CA": str(creds.ca), "NATS_CERT": str(cert), "NATS_KEY": str(key)}
    proc = run_cli("plan", "-s", sites.get("mutual-tls").url, env=env)
    assert one_error(proc, creds).startswith(
        f"the TLS certificate {cert} (from NATS_CERT) expired on "
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_an_expired_server_certificate_is_named(creds: Credentials, version: str) -> None:
    cert, key = issue_certificate(
        creds.directory / "tls", "expired-server", client=False, expired=True
    )
    config = f'tls {{ cert_file: "{cert}", key_file: "{key}" }}'
    with NatsServer(binary=binary_for(version), config=config) as server:
        proc = run_cli("plan", "-s", server.url, "--tls-ca", str(creds.ca))
    assert one_error(proc, creds) == (
        f"TLS handshake with {server.url} failed: the server's certificate has expired"
    )


def test_a_certificate_and_key_that_do_not_match_are_named(
    sites: Sites, creds: Credentials, config_home: Path
) -> None:
    url = sites.get("mutual-tls").url
    settings = {
        "tls_ca": str(creds.ca),
        "tls_cert": str(creds.client_cert),
        "tls_key": str(creds.server_key),
    }
    write_context(config_home, "mixed", url, settings)
    proc = run_cli("plan", "--context", "mixed", env={"XDG_CONFIG_HOME": str(config_home)})
    assert one_error(proc, creds) == (
        f"the TLS key {creds.server_key} (from nats context 'mixed' (key)) does not belong to "
        f"the TLS certificate {creds.client_cert} (from nats context 'mixed' (cert))"
    )


def test_a_client_without_a_certificate_is_told_the_server_wants_one(
    sites: Sites, creds: Credentials
) -> None:
    """With TLS 1.3 the server says so after the handshake, and its alert can lose the race
    with the client's first write: then the lost connection carries the hint."""
    url = sites.get("mutual-tls").url
    proc = run_cli("plan", "-s", url, "--tls-ca", str(creds.ca))
    assert one_error(proc, creds) in (
        f"TLS handshake with {url} failed: the server requires a client certificate "
        "(TLSV13_ALERT_CERTIFICATE_REQUIRED): use --tls-cert and --tls-key",
        f"cannot connect to {url}: Connection reset by peer (if the server requires a client "
        "certificate, use --tls-cert and --tls-key)",
        f"cannot connect to {url}: Broken pipe (if the server requires a client certificate, "
        "use --tls-cert and --tls-key)",
    )


@pytest.mark.parametrize("source", SOURCES)
def test_a_wrong_password_names_the_user_and_the_source_of_the_password(
    sites: Sites, creds: Credentials, config_home: Path, source: str
) -> None:
    url = sites.get("user-password").url
    args, env = cli_source(source, url, {"user": USER, "password": WRONG}, config_home)
    proc = run_cli("plan", *args, env=env)
    where = {
        "options": "--password",
        "variables": "NATS_PASSWORD",
        "context": "nats context 'site' (password)",
    }[source]
    assert one_error(proc, creds) == (
        f"authorization violation: the server refused user 'app' with the password (from {where})"
    )
    assert WRONG not in proc.stdout + proc.stderr


def test_a_missing_creds_file_is_named_with_its_source(
    sites: Sites, creds: Credentials, tmp_path: Path
) -> None:
    missing = tmp_path / "gone.creds"
    env = {"NATS_CREDS": str(missing)}
    proc = run_cli("plan", "-s", sites.get("creds").url, env=env)
    assert one_error(proc, creds) == (
        f"cannot read creds file {missing} (from NATS_CREDS): No such file or directory"
    )


def test_a_malformed_creds_file_is_one_line_not_a_hang(
    sites: Sites, creds: Credentials, tmp_path: Path
) -> None:
    # Only the seed part: nats-py itself would look for the JWT line forever.
    bad = tmp_path / "seed-only.creds"
    bad.write_text(
        f"-----BEGIN USER NKEY SEED-----\n{creds.creds_seed}\n------END USER NKEY SEED------\n"
    )
    proc = run_cli("plan", "-s", sites.get("creds").url, "--creds", str(bad), timeout=60)
    assert one_error(proc, creds) == (
        f"the creds file {bad} (from --creds) is malformed: it has no user JWT "
        "(no line 'BEGIN NATS USER JWT' followed by the JWT)"
    )


def test_a_malformed_nkey_seed_is_one_line_without_the_seed(
    sites: Sites, creds: Credentials, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.nk"
    broken = creds.seed[:-4]
    bad.write_text(broken + "\n")
    proc = run_cli("plan", "-s", sites.get("nkey").url, env={"NATS_NKEY": str(bad)})
    assert one_error(proc, creds) == (
        f"the nkey file {bad} (from NATS_NKEY) is malformed: it does not hold a valid nkey seed"
    )
    assert broken not in proc.stdout + proc.stderr


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_runtime_reports_bad_credentials_in_the_same_words(
    sites: Sites,
    creds: Credentials,
    config_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    version: str,
) -> None:
    users = sites.get("user-password", version)
    monkeypatch.setenv("NATS_URL", users.url)
    monkeypatch.setenv("NATS_USER", USER)
    monkeypatch.setenv("NATS_PASSWORD", WRONG)
    with pytest.raises(ConnectionFailed) as refused:
        async with Runtime(connect_timeout=3) as rt:
            await rt.connect()
    assert str(refused.value) == (
        "authorization violation: the server refused user 'app' with the password "
        "(from NATS_PASSWORD)"
    )
    monkeypatch.delenv("NATS_USER")
    monkeypatch.delenv("NATS_PASSWORD")
    bad = tmp_path / "bad.nk"
    bad.write_text("SUNOTASEED\n")
    monkeypatch.setenv("NATS_NKEY", str(bad))
    with pytest.raises(ConnectionFailed) as malformed:
        async with Runtime(connect_timeout=3) as rt:
            await rt.connect()
    assert str(malformed.value) == (
        f"the nkey file {bad} (from NATS_NKEY) is malformed: it does not hold a valid nkey seed"
    )
    monkeypatch.delenv("NATS_NKEY")
    tls = sites.get("tls", version)
    monkeypatch.setenv("NATS_URL", tls.url)
    monkeypatch.setenv("NATS_CA", str(creds.other_ca))
    with pytest.raises(ConnectionFailed) as untrusted:
        async with Runtime(connect_timeout=3) as rt:
            await rt.connect()
    assert str(untrusted.value) == (
        f"TLS handshake with {tls.url} failed: the server's certificate is not signed by the CA "
        f"in {creds.other_ca} (from NATS_CA): unable to get local issuer certificate"
    )


# -- the sweep: no secret in any output ---------------------------------------------------------


def test_no_command_shows_a_secret_from_options_variables_or_contexts(
    creds: Credentials, config_home: Path, tmp_path: Path
) -> None:
    """plan (and its saved file), apply and the events tools, each with the password given as an
    option, a variable and in a context (a different password each time), succeed and never show
    it; nor does a refusal with a wrong one."""
    passwords = {source: f"{source}-Pa55-{n}" for n, source in enumerate(SOURCES)}
    users = ", ".join(f'{{ user: "{s}", password: "{p}" }}' for s, p in passwords.items())
    with NatsServer(config=f"authorization {{ users: [ {users} ] }}") as server:
        for source, password in passwords.items():
            settings = {"user": source, "password": password}
            args, env = cli_source(source, server.url, settings, config_home)
            saved = tmp_path / f"{source}.plan"
            runs = [
                ("plan", "-out", str(saved)),
                ("apply", "--auto-approve"),
                ("plan",),
                ("events", "publish", "-t", "session.created", "--payload", '{"provider": "x"}'),
                ("events", "health"),
                ("events", "types"),
                ("events", "replay", "--hours", "1"),
                ("events", "dlq", "list"),
            ]
            for command in runs:
                proc = run_cli(*command, *args, env=env)
                assert proc.returncode == 0, (command, proc.stderr)
                assert password not in proc.stdout + proc.stderr, command
            assert password not in saved.read_text()
            wrong = {**settings, "password": password[::-1]}
            args, env = cli_source(source, server.url, wrong, config_home)
            refused = run_cli("plan", *args, env=env)
            assert refused.returncode == 1
            assert password[::-1] not in refused.stdout + refused.stderr
