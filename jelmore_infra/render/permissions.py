"""The roles' permissions (:mod:`jelmore_infra.permissions`) in the three forms NATS takes them:

* ``server-config``: one nats-server configuration variable per role (``PLANNER = { publish:
  {...}, subscribe: {...} }``), for the ``permissions: $PLANNER`` of users in an
  ``authorization`` or ``accounts`` block; each subject carries a comment saying why;
* ``json``: the permissions of a JWT user claim (``{"pub": {"allow": [...], "deny": [...]},
  "sub": {...}}``), by role, or one role's object alone;
* ``nsc``: the ``nsc add user`` commands creating one user per role with those permissions.

Pure: text in, text out.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from typing import Any

from jelmore_infra.permissions import Role, Rules

FORMATS = ("server-config", "json", "nsc")

_NOT_NAME = re.compile(r"[^A-Za-z0-9]+")


def variable_names(roles: Sequence[Role]) -> dict[str, str]:
    """The configuration variable of each role: ``JELMORE_`` and its name in capitals, with
    ``_`` for any run of other characters (``worker:file_watchers`` →
    ``JELMORE_WORKER_FILE_WATCHERS``; the prefix keeps ``operator`` from being read as the
    server's own ``operator`` setting: keys are not case-sensitive); a name two roles would
    share gets ``_2``, ``_3``… on the later ones."""
    taken: set[str] = set()
    names: dict[str, str] = {}
    for role in roles:
        base = "JELMORE_" + _NOT_NAME.sub("_", role.name).strip("_").upper()
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names[role.name] = name
    return names


def user_name(role: Role) -> str:
    """The nsc user of a role: ``jelmore-`` and the role's name, ``-`` for other characters."""
    return "jelmore-" + re.sub(r"[^A-Za-z0-9_-]+", "-", role.name)


# -- server configuration ------------------------------------------------------------------------


def _quoted(subject: str) -> str:
    # json.dumps gives a double-quoted string the configuration parser reads back as written
    # (quoted, ``$JS...`` stays a literal and is never taken for a variable)
    return json.dumps(subject)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _rules_block(kind: str, rules: Rules) -> list[str]:
    lines = [f"  {kind}: {{"]
    for key, grants in (("allow", rules.allow), ("deny", rules.deny)):
        if not grants:
            continue
        lines.append(f"    {key}: [")
        width = max(len(_quoted(g.subject)) for g in grants) + 1
        for grant in grants:
            item = (_quoted(grant.subject) + ",").ljust(width)
            lines.append(f"      {item}  # {_one_line(grant.why)}")
        lines.append("    ]")
    lines.append("  }")
    return lines


def render_server_config(roles: Sequence[Role], *, source: str = "") -> str:
    """nats-server configuration: one variable per role, to be referenced by users."""
    names = variable_names(roles)
    first = names[roles[0].name] if roles else "JELMORE_PLANNER"
    head = [
        f"# Least-privilege permissions of the roles of {source or 'the topology'}, "
        "written by `jelmore-infra permissions`.",
        "# Define these variables before the users that reference them, for example:",
        f"#   authorization {{ users = [ {{ user: ci, password: $CI_PASSWORD, "
        f"permissions: ${first} }} ] }}",
        "# nats-server refuses a variable that nothing references (an unknown field): keep only",
        "# the roles you use (--role, repeatable).",
    ]
    out = head
    for role in roles:
        out.append("")
        out.append(f"# {role.name}: {_one_line(role.summary)}")
        out.append(f"# Its clients connect with the inbox prefix {role.inbox}.")
        out.append(f"{names[role.name]} = {{")
        out.extend(_rules_block("publish", role.publish))
        out.extend(_rules_block("subscribe", role.subscribe))
        out.append("}")
    return "\n".join(out) + "\n"


# -- JWT permission JSON -------------------------------------------------------------------------


def permission_json(role: Role) -> dict[str, Any]:
    """A role's permissions as a JWT user claim holds them (``pub``, ``sub``)."""

    def rules(r: Rules) -> dict[str, list[str]]:
        out = {"allow": r.allowed}
        if r.deny:
            out["deny"] = r.denied
        return out

    return {"pub": rules(role.publish), "sub": rules(role.subscribe)}


def render_json(roles: Sequence[Role], *, single: bool = False) -> str:
    """Every role's permission JSON by role name, or (``single``) the one role's object."""
    if single:
        if len(roles) != 1:
            raise ValueError("single needs exactly one role")
        document: Any = permission_json(roles[0])
    else:
        document = {role.name: permission_json(role) for role in roles}
    return json.dumps(document, indent=2) + "\n"


# -- nsc -----------------------------------------------------------------------------------------


def render_nsc(roles: Sequence[Role], *, source: str = "") -> str:
    """The ``nsc add user`` commands creating one user per role (in nsc's current account,
    which needs JetStream: ``nsc edit account --js-enable 1``)."""
    out = [
        f"# Users with the least-privilege permissions of the roles of {source or 'the topology'},",
        "# written by `jelmore-infra permissions`. They are added to nsc's current account",
        "# (nsc env -a ACCOUNT), which must have JetStream enabled.",
    ]
    for role in roles:
        out.append("")
        out.append(f"# {role.name}: {_one_line(role.summary)}")
        out.append(f"# Its clients connect with the inbox prefix {role.inbox}.")
        parts = [f"nsc add user --name {shlex.quote(user_name(role))}"]
        flags = (
            ("--allow-pub", role.publish.allowed),
            ("--deny-pub", role.publish.denied),
            ("--allow-sub", role.subscribe.allowed),
            ("--deny-sub", role.subscribe.denied),
        )
        for flag, subjects in flags:
            parts.extend(f"  {flag} {shlex.quote(s)}" for s in subjects)
        out.append(" \\\n".join(parts))
    return "\n".join(out) + "\n"


def render(fmt: str, roles: Sequence[Role], *, single: bool = False, source: str = "") -> str:
    """``roles`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "server-config":
        return render_server_config(roles, source=source)
    if fmt == "json":
        return render_json(roles, single=single)
    if fmt == "nsc":
        return render_nsc(roles, source=source)
    raise ValueError(f"unknown format {fmt!r}")
