"""Find live nats-server processes through ``/proc`` (no psutil), to prove none is left behind.

Other test runs may share the machine, so callers always narrow the search with a marker that
only their processes have on the command line (a store dir, a temporary directory).
"""

from __future__ import annotations

import time
from pathlib import Path


def nats_server_pids(marker: str) -> list[int]:
    """Live (not zombie) nats-server processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0]
        if "nats-server" in cmdline and marker in cmdline and state != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_until_gone(marker: str, guard: float = 30.0) -> list[int]:
    """Poll until no nats-server with ``marker`` runs, or ``guard`` seconds pass; the survivors.

    The guard only stops a hang; callers assert on the survivors, never on the time taken.
    """
    deadline = time.monotonic() + guard
    while (left := nats_server_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
