"""Environments: ``topology/environments/<env>.yaml`` overlays the base topology.

An environment file holds the same maps as the base (``streams``, ``consumer_groups``,
``kv_buckets``, ``object_stores``, ``events``) with only the settings that differ, plus two blocks
of its own, ``connection`` (how to reach that environment's server) and ``policy`` (what its plans
must refuse). The overlay is merged into the base *before* validation, node by node, so every
check runs on the merged topology and every problem points at the file and line that caused it:

- maps merge deeply; lists (and scalars) replace;
- ``null`` as a setting's value removes the setting (the server default applies);
- ``NAME: null`` removes a base resource in that environment;
- a resource the base does not have exists only in that environment (and must be complete).

``policy``: ``prevent_destroy`` (addresses whose delete or replace is a plan error),
``forbid_data_loss`` (data-losing changes are plan errors, whatever the flags) and
``min_replicas`` (a stream, consumer group or bucket with fewer replicas is a plan error); the plan
side is :mod:`jelmore_infra.diff.policy`. ``connection`` takes the ``nats`` CLI's names, and a
value may read an environment variable with ``${VAR}``: it is read when a command runs, never
written anywhere (:func:`connection_values`).

Pure: no I/O (the loader reads the files).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from jelmore_infra.address import AddressError
from jelmore_infra.address import parse as parse_address
from jelmore_infra.diagnostics import Diagnostic, Location, printable
from jelmore_infra.model import Policy
from jelmore_infra.topology.nodes import (
    Entry,
    LNode,
    Map,
    RawResource,
    RawTopology,
    Scalar,
    Seq,
    describe,
    did_you_mean,
    is_null,
)

#: Environment names: the file name without ``.yaml`` (also what ``--env`` takes).
ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
#: The folder of environment files, inside the topology directory.
ENV_DIR = "environments"
#: The resource maps an environment may overlay, and the ``RawTopology`` list each one fills.
SECTIONS: dict[str, str] = {
    "streams": "streams",
    "consumer_groups": "groups",
    "kv_buckets": "kv_buckets",
    "object_stores": "object_stores",
    "events": "events",
}
#: ``connection:`` keys (the ``nats`` CLI's names) → ``ConnectionSettings`` fields.
CONNECTION_KEYS: dict[str, str] = {
    "server": "url",
    "user": "user",
    "password": "password",
    "token": "token",
    "creds": "creds",
    "nkey": "nkey",
    "tls_cert": "tls_cert",
    "tls_key": "tls_key",
    "tls_ca": "tls_ca",
    "tls_first": "tls_first",
    "context": "context",
    "js_domain": "js_domain",
    "timeout": "timeout",
}
POLICY_KEYS = ("prevent_destroy", "forbid_data_loss", "min_replicas")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_REPLICAS = 5


@dataclass(slots=True)
class Overlay:
    """What an environment file adds besides its resources: connection and policy."""

    name: str
    #: ``connection:`` as written (``${VAR}`` unexpanded), with where each value is.
    connection: dict[str, tuple[str, Location]] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    #: Addresses of base resources this environment removes (``NAME: null``): a policy may
    #: still name them, and a plan that deletes them is what ``prevent_destroy`` refuses.
    removed: set[str] = field(default_factory=set)


def apply_overlay(
    raw: RawTopology, name: str, root: LNode | None, diags: list[Diagnostic]
) -> Overlay:
    """Merge the environment file's ``root`` node into ``raw`` (see the module docstring); the
    connection and policy it declares. Problems go to ``diags`` at their place."""
    overlay = Overlay(name)
    if root is None or is_null(root):
        return overlay
    if not isinstance(root, Map):
        diags.append(
            Diagnostic(
                "error", f"an environment file must be a map, not {describe(root)}", root.loc
            )
        )
        return overlay
    allowed = (*SECTIONS, "connection", "policy")
    for key, entry in root.entries.items():
        if key in SECTIONS:
            overlay.removed |= _merge_section(raw, key, entry, diags)
        elif key == "connection":
            overlay.connection = _connection(entry, diags)
        elif key == "policy":
            overlay.policy = _policy(entry, diags)
        else:
            diags.append(
                Diagnostic(
                    "error",
                    f"an environment file cannot hold '{key}'{did_you_mean(key, allowed)}; it "
                    "holds " + ", ".join(f"'{k}:'" for k in allowed),
                    entry.key_loc,
                )
            )
    return overlay


#: The address keyword of each section's resources (consumer groups are handled apart).
_KEYWORDS = {
    "streams": "stream",
    "kv_buckets": "kv",
    "object_stores": "objectstore",
    "events": "event",
}


def _removed_address(key: str, resource: RawResource) -> str | None:
    if key != "consumer_groups":
        return f"{_KEYWORDS[key]}.{resource.name}"
    settings = resource.settings
    stream = settings.entries.get("stream") if isinstance(settings, Map) else None
    value = stream.value.value if stream is not None and isinstance(stream.value, Scalar) else None
    return f"consumer.{value}.{resource.name}" if isinstance(value, str) else None


def _merge_section(raw: RawTopology, key: str, entry: Entry, diags: list[Diagnostic]) -> set[str]:
    """Merge one section into ``raw``; the addresses of the base resources it removes."""
    section = entry.value
    if is_null(section):
        return set()
    if not isinstance(section, Map):
        diags.append(
            Diagnostic("error", f"'{key}' must be a map, not {describe(section)}", section.loc)
        )
        return set()
    target: list[RawResource] = getattr(raw, SECTIONS[key])
    by_name = {r.name: i for i, r in enumerate(target)}
    removed: list[int] = []
    for res_name, item in section.entries.items():
        index = by_name.get(res_name)
        value = item.value
        if isinstance(value, Scalar) and value.value is None and not value.quoted:
            if index is None:
                diags.append(
                    Diagnostic(
                        "error",
                        f"'{res_name}: null' removes a resource, but the base topology has no "
                        f"{key[:-1].replace('_', ' ')} '{res_name}'",
                        item.key_loc,
                    )
                )
            else:
                removed.append(index)
            continue
        if index is None:  # a resource of this environment only
            target.append(RawResource(res_name, item.key_loc, value))
            continue
        base = target[index]
        target[index] = RawResource(base.name, base.name_loc, merge_nodes(base.settings, value))
    gone = {_removed_address(key, target[i]) for i in removed}
    for index in sorted(removed, reverse=True):
        del target[index]
    return {a for a in gone if a is not None}


def merge_nodes(base: LNode, over: LNode) -> LNode:
    """``over`` merged into ``base``: maps deeply (a ``null`` value removes the key), anything
    else replaced by ``over``."""
    if not (isinstance(base, Map) and isinstance(over, Map)):
        return over
    entries = dict(base.entries)
    for key, entry in over.entries.items():
        value = entry.value
        if isinstance(value, Scalar) and value.value is None and not value.quoted:
            entries.pop(key, None)
        elif key in entries:
            merged = merge_nodes(entries[key].value, value)
            entries[key] = Entry(key, merged, entry.file, entry.line, entry.col)
        else:
            entries[key] = entry
    return Map(entries, base.file, base.line, base.col)


def _connection(entry: Entry, diags: list[Diagnostic]) -> dict[str, tuple[str, Location]]:
    node = entry.value
    out: dict[str, tuple[str, Location]] = {}
    if is_null(node):
        return out
    if not isinstance(node, Map):
        diags.append(
            Diagnostic("error", f"'connection' must be a map, not {describe(node)}", node.loc)
        )
        return out
    for key, item in node.entries.items():
        value = item.value
        if key not in CONNECTION_KEYS:
            diags.append(
                Diagnostic(
                    "error",
                    f"unknown connection setting '{key}'{did_you_mean(key, CONNECTION_KEYS)}; "
                    "use the nats CLI's names: " + ", ".join(CONNECTION_KEYS),
                    item.key_loc,
                )
            )
        elif not isinstance(value, Scalar) or value.value is None:
            diags.append(
                Diagnostic("error", f"{key} must be a value, not {describe(value)}", value.loc)
            )
        else:
            text = value.raw if not isinstance(value.value, str) else value.value
            out[key] = (str(text), value.loc)
    return out


def _policy(entry: Entry, diags: list[Diagnostic]) -> Policy:
    node = entry.value
    if is_null(node):
        return Policy()
    if not isinstance(node, Map):
        diags.append(Diagnostic("error", f"'policy' must be a map, not {describe(node)}", node.loc))
        return Policy()
    prevent: dict[str, Location] = {}
    forbid: Location | None = None
    minimum: tuple[int, Location] | None = None
    for key, item in node.entries.items():
        value = item.value
        if key == "prevent_destroy":
            items = value.items if isinstance(value, Seq) else None
            if items is None:
                diags.append(
                    Diagnostic(
                        "error",
                        f"prevent_destroy must be a list of addresses, not {describe(value)}",
                        value.loc,
                    )
                )
                continue
            for one in items:
                text = one.value if isinstance(one, Scalar) else None
                try:
                    if not isinstance(text, str):
                        raise AddressError(f"{describe(one)} is not an address")
                    parse_address(text)
                except AddressError as exc:
                    diags.append(Diagnostic("error", f"prevent_destroy: {exc}", one.loc))
                    continue
                prevent[text] = one.loc
        elif key == "forbid_data_loss":
            if not (isinstance(value, Scalar) and isinstance(value.value, bool)):
                diags.append(
                    Diagnostic(
                        "error",
                        f"forbid_data_loss must be true or false, not {describe(value)}",
                        value.loc,
                    )
                )
            elif value.value:
                forbid = value.loc
        elif key == "min_replicas":
            number = value.value if isinstance(value, Scalar) else None
            if not isinstance(number, int) or isinstance(number, bool):
                diags.append(
                    Diagnostic(
                        "error", f"min_replicas must be a number, not {describe(value)}", value.loc
                    )
                )
            elif not 1 <= number <= _MAX_REPLICAS:
                diags.append(
                    Diagnostic(
                        "error",
                        f"min_replicas must be from 1 to {_MAX_REPLICAS}, not {number}",
                        value.loc,
                    )
                )
            else:
                minimum = (number, value.loc)
        else:
            diags.append(
                Diagnostic(
                    "error",
                    f"unknown policy '{key}'{did_you_mean(key, POLICY_KEYS)}; a policy has "
                    + ", ".join(f"'{k}'" for k in POLICY_KEYS),
                    item.key_loc,
                )
            )
    return Policy(prevent, forbid, minimum)


def check_policy_addresses(policy: Policy, known: set[str]) -> list[Diagnostic]:
    """An error for each ``prevent_destroy`` address the merged topology does not declare."""
    return [
        Diagnostic(
            "error",
            f"prevent_destroy names {printable(address)}, which the topology of this environment "
            "does not declare",
            loc,
        )
        for address, loc in policy.prevent_destroy.items()
        if address not in known
    ]


def connection_values(
    connection: Mapping[str, tuple[str, Location]], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[Diagnostic]]:
    """The ``connection:`` values with ``${VAR}`` read from ``environ``, by ``nats`` CLI name.

    A variable that is not set is an error at its place naming the variable (never a value).
    """
    out: dict[str, str] = {}
    diags: list[Diagnostic] = []
    for key, (text, loc) in connection.items():
        missing = [v for v in _VAR.findall(text) if v not in environ]
        if missing:
            diags.append(
                Diagnostic(
                    "error",
                    f"connection {key} reads ${{{missing[0]}}}, which is not set in the "
                    "environment",
                    loc,
                )
            )
            continue
        out[key] = _VAR.sub(lambda m: environ[m.group(1)], text)
    return out, diags


__all__ = [
    "CONNECTION_KEYS",
    "ENV_DIR",
    "ENV_NAME",
    "Overlay",
    "apply_overlay",
    "check_policy_addresses",
    "connection_values",
    "merge_nodes",
]
