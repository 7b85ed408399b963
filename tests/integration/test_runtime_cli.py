"""The ``jelmore-infra events …`` commands against a real server (issue 5 part 7)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from jelmore_infra.cli.main import cli
from tests.support.natsserver import NatsServer
from tests.support.runtime_topology import add_group, catalogue_only_async, provision

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with NatsServer() as srv:
        provision(srv.url)
        yield srv.url


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["events", *args], catch_exceptions=False)
    return result.exit_code, result.output


def jelmore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jelmore_infra", "events", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_publish_prints_the_message_id_and_refuses_bad_input(url: str) -> None:
    code, out = run(
        "publish",
        "-s",
        url,
        "-t",
        "session.created",
        "--session-id",
        "cli-1",
        "--payload",
        '{"provider": "claude"}',
        "--header",
        "Priority=high",
    )
    assert code == 0, out
    assert out.startswith("published session.created session=cli-1 message_id=")
    bad = jelmore("publish", "-s", url, "-t", "session.created", "--payload", "{nope")
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: Invalid value for --payload: not JSON")
    assert "Traceback" not in bad.stderr


def test_health_prints_a_table_and_exits_1_only_when_critical(url: str) -> None:
    code, out = run("health", "-s", url)
    assert code == 0, out
    assert "consumer lag" in out and "session_handlers" in out
    assert "dead-letter queue: 0 event(s)" in out
    code, out = run("health", "-s", url, "--group", "no_such_group", "--json")
    assert code == 1
    status = json.loads(out)
    assert status["stream_health"] == "critical"
    assert "consumer group no_such_group missing on stream JELMORE" in status["reasons"]


def test_subscribe_with_a_missing_group_is_one_line_telling_to_apply(url: str) -> None:
    proc = jelmore("subscribe", "all", "-s", url, "--consumer-group", "nope", "--duration", "1")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "Error: consumer group nope does not exist on stream JELMORE: run `jelmore-infra apply`"
    )


def test_subscribe_specific_prints_the_events_published_meanwhile(url: str) -> None:
    session = uuid.uuid4().hex
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jelmore_infra",
            "events",
            "subscribe",
            "specific",
            "--subjects",
            "jelmore.session.failed,jelmore.session.status",
            "-s",
            url,
            "--duration",
            "3",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("listening on jelmore.session.failed"), first
        run("publish", "-s", url, "-t", "session.failed", "--session-id", session)
        run("publish", "-s", url, "-t", "session.output", "--session-id", session)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    mine = [e for e in events if e["session_id"] == session]
    assert [e["event_type"] for e in mine] == ["session.failed"]
    assert "1 event(s) received" in err


def test_replay_lists_recent_events(url: str) -> None:
    session = uuid.uuid4().hex
    run("publish", "-s", url, "-t", "session.completed", "--session-id", session)
    code, out = run("replay", "-s", url, "--hours", "1", "--json")
    assert code == 0
    sessions = [json.loads(line)["session_id"] for line in out.splitlines() if line.startswith("{")]
    assert session in sessions


def test_load_reports_rate_latency_and_errors(url: str) -> None:
    code, out = run("load", "-s", url, "--rate", "500", "--duration", "1", "--json")
    assert code == 0, out
    result = json.loads(out[out.index("{") :])
    assert result["sent"] == 500
    assert result["acknowledged"] == 500
    assert result["errors"] == 0
    assert result["ack_latency"]["p50_ms"] is not None
    assert result["ack_latency"]["p99_ms"] is not None


def test_load_exits_1_and_says_how_many_were_not_stored_when_no_stream_takes_them() -> None:
    with NatsServer() as bare:  # only the catalogue: no stream captures the events
        asyncio.run(catalogue_only_async(bare.url))
        proc = jelmore("load", "-s", bare.url, "--rate", "50", "--duration", "0.2")
        as_json = jelmore("load", "-s", bare.url, "--rate", "50", "--duration", "0.2", "--json")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "sent 10, acknowledged 0" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: 10 of 10 event(s) were not acknowledged by the stream (10 failed, "
        "0 not confirmed): does a stream capture jelmore.session.output? "
        "(run `jelmore-infra apply`)"
    )
    assert "Traceback" not in proc.stderr
    assert as_json.returncode == 1
    result = json.loads(as_json.stdout)
    assert result["sent"] == 10
    assert result["acknowledged"] == 0
    assert result["not_acknowledged"] == 10


# --- a closed stdout (`… | head -1`) ends a command quietly --------------------------------------


def popen_events(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jelmore_infra", "events", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def assert_quiet_end(proc: subprocess.Popen[str], stderr_seen: str) -> None:
    assert proc.stderr is not None
    rest = proc.stderr.read()
    proc.stderr.close()
    stderr = stderr_seen + rest
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "Task exception was never retrieved" not in stderr
    assert "Exception ignored" not in stderr
    assert "Broken pipe" not in stderr
    assert rest.strip() == "", rest  # nothing after the reader left, not even the summary


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_subscribe_ends_quietly_when_its_reader_goes_away(url: str, as_json: bool) -> None:
    proc = popen_events("subscribe", "all", "-s", url, *(["--json"] if as_json else []))
    try:
        assert proc.stdout is not None and proc.stderr is not None
        listening = proc.stderr.readline()
        assert listening.startswith("listening on"), listening
        run("publish", "-s", url, "-t", "session.status")
        assert proc.stdout.readline()  # `head -1`: read one line, then go away
        proc.stdout.close()
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            run("publish", "-s", url, "-t", "session.status")  # so the command writes again
            time.sleep(0.1)
        assert proc.poll() is not None, "subscribe kept running after its reader went away"
        assert_quiet_end(proc, listening)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_replay_ends_quietly_when_its_reader_goes_away(url: str) -> None:
    # more output than a pipe buffers (2 KB padding × 250 events), so replay is still writing
    # when the reader leaves
    code, out = run("load", "-s", url, "--rate", "500", "--duration", "0.5", "--size", "2048")
    assert code == 0, out
    proc = popen_events("replay", "-s", url, "--json", "--subjects", "jelmore.session.output")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("{")
        proc.stdout.close()
        proc.wait(timeout=60)
        assert_quiet_end(proc, "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dlq_list_show_and_replay_republish_each_event_once(url: str) -> None:
    group = f"cli_dlq_{uuid.uuid4().hex[:6]}"
    add_group(url, group, ["jelmore.session.status"], retry_delays="50ms", deliver_policy="new")
    session = uuid.uuid4().hex
    code, _ = run(
        "publish",
        "-s",
        url,
        "-t",
        "session.status",
        "--session-id",
        session,
        "--payload",
        '{"state": "stuck"}',
    )
    assert code == 0
    # a failing worker of the group dead-letters it
    script = (
        "import asyncio\n"
        "from jelmore_infra import runtime\n"
        "async def main():\n"
        f"    runtime.configure(url={url!r})\n"
        "    async def handler(event, msg):\n"
        "        raise RuntimeError('downstream unavailable')\n"
        f"    sub = await runtime.subscribe_to_events(None, handler, consumer_group={group!r})\n"
        "    await asyncio.sleep(1.5)\n"
        "    await sub.stop()\n"
        "    await runtime.close()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=60)

    code, out = run("dlq", "list", "-s", url, "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    [row] = [r for r in rows if r["consumer_group"] == group]
    assert row["failure_reason"] == "RuntimeError: downstream unavailable"
    assert row["retry_count"] == 3

    code, out = run("dlq", "show", "-s", url, str(row["dlq_seq"]))
    assert code == 0
    shown = json.loads(out)
    assert shown["record"]["payload"] == {"state": "stuck"}
    assert shown["headers"]["Nats-Msg-Id"].startswith(f"dlq-JELMORE-{group}-")

    code, out = run("dlq", "replay", "-s", url, "--seq", str(row["dlq_seq"]))
    assert code == 0, out
    assert out.startswith("re-published 1 event(s), 0 failed, 0 skipped")
    code, out = run("dlq", "replay", "-s", url, "--seq", str(row["dlq_seq"]))
    assert out.startswith("re-published 0 event(s), 0 failed, 1 skipped")
    code, out = run(
        "replay", "-s", url, "--hours", "1", "--json", "--subjects", "jelmore.session.status"
    )
    again = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    mine = [e for e in again if e["session_id"] == session]
    assert len(mine) == 2  # the original and exactly one re-published copy
    assert mine[1]["retry_count"] == 3
    assert mine[1]["message_id"] == mine[0]["message_id"]


def test_dlq_route_runs_the_router_for_a_while(url: str) -> None:
    code, out = run("dlq", "route", "-s", url, "--duration", "0.5")
    assert code == 0, out
    assert out.strip().endswith("event(s) routed to the dead-letter queue")


@pytest.mark.slow
def test_the_demo_runs_the_groups_and_dead_letters_the_broken_event(url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jelmore_infra.runtime.demo", url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "-- dead-lettered: session.git_activity" in proc.stdout
    assert "attempts=3 reason='RuntimeError: simulated failure" in proc.stdout
    assert "handled per group: session_handlers 10, file_watchers 2, git_monitors 1" in proc.stdout
    assert '"dead_lettered": 1' in proc.stdout


def test_the_demo_without_a_topology_is_one_clear_error() -> None:
    with NatsServer() as bare:
        proc = subprocess.run(
            [sys.executable, "-m", "jelmore_infra.runtime.demo", bare.url],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"Error: no event stream captures jelmore.session.> on {bare.url}: run `jelmore-infra apply`"
    )
