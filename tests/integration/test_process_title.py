"""A secret given on the command line is not in the process title while the command runs
(issue 13 part 4): ``ps`` and ``/proc/PID/cmdline``, which every user of the machine can read,
show ``***`` in its place.

The command connects to a listener that accepts the connection and never greets it, so the
command is still running (waiting for the server's greeting) when its title is read. The
connection arriving proves the command got past its start-up, where the title is rewritten.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import REPO

SECRET = "s3cret-Pa55"


@pytest.fixture
def silent_listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(60)
        yield listener


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def ps_args(pid: int) -> str:
    out = subprocess.run(
        ["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.mark.parametrize(
    ("command", "auth", "shown"),
    [
        (["plan"], ["--user", "bob", "--password", SECRET], "--password ***"),
        (["plan"], [f"--password={SECRET}", "--user=bob"], "--password=***"),
        (["events", "health"], ["--token", SECRET], "--token ***"),
        (["events", "dlq", "route"], ["--user", SECRET], "--user ***"),
        (["plan"], ["-s", "nats://bob:{secret}@127.0.0.1:{port}"], "nats://bob:***@127.0.0.1:"),
    ],
    ids=["password", "password=", "token", "user-as-token", "url-userinfo"],
)
def test_a_secret_on_the_command_line_is_not_in_the_process_title(
    silent_listener: socket.socket, command: list[str], auth: list[str], shown: str
) -> None:
    port = silent_listener.getsockname()[1]
    auth = [a.format(secret=SECRET, port=port) for a in auth]
    url = [] if "-s" in auth else ["-s", f"nats://127.0.0.1:{port}"]
    where = ["--topology", str(REPO / "topology")] if command == ["plan"] else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "jelmore_infra", *command, *where, *url, *auth, "--timeout", "60s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        conn, _ = silent_listener.accept()  # the command is connecting: past its start-up
        with conn:
            assert proc.poll() is None
            title, listed = command_line(proc.pid), ps_args(proc.pid)
            assert proc.poll() is None  # still running when read
    finally:
        proc.kill()
        proc.wait(timeout=30)
    for text in (title, listed):
        assert SECRET not in text
        assert shown in text
        assert text.startswith("jelmore-infra ")
        assert " ".join(command) in text


def test_a_command_line_without_secrets_keeps_its_process_title(
    silent_listener: socket.socket,
) -> None:
    port = silent_listener.getsockname()[1]
    args = ["-m", "jelmore_infra", "events", "health", "-s", f"nats://127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, *args, "--timeout", "60s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        conn, _ = silent_listener.accept()
        with conn:
            title = command_line(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert title.split() == [sys.executable, *args, "--timeout", "60s"]
