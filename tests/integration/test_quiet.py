"""``--quiet`` with a real server: plan and apply print no progress or notes, while the plan
asked for, errors, failure reports and exit codes stay exactly as without it."""

from __future__ import annotations

from pathlib import Path

from tests.support import raw
from tests.support.cli import assert_clean_error, copy_topology, run_cli
from tests.support.natsserver import NatsServer


def test_quiet_plan_prints_the_plan_but_not_where_it_was_saved(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    out = tmp_path / "saved.plan"
    args = ("plan", "-s", nats_server.url, "--topology", str(topo), "--detailed-exitcode")
    loud = run_cli(*args, "-out", str(tmp_path / "loud.plan"))
    quiet = run_cli("-q", *args, "-out", str(out))
    assert loud.returncode == quiet.returncode == 2
    assert "Saved the plan to" in loud.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == loud.stdout and "stream.JELMORE will be created" in quiet.stdout
    assert out.is_file()


def test_quiet_apply_prints_no_progress_and_still_applies(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    proc = run_cli("-q", "apply", "-s", nats_server.url, "--topology", str(topo), "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert {"JELMORE", "JELMORE_DLQ"} <= set(raw.stream_names(nats_server.url))
    again = run_cli("plan", "-s", nats_server.url, "--topology", str(topo), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_quiet_apply_of_a_saved_plan_prints_nothing_when_it_succeeds(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    saved = tmp_path / "saved.plan"
    made = run_cli("plan", "-s", nats_server.url, "--topology", str(topo), "-out", str(saved))
    assert made.returncode == 0, made.stderr
    proc = run_cli("-q", "apply", "-s", nats_server.url, str(saved))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert "JELMORE" in raw.stream_names(nats_server.url)


def test_quiet_apply_that_fails_still_reports_the_failure_and_what_was_done(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    topo = copy_topology(tmp_path)
    # An unmanaged stream already owns the DLQ subjects: creating JELMORE_DLQ fails.
    raw.create_stream(nats_server.url, {"name": "SQUATTER", "subjects": ["jelmore.dlq.x.>"]})
    proc = run_cli("-q", "apply", "-s", nats_server.url, "--topology", str(topo), "--auto-approve")
    assert_clean_error(proc)
    assert "stream.JELMORE_DLQ: failed:" in proc.stderr
    assert "done:" in proc.stderr and "not attempted:" in proc.stderr
    assert "Creating..." not in proc.stderr  # the progress of the steps that worked
