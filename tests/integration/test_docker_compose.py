"""``docker-compose.yml`` starts a JetStream server with the documented limits (issue 16).

Docker is not needed: the test reads docker-compose.yml, takes exactly the ``nats`` service's
command and the configuration file the service mounts (its container path mapped back to the
repository file through the service's ``volumes``), and runs that with the real ``nats-server``
binary, the newest version in the harness's cache.

Rewritten, because a test machine is shared and a container is not: ``--store_dir`` points at a
temporary directory and ``--http_port`` at a free port, and ``--port``/``--addr`` are added so the
client port (4222 by default in the container) is a free loopback port. Every other argument and
the configuration file are used as they are.

The server must then report, on its monitoring endpoint ``/jsz``, JetStream enabled with
max_memory 1GB and max_storage 10GB, which a nats-server configuration file counts in powers of
1024 (1GB = 1,073,741,824 bytes).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.natsserver import SUPPORTED_VERSIONS, binary_for, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
GIB = 1024**3


def newest_binary() -> str:
    newest = max(SUPPORTED_VERSIONS, key=lambda v: tuple(int(p) for p in v.split(".")))
    return binary_for(newest)


def compose_service() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    service: dict[str, Any] = compose["services"]["nats"]
    return service


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def flag_value(args: list[str], *names: str) -> str | None:
    """The value of the first of ``names`` (``--name=value`` or ``--name value``) in ``args``."""
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name.lstrip("-") in names:
            return value if eq else (args[i + 1] if i + 1 < len(args) else None)
    return None


def replace_flag(args: list[str], names: tuple[str, ...], value: str) -> list[str]:
    """``args`` with the value of flag ``names`` (either form) replaced; appended when absent."""
    out: list[str] = []
    found = False
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        name, eq, _ = arg.partition("=")
        if name.startswith("-") and name.lstrip("-") in names:
            found = True
            out.append(f"{name}={value}")
            skip = not eq and i + 1 < len(args)
        else:
            out.append(arg)
    if not found:
        out.append(f"--{names[0]}={value}")
    return out


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a bind mount of ``service`` shows at ``container_path``."""
    for volume in service.get("volumes", []):
        parts = str(volume).split(":")
        source, target = parts[0], parts[1]
        if not source.startswith((".", "/")):
            continue  # a named volume, not a file of the repository
        source_path = (COMPOSE.parent / source).resolve()
        if container_path == target:
            return source_path
        if container_path.startswith(target.rstrip("/") + "/"):
            return source_path / container_path[len(target.rstrip("/")) + 1 :]
    raise AssertionError(f"no bind mount of docker-compose.yml provides {container_path}")


def read_jsz(http_port: int, proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """``/jsz`` once the server answers it (polled with a generous deadline)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nats-server exited with {proc.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/jsz", timeout=2) as resp:
                data: dict[str, Any] = json.load(resp)
                return data
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise AssertionError(f"nats-server did not answer /jsz: {log.read_text()}")


def test_the_compose_command_mounts_an_existing_config_file() -> None:
    service = compose_service()
    args = command_of(service)
    config = flag_value(args, "config", "c")
    assert config is not None, args
    assert host_path(service, config).is_file()


def test_the_compose_service_starts_jetstream_with_1gb_memory_and_10gb_file_storage(
    tmp_path: Path,
) -> None:
    service = compose_service()
    args = command_of(service)
    config = flag_value(args, "config", "c")
    if config is not None:
        args = replace_flag(args, ("config", "c"), str(host_path(service, config)))
    args = replace_flag(args, ("store_dir", "sd"), str(tmp_path / "data"))
    http_port = free_port()
    args = replace_flag(args, ("http_port", "m"), str(http_port))
    args = replace_flag(args, ("port", "p"), str(free_port()))
    args = replace_flag(args, ("addr", "a", "net"), "127.0.0.1")
    log = tmp_path / "nats-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [newest_binary(), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        jsz = read_jsz(http_port, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    assert not jsz.get("disabled"), jsz
    assert jsz["config"]["max_memory"] == 1 * GIB == 1_073_741_824
    assert jsz["config"]["max_storage"] == 10 * GIB == 10_737_418_240
    assert jsz["config"]["store_dir"].startswith(str(tmp_path / "data"))


@pytest.mark.parametrize(
    ("args", "names", "expected"),
    [
        (["--a=1", "--b=2"], ("b",), ["--a=1", "--b=9"]),
        (["--a", "1", "-b", "2"], ("b",), ["--a", "1", "-b=9"]),
        (["--a=1"], ("b",), ["--a=1", "--b=9"]),
    ],
)
def test_replace_flag_rewrites_either_form_or_appends(
    args: list[str], names: tuple[str, ...], expected: list[str]
) -> None:
    assert replace_flag(args, names, "9") == expected
