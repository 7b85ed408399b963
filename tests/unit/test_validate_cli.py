"""``jelmore-infra validate`` and ``jelmore-infra schema`` as users run them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jelmore_infra.cli.main import cli
from jelmore_infra.topology.schema import build_schema

REPO = Path(__file__).resolve().parents[2]
EXE = REPO / ".venv" / "bin" / "jelmore-infra"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): error: .+$")


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A copy of the repository topology with three mistakes."""
    target = tmp_path / "topology"
    shutil.copytree(REPO / "topology", target)
    streams = target / "streams.yaml"
    text = streams.read_text()
    text = text.replace("max_age: 7d", "max_age: 7x", 1).replace(
        "max_msgs: 10000\n", "max_mesages: 1\n"
    )
    streams.write_text(text)
    groups = target / "consumer_groups.yaml"
    groups.write_text(groups.read_text().replace("stream: JELMORE\n", "stream: JELMOR\n", 1))
    return target


def test_validate_reports_a_valid_topology_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "topology/ is valid: 3 streams, 5 consumer groups, 8 event types.\n"
    assert result.stderr == ""


def test_validate_lists_every_problem_sorted_with_a_count(broken: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--topology", str(broken)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-1] == f"{broken}/ is invalid: 3 errors."
    problems = lines[:-1]
    assert len(problems) == 3
    assert all(LINE.match(line) for line in problems), problems
    places = [
        (m["file"], int(m["line"]), int(m["col"]))
        for m in (LINE.match(line) for line in problems)
        if m
    ]
    assert places == sorted(places)
    assert (
        f"{broken}/consumer_groups.yaml:8:13: error: consumer group 'session_handlers' "
        in (problems[0])
    )
    assert "unknown stream setting 'max_mesages' (did you mean 'max_msgs'?)" in result.stderr
    assert "Traceback" not in result.output


def test_validate_json_output(broken: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["validate", "--topology", str(broken), "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    assert doc["streams"] == 0 and doc["consumer_groups"] == 0
    assert len(doc["diagnostics"]) == 3
    assert {d["severity"] for d in doc["diagnostics"]} == {"error"}
    assert all(d["file"] and d["line"] and d["col"] for d in doc["diagnostics"])

    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli, ["validate", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "valid": True,
        "diagnostics": [],
        "streams": 3,
        "consumer_groups": 5,
        "kv_buckets": 0,
        "object_stores": 0,
        "events": 8,
    }


def test_missing_directory_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--topology", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: topology directory '{tmp_path / 'nope'}' does not exist\n"


def test_directory_without_yaml_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--topology", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: no topology files (*.yaml) in '{tmp_path}'\n"


def test_schema_command_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == build_schema()


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JELMORE_DEBUG"}
    exe = str(EXE) if EXE.exists() else None
    cmd = [exe, *args] if exe else [sys.executable, "-m", "jelmore_infra", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)


def test_installed_command_validates_the_repository_topology() -> None:
    proc = _run("validate", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "topology/ is valid: 3 streams, 5 consumer groups, 8 event types.\n"


def test_installed_command_reports_a_broken_copy(broken: Path) -> None:
    proc = _run("validate", "--topology", "topology", cwd=broken.parent)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "topology/streams.yaml:10:14: error: max_age: invalid duration '7x'" in proc.stderr
    assert proc.stderr.splitlines()[-1] == "topology/ is invalid: 3 errors."
    assert proc.stdout == ""


def test_warnings_are_shown_but_do_not_fail(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "streams:\n  S: {subjects: [s.>]}\n  D: {subjects: [dlq.>]}\n"
        "consumer_groups:\n  g:\n    stream: S\n    ack_policy: explicit\n"
        "    jelmore:\n      dead_letter: {stream: D, subject: dlq.g}\n"
    )
    result = CliRunner().invoke(cli, ["validate", "--topology", str(tmp_path)])
    assert result.exit_code == 0
    assert f"{tmp_path}/t.yaml:9:20: warning: jelmore.dead_letter is set" in result.stderr
    assert result.stdout == f"{tmp_path}/ is valid: 2 streams, 1 consumer group.\n"
