"""The CI files: the workflows and ``action.yml`` pass check-jsonschema's GitHub schemas (offline),
and the check does fail on a typo; ``.pre-commit-hooks.yaml`` has the shape pre-commit reads; the
CI script (``.ci/topology.sh``) passes shellcheck and builds the right commands.

The script's own logic (flags per environment, outputs, file names, secrets) is tested here with
a stand-in for ``jelmore-infra`` that records its arguments; tests/integration/test_ci_script.py
runs it with the real command against a real server.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml

from jelmore_infra.cli.main import COMMANDS
from tests.support.cli import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTION = REPO / "action.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
SCRIPT = REPO / ".ci" / "topology.sh"
#: No network: a schema check that tried to download something would fail.
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE},
        timeout=120,
    )


# --- GitHub workflow and action schemas ---------------------------------------------------------


def test_the_workflows_pass_the_github_workflow_schema() -> None:
    assert WORKFLOWS, "no workflow found"
    proc = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_action_passes_the_github_action_schema() -> None:
    proc = check_jsonschema("vendor.github-actions", ACTION)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("source", "schema", "typo"),
    [
        (".github/workflows/topology.yml", "vendor.github-workflows", ("runs-on:", "runs_on:")),
        (".github/workflows/topology.yml", "vendor.github-workflows", ("steps:", "stpes:")),
        ("action.yml", "vendor.github-actions", ("using: composite", "using: compsite")),
    ],
)
def test_the_schema_check_fails_on_a_typo(
    tmp_path: Path, source: str, schema: str, typo: tuple[str, str]
) -> None:
    text = (REPO / source).read_text()
    assert typo[0] in text
    broken = tmp_path / Path(source).name
    broken.write_text(text.replace(typo[0], typo[1], 1))
    proc = check_jsonschema(schema, broken)
    assert proc.returncode == 1, proc.stdout
    assert "Schema validation errors were encountered" in proc.stdout


def test_the_readme_s_workflow_example_passes_the_github_workflow_schema(tmp_path: Path) -> None:
    section = (REPO / "README.md").read_text().split("## Using it in CI", 1)[1]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    examples = [textwrap.dedent(b) for b in blocks if "jobs:" in b]
    assert len(examples) == 1
    example = tmp_path / "example.yml"
    example.write_text(examples[0])
    proc = check_jsonschema("vendor.github-workflows", example)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_workflow_uses_the_ci_script_for_every_shell_step() -> None:
    doc = yaml.safe_load((REPO / ".github" / "workflows" / "topology.yml").read_text())
    runs = [step["run"] for job in doc["jobs"].values() for step in job["steps"] if "run" in step]
    assert runs and all(run.startswith(".ci/topology.sh ") for run in runs), runs
    action = yaml.safe_load(ACTION.read_text())
    runs = [step["run"] for step in action["runs"]["steps"] if "run" in step]
    assert all("$GITHUB_ACTION_PATH/.ci/topology.sh" in run for run in runs), runs


def test_secrets_reach_steps_only_through_the_environment() -> None:
    """A secret interpolated into a ``run:`` script would be part of the script's text."""
    for path in [*WORKFLOWS, ACTION]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\$\{\{[^}]*\bsecrets\b", line):
                assert re.match(r"\s+[A-Z_]+: \$\{\{ secrets", line), f"{path}:{number}: {line}"


# --- pre-commit ---------------------------------------------------------------------------------


def test_the_pre_commit_hook_validates_the_topology_when_a_topology_file_changes() -> None:
    hooks = yaml.safe_load(HOOKS.read_text())
    assert isinstance(hooks, list) and len(hooks) == 1
    hook = hooks[0]
    assert {"id", "name", "entry", "language"} <= hook.keys()  # what pre-commit requires
    assert hook["id"] == "jelmore-infra-validate"
    assert hook["language"] == "python"  # pre-commit installs this package for it
    assert hook["pass_filenames"] is False  # validate reads the whole directory
    files = re.compile(hook["files"])
    assert files.search("topology/streams.yaml")
    assert files.search("topology/environments/prod.yaml")
    assert not files.search("README.md") and not files.search("tests/topology/x.yaml")

    program, *args = hook["entry"].split()
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert program in scripts and args[0] in COMMANDS
    proc = subprocess.run(
        [sys.executable, "-m", "jelmore_infra", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


# --- the CI script ------------------------------------------------------------------------------


def test_the_ci_script_passes_shellcheck() -> None:
    found = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    proc = subprocess.run([found, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


FAKE_TOOL = r"""#!/usr/bin/env bash
# Stands in for jelmore-infra: records its arguments, answers as FAKE_* say.
printf '%s\n' "$*" >>"$FAKE_LOG"
case "$1" in
    validate) exit "${FAKE_VALIDATE_RC:-0}" ;;
    plan)
        while [[ $# -gt 0 ]]; do
            if [[ "$1" == "-out" ]]; then printf '{}\n' >"$2"; fi
            shift
        done
        printf '%s' "${FAKE_PLAN_STDOUT-### Plan: 1 to add
}"
        if [[ -n "${FAKE_PLAN_STDERR:-}" ]]; then printf '%s\n' "$FAKE_PLAN_STDERR" >&2; fi
        exit "${FAKE_PLAN_RC:-0}"
        ;;
esac
exit "${FAKE_RC:-0}"
"""


class Fake:
    """A workspace where the CI script runs with the stand-in tool (and a stand-in ``gh``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "calls.log"
        self.outputs_file = root / "github_output"
        self.env_file = root / "github_env"
        bin_dir = root / "bin"
        bin_dir.mkdir()
        tool = bin_dir / "fake-jelmore-infra"
        tool.write_text(FAKE_TOOL)
        gh = bin_dir / "gh"
        gh.write_text('#!/usr/bin/env bash\nprintf \'gh %s\\n\' "$*" >>"$FAKE_LOG"\necho 7\n')
        for f in (tool, gh):
            f.chmod(f.stat().st_mode | stat.S_IXUSR)
        self.base = {
            k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "NATS_"))
        }
        self.base.update(
            JELMORE_INFRA=f"bash {tool}",
            FAKE_LOG=str(self.log),
            GITHUB_OUTPUT=str(self.outputs_file),
            GITHUB_ENV=str(self.env_file),
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        )
        (root / "topology").mkdir()

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        for f in (self.log, self.outputs_file, self.env_file):
            f.write_text("")
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            cwd=self.root,
            env={**self.base, **env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def outputs(self) -> dict[str, str]:
        lines = self.outputs_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture
def fake(tmp_path: Path) -> Fake:
    return Fake(tmp_path)


@pytest.mark.parametrize("env", ["", "default"])
def test_the_default_environment_runs_without_an_env_flag(fake: Fake, env: str) -> None:
    proc = fake.run("pr", env)
    assert proc.returncode == 0, proc.stderr
    assert fake.calls() == [
        "validate --topology topology",
        "plan --topology topology --markdown --detailed-exitcode -out plans/default.plan",
    ]
    assert (fake.root / "plans" / "default.plan").is_file()


def test_a_named_environment_is_passed_to_every_command_and_names_the_files(fake: Fake) -> None:
    assert fake.run("pr", "staging").returncode == 0
    assert fake.calls() == [
        "validate --topology topology --env staging",
        "plan --topology topology --env staging --markdown --detailed-exitcode "
        "-out plans/staging.plan",
    ]
    assert fake.outputs()["markdown_path"] == "plans/staging.md"
    assert fake.run("apply", "staging").returncode == 0
    assert fake.calls() == ["apply --env staging --lock-timeout 2m plans/staging.plan"]
    assert fake.run("drift", "staging").returncode == 0
    assert fake.calls() == ["plan --topology topology --env staging --markdown --detailed-exitcode"]


@pytest.mark.parametrize(("code", "has_changes"), [(0, "false"), (2, "true")])
def test_pr_tells_whether_the_plan_changes_something(
    fake: Fake, code: int, has_changes: str
) -> None:
    proc = fake.run("pr", "", FAKE_PLAN_RC=str(code))
    assert proc.returncode == 0, proc.stderr
    assert fake.outputs() == {
        "plan_path": "plans/default.plan",
        "markdown_path": "plans/default.md",
        "has_changes": has_changes,
    }
    comment = (fake.root / "plans" / "default.md").read_text()
    assert comment == "**jelmore-infra plan for `default`**\n\n### Plan: 1 to add\n"


def test_pr_links_the_workflow_run_in_the_comment(fake: Fake) -> None:
    env = {
        "GITHUB_RUN_ID": "42",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_SERVER_URL": "https://gh.example",
    }
    assert fake.run("pr", "", **env).returncode == 0
    comment = (fake.root / "plans" / "default.md").read_text()
    assert comment.endswith(
        "<sub>From [workflow run 42](https://gh.example/o/r/actions/runs/42).</sub>\n"
    )


def test_a_plan_that_fails_before_printing_fails_the_step_and_the_comment_says_why(
    fake: Fake,
) -> None:
    proc = fake.run(
        "pr",
        "prod",
        FAKE_PLAN_RC="1",
        FAKE_PLAN_STDOUT="",
        FAKE_PLAN_STDERR="Error: cannot connect to <server> `x`",
    )
    assert proc.returncode == 1
    assert "Error: cannot connect" in proc.stderr
    assert fake.outputs()["has_changes"] == "error"
    comment = (fake.root / "plans" / "prod.md").read_text()
    assert "### ❌ jelmore-infra could not plan `prod`" in comment
    # indented: the error text can neither open HTML nor end a code block
    assert "\n    Error: cannot connect to <server> `x`\n" in comment


def test_a_plan_with_errors_posts_the_plan_and_fails_the_step(fake: Fake) -> None:
    proc = fake.run("pr", "", FAKE_PLAN_RC="1", FAKE_PLAN_STDOUT="### ❌ cannot be applied\n")
    assert proc.returncode == 1
    assert fake.outputs()["has_changes"] == "error"
    assert "### ❌ cannot be applied" in (fake.root / "plans" / "default.md").read_text()


def test_a_topology_that_does_not_validate_is_not_planned(fake: Fake) -> None:
    proc = fake.run("pr", "", FAKE_VALIDATE_RC="1")
    assert proc.returncode == 1
    assert fake.calls() == ["validate --topology topology"]
    assert "could not validate `default`" in (fake.root / "plans" / "default.md").read_text()


@pytest.mark.parametrize("env", ["../prod", "a/b", "-x", "prod env"])
def test_an_environment_that_is_not_a_plain_word_is_refused_before_anything_runs(
    fake: Fake, env: str
) -> None:
    proc = fake.run("pr", env)
    assert proc.returncode == 1
    assert "is not an environment name" in proc.stderr
    assert fake.calls() == []


def test_validate_checks_every_environment_when_there_are_some(fake: Fake) -> None:
    assert fake.run("validate").returncode == 0
    assert fake.calls() == ["validate --topology topology"]
    (fake.root / "topology" / "environments").mkdir()
    (fake.root / "topology" / "environments" / "prod.yaml").write_text("{}\n")
    assert fake.run("validate").returncode == 0
    assert fake.calls() == ["validate --topology topology --all-envs"]
    assert fake.run("validate", "prod").returncode == 0
    assert fake.calls() == ["validate --topology topology --env prod"]


def test_apply_passes_the_gates_only_when_asked(fake: Fake) -> None:
    (fake.root / "plans").mkdir()
    (fake.root / "plans" / "default.plan").write_text("{}\n")
    assert fake.run("apply", "").returncode == 0
    assert fake.calls() == ["apply --lock-timeout 2m plans/default.plan"]
    env = {"ALLOW_DESTROY": "true", "ALLOW_DATA_LOSS": "true", "LOCK_TIMEOUT": "5m"}
    assert fake.run("apply", "", **env).returncode == 0
    assert fake.calls() == [
        "apply --allow-destroy --allow-data-loss --lock-timeout 5m plans/default.plan"
    ]


def test_apply_without_a_saved_plan_fails_clearly(fake: Fake) -> None:
    proc = fake.run("apply", "prod")
    assert proc.returncode == 1
    assert "no saved plan plans/prod.plan" in proc.stderr
    assert fake.calls() == []


def test_apply_fails_when_the_tool_refuses_the_plan(fake: Fake) -> None:
    (fake.root / "plans").mkdir()
    (fake.root / "plans" / "default.plan").write_text("{}\n")
    assert fake.run("apply", "", FAKE_RC="1").returncode == 1


def test_credentials_go_to_a_private_file_and_are_never_printed(fake: Fake) -> None:
    secret = "-----BEGIN NATS USER JWT-----\neyJ0eXAi.secret\n------END NATS USER JWT------"
    runner_temp = fake.root / "runner-temp"
    runner_temp.mkdir()
    proc = fake.run("creds", NATS_CREDS_CONTENT=secret, RUNNER_TEMP=str(runner_temp))
    assert proc.returncode == 0, proc.stderr
    assert "secret" not in proc.stdout + proc.stderr
    exported = dict(line.split("=", 1) for line in fake.env_file.read_text().splitlines())
    creds = Path(exported["NATS_CREDS"])
    assert creds.parent == runner_temp
    assert creds.read_text() == secret + "\n"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert "NATS_NKEY" not in exported  # no NATS_NKEY_CONTENT, no file

    assert fake.run("pr", "", NATS_CREDS=str(creds)).returncode == 0
    validate, plan = fake.calls()
    assert "--creds" not in validate  # offline
    assert f"--creds {creds}" in plan


def test_drift_writes_the_issue_body_and_exits_2(fake: Fake) -> None:
    proc = fake.run("drift", "", FAKE_PLAN_RC="2", FAKE_PLAN_STDOUT="### Plan: 1 to change\n")
    assert proc.returncode == 2
    outputs = fake.outputs()
    assert outputs["drifted"] == "true" and outputs["issue_title"] == "Topology drift: default"
    body = (fake.root / outputs["drift_path"]).read_text()
    assert body.startswith("### Topology drift in `default`\n")
    assert body.endswith("### Plan: 1 to change\n")
    clean = fake.run("drift", "")
    assert clean.returncode == 0
    assert fake.outputs()["drifted"] == "false"
    assert not (fake.root / outputs["drift_path"]).exists()  # the old body went away
    assert fake.run("drift", "", FAKE_PLAN_RC="1").returncode == 1
    assert fake.outputs()["drifted"] == "error"


def test_the_drift_issue_is_found_by_its_title_and_closed_by_number(fake: Fake) -> None:
    assert fake.run("issue", "prod").returncode == 0
    assert fake.outputs() == {"issue_title": "Topology drift: prod", "issue_number": "7"}
    assert 'select(.title == "Topology drift: prod")' in fake.calls()[0]
    assert fake.run("close-issue", "prod", "7").returncode == 0
    assert fake.calls()[0].startswith("gh issue close 7 --comment No drift in `prod`")
    assert fake.run("close-issue", "prod", "7; rm -rf /").returncode == 1


def test_the_script_explains_itself_and_refuses_unknown_commands(fake: Fake) -> None:
    shown = fake.run("--help")
    assert shown.returncode == 0 and "pr ENV" in shown.stdout
    unknown = fake.run("deploy", "prod")
    assert unknown.returncode == 1 and "unknown command 'deploy'" in unknown.stderr
