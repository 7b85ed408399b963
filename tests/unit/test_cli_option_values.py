"""Every number, boolean and server URL a command accepts is checked before any work starts
(issue 12): a bad value is a usage error, i.e. one ``Error: Invalid value for …`` line naming the
option, exit code 1, no traceback, no "internal error", and a password in a bad URL is never
echoed.

The table runs the real command line (``python -m jelmore_infra``) with a server URL nothing
listens on, so a value that slipped through would show up as a connection error instead of the
usage error the test expects. The pure checks behind the option types are tested directly.
"""

from __future__ import annotations

import click
import pytest

from jelmore_infra.cli.common import (
    DURATION,
    HOURS,
    STRICT_BOOL,
    TIMEOUT,
    mask_url,
    server_url_problem,
)
from tests.unit.test_cli_conventions import env_for_test, jelmore

NOWHERE = "nats://127.0.0.1:1"
SECRET = "s3cretPW"

#: (argv, option the error names)
BAD_VALUES: list[tuple[list[str], str]] = [
    # strict booleans: an empty --lock= used to turn the lock off
    (["apply", "--lock=", "--auto-approve", "-s", NOWHERE], "'--lock'"),
    (["apply", "--lock=maybe", "--auto-approve", "-s", NOWHERE], "'--lock'"),
    (["apply", "--lock-timeout", "2d", "--auto-approve", "-s", NOWHERE], "'--lock-timeout'"),
    (["apply", "--lock-timeout=", "--auto-approve", "-s", NOWHERE], "'--lock-timeout'"),
    # request timeouts
    (["plan", "--timeout", "nan", "-s", NOWHERE], "'--timeout'"),
    (["plan", "--timeout", "inf", "-s", NOWHERE], "'--timeout'"),
    (["plan", "--timeout", "-1", "-s", NOWHERE], "'--timeout'"),
    (["plan", "--timeout", "0", "-s", NOWHERE], "'--timeout'"),
    (["import", "--timeout", "1e308", "-s", NOWHERE], "'--timeout'"),
    (["events", "health", "--timeout", "soon", "-s", NOWHERE], "'--timeout'"),
    (["server", "--ready-timeout", "nan"], "'--ready-timeout'"),
    # durations and hours
    (["events", "load", "--duration", "nan", "-s", NOWHERE], "'--duration'"),
    (["events", "load", "--duration", "-1", "-s", NOWHERE], "'--duration'"),
    (["events", "load", "--duration", "1e308", "-s", NOWHERE], "'--duration'"),
    (["events", "subscribe", "all", "--duration", "-5", "-s", NOWHERE], "'--duration'"),
    (["events", "dlq", "route", "--duration", "inf", "-s", NOWHERE], "'--duration'"),
    (["events", "replay", "--hours", "1e308", "-s", NOWHERE], "'--hours'"),
    (["events", "replay", "--hours", "-1", "-s", NOWHERE], "'--hours'"),
    (["events", "replay", "--hours", "nan", "-s", NOWHERE], "'--hours'"),
    # counts, sizes, sequences, ports
    (["events", "load", "--rate", "0", "-s", NOWHERE], "'--rate'"),
    (["events", "load", "--rate", "1e3", "-s", NOWHERE], "'--rate'"),
    (["events", "load", "--rate", "999999999999", "-s", NOWHERE], "'--rate'"),
    (["events", "load", "--size", "-1", "-s", NOWHERE], "'--size'"),
    (["events", "load", "--size", "99999999999999", "-s", NOWHERE], "'--size'"),
    (["events", "load", "--window", "0", "-s", NOWHERE], "'--window'"),
    (["events", "dlq", "list", "--limit", "0", "-s", NOWHERE], "'--limit'"),
    (["events", "dlq", "show", "0", "-s", NOWHERE], "'SEQ'"),
    (["events", "dlq", "show", str(2**64), "-s", NOWHERE], "'SEQ'"),
    (["events", "dlq", "replay", "--seq", "-3", "-s", NOWHERE], "'--seq'"),
    (["server", "--port", "0"], "'--port'"),
    (["server", "--http-port", "65536"], "'--http-port'"),
    # server URLs: bad port, bad scheme, unparsable host; the password is never shown
    (["events", "replay", "-s", f"nats://u:{SECRET}@h:notaport"], "'--server'"),
    (["plan", "-s", f"nats://u:{SECRET}@h:99999"], "'--server'"),
    (["plan", "-s", f"http://u:{SECRET}@h:4222"], "'--server'"),
    (["plan", "-s", f"nats://u:{SECRET}@[::1"], "'--server'"),
    (["plan", "-s", f"nats://u:{SECRET}@bad host:4222"], "'--server'"),
    (["plan", "-s", f"nats://{SECRET}@:4222"], "'--server'"),
    (["plan", "-s", f"nats://admin:{SECRET}"], "'--server'"),
    (["events", "publish", "-t", "session.created", "-s", f"nats://u:{SECRET}@h:0"], "'--server'"),
    (["plan", "-s", f"nats://u:{SECRET}@a:4222,ws://b:80"], "'--server'"),
    (["plan", "-s", ""], "'--server'"),
]


@pytest.mark.parametrize(("argv", "option"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_a_bad_option_value_is_a_one_line_usage_error(argv: list[str], option: str) -> None:
    result = jelmore(*argv)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: Invalid value for "), lines[0]
    assert option in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert SECRET not in result.stderr


def test_a_bad_nats_url_from_the_environment_is_a_usage_error_without_its_password() -> None:
    result = jelmore("plan", env=env_for_test(NATS_URL=f"nats://u:{SECRET}@h:notaport"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: 'nats://u:***@h:***' (from NATS_URL) is not a usable")
    assert SECRET not in result.stderr
    assert "internal error" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["apply", "--lock=false", "--auto-approve"],
        ["apply", "--lock", "TRUE", "--auto-approve"],
        ["plan", "--timeout", "0.5"],
        ["events", "replay", "--hours", "0.5", "--timeout", "0.5"],
        ["events", "load", "--duration", "1", "--timeout", "0.5"],
    ],
    ids=lambda v: " ".join(v),
)
def test_good_values_pass_the_checks(argv: list[str]) -> None:
    """They get as far as connecting (and fail there, as nothing listens)."""
    result = jelmore(*argv, "-s", NOWHERE)
    assert result.returncode == 1
    assert "Invalid value" not in result.stderr, result.stderr
    assert "cannot connect" in result.stderr or "timed out" in result.stderr, result.stderr


# --- the checks themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "nats://127.0.0.1:4222",
        "nats://u:p@h:4222",
        "tls://nats.example.com",
        "localhost",
        "127.0.0.1:4222",
        "[::1]:4222",
        "nats://[::1]",
        "ws://h:8080/path",
        "nats://a:4222, nats://b:4222",
        "nats://h:4222/",
        "nats://p@ss:w@rd@h:1",
    ],
)
def test_usable_server_urls_pass(url: str) -> None:
    assert server_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "the URL is empty"),
        ("nats://h:notaport", "the port is not a number from 1 to 65535"),
        ("nats://h:0", "the port is not a number from 1 to 65535"),
        ("nats://h:65536", "the port is not a number from 1 to 65535"),
        ("nats://h:", "the port is not a number from 1 to 65535"),
        ("http://h:4222", "the scheme 'http' is not one of nats, tls, ws, wss"),
        ("NATS://h:4222", "the scheme 'NATS' is not one of nats, tls, ws, wss"),
        ("nats://[::1", "the IPv6 address has no closing ']'"),
        ("nats://[nope]:4222", "'nope' is not an IPv6 address"),
        ("nats://::1:4222", "an IPv6 address must be written in brackets, e.g. [::1]:4222"),
        ("nats://u:p@:4222", "it names no host"),
        ("nats://bad host", "'bad host' is not a host name or IP address"),
        ("nats://a:4222,,nats://b", "it has an empty entry between commas"),
        ("nats://a:4222,nats://b:x", "'nats://b:***': the port is not a number from 1 to 65535"),
        ("nats://a,wss://b", "websocket (ws, wss) and plain (nats, tls) URLs cannot be mixed"),
    ],
)
def test_unusable_server_urls_say_why(url: str, problem: str) -> None:
    assert server_url_problem(url) == problem


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("nats://u:pw@h:4222", "nats://u:***@h:4222"),
        ("nats://token@h", "nats://***@h"),
        ("nats://u:p@ss@h:1,tok@h2,nats://h3", "nats://u:***@h:1,***@h2,nats://h3"),
        ("nats://admin:pw", "nats://admin:***"),  # no @host: the "port" may be a password
        ("nats://u:pw@h:bad/x", "nats://u:***@h:***/x"),
        ("nats://[::1]:bad", "nats://[::1]:***"),
        ("nats://a:b:c", "nats://a:***"),
        ("nats://h:4222", "nats://h:4222"),
    ],
)
def test_mask_url_hides_passwords_tokens_and_anything_posing_as_a_port(
    url: str, masked: str
) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("param_type", "value"),
    [
        (TIMEOUT, "nan"),
        (TIMEOUT, "-inf"),
        (TIMEOUT, "0"),
        (TIMEOUT, "86401"),
        (DURATION, "-0.001"),
        (DURATION, "1e308"),
        (HOURS, "8761"),
        (HOURS, "x"),
        (HOURS, True),
    ],
)
def test_numbers_outside_their_range_are_refused(
    param_type: click.ParamType, value: object
) -> None:
    with pytest.raises(click.BadParameter):
        param_type.convert(value, None, None)


def test_numbers_inside_their_range_are_floats() -> None:
    assert TIMEOUT.convert("0.25", None, None) == 0.25
    assert DURATION.convert(3, None, None) == 3.0
    assert HOURS.convert(" 8760 ", None, None) == 8760.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("FALSE", False), ("yes", True), ("no", False), ("1", True), ("0", False)],
)
def test_strict_booleans_accept_true_and_false(value: str, expected: bool) -> None:
    assert STRICT_BOOL.convert(value, None, None) is expected


@pytest.mark.parametrize("value", ["", " ", "maybe", "t", "off", "2"])
def test_strict_booleans_refuse_anything_else(value: str) -> None:
    with pytest.raises(click.BadParameter):
        STRICT_BOOL.convert(value, None, None)
