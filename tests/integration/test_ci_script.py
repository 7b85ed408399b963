"""The CI script ``.ci/topology.sh`` end to end, against a real nats-server and the real CLI: the
pull-request plan (comment file, ``has_changes``), the apply on merge (the saved plan), the nightly
drift check (issue body naming the drifted resource, exit 2) and a stale saved plan refused.

Each test runs for every environment in ``CI_ENVS`` ("default" is a topology without
environments, so no ``--env``); a named environment adds its ``environments/<env>.yaml`` to the
copied topology in :func:`workspace`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import raw
from tests.support.cli import REPO, copy_topology
from tests.support.natsserver import NatsServer

SCRIPT = REPO / ".ci" / "topology.sh"
#: The environments the pipeline is tested with.
CI_ENVS = ["default", "staging"]
#: Variables of the calling environment that must not reach the script (a test run inside
#: GitHub Actions would otherwise write to that job's outputs and summary).
_FOREIGN = ("GITHUB_", "RUNNER_", "NATS_", "JELMORE_")


@dataclass
class Workspace:
    """A checkout-like directory (``topology/``; ``plans/`` and ``drift/`` appear as the script
    runs) and the environment the script runs with."""

    root: Path
    topology: Path
    env: str
    url: str

    @property
    def outputs_file(self) -> Path:
        return self.root / "github_output"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``.ci/topology.sh ARGS`` in the workspace, with a fresh ``$GITHUB_OUTPUT``."""
        self.outputs_file.write_text("")
        environ = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        pythonpath = os.pathsep.join(p for p in (str(REPO), environ.get("PYTHONPATH")) if p)
        environ.update(
            JELMORE_INFRA=f"{sys.executable} -m jelmore_infra",
            PYTHONPATH=pythonpath,
            NATS_URL=self.url,
            NATS_URL_STAGING=self.url,  # topology/environments/staging.yaml reads it
            GITHUB_OUTPUT=str(self.outputs_file),
            NO_COLOR="1",
        )
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            cwd=self.root,
            env=environ,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=180,
        )

    def outputs(self) -> dict[str, str]:
        """The step outputs the last run wrote (``name=value`` lines)."""
        lines = self.outputs_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def file(self, relative: str) -> Path:
        return self.root / relative


@pytest.fixture(scope="module")
def server() -> Iterator[NatsServer]:
    with NatsServer() as srv:
        yield srv


@pytest.fixture(params=CI_ENVS)
def workspace(request: pytest.FixtureRequest, server: NatsServer, tmp_path: Path) -> Workspace:
    """An empty server (the module's, wiped) and a copy of the repository's topology."""
    for name in raw.stream_names(server.url):
        reply = raw.js(server.url, f"STREAM.DELETE.{name}")
        assert "error" not in reply, reply
    return Workspace(tmp_path, copy_topology(tmp_path), request.param, server.url)


def _ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr


def _pr_and_apply(ws: Workspace) -> None:
    _ok(ws.run("pr", ws.env))
    _ok(ws.run("apply", ws.env))


def test_a_pull_request_plan_writes_the_comment_and_says_there_are_changes(
    workspace: Workspace,
) -> None:
    ws = workspace
    proc = ws.run("pr", ws.env)
    _ok(proc)
    outputs = ws.outputs()
    assert outputs["has_changes"] == "true"
    assert outputs["plan_path"] == f"plans/{ws.env}.plan"
    assert outputs["markdown_path"] == f"plans/{ws.env}.md"
    comment = ws.file(f"plans/{ws.env}.md").read_text()
    assert comment.startswith(f"**jelmore-infra plan for `{ws.env}`**")
    assert "stream.JELMORE" in comment and "consumer.JELMORE.session_handlers" in comment
    assert "#### Changes" in comment
    assert ws.file(f"plans/{ws.env}.plan").is_file()
    assert raw.stream_names(ws.url) == []  # planning changed nothing


def test_a_merge_applies_the_saved_plan_and_the_next_plan_has_no_changes(
    workspace: Workspace,
) -> None:
    ws = workspace
    _ok(ws.run("pr", ws.env))
    proc = ws.run("apply", ws.env)
    _ok(proc)
    assert "Apply complete!" in proc.stdout
    assert {"JELMORE", "JELMORE_DLQ"} <= set(raw.stream_names(ws.url))
    assert raw.consumer_config(ws.url, "JELMORE", "session_handlers") is not None

    _ok(ws.run("pr", ws.env))
    assert ws.outputs()["has_changes"] == "false"
    title = "### No changes" if ws.env == "default" else f"### {ws.env}: No changes"
    assert title in ws.file(f"plans/{ws.env}.md").read_text()


def test_the_drift_check_is_clean_after_apply_and_reports_an_out_of_band_change(
    workspace: Workspace,
) -> None:
    ws = workspace
    _pr_and_apply(ws)
    clean = ws.run("drift", ws.env)
    _ok(clean)
    assert ws.outputs()["drifted"] == "false"
    assert not ws.file(f"drift/{ws.env}.md").exists()

    raw.update_stream(ws.url, "JELMORE", max_age=3600 * 10**9)  # 1h instead of 7d
    drifted = ws.run("drift", ws.env)
    _ok(drifted, 2)
    outputs = ws.outputs()
    assert outputs["drifted"] == "true"
    assert outputs["issue_title"] == f"Topology drift: {ws.env}"
    body = ws.file(outputs["drift_path"]).read_text()
    assert body.startswith(f"### Topology drift in `{ws.env}`")
    assert "stream.JELMORE" in body and "max_age" in body
    assert "consumer.JELMORE.session_handlers" not in body  # only what drifted


def test_a_saved_plan_made_stale_by_an_out_of_band_change_is_refused(
    workspace: Workspace,
) -> None:
    ws = workspace
    _pr_and_apply(ws)
    streams = ws.topology / "streams.yaml"
    streams.write_text(streams.read_text().replace("max_msgs: 100000", "max_msgs: 200000"))
    _ok(ws.run("pr", ws.env))
    assert ws.outputs()["has_changes"] == "true"

    raw.update_stream(ws.url, "JELMORE", max_age=3600 * 10**9)  # behind the plan's back
    proc = ws.run("apply", ws.env)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "stale" in proc.stderr
    config = raw.stream_config(ws.url, "JELMORE")
    assert config is not None
    assert config["max_msgs"] == 100000 and config["max_age"] == 3600 * 10**9  # nothing applied
