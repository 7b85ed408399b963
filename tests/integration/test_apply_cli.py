"""``jelmore-infra apply`` end to end against real servers: confirmation, saved plans, gates,
partial failure, convergence and re-runs."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import raw
from tests.support.cli import REPO, assert_clean_error, copy_topology, run_cli
from tests.support.natsserver import NatsServer

JELMORE_CONSUMERS = ["file_watchers", "git_monitors", "session_handlers", "system_monitors"]


def apply(url: str, topology: Path, *extra: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return run_cli("apply", "-s", url, "--topology", str(topology), *extra, **kw)  # type: ignore[arg-type]


def plan(url: str, topology: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("plan", "-s", url, "--topology", str(topology), *extra)


def test_apply_creates_the_jelmore_topology_and_a_second_plan_shows_no_changes(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    proc = apply(nats_server.url, topo, "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert "Apply complete! Resources: 16 added, 0 changed, 0 replaced, 0 destroyed." in proc.stdout
    assert raw.stream_names(nats_server.url) == [
        "JELMORE",
        "JELMORE_ADVISORIES",
        "JELMORE_DLQ",
        "JELMORE_INFRA_AUDIT",
        "KV_jelmore-catalogue",
        "KV_jelmore-infra-locks",
    ]
    for name in JELMORE_CONSUMERS:
        config = raw.consumer_config(nats_server.url, "JELMORE", name)
        assert config is not None
        assert config["metadata"]["jelmore.managed-by"] == "jelmore-infra"
    again = plan(nats_server.url, topo, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes. The server matches the topology." in again.stdout
    assert "KV_jelmore-infra-locks" not in again.stdout


def test_apply_sends_streams_before_their_consumer_groups(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    proc = apply(nats_server.url, topo, "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    order = [line.split(":")[0] for line in proc.stderr.splitlines() if line.endswith("...")]
    assert order.index("stream.JELMORE") < order.index("consumer.JELMORE.session_handlers")
    assert order.index("stream.JELMORE_DLQ") < order.index("consumer.JELMORE.session_handlers")


def test_apply_without_a_terminal_or_auto_approve_refuses_and_changes_nothing(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    proc = apply(nats_server.url, copy_topology(tmp_path))
    assert_clean_error(proc)
    assert "--auto-approve" in proc.stderr
    # only the tool's own streams: the lock, and the audit trail holding the refusal
    assert raw.stream_names(nats_server.url) == ["JELMORE_INFRA_AUDIT", "KV_jelmore-infra-locks"]


def _apply_on_a_terminal(url: str, topology: Path, answer: str) -> tuple[int, str]:
    main, secondary = pty.openpty()
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jelmore_infra", "apply", "-s", url, "--topology", str(topology)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=REPO,
        env=env,
    )
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not answered and b"Enter a value:" in out:
            os.write(main, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    proc.wait(timeout=30)
    os.close(main)
    return proc.returncode, out.decode(errors="replace")


def test_apply_on_a_terminal_asks_and_applies_only_after_yes(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    code, out = _apply_on_a_terminal(nats_server.url, topo, "no")
    assert "Only 'yes' will be accepted" in out
    assert code == 1
    assert "JELMORE" not in raw.stream_names(nats_server.url)
    code, out = _apply_on_a_terminal(nats_server.url, topo, "yes")
    assert code == 0, out
    assert "Apply complete!" in out
    assert "JELMORE" in raw.stream_names(nats_server.url)


def test_saved_plan_applies_exactly_and_refuses_when_stale(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    assert apply(nats_server.url, topo, "--auto-approve").returncode == 0
    text = (topo / "streams.yaml").read_text().replace("max_age: 7d", "max_age: 14d")
    (topo / "streams.yaml").write_text(text)
    planfile = tmp_path / "plan.json"
    made = plan(nats_server.url, topo, "-out", str(planfile))
    assert made.returncode == 0, made.stderr
    # Someone changes the stream behind our back: the saved plan is stale.
    raw.update_stream(nats_server.url, "JELMORE", description="changed by hand")
    stale = run_cli("apply", "-s", nats_server.url, str(planfile))
    assert_clean_error(stale)
    assert "plan is stale" in stale.stderr
    assert "stream.JELMORE" in stale.stderr
    config = raw.stream_config(nats_server.url, "JELMORE")
    assert config is not None and config["max_age"] == 7 * 86400 * 10**9
    # A fresh plan applies.
    assert plan(nats_server.url, topo, "-out", str(planfile)).returncode == 0
    done = run_cli("apply", "-s", nats_server.url, str(planfile))
    assert done.returncode == 0, done.stderr
    config = raw.stream_config(nats_server.url, "JELMORE")
    assert config is not None and config["max_age"] == 14 * 86400 * 10**9
    assert config.get("description") == "Jelmore session events"


def test_saved_plan_for_another_server_is_refused(tmp_path: Path) -> None:
    topo = copy_topology(tmp_path)
    with NatsServer() as one, NatsServer() as two:
        planfile = tmp_path / "plan.json"
        assert plan(one.url, topo, "-out", str(planfile)).returncode == 0
        proc = run_cli("apply", "-s", two.url, str(planfile))
        assert_clean_error(proc)
        assert "another server" in proc.stderr
        assert raw.stream_names(two.url) == ["JELMORE_INFRA_AUDIT", "KV_jelmore-infra-locks"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('"tool": "jelmore-infra"', '"tool": "x"'), "not a jelmore-infra"),
        (lambda t: t.replace("604800000000000", "604800000000001", 1), "modified"),
        (lambda t: t[: len(t) // 2], "not valid JSON"),
    ],
    ids=["foreign", "hand-edited", "truncated"],
)
def test_corrupt_or_hand_edited_plan_file_is_a_clear_error(
    nats_server: NatsServer, tmp_path: Path, edit: object, message: str
) -> None:
    topo = copy_topology(tmp_path)
    planfile = tmp_path / "plan.json"
    assert plan(nats_server.url, topo, "-out", str(planfile)).returncode == 0
    planfile.write_text(edit(planfile.read_text()))  # type: ignore[operator]
    proc = run_cli("apply", "-s", nats_server.url, str(planfile))
    assert_clean_error(proc)
    assert message in proc.stderr
    assert "JELMORE" not in raw.stream_names(nats_server.url)


def test_plan_file_holds_no_secrets(tmp_path: Path) -> None:
    topo = copy_topology(tmp_path)
    with NatsServer(config='authorization { user: alice, password: "s3cr3t-pw" }') as server:
        planfile = tmp_path / "plan.json"
        proc = run_cli(
            "plan",
            "-s",
            server.url,
            "--user",
            "alice",
            "--password",
            "s3cr3t-pw",
            "--topology",
            str(topo),
            "-out",
            str(planfile),
        )
        assert proc.returncode == 0, proc.stderr
        assert "s3cr3t-pw" not in planfile.read_text()
        assert "s3cr3t-pw" not in proc.stdout + proc.stderr


def _fill(url: str, count: int) -> None:
    raw.publish(url, "jelmore.session.created", count)


def test_deleting_a_stream_with_messages_needs_allow_data_loss_and_allow_destroy(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    assert apply(nats_server.url, topo, "--auto-approve").returncode == 0
    raw.publish(nats_server.url, "jelmore.dlq.session_handlers.x", 5)
    text = (topo / "streams.yaml").read_text()
    (topo / "streams.yaml").write_text(text.split("  JELMORE_DLQ:")[0])
    (topo / "consumer_groups.yaml").write_text("consumer_groups: {}\n")
    refused = apply(nats_server.url, topo, "--auto-approve")
    assert_clean_error(refused)
    assert "--allow-data-loss" in refused.stderr
    assert "JELMORE_DLQ" in raw.stream_names(nats_server.url)
    refused = apply(nats_server.url, topo, "--auto-approve", "--allow-data-loss")
    assert_clean_error(refused)
    assert "--allow-destroy" in refused.stderr
    assert "JELMORE_DLQ" in raw.stream_names(nats_server.url)
    assert raw.consumer_config(nats_server.url, "JELMORE", "git_monitors") is not None
    done = apply(nats_server.url, topo, "--auto-approve", "--allow-data-loss", "--allow-destroy")
    assert done.returncode == 0, done.stderr
    assert "JELMORE_DLQ" not in raw.stream_names(nats_server.url)
    assert raw.consumer_config(nats_server.url, "JELMORE", "git_monitors") is None


def test_lowering_max_msgs_below_what_is_stored_is_refused_without_allow_data_loss(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    assert apply(nats_server.url, topo, "--auto-approve").returncode == 0
    _fill(nats_server.url, 20)
    text = (topo / "streams.yaml").read_text().replace("max_msgs: 100000", "max_msgs: 5", 1)
    (topo / "streams.yaml").write_text(text)
    refused = apply(nats_server.url, topo, "--auto-approve")
    assert_clean_error(refused)
    assert "--allow-data-loss" in refused.stderr
    assert raw.stream_state(nats_server.url, "JELMORE")["messages"] == 20
    done = apply(nats_server.url, topo, "--auto-approve", "--allow-data-loss")
    assert done.returncode == 0, done.stderr
    assert raw.stream_state(nats_server.url, "JELMORE")["messages"] == 5


def test_plan_errors_block_apply_entirely(nats_server: NatsServer, tmp_path: Path) -> None:
    topo = copy_topology(tmp_path)
    assert apply(nats_server.url, topo, "--auto-approve").returncode == 0
    raw.update_stream(nats_server.url, "JELMORE", deny_delete=True)
    # The topology does not set deny_delete: turning it off is impossible, so nothing is sent.
    text = (topo / "streams.yaml").read_text().replace("max_age: 7d", "max_age: 8d", 1)
    (topo / "streams.yaml").write_text(text)
    proc = apply(nats_server.url, topo, "--auto-approve", "--allow-data-loss", "--allow-destroy")
    assert_clean_error(proc)
    assert "deny_delete" in proc.stdout + proc.stderr
    config = raw.stream_config(nats_server.url, "JELMORE")
    assert config is not None and config["max_age"] == 7 * 86400 * 10**9


def test_apply_stops_at_the_first_failure_reports_it_and_a_rerun_converges(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    # An unmanaged stream already owns the DLQ subjects: creating JELMORE_DLQ will fail.
    raw.create_stream(nats_server.url, {"name": "SQUATTER", "subjects": ["jelmore.dlq.x.>"]})
    proc = apply(nats_server.url, topo, "--auto-approve")
    assert_clean_error(proc)
    assert "stream.JELMORE_DLQ" in proc.stderr
    assert "overlap" in proc.stderr
    assert "done:" in proc.stderr and "not attempted:" in proc.stderr
    raw.js(nats_server.url, "STREAM.DELETE.SQUATTER")
    again = apply(nats_server.url, topo, "--auto-approve")
    assert again.returncode == 0, again.stderr
    assert plan(nats_server.url, topo, "--detailed-exitcode").returncode == 0


def test_apply_survives_the_server_going_away_and_a_rerun_converges(tmp_path: Path) -> None:
    topo = tmp_path / "topology"
    topo.mkdir()
    lines = ["streams:"]
    for i in range(150):
        lines += [f"  S{i:03d}:", f"    subjects: [s{i:03d}.>]", "    storage: memory"]
    (topo / "many.yaml").write_text("\n".join(lines) + "\n")
    with NatsServer() as server:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jelmore_infra",
                "apply",
                "-s",
                server.url,
                "--topology",
                str(topo),
                "--auto-approve",
                "--timeout",
                "2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert proc.stderr is not None
        seen = 0
        for line in proc.stderr:
            if line.rstrip().endswith("Created."):
                seen += 1
            if seen >= 10:
                break
        server.kill()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1
        assert "Traceback" not in err
        assert "apply stopped" in err or "Error:" in err
        server.start()
        done = apply(server.url, topo, "--auto-approve")
        assert done.returncode == 0, done.stderr
        assert plan(server.url, topo, "--detailed-exitcode").returncode == 0


def test_plan_json_after_apply_is_empty(nats_server: NatsServer, tmp_path: Path) -> None:
    topo = copy_topology(tmp_path)
    assert apply(nats_server.url, topo, "--auto-approve").returncode == 0
    proc = plan(nats_server.url, topo, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["changes"] == []
    assert doc["summary"] == {"add": 0, "change": 0, "replace": 0, "destroy": 0}


def test_convergence_check_names_each_field_the_server_does_not_hold(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    import asyncio

    from jelmore_infra.apply import check_convergence
    from jelmore_infra.connection import ConnectionSettings
    from jelmore_infra.live.jsapi import JetStreamAPI
    from jelmore_infra.planfile import read_plan_file

    topo = copy_topology(tmp_path)
    planfile = tmp_path / "plan.json"
    assert plan(nats_server.url, topo, "-out", str(planfile)).returncode == 0
    assert run_cli("apply", "-s", nats_server.url, str(planfile)).returncode == 0
    saved = read_plan_file(planfile)

    async def check() -> list[str]:
        api = await JetStreamAPI.connect(ConnectionSettings(url=nats_server.url))
        try:
            return await check_convergence(api, saved)
        finally:
            await api.close()

    assert asyncio.run(check()) == []
    # The server ends up holding something else than the plan intended.
    raw.update_stream(nats_server.url, "JELMORE", max_msgs=5)
    raw.js(nats_server.url, "CONSUMER.DELETE.JELMORE.git_monitors")
    problems = asyncio.run(check())
    assert any(
        p.startswith("server did not apply stream.JELMORE max_msgs") and "5" in p for p in problems
    ), problems
    assert "server did not apply consumer.JELMORE.git_monitors: it does not exist" in problems
    assert len(problems) == 2, problems


def test_convergence_check_takes_replied_configs_and_reads_back_only_the_rest(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    import asyncio

    from jelmore_infra.apply import check_convergence
    from jelmore_infra.connection import ConnectionSettings
    from jelmore_infra.live.jsapi import JetStreamAPI
    from jelmore_infra.planfile import read_plan_file

    topo = copy_topology(tmp_path)
    planfile = tmp_path / "plan.json"
    assert plan(nats_server.url, topo, "-out", str(planfile)).returncode == 0
    assert run_cli("apply", "-s", nats_server.url, str(planfile)).returncode == 0
    saved = read_plan_file(planfile)
    # What create replies would carry: the planned configs, except that the reply for JELMORE
    # says the server holds max_msgs 5, and git_monitors has no reply (so it is read back).
    replies = {c.address: dict(c.after or {}) for c in saved.changes}
    replies["stream.JELMORE"]["max_msgs"] = 5
    del replies["consumer.JELMORE.git_monitors"]
    raw.js(nats_server.url, "CONSUMER.DELETE.JELMORE.git_monitors")

    async def check() -> list[str]:
        api = await JetStreamAPI.connect(ConnectionSettings(url=nats_server.url))
        try:
            return await check_convergence(api, saved, replies)
        finally:
            await api.close()

    problems = asyncio.run(check())
    assert any(
        p.startswith("server did not apply stream.JELMORE max_msgs") and "5" in p for p in problems
    ), problems
    assert "server did not apply consumer.JELMORE.git_monitors: it does not exist" in problems
    assert len(problems) == 2, problems


def test_unattended_apply_of_many_creates_lists_each_in_one_line_and_sums_up(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    from jelmore_infra.cli.apply_cmd import BRIEF_CREATES_OVER

    count = BRIEF_CREATES_OVER + 1
    topo = tmp_path / "many"
    topo.mkdir()
    lines = ["streams:"]
    for i in range(count):
        lines += [f"  S{i:03d}:", f"    subjects: [s{i:03d}.>]", "    storage: memory"]
    (topo / "many.yaml").write_text("\n".join(lines) + "\n")
    proc = apply(nats_server.url, topo, "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert '  + stream "S000"' in out and f'  + stream "S{count - 1:03d}"' in out
    assert "max_msgs" not in proc.stdout  # no field of a create is listed
    assert f"Plan: {count} to add, 0 to change, 0 to replace, 0 to destroy." in out
    assert f"Apply complete! Resources: {count} added, 0 changed" in proc.stdout
    err = proc.stderr.splitlines()
    assert sum(line.endswith("Creating...") for line in err) == count  # progress as before
    assert sum(line.endswith("Created.") for line in err) == count
    # Below the threshold every field is shown, as before.
    small = copy_topology(tmp_path)
    again = apply(nats_server.url, small, "--auto-approve", "--allow-destroy")
    assert again.returncode == 0, again.stderr
    assert "  # stream.JELMORE will be created" in again.stdout
