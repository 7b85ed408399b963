"""Where connection settings come from (no server): the ``nats`` CLI's variables, contexts and
options, their precedence, the runtime reading the same variables, and the checks of creds and
nkey files and of client certificates that run before anything is sent."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from jelmore_infra.connection import (
    ENV_VARS,
    ConnectionSettings,
    context_path,
    parse_timeout,
    resolve_settings,
)
from jelmore_infra.errors import ConnectionFailed, JelmoreError
from jelmore_infra.runtime.settings import from_env
from jelmore_infra.transport import (
    check_creds_file,
    check_seed_file,
    refused_line,
    ssl_context,
)
from tests.support.cli import run_cli
from tests.support.jsapi_helpers import make_tls_files
from tests.support.jwt_helpers import creds_text, issue_certificate, user_seed

SECRET = "pa55-w0rd-never-shown"
NOWHERE = "nats://127.0.0.1:1"


def write_context(home: Path, name: str, body: dict[str, object]) -> Path:
    directory = home / "nats" / "context"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    return tmp_path / "config"


def env_with(config_home: Path, **variables: str) -> dict[str, str]:
    """An environment holding only ``variables`` and the config directory."""
    return {"XDG_CONFIG_HOME": str(config_home), **variables}


# -- every variable ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "setting", "text", "value"),
    [
        ("NATS_URL", "url", "nats://env:4222", "nats://env:4222"),
        ("NATS_CREDS", "creds", "/etc/app.creds", "/etc/app.creds"),
        ("NATS_NKEY", "nkey", "/etc/app.nk", "/etc/app.nk"),
        ("NATS_TOKEN", "token", SECRET, SECRET),
        ("NATS_CERT", "tls_cert", "/tls/c.pem", "/tls/c.pem"),
        ("NATS_KEY", "tls_key", "/tls/c.key", "/tls/c.key"),
        ("NATS_CA", "tls_ca", "/tls/ca.pem", "/tls/ca.pem"),
        ("NATS_TIMEOUT", "timeout", "2500ms", 2.5),
    ],
)
def test_each_nats_variable_sets_its_setting_and_is_named_as_its_source(
    config_home: Path, variable: str, setting: str, text: str, value: object
) -> None:
    settings = resolve_settings(env=env_with(config_home, **{variable: text}))
    assert getattr(settings, setting) == value
    assert settings.source_of(setting) == variable


def test_user_and_password_come_from_nats_user_and_nats_password(config_home: Path) -> None:
    env = env_with(config_home, NATS_USER="app", NATS_PASSWORD=SECRET)
    settings = resolve_settings(env=env)
    assert (settings.user, settings.password, settings.token) == ("app", SECRET, None)
    assert settings.source_of("password") == "NATS_PASSWORD"
    assert SECRET not in repr(settings)


def test_a_user_without_a_password_is_a_token_as_in_the_nats_cli(config_home: Path) -> None:
    from_variable = resolve_settings(env=env_with(config_home, NATS_USER=SECRET))
    assert (from_variable.user, from_variable.token) == (None, SECRET)
    from_option = resolve_settings(env=env_with(config_home), user=SECRET)
    assert (from_option.user, from_option.token) == (None, SECRET)
    assert from_option.source_of("token") == "--user"
    # A context's user stays a user (the nats CLI sends it with an empty password).
    write_context(config_home, "c", {"user": "alice"})
    from_context = resolve_settings(env=env_with(config_home, NATS_CONTEXT="c"))
    assert (from_context.user, from_context.token) == ("alice", None)


def test_every_variable_the_nats_cli_reads_for_connecting_is_known() -> None:
    assert set(ENV_VARS.values()) == {
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_TOKEN",
        "NATS_CREDS",
        "NATS_NKEY",
        "NATS_CERT",
        "NATS_KEY",
        "NATS_CA",
        "NATS_TIMEOUT",
    }


# -- NATS_TIMEOUT and --timeout ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5s", 1.5), ("2", 2.0), (" 3 ", 3.0)],
)
def test_a_timeout_is_a_duration_like_the_nats_cli_takes_or_seconds(
    text: str, seconds: float
) -> None:
    assert parse_timeout(text, "NATS_TIMEOUT") == seconds


@pytest.mark.parametrize("text", ["soon", "0s", "0", "-1", "nan", "inf", "2d", "1e308", "5 s"])
def test_a_bad_nats_timeout_is_an_error_naming_the_variable(config_home: Path, text: str) -> None:
    with pytest.raises(JelmoreError) as exc:
        resolve_settings(env=env_with(config_home, NATS_TIMEOUT=text))
    assert str(exc.value).startswith(f"NATS_TIMEOUT: {text!r} is not a timeout")
    assert "\n" not in str(exc.value)


def test_the_timeout_option_takes_a_duration_like_the_nats_cli() -> None:
    proc = run_cli("plan", "-s", NOWHERE, "--timeout", "500ms")
    assert proc.returncode == 1
    assert "Invalid value" not in proc.stderr, proc.stderr
    assert "cannot connect" in proc.stderr or "timed out" in proc.stderr, proc.stderr
    bad = run_cli("plan", "-s", NOWHERE, "--timeout", "5x")
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("Error: Invalid value for '--timeout': '5x'")


def test_a_bad_nats_timeout_stops_the_cli_with_one_line() -> None:
    proc = run_cli("plan", "-s", NOWHERE, env={"NATS_TIMEOUT": "soon"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: NATS_TIMEOUT: 'soon' is not a timeout: write a duration such as 5s or 500ms, "
        "or a number of seconds"
    ]


# -- contexts ------------------------------------------------------------------------------------


def test_nats_context_selects_the_context_and_the_context_option_wins(config_home: Path) -> None:
    write_context(config_home, "staging", {"url": "nats://staging:4222", "creds": "/s.creds"})
    write_context(config_home, "prod", {"url": "nats://prod:4222", "creds": "/p.creds"})
    env = env_with(config_home, NATS_CONTEXT="staging")
    selected = resolve_settings(env=env)
    assert (selected.url, selected.creds) == ("nats://staging:4222", "/s.creds")
    assert selected.source_of("creds") == "nats context 'staging' (creds)"
    assert resolve_settings(env=env, context="prod").url == "nats://prod:4222"
    # An environment file's connection block names a context between the two.
    block = resolve_settings(env=env, environment={"context": "prod"})
    assert block.url == "nats://prod:4222"


def test_contexts_live_under_xdg_config_home_or_home(tmp_path: Path) -> None:
    assert context_path("a", {"XDG_CONFIG_HOME": "/x"}) == Path("/x/nats/context/a.json")
    assert context_path("a", {"HOME": "/home/u"}) == Path("/home/u/.config/nats/context/a.json")
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"url": "nats://file:4222"}))
    assert resolve_settings(env={}, context=str(single)).url == "nats://file:4222"


def test_context_file_names_expand_home_and_variables_as_the_nats_cli_does(
    config_home: Path,
) -> None:
    write_context(
        config_home,
        "c",
        {"creds": "~/keys/app.creds", "ca": "${TLS_DIR}/ca.pem", "nkey": "$KEYS/u.nk"},
    )
    env = env_with(config_home, NATS_CONTEXT="c", HOME="/home/u", TLS_DIR="/tls", KEYS="/k")
    settings = resolve_settings(env=env)
    assert settings.creds == "/home/u/keys/app.creds"
    assert settings.tls_ca == "/tls/ca.pem"
    assert settings.nkey == "/k/u.nk"


def test_a_missing_context_names_where_its_name_came_from(config_home: Path) -> None:
    with pytest.raises(JelmoreError) as exc:
        resolve_settings(env=env_with(config_home, NATS_CONTEXT="nope"))
    path = config_home / "nats" / "context" / "nope.json"
    assert str(exc.value) == f"nats context 'nope' (from NATS_CONTEXT) not found ({path})"


def test_a_context_that_is_not_json_is_one_line_without_its_content(config_home: Path) -> None:
    path = write_context(config_home, "bad", {})
    path.write_text('{"password": "' + SECRET + '",')
    with pytest.raises(JelmoreError) as exc:
        resolve_settings(env=env_with(config_home), context="bad")
    assert str(exc.value).startswith("cannot read nats context 'bad' (from --context)")
    assert SECRET not in str(exc.value)


# -- precedence ----------------------------------------------------------------------------------


def test_options_beat_the_environment_block_which_beats_variables_which_beat_the_context(
    config_home: Path,
) -> None:
    write_context(
        config_home, "c", {"url": "nats://ctx:4222", "ca": "/ctx-ca.pem", "creds": "/ctx.creds"}
    )
    env = env_with(
        config_home,
        NATS_CONTEXT="c",
        NATS_URL="nats://var:4222",
        NATS_CA="/var-ca.pem",
        NATS_CREDS="/var.creds",
        NATS_TIMEOUT="7s",
    )
    block = {"server": "nats://block:4222", "tls_ca": "/block-ca.pem", "timeout": "8s"}
    layers = [
        (resolve_settings(env=env_with(config_home, NATS_CONTEXT="c")), "ctx"),
        (resolve_settings(env=env), "var"),
        (resolve_settings(env=env, environment=block, environment_name="prod"), "block"),
        (
            resolve_settings(
                env=env,
                environment=block,
                url="nats://opt:4222",
                tls_ca="/opt-ca.pem",
                timeout=9.0,
            ),
            "opt",
        ),
    ]
    assert [(s.url, s.tls_ca) for s, _ in layers] == [
        ("nats://ctx:4222", "/ctx-ca.pem"),
        ("nats://var:4222", "/var-ca.pem"),
        ("nats://block:4222", "/block-ca.pem"),
        ("nats://opt:4222", "/opt-ca.pem"),
    ]
    assert [s.timeout for s, _ in layers] == [5.0, 7.0, 8.0, 9.0]
    assert [s.tls_requested_by() for s, _ in layers] == [
        "nats context 'c' (ca)",
        "NATS_CA",
        "connection tls_ca of environment 'prod'",
        "--tls-ca",
    ]
    # The creds of the variable beat the context's; nothing above names a way to authenticate.
    assert layers[3][0].creds == "/var.creds"
    assert layers[3][0].source_of("creds") == "NATS_CREDS"
    assert resolve_settings(env={}).url == "nats://127.0.0.1:4222"


def test_authentication_comes_from_the_highest_source_that_names_a_method(
    config_home: Path,
) -> None:
    write_context(config_home, "c", {"creds": "/ctx.creds", "user": "ctx-user"})
    env = env_with(config_home, NATS_CONTEXT="c")
    # A user and password from the variables replace the context's creds…
    variables = resolve_settings(env={**env, "NATS_USER": "app", "NATS_PASSWORD": SECRET})
    assert (variables.user, variables.password, variables.creds) == ("app", SECRET, None)
    # …and --creds replaces both the variables' user and the context's.
    option = resolve_settings(
        env={**env, "NATS_USER": "app", "NATS_PASSWORD": SECRET}, creds="/opt.creds"
    )
    assert (option.creds, option.user, option.password) == ("/opt.creds", None, None)
    # A password alone (NATS_PASSWORD) completes the context's user: it names no method.
    write_context(config_home, "u", {"user": "alice"})
    completed = resolve_settings(env={**env, "NATS_CONTEXT": "u", "NATS_PASSWORD": SECRET})
    assert (completed.user, completed.password) == ("alice", SECRET)
    assert completed.source_of("user") == "nats context 'u' (user)"
    assert completed.source_of("password") == "NATS_PASSWORD"


# -- the runtime ---------------------------------------------------------------------------------


def test_the_runtime_reads_every_variable_and_the_context_they_name(config_home: Path) -> None:
    write_context(config_home, "svc", {"url": "nats://ctx:4222", "ca": "/ca.pem"})
    env = env_with(
        config_home,
        NATS_CONTEXT="svc",
        NATS_CREDS="/svc.creds",
        NATS_CERT="/c.pem",
        NATS_KEY="/c.key",
        NATS_TIMEOUT="3s",
    )
    conn = from_env(env).connection
    assert conn == resolve_settings(env=env)
    assert (conn.url, conn.tls_ca, conn.creds) == ("nats://ctx:4222", "/ca.pem", "/svc.creds")
    assert (conn.tls_cert, conn.tls_key, conn.timeout) == ("/c.pem", "/c.key", 3.0)
    assert from_env(env, url="nats://arg:4222").connection.url == "nats://arg:4222"


def test_configure_arguments_override_the_variables(config_home: Path) -> None:
    env = env_with(config_home, NATS_USER="env-user", NATS_PASSWORD=SECRET, NATS_CA="/ca.pem")
    # A whole ConnectionSettings replaces what the variables say…
    given = from_env(env, connection=ConnectionSettings(url="nats://h:4222", token="t"))
    assert (given.connection.user, given.connection.tls_ca) == (None, None)
    # …and resolve_settings fixes only some of them, reading the rest from the variables.
    partial = from_env(env, connection=resolve_settings(env=env, creds="/mine.creds"))
    assert (partial.connection.creds, partial.connection.user) == ("/mine.creds", None)
    assert partial.connection.tls_ca == "/ca.pem"


# -- what the server refused, in words -----------------------------------------------------------


def test_a_refused_login_names_the_method_and_its_source_never_the_secret(
    config_home: Path,
) -> None:
    env = env_with(config_home, NATS_USER="app", NATS_PASSWORD=SECRET)
    assert refused_line(resolve_settings(env=env)) == (
        "authorization violation: the server refused user 'app' with the password "
        "(from NATS_PASSWORD)"
    )
    token = resolve_settings(env=env_with(config_home, NATS_TOKEN=SECRET))
    assert (
        refused_line(token)
        == "authorization violation: the server refused the token (from NATS_TOKEN)"
    )
    creds = resolve_settings(env=env_with(config_home), creds="/a.creds")
    assert refused_line(creds) == (
        "authorization violation: the server refused the credentials in /a.creds (from --creds)"
    )
    nothing = refused_line(resolve_settings(env=env_with(config_home)))
    assert nothing.startswith("authorization violation: the server wants credentials and none")
    in_url = ConnectionSettings(url=f"nats://app:{SECRET}@h:4222")
    assert refused_line(in_url) == (
        "authorization violation: the server refused the user or token in the server URL"
    )


# -- creds and nkey files, checked before anything is sent -------------------------------------


def test_a_well_formed_creds_file_and_seed_file_pass(tmp_path: Path) -> None:
    seed, _ = user_seed()
    header = json.dumps({"alg": "ed25519-nkey", "typ": "JWT"}).encode()
    part = base64.urlsafe_b64encode(header).rstrip(b"=").decode()
    creds = tmp_path / "u.creds"
    creds.write_text(creds_text(f"{part}.{part}.sig", seed))
    check_creds_file(str(creds))
    nk = tmp_path / "u.nk"
    nk.write_text(seed + "\n")
    check_seed_file(str(nk))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "it has no user JWT"),
        ("just some text\n", "it has no user JWT"),
        ("-----BEGIN NATS USER JWT-----\nnot-a-jwt\n", "is not a JWT"),
        ("-----BEGIN NATS USER JWT-----\neyJhIjoxfQ.eyJhIjoxfQ.c2ln\n", "it has no user nkey seed"),
        (
            "-----BEGIN NATS USER JWT-----\neyJhIjoxfQ.eyJhIjoxfQ.c2ln\n"
            "-----BEGIN USER NKEY SEED-----\nSUNOTASEED\n------END USER NKEY SEED------\n",
            "it does not hold a valid nkey seed",
        ),
    ],
    ids=["empty", "no-jwt", "jwt-not-a-jwt", "no-seed", "bad-seed"],
)
def test_a_malformed_creds_file_is_one_line_naming_the_file_and_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    creds = tmp_path / "bad.creds"
    creds.write_text(content)
    with pytest.raises(ConnectionFailed) as exc:
        check_creds_file(str(creds), " (from NATS_CREDS)")
    text = str(exc.value)
    assert text.startswith(f"the creds file {creds} (from NATS_CREDS) is malformed: ")
    assert problem in text
    assert "\n" not in text


def test_a_malformed_nkey_seed_is_one_line_without_the_seed(tmp_path: Path) -> None:
    seed, public = user_seed()
    cases = {
        "truncated": seed[:-4],
        "public key": public,
        "account seed": "SA" + seed[2:],
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.nk"
        path.write_text(text)
        with pytest.raises(ConnectionFailed) as exc:
            check_seed_file(str(path), " (from --nkey)")
        message = str(exc.value)
        assert message.startswith(f"the nkey file {path} (from --nkey) is malformed: "), name
        assert text not in message and seed not in message


# -- client certificates, checked before anything is sent --------------------------------------


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls")
    make_tls_files(directory)
    return directory


def test_an_expired_client_certificate_is_named_with_its_date(tls_dir: Path) -> None:
    cert, key = issue_certificate(tls_dir, "old-client", expired=True)
    settings = resolve_settings(
        env={"NATS_CERT": str(cert), "NATS_KEY": str(key), "NATS_CA": str(tls_dir / "ca.pem")}
    )
    with pytest.raises(ConnectionFailed) as exc:
        ssl_context(settings)
    assert str(exc.value).startswith(f"the TLS certificate {cert} (from NATS_CERT) expired on ")


def test_a_key_that_does_not_belong_to_the_certificate_is_named(tls_dir: Path) -> None:
    cert, _ = issue_certificate(tls_dir, "client-a")
    _, other_key = issue_certificate(tls_dir, "client-b")
    rsa_key = tls_dir / "server.key"  # another key type too
    for key in (other_key, rsa_key):
        settings = resolve_settings(env={}, tls_cert=str(cert), tls_key=str(key))
        with pytest.raises(ConnectionFailed) as exc:
            ssl_context(settings)
        assert str(exc.value) == (
            f"the TLS key {key} (from --tls-key) does not belong to the TLS certificate "
            f"{cert} (from --tls-cert)"
        )


def test_a_certificate_without_its_key_names_which_one_is_set(tls_dir: Path) -> None:
    settings = resolve_settings(env={"NATS_CERT": str(tls_dir / "server.pem")})
    with pytest.raises(ConnectionFailed) as exc:
        ssl_context(settings)
    assert str(exc.value) == (
        "a client certificate needs both --tls-cert and --tls-key (or NATS_CERT and NATS_KEY): "
        "only the certificate is set (from NATS_CERT)"
    )


def test_the_nats_cli_spellings_of_the_tls_options_are_accepted(tls_dir: Path) -> None:
    missing = tls_dir / "missing-ca.pem"
    proc = run_cli("plan", "-s", NOWHERE, "--tlsca", str(missing), "--tlsfirst")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Error: cannot read TLS CA file {missing} (from --tls-ca): No such file or directory"
    ]
