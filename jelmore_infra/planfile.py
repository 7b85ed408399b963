"""Saved plan files (``plan -out FILE``): the plan's JSON document plus a checksum.

The checksum makes a hand-edited or truncated file a clear error instead of a surprise at apply
time. The file holds no secrets: the plan records the server URL without credentials.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from jelmore_infra.errors import PlanFileError
from jelmore_infra.plan import FORMAT_VERSION, Plan

KIND = "jelmore-infra-plan"


def _checksum(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def dumps_plan_file(plan: Plan) -> str:
    document = plan.to_dict()
    return json.dumps(
        {"kind": KIND, "checksum": _checksum(document), "plan": document}, indent=2
    )


def loads_plan_file(text: str, *, source: str = "plan file") -> Plan:
    try:
        wrapper = json.loads(text)
    except ValueError as exc:
        raise PlanFileError(f"{source} is not a jelmore-infra plan (invalid JSON: {exc})") from None
    if not isinstance(wrapper, dict) or wrapper.get("kind") != KIND or "plan" not in wrapper:
        raise PlanFileError(f"{source} is not a jelmore-infra plan file")
    document = wrapper["plan"]
    if not isinstance(document, dict) or wrapper.get("checksum") != _checksum(document):
        raise PlanFileError(f"{source} was modified after it was written (checksum mismatch)")
    if document.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(
            f"{source} has plan format {document.get('format_version')!r}; "
            f"this jelmore-infra reads format {FORMAT_VERSION}"
        )
    try:
        return Plan.from_dict(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"{source} is corrupt: {exc}") from None


def write_plan_file(path: str | Path, plan: Plan) -> None:
    try:
        Path(path).write_text(dumps_plan_file(plan) + "\n", encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(f"cannot write plan file {path}: {exc.strerror or exc}") from None


def read_plan_file(path: str | Path) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"{path} is not a jelmore-infra plan file") from None
    return loads_plan_file(text, source=str(path))
