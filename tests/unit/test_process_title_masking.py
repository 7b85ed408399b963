"""Which command-line arguments are secrets, and how they are masked in the process title."""

from __future__ import annotations

import pytest

from jelmore_infra.cli.proctitle import masked_arguments


@pytest.mark.parametrize(
    ("args", "masked"),
    [
        (
            ["plan", "--password", "pw", "--user", "bob"],
            ["plan", "--password", "***", "--user", "bob"],
        ),
        (["plan", "--password=pw", "--user", "bob"], ["plan", "--password=***", "--user", "bob"]),
        (["plan", "--token", "tk"], ["plan", "--token", "***"]),
        (["plan", "--token=tk"], ["plan", "--token=***"]),
        (["plan", "--user", "tk"], ["plan", "--user", "***"]),
        (["plan", "--user=tk"], ["plan", "--user=***"]),
        (["plan", "-s", "nats://u:pw@h:4222"], ["plan", "-s", "nats://u:***@h:4222"]),
        (["plan", "-s", "nats://tk@h,nats://h2"], ["plan", "-s", "nats://***@h,nats://h2"]),
        (["plan", "--server", "tls://u:pw@h"], ["plan", "--server", "tls://u:***@h"]),
        (["plan", "--server=nats://u:pw@h"], ["plan", "--server=nats://u:***@h"]),
        (["plan", "-snats://tk@h"], ["plan", "-snats://***@h"]),
        (
            ["events", "publish", "--token", "tk", "--", "--password", "x"],
            ["events", "publish", "--token", "***", "--", "--password", "x"],
        ),
    ],
)
def test_secrets_on_the_command_line_are_masked(args: list[str], masked: list[str]) -> None:
    assert masked_arguments(args) == masked


@pytest.mark.parametrize(
    "args",
    [
        ["plan"],
        ["plan", "-s", "nats://h:4222", "--creds", "u.creds"],
        ["plan", "--nkey", "seed.nk", "--tls-key", "k.pem"],
        ["events", "publish", "--", "--password", "x"],
    ],
)
def test_a_command_line_without_secrets_is_left_as_it_is(args: list[str]) -> None:
    assert masked_arguments(args) is None


def test_a_user_given_with_a_password_is_a_name_and_stays_readable() -> None:
    masked = masked_arguments(["plan", "--user=bob", "--password", "pw"])
    assert masked == ["plan", "--user=bob", "--password", "***"]


def test_a_value_that_looks_like_an_option_is_still_masked() -> None:
    assert masked_arguments(["plan", "--password", "--token"]) == ["plan", "--password", "***"]
