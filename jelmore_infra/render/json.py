"""The plan as a versioned JSON document (`plan --json`, saved plans), and reading it back.

A message with a data-impact record carries it as ``impact`` (``{"type": …, …}``) next to its
``message`` text (:func:`jelmore_infra.render.impact.impact_text` of the record).

The document is :meth:`Plan.to_dict() <jelmore_infra.plan.Plan.to_dict>` with three keys added
for CI consumers and for safe saved plans (``Plan.from_dict`` ignores them):

- ``applyable``: ``true`` when the plan has no errors;
- ``has_changes``: ``true`` when apply would change anything;
- ``checksum``: ``"sha256:…"`` over the canonical JSON of every other key, so a saved plan that
  was edited by hand (or damaged) is refused by :func:`load_plan_json` instead of applied.

:func:`load_plan_json` checks the tool name, the format version, the checksum and the shape of
every part, and raises :class:`~jelmore_infra.errors.PlanFileError` with a one-line message.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, get_args

from jelmore_infra.errors import PlanFileError
from jelmore_infra.plan import (
    FORMAT_VERSION,
    Action,
    Kind,
    MessageKind,
    Plan,
)

TOOL = "jelmore-infra"
CHECKSUM_KEY = "checksum"
_MESSAGE_KINDS = frozenset(get_args(MessageKind))
_SERVER_REQUIRED = {"server_name": str, "server_id": str, "version": str, "api_level": int}
_SUMMARY_KEYS = ("add", "change", "replace", "destroy")


def plan_document(plan: Plan) -> dict[str, Any]:
    """``plan.to_dict()`` plus ``applyable``, ``has_changes`` and ``checksum``."""
    base = plan.to_dict()
    doc: dict[str, Any] = {}
    for key, value in base.items():
        doc[key] = value
        if key == "summary":
            doc["applyable"] = not plan.errors
            doc["has_changes"] = plan.has_changes
    doc[CHECKSUM_KEY] = document_checksum(doc)
    return doc


def document_checksum(doc: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``doc`` without its ``checksum`` key.

    The canonical JSON is ``json.dumps(body, sort_keys=True, separators=(",", ":"),
    ensure_ascii=True)``, hashed as :func:`canonical_pieces` writes it.
    """
    body = {k: v for k, v in doc.items() if k != CHECKSUM_KEY}
    digest = hashlib.sha256()
    for piece in canonical_pieces(body):
        digest.update(piece.encode("ascii"))
    return "sha256:" + digest.hexdigest()


def canonical_pieces(value: Any, depth: int = 2) -> Iterator[str]:
    """The canonical JSON text of ``value`` in pieces that join to exactly the one-call text.

    The members of dicts and lists down to ``depth`` levels are written one by one, so no
    single call holds the interpreter for the whole document: the audit record's checksum of a
    plan of 5,000 changes (3 MB of JSON) is computed in a thread while apply's steps run
    (:class:`jelmore_infra.workflow.ChecksumAhead`), and one ``json.dumps`` of it kept the event
    loop waiting for tens of milliseconds. A dict with a key that is not a string is written
    whole (``json.dumps`` orders such keys its own way).
    """
    if depth and isinstance(value, dict) and all(type(key) is str for key in value):
        yield "{"
        comma = ""
        for key in sorted(value):
            yield comma + _canonical(key) + ":"
            yield from canonical_pieces(value[key], depth - 1)
            comma = ","
        yield "}"
    elif depth and isinstance(value, list | tuple):
        yield "["
        comma = ""
        for item in value:
            yield comma
            yield from canonical_pieces(item, depth - 1)
            comma = ","
        yield "]"
    else:
        yield _canonical(value)


_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode


def render_plan_json(plan: Plan) -> str:
    """The plan document as indented JSON text (no trailing newline)."""
    return json.dumps(plan_document(plan), indent=2, sort_keys=False)


def load_plan_json(text: str) -> Plan:
    """Read a plan document back, refusing anything corrupt, foreign, too new or hand-edited."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"plan file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(doc, dict):
        raise PlanFileError("plan file is not a jelmore-infra plan: expected a JSON object")
    if doc.get("tool") != TOOL:
        raise PlanFileError('plan file is not a jelmore-infra plan (no "tool": "jelmore-infra")')
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PlanFileError("plan file has no valid format_version")
    if version > FORMAT_VERSION:
        raise PlanFileError(
            f"plan file format version {version} is newer than this jelmore-infra understands "
            f"({FORMAT_VERSION}); use a newer jelmore-infra or plan again"
        )
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"plan file format version {version} is not supported (expected {FORMAT_VERSION}); "
            "plan again"
        )
    checksum = doc.get(CHECKSUM_KEY)
    if not isinstance(checksum, str):
        raise PlanFileError("plan file has no checksum; save plans with `jelmore-infra plan -out`")
    if checksum != document_checksum(doc):
        raise PlanFileError(
            "plan file was modified after it was saved (checksum mismatch); plan again"
        )
    _check_shape(doc)
    try:
        plan = Plan.from_dict(doc)
    except (KeyError, TypeError, ValueError) as exc:  # e.g. an impact record of unknown type
        raise PlanFileError(f"plan file is malformed: {exc}") from None
    from jelmore_infra.render.impact import impact_text

    for m in plan.messages:
        if m.impact is not None and impact_text(m.impact) != m.message:
            raise PlanFileError(
                "plan file is inconsistent: a message does not match its impact record"
            )
    summary = plan.summary()
    counted = {
        "add": summary.add,
        "change": summary.change,
        "replace": summary.replace,
        "destroy": summary.destroy,
        "migrate": summary.migrate,
    }
    if counted != {"migrate": 0, **doc["summary"]}:  # "migrate" only when there are some
        raise PlanFileError("plan file is inconsistent: its summary does not match its changes")
    if (
        doc.get("applyable", not plan.errors) != (not plan.errors)
        or doc.get("has_changes", plan.has_changes) != plan.has_changes
    ):
        raise PlanFileError("plan file is inconsistent: applyable/has_changes do not match")
    return plan


def _fail(where: str, what: str) -> PlanFileError:
    return PlanFileError(f"plan file is malformed: {where} {what}")


def _require(
    obj: Mapping[str, Any], key: str, types: Any, where: str, *, optional: bool = False
) -> Any:
    if key not in obj:
        if optional:
            return None
        raise _fail(where, f"has no {key!r}")
    value = obj[key]
    if value is None and optional:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and types is int):
        raise _fail(where, f"has an invalid {key!r}")
    return value


def _check_shape(doc: Mapping[str, Any]) -> None:
    server = _require(doc, "server", dict, "the document")
    for key, typ in _SERVER_REQUIRED.items():
        _require(server, key, typ, "server")
    for key in ("cluster", "domain", "account", "url"):
        _require(server, key, str, "server", optional=True)
    _require(doc, "environment", str, "the document", optional=True)
    summary = _require(doc, "summary", dict, "the document")
    for key in _SUMMARY_KEYS:
        _require(summary, key, int, "summary")
    for section, severity in (("errors", "error"), ("warnings", "warning")):
        for i, m in enumerate(_require(doc, section, list, "the document")):
            where = f"{section}[{i}]"
            if not isinstance(m, dict):
                raise _fail(where, "is not an object")
            if m.get("severity") != severity:
                raise _fail(where, f"does not have severity {severity!r}")
            if m.get("kind") not in _MESSAGE_KINDS:
                raise _fail(where, "has an unknown kind")
            _require(m, "message", str, where)
            _require(m, "address", str, where, optional=True)
            _require(m, "field", str, where, optional=True)
            _require(m, "data", dict, where, optional=True)
            _require(m, "impact", dict, where, optional=True)
    seen: set[str] = set()
    for i, c in enumerate(_require(doc, "changes", list, "the document")):
        _check_change(c, f"changes[{i}]", seen)
    for key in ("unmanaged", "targets"):
        items = _require(doc, key, list, "the document")
        if not all(isinstance(a, str) for a in items):
            raise _fail(key, "must list addresses")
    fingerprints = _require(doc, "fingerprints", dict, "the document")
    if not all(v is None or isinstance(v, str) for v in fingerprints.values()):
        raise _fail("fingerprints", "must map addresses to strings or null")


def _check_change(c: Any, where: str, seen: set[str]) -> None:
    if not isinstance(c, dict):
        raise _fail(where, "is not an object")
    address = _require(c, "address", str, where)
    kind = _require(c, "kind", str, where)
    stream = _require(c, "stream", str, where)
    name = _require(c, "name", str, where)
    action = _require(c, "action", str, where)
    if kind not in {k.value for k in Kind}:
        raise _fail(where, f"has an unknown kind {kind!r}")
    if action not in {a.value for a in Action}:
        raise _fail(where, f"has an unknown action {action!r}")
    from jelmore_infra.kinds import kind_for

    expected = str(kind_for(Kind(kind)).address_for(stream, name))
    if address != expected:
        raise _fail(where, f"has address {address!r} but names {expected!r}")
    if address in seen:
        raise _fail(where, f"repeats {address!r}")
    seen.add(address)
    before = _require(c, "before", dict, where, optional=True)
    after = _require(c, "after", dict, where, optional=True)
    act = Action(action)
    if act is Action.CREATE and (before is not None or after is None):
        raise _fail(where, "is a create but does not have only an 'after' config")
    if act is Action.DELETE and (after is not None or before is None):
        raise _fail(where, "is a delete but does not have only a 'before' config")
    if act in (Action.UPDATE, Action.REPLACE) and (before is None or after is None):
        raise _fail(where, f"is an {act.value} without both 'before' and 'after' configs")
    migration = _require(c, "migration", dict, where, optional=True)
    if act is Action.MIGRATE and (after is None or migration is None):
        raise _fail(where, "is a migrate without an 'after' config and a 'migration' object")
    if act is not Action.MIGRATE and migration is not None:
        raise _fail(where, "has a 'migration' object but is not a migrate")
    fields = _require(c, "fields", list, where)
    for j, f in enumerate(fields):
        fwhere = f"{where}.fields[{j}]"
        if not isinstance(f, dict):
            raise _fail(fwhere, "is not an object")
        _require(f, "path", str, fwhere)
        _require(f, "forces_replace", bool, fwhere)
        _require(f, "reason", str, fwhere, optional=True)
    _require(c, "fingerprint", str, where, optional=True)
    reasons = _require(c, "replace_reasons", list, where)
    derived = [
        f.get("reason") or f"{f['path']} cannot be changed in place"
        for f in fields
        if f.get("forces_replace")
    ]
    if reasons != derived:
        raise _fail(where, "has replace_reasons that do not match its fields")


__all__ = [
    "canonical_pieces",
    "document_checksum",
    "load_plan_json",
    "plan_document",
    "render_plan_json",
]
