"""The global ``--quiet``/``-q`` flag, offline: it leaves out notes and summaries, never errors,
what a command is asked to print, or exit codes. (With a server: tests/integration/test_quiet.py.)
"""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import TOPOLOGY, assert_clean_error, run_cli


def test_quiet_validate_of_a_valid_topology_prints_nothing_and_exits_0() -> None:
    loud = run_cli("validate", "--topology", str(TOPOLOGY))
    assert loud.returncode == 0 and "is valid" in loud.stdout
    for flag in ("-q", "--quiet"):
        quiet = run_cli(flag, "validate", "--topology", str(TOPOLOGY))
        assert quiet.returncode == 0, quiet.stderr
        assert quiet.stdout == "" and quiet.stderr == ""


def test_quiet_validate_still_prints_every_error_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text("streams:\n  S:\n    max_age: soon\n")
    loud = run_cli("validate", "--topology", str(tmp_path))
    quiet = run_cli("-q", "validate", "--topology", str(tmp_path))
    assert quiet.returncode == loud.returncode == 1
    assert quiet.stderr == loud.stderr and "streams.yaml:3:" in quiet.stderr


def test_quiet_keeps_what_was_asked_for_and_leaves_out_where_it_went(tmp_path: Path) -> None:
    printed = run_cli("-q", "asyncapi", "--topology", str(TOPOLOGY))
    assert printed.returncode == 0 and printed.stdout.startswith("asyncapi:")
    out = tmp_path / "asyncapi.yaml"
    written = run_cli("-q", "asyncapi", "--topology", str(TOPOLOGY), "-o", str(out))
    assert written.returncode == 0, written.stderr
    assert written.stdout == written.stderr == ""
    assert out.read_text() == printed.stdout
    loud = run_cli("asyncapi", "--topology", str(TOPOLOGY), "-o", str(tmp_path / "again.yaml"))
    assert "Wrote the AsyncAPI document" in loud.stderr


def test_quiet_never_hides_a_usage_error() -> None:
    proc = run_cli("-q", "plan", "--target", "nonsense")
    assert_clean_error(proc)
    assert "--target" in proc.stderr
