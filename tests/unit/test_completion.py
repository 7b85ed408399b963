"""Shell completion: ``jelmore-infra completion SHELL`` prints click's script for bash, zsh and
fish; ``--target`` completes the addresses the topology files declare and the environment
parameter type (``EnvironmentName``, for ``--env``) the files in ``environments/``. No server:
completion reads only local files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.shell_completion import ShellComplete

from jelmore_infra.cli.common import ENVIRONMENT_NAME, environment_names, topology_addresses
from jelmore_infra.cli.main import cli
from tests.support.cli import REPO, copy_topology

COMPLETE_VAR = "_JELMORE_INFRA_COMPLETE"


def _complete(args: list[str], incomplete: str) -> list[str]:
    completer = ShellComplete(cli, {}, "jelmore-infra", COMPLETE_VAR)
    return [item.value for item in completer.get_completions(args, incomplete)]


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jelmore_infra", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _jelmore_infra_completion jelmore-infra"),
        ("zsh", "#compdef jelmore-infra"),
        ("fish", "complete --no-files --command jelmore-infra"),
    ],
)
def test_the_completion_command_prints_the_script_for_each_shell(shell: str, marker: str) -> None:
    proc = _run("completion", shell)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout
    assert f"{COMPLETE_VAR}={shell}_" in proc.stdout  # the script calls jelmore-infra back


def test_the_completion_command_refuses_an_unknown_shell_in_one_line() -> None:
    proc = _run("completion", "tcsh")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in proc.stderr


def test_target_completes_the_stream_addresses_of_the_default_topology_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)  # --topology defaults to ./topology
    found = _complete(["plan", "--target"], "stream.J")
    assert "stream.JELMORE" in found and "stream.JELMORE_DLQ" in found
    assert all(a.startswith("stream.J") for a in found)


def test_target_completes_every_kind_of_address_from_the_given_topology(tmp_path: Path) -> None:
    topo = copy_topology(tmp_path)
    (topo / "buckets.yaml").write_text(
        "kv_buckets:\n  settings: {}\nobject_stores:\n  artefacts: {}\n"
    )
    args = ["apply", "--topology", str(topo), "--target"]
    assert "consumer.JELMORE.session_handlers" in _complete(args, "consumer.JELMORE.s")
    assert _complete(args, "kv.") == ["kv.settings"]
    assert _complete(args, "objectstore.") == ["objectstore.artefacts"]
    assert "event.session.created" in _complete(args, "event.session.c")
    assert set(_complete(args, "")) == set(topology_addresses(topo))


def test_target_completion_offers_the_address_keywords_when_the_topology_does_not_load(
    tmp_path: Path,
) -> None:
    (tmp_path / "broken.yaml").write_text("streams: [not, a, map]\n")
    args = ["plan", "--topology", str(tmp_path), "--target"]
    assert _complete(args, "") == ["stream.", "consumer.", "kv.", "objectstore.", "event."]
    assert _complete(args, "stream.J") == []


def test_target_completion_through_the_shell_protocol_offers_stream_jelmore() -> None:
    """What bash runs on Tab: the real entry point with click's completion variables."""
    proc = _run(
        env={
            COMPLETE_VAR: "bash_complete",
            "COMP_WORDS": "jelmore-infra plan --target stream.J",
            "COMP_CWORD": "3",
        }
    )
    assert proc.returncode == 0, proc.stderr
    assert "plain,stream.JELMORE" in proc.stdout.splitlines()


def test_the_environment_type_completes_the_files_in_environments(tmp_path: Path) -> None:
    envs = tmp_path / "environments"
    envs.mkdir()
    for name in ("staging", "prod", "preview-1"):
        (envs / f"{name}.yaml").write_text("{}\n")
    (envs / "notes.txt").write_text("not an environment\n")

    @click.command()
    @click.option("--topology", "topology_dir", default="topology")
    @click.option("--env", type=ENVIRONMENT_NAME)
    def probe(topology_dir: str, env: str | None) -> None:
        click.echo(env)

    completer = ShellComplete(probe, {}, "probe", "_PROBE_COMPLETE")
    found = completer.get_completions(["--topology", str(tmp_path), "--env"], "")
    assert [item.value for item in found] == ["preview-1", "prod", "staging"]
    found = completer.get_completions(["--topology", str(tmp_path), "--env"], "st")
    assert [item.value for item in found] == ["staging"]
    assert environment_names(tmp_path / "missing") == []


@pytest.mark.parametrize("bad", ["", "../prod", "a/b", ".hidden", "prod env"])
def test_the_environment_type_refuses_a_name_that_is_not_a_plain_word(bad: str) -> None:
    with pytest.raises(click.BadParameter, match="is not an environment name"):
        ENVIRONMENT_NAME.convert(bad, None, None)
    assert ENVIRONMENT_NAME.convert(" staging ", None, None) == "staging"
