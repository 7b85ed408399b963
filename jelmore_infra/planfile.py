"""Saved plan files (``plan -out FILE``): the ``plan --json`` document, optionally signed.

The document carries a checksum, so a damaged file is a clear error instead of a surprise at apply
time (see :mod:`jelmore_infra.render.json`). A plain ``sha256:`` checksum can be recomputed by
anyone who edits the file, so it proves nothing about who wrote it. When the environment variable
``JELMORE_PLAN_KEY`` is set (non-empty), ``plan -out`` writes a keyed checksum instead,
``hmac-sha256:<hex>`` (HMAC-SHA256 under that key of the document's plain checksum), and reading a
plan requires a valid one made with the same key: an unsigned plan, a plan signed with another
key, and an edited plan are all refused. A signed plan read without the key is refused too. The
key itself is never written or printed.

The file holds no secrets: the plan records the server URL without credentials. Apply still
re-checks a plan against the live server (:func:`jelmore_infra.apply.recheck_saved_plan`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from jelmore_infra.errors import PlanFileError
from jelmore_infra.plan import Plan

KEY_ENV = "JELMORE_PLAN_KEY"
SIGNED_PREFIX = "hmac-sha256:"


def plan_key() -> bytes | None:
    """The signing key from ``JELMORE_PLAN_KEY`` (None when unset or empty)."""
    value = os.environ.get(KEY_ENV)
    return value.encode("utf-8") if value else None


def sign_document(doc: dict[str, Any], key: bytes) -> str:
    """``hmac-sha256:<hex>`` of the document's plain checksum under ``key``."""
    from jelmore_infra.render.json import document_checksum

    digest = hmac.new(key, document_checksum(doc).encode("ascii"), hashlib.sha256).hexdigest()
    return SIGNED_PREFIX + digest


def write_plan_file(path: str | Path, plan: Plan) -> None:
    from jelmore_infra.render.json import CHECKSUM_KEY, plan_document

    doc = plan_document(plan)
    key = plan_key()
    if key is not None:
        doc[CHECKSUM_KEY] = sign_document(doc, key)
    try:
        Path(path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
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
        return load_plan_json(_verified(text, plan_key()))
    except PlanFileError as exc:
        raise PlanFileError(f"{path}: {exc}") from None


def _verified(text: str, key: bytes | None) -> str:
    """The plan text with a checked signature swapped for the plain checksum it covers.

    Anything that is not a jelmore-infra plan with a string checksum is passed on unchanged, so
    :func:`~jelmore_infra.render.json.load_plan_json` reports what is wrong with it.
    """
    from jelmore_infra.render.json import CHECKSUM_KEY, TOOL, document_checksum

    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if not isinstance(doc, dict) or doc.get("tool") != TOOL:
        return text
    checksum = doc.get(CHECKSUM_KEY)
    if not isinstance(checksum, str):
        return text
    if not checksum.startswith(SIGNED_PREFIX):
        if key is not None:
            raise PlanFileError(
                f"plan is not signed with {KEY_ENV}; save it again with `jelmore-infra plan "
                f"-out` while {KEY_ENV} is set"
            )
        return text
    if key is None:
        raise PlanFileError(
            f"plan is signed: set {KEY_ENV} to the key it was saved with to apply it"
        )
    if not hmac.compare_digest(checksum.encode(), sign_document(doc, key).encode()):
        raise PlanFileError(
            f"plan signature does not match {KEY_ENV}: the file was modified after it was "
            "saved, or signed with another key; plan again"
        )
    doc[CHECKSUM_KEY] = document_checksum(doc)
    return json.dumps(doc)
