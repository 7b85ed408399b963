"""Saved plan files (``plan -out FILE``): exactly the ``plan --json`` document.

The document carries a checksum, so a hand-edited or damaged file is a clear error instead of a
surprise at apply time (see :mod:`jelmore_infra.render.json`). The file holds no secrets: the plan
records the server URL without credentials. This module only adds the file I/O.
"""

from __future__ import annotations

from pathlib import Path

from jelmore_infra.errors import PlanFileError
from jelmore_infra.plan import Plan


def write_plan_file(path: str | Path, plan: Plan) -> None:
    from jelmore_infra.render.json import render_plan_json

    try:
        Path(path).write_text(render_plan_json(plan) + "\n", encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(f"cannot write plan file {path}: {exc.strerror or exc}") from None


def read_plan_file(path: str | Path) -> Plan:
    from jelmore_infra.render.json import load_plan_json

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"{path} is not a jelmore-infra plan file") from None
    try:
        return load_plan_json(text)
    except PlanFileError as exc:
        raise PlanFileError(f"{path}: {exc}") from None
