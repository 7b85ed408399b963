"""Run the real ``jelmore-infra`` command in a subprocess, as users and CI do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = REPO / "topology"
#: The nats CLI's connection variables, which the CLI reads.
CONNECTION_VARIABLES = (
    "NATS_URL",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_TOKEN",
    "NATS_CREDS",
    "NATS_NKEY",
    "NATS_CERT",
    "NATS_KEY",
    "NATS_CA",
    "NATS_TIMEOUT",
    "NATS_CONTEXT",
)


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    for var in CONNECTION_VARIABLES:  # the caller's shell must not pick a server or credentials
        if env is None or var not in env:
            full_env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "jelmore_infra", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input if input is not None else "",
        cwd=cwd or REPO,
        timeout=timeout,
    )


def copy_topology(dest: Path) -> Path:
    """A private copy of the repository's topology/ to edit in a test."""
    target = dest / "topology"
    shutil.copytree(TOPOLOGY, target)
    return target


def assert_clean_error(proc: subprocess.CompletedProcess[str]) -> None:
    """Exit 1 with an ``Error:`` line and no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "Error:" in proc.stderr


def apply_until_killed(url: str, topology: Path, address: str, step: str) -> list[str]:
    """Run ``apply --auto-approve`` and SIGKILL it as its progress shows ``ADDRESS: STEP: ...``
    starting; the progress lines seen until then."""
    args = ["apply", "-s", url, "--topology", str(topology), "--auto-approve"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jelmore_infra", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
    )
    seen: list[str] = []
    marker = f"{address}: {step}: "
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line.rstrip("\n"))
            if line.startswith(marker) and line.rstrip().endswith("..."):
                break
        else:
            raise AssertionError(f"apply ended before {step}: {seen}")
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
    return seen
