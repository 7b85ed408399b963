"""Least-privilege NATS permissions for each role, derived from a topology.

A role is a kind of client that uses the topology; :func:`derive_roles` lists them all with the
exact subjects each may publish and subscribe to (every NATS permission is a publish or a
subscribe: a JetStream API call is a publish to its ``$JS.API`` subject, its answer arrives on the
caller's inbox):

* ``publisher`` (every event type) and ``publisher:<event type>``: publish events and receive
  their acknowledgements, plus the reads the runtime makes before publishing (the event
  catalogue, and the duplicate window of the stream behind the subject);
* ``worker:<group>`` for each consumer group: fetch from, acknowledge on and read the info of its
  own durable, and publish to its own dead-letter subject, nothing of any other group;
* ``router`` (when the topology has a consumer on a stream capturing max-deliveries advisories):
  the dead-letter router, which alone reads every group's policy and writes every group's
  dead-letter subject (``jelmore-infra events dlq route``);
* ``planner`` (CI on pull requests): ``plan``, read only: no write, no lock;
* ``applier`` (CI on merge): ``apply`` and ``force-unlock``: the planner's reads, creating,
  updating and deleting the topology's own resources, the apply lock, the event catalogue and
  the audit trail;
* ``operator``: ``events health``, ``events replay`` and ``events dlq list/show/replay``.

The subjects are those the tool and the runtime send (``live/jsapi.py``, ``live/lock.py``,
``runtime/bus.py`` and the modules using them); docs/permissions.md explains each. Rendering to
nats-server configuration, JWT permission JSON and nsc commands is
:mod:`jelmore_infra.render.permissions`.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jelmore_infra.errors import JelmoreError
from jelmore_infra.kinds.shape import BucketKindName, stream_name
from jelmore_infra.migration.steps import temp_name
from jelmore_infra.model import (
    AUDIT_STREAM,
    AUDIT_SUBJECTS,
    CATALOGUE_BUCKET,
    CATALOGUE_STREAM,
    LOCK_BUCKET,
    LOCK_STREAM,
    META_DEAD_LETTER_STREAM,
    META_DEAD_LETTER_SUBJECT,
    REPLACE_MIGRATE,
    BucketSpec,
    ConsumerSpec,
    Topology,
)
from jelmore_infra.subjects import is_valid_subject, subjects_overlap

#: The inbox prefix nats-py (and so jelmore-infra's CLI and runtime) uses unless told otherwise.
DEFAULT_INBOX_PREFIX = "_INBOX"
#: Where the server publishes max-deliveries advisories (``<stream>.<consumer>`` follow).
MAX_DELIVERIES_PREFIX = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."
#: Placeholder in an inbox prefix for the role's name (``_INBOX_{role}``).
ROLE_PLACEHOLDER = "{role}"

PUBLISHER = "publisher"
WORKER = "worker"
ROUTER = "router"
PLANNER = "planner"
APPLIER = "applier"
OPERATOR = "operator"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class RoleError(JelmoreError):
    """A role the topology does not have, or an option the permissions cannot be built with."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One subject of a permission list and why the role needs it."""

    subject: str
    why: str


@dataclass(frozen=True, slots=True)
class Rules:
    """A publish or subscribe permission: subjects allowed, and subjects denied (deny wins)."""

    allow: tuple[Grant, ...] = ()
    deny: tuple[Grant, ...] = ()

    @property
    def allowed(self) -> list[str]:
        return [g.subject for g in self.allow]

    @property
    def denied(self) -> list[str]:
        return [g.subject for g in self.deny]


@dataclass(frozen=True, slots=True)
class Role:
    """A role and its permissions. ``inbox`` is the inbox prefix its clients must connect with
    (the subscribe permission allows ``<inbox>.>`` for the answers to its requests)."""

    name: str
    summary: str
    publish: Rules
    subscribe: Rules
    inbox: str


@dataclass(frozen=True, slots=True)
class PermissionOptions:
    """What the permissions depend on besides the topology.

    ``inbox_prefix`` may contain ``{role}``, replaced by the role's name with every character
    but letters, digits, ``-`` and ``_`` turned into ``_`` (``_INBOX_{role}`` gives
    ``_INBOX_worker_file_watchers``); ``js_domain`` switches the API subjects to
    ``$JS.<domain>.API``.
    """

    js_domain: str | None = None
    inbox_prefix: str = DEFAULT_INBOX_PREFIX
    audit_stream: str = AUDIT_STREAM
    audit_subjects: str = AUDIT_SUBJECTS

    @property
    def api(self) -> str:
        """``$JS.API``, or ``$JS.<domain>.API`` (as ``ConnectionSettings.api_prefix``)."""
        return f"$JS.{self.js_domain}.API" if self.js_domain else "$JS.API"

    def inbox_for(self, role: str) -> str:
        return self.inbox_prefix.replace(ROLE_PLACEHOLDER, _UNSAFE.sub("_", role))


class _Builder:
    """Collects a role's grants in order, each subject once (the first reason is kept)."""

    def __init__(self, options: PermissionOptions, role: str) -> None:
        self.options = options
        self.role = role
        self.inbox = options.inbox_for(role)
        self._pub: dict[str, str] = {}
        self._pub_deny: dict[str, str] = {}
        self._sub: dict[str, str] = {}
        self.sub(f"{self.inbox}.>", "the answers to its requests (its inbox)")

    def api(self, suffix: str, why: str) -> None:
        self._pub.setdefault(f"{self.options.api}.{suffix}", why)

    def api_deny(self, suffix: str, why: str) -> None:
        self._pub_deny.setdefault(f"{self.options.api}.{suffix}", why)

    def pub(self, subject: str, why: str) -> None:
        self._pub.setdefault(subject, why)

    def sub(self, subject: str, why: str) -> None:
        self._sub.setdefault(subject, why)

    def role_of(self, summary: str) -> Role:
        def grants(items: Mapping[str, str]) -> tuple[Grant, ...]:
            return tuple(Grant(s, w) for s, w in items.items())

        return Role(
            self.role,
            summary,
            Rules(grants(self._pub), grants(self._pub_deny)),
            Rules(grants(self._sub)),
            self.inbox,
        )

    # -- grants several roles share ----------------------------------------------------------

    def catalogue_reads(self) -> None:
        """What a runtime reads of the event catalogue: the whole bucket's stream by sequence,
        and a core subscription on its subjects (the notifications of apply's writes)."""
        self.api(f"STREAM.INFO.{CATALOGUE_STREAM}", "find the event catalogue")
        self.api(f"STREAM.MSG.GET.{CATALOGUE_STREAM}", "read the event catalogue")
        self.sub(f"$KV.{CATALOGUE_BUCKET}.>", "hear of catalogue changes")

    def stream_lookup(self) -> None:
        self.api("STREAM.NAMES", "find the stream capturing a subject")

    def planner_reads(self) -> None:
        """Everything ``plan`` reads (the live read of every stream and consumer)."""
        self.api("INFO", "the server's JetStream API level (every command starts with it)")
        self.pub("$SYS.REQ.USER.INFO", "its own account, recorded in plans (optional)")
        self.api("STREAM.NAMES", "stream and bucket names")
        self.api("STREAM.LIST", "stream and bucket configs (the live read)")
        self.api("STREAM.INFO.*", "stream and bucket info, messages per subject")
        self.api("CONSUMER.NAMES.*", "consumer names")
        self.api("CONSUMER.LIST.*", "consumer configs (the live read)")
        self.api("CONSUMER.INFO.*.*", "consumer info")
        self.api(f"STREAM.MSG.GET.{CATALOGUE_STREAM}", "the event catalogue's entries")


@dataclass(frozen=True, slots=True)
class _Group:
    """A consumer group as the roles see it."""

    stream: str
    name: str
    dead_letter_subject: str | None
    dead_letter_streams: tuple[str, ...]


def _groups(topology: Topology) -> tuple[list[_Group], list[ConsumerSpec]]:
    """The worker groups and the router consumers (consumers on advisory streams)."""
    advisory = _advisory_streams(topology)
    groups: list[_Group] = []
    routers: list[ConsumerSpec] = []
    for (stream, name), spec in sorted(topology.consumers.items()):
        if stream in advisory:
            routers.append(spec)
            continue
        meta = spec.config.get("metadata") or {}
        subject = meta.get(META_DEAD_LETTER_SUBJECT) or None
        streams: tuple[str, ...] = ()
        if meta.get(META_DEAD_LETTER_STREAM):
            streams = (str(meta[META_DEAD_LETTER_STREAM]),)
        elif subject:
            streams = _streams_capturing(topology, f"{subject}.>")
        groups.append(_Group(stream, name, str(subject) if subject else None, streams))
    return groups, routers


def _advisory_streams(topology: Topology) -> set[str]:
    found: set[str] = set()
    for name, spec in topology.streams.items():
        subjects = spec.config.get("subjects") or []
        if subjects and all(str(s).startswith(MAX_DELIVERIES_PREFIX) for s in subjects):
            found.add(name)
    return found


def _streams_capturing(topology: Topology, subject: str) -> tuple[str, ...]:
    return tuple(
        sorted(
            name
            for name, spec in topology.streams.items()
            if any(subjects_overlap(str(s), subject) for s in spec.config.get("subjects") or [])
        )
    )


def _event_streams(topology: Topology, groups: Sequence[_Group]) -> list[str]:
    """Streams holding events: those capturing an event type's subject, and those read by
    consumer groups."""
    names = {e.stream for e in topology.events.values() if e.stream}
    names.update(g.stream for g in groups)
    return sorted(names)


# -- the roles ----------------------------------------------------------------------------------


def _publisher(topology: Topology, options: PermissionOptions, event_type: str | None) -> Role:
    name = PUBLISHER if event_type is None else f"{PUBLISHER}:{event_type}"
    b = _Builder(options, name)
    events = [topology.events[event_type]] if event_type else list(topology.events.values())
    for event in sorted(events, key=lambda e: e.type):
        b.pub(event.subject, f"publish {event.type} events")
    b.catalogue_reads()
    b.stream_lookup()
    for stream in sorted({e.stream for e in events if e.stream}):
        b.api(f"STREAM.INFO.{stream}", "the stream's duplicate window (safe retries)")
    what = "every event type" if event_type is None else f"{event_type} events only"
    return b.role_of(f"publishes {what} and receives their acknowledgements")


def _worker(options: PermissionOptions, group: _Group) -> Role:
    b = _Builder(options, f"{WORKER}:{group.name}")
    s, c = group.stream, group.name
    b.stream_lookup()
    b.api(f"CONSUMER.INFO.{s}.{c}", "its group's policy (attempts, delays, dead-letter target)")
    b.api(f"CONSUMER.MSG.NEXT.{s}.{c}", "fetch from its durable")
    b.pub(f"$JS.ACK.{s}.{c}.>", "ack, nak, in-progress and term on its durable")
    if group.dead_letter_subject:
        b.pub(f"{group.dead_letter_subject}.>", "dead-letter its failed events")
        for dlq in group.dead_letter_streams:
            b.api(f"STREAM.INFO.{dlq}", "the dead-letter stream's duplicate window")
    b.catalogue_reads()
    return b.role_of(
        f"a worker of consumer group {c} on {s}: fetches and acknowledges on its durable and "
        "dead-letters to its own subject"
    )


def _router(
    options: PermissionOptions, routers: Sequence[ConsumerSpec], groups: Sequence[_Group]
) -> Role:
    b = _Builder(options, ROUTER)
    b.stream_lookup()
    for spec in routers:
        s, c = spec.stream, spec.name
        b.api(f"CONSUMER.INFO.{s}.{c}", "bind to the router's durable")
        b.api(f"CONSUMER.MSG.NEXT.{s}.{c}", "fetch max-deliveries advisories")
        b.pub(f"$JS.ACK.{s}.{c}.>", "acknowledge advisories")
    for group in groups:
        if not group.dead_letter_subject:
            continue
        b.api(f"CONSUMER.INFO.{group.stream}.{group.name}", "the group's dead-letter target")
        b.api(f"STREAM.MSG.GET.{group.stream}", "read the event that ran out of attempts")
        b.pub(f"{group.dead_letter_subject}.>", f"dead-letter events of {group.name}")
        for dlq in group.dead_letter_streams:
            b.api(f"STREAM.INFO.{dlq}", "the dead-letter stream's duplicate window")
    return b.role_of(
        "the dead-letter router (`jelmore-infra events dlq route`): moves events whose worker "
        "died on the last attempt to their group's dead-letter subject"
    )


def _planner(options: PermissionOptions) -> Role:
    b = _Builder(options, PLANNER)
    b.planner_reads()
    return b.role_of("CI on pull requests: `plan` (read only: no writes, no lock)")


def _applier(topology: Topology, options: PermissionOptions) -> Role:
    b = _Builder(options, APPLIER)
    b.planner_reads()
    # the apply lock (live/lock.py): a KV bucket of its own
    b.api(f"STREAM.CREATE.{LOCK_STREAM}", "create the apply lock bucket")
    b.api(f"STREAM.UPDATE.{LOCK_STREAM}", "set the apply lock's lease time")
    b.api(f"STREAM.MSG.GET.{LOCK_STREAM}", "read who holds the apply lock")
    b.api(f"STREAM.PURGE.{LOCK_STREAM}", "release the apply lock (force-unlock)")
    b.pub(f"$KV.{LOCK_BUCKET}.apply", "take and renew the apply lock")
    # the event catalogue (kinds/event.py)
    b.api(f"STREAM.CREATE.{CATALOGUE_STREAM}", "create the event catalogue")
    b.pub(f"$KV.{CATALOGUE_BUCKET}.>", "write and remove event types in the catalogue")
    # the audit trail
    b.api(f"STREAM.CREATE.{options.audit_stream}", "create the audit stream")
    b.pub(options.audit_subjects, "append audit records")
    # the topology's own streams and buckets, and their migration copies
    streams: list[tuple[str, bool]] = [
        (name, spec.replace_strategy == REPLACE_MIGRATE)
        for name, spec in sorted(topology.streams.items())
    ]
    bucket_kinds: tuple[tuple[BucketKindName, Mapping[str, BucketSpec]], ...] = (
        ("kv", topology.kv_buckets),
        ("objectstore", topology.object_stores),
    )
    for kind, buckets in bucket_kinds:
        for bucket, spec in sorted(buckets.items()):
            streams.append((stream_name(kind, bucket), spec.replace_strategy == REPLACE_MIGRATE))
    for name, migrates in streams:
        names = [name, temp_name(name)] if migrates else [name]
        for target in names:
            what = "the migration copy of " + name if target != name else name
            for action in ("CREATE", "UPDATE", "DELETE"):
                b.api(f"STREAM.{action}.{target}", f"{action.lower()} {what}")
        b.api(f"CONSUMER.DELETE.{name}.*", f"delete consumers of {name} no longer declared")
        if migrates:
            for target in names:
                b.api(f"STREAM.MSG.GET.{target}", f"verify the copies of {name}'s messages")
                b.api(f"CONSUMER.CREATE.{target}", f"count pending messages of {target}")
                b.api(f"CONSUMER.DELETE.{target}.*", f"remove the counting consumer of {target}")
            b.api(f"CONSUMER.CREATE.{name}.*", f"re-create the consumers of {name} after it")
    for (stream, consumer), _spec in sorted(topology.consumers.items()):
        b.api(f"CONSUMER.CREATE.{stream}.{consumer}", f"create and update consumer {consumer}")
    return b.role_of(
        "CI on merge: `apply` and `force-unlock` (the planner's reads, writes of the topology's "
        "own resources, the apply lock, the event catalogue and the audit trail)"
    )


def _operator(
    topology: Topology,
    options: PermissionOptions,
    groups: Sequence[_Group],
    routers: Sequence[ConsumerSpec],
) -> Role:
    b = _Builder(options, OPERATOR)
    b.stream_lookup()
    events = _event_streams(topology, groups)
    dlqs = sorted({d for g in groups for d in g.dead_letter_streams})
    for stream in events:
        durables = sorted(c for (s, c) in topology.consumers if s == stream)
        b.api(f"STREAM.INFO.{stream}", "stream health; the end of a replay")
        b.api(f"CONSUMER.LIST.{stream}", "consumer lag per group")
        b.api(f"CONSUMER.INFO.{stream}.*", "consumer lag; a replay's progress")
        b.api(f"CONSUMER.CREATE.{stream}.*", "create its own replay consumer")
        b.api(f"CONSUMER.MSG.NEXT.{stream}.*", "read a replay")
        b.api(f"CONSUMER.DELETE.{stream}.*", "remove its replay consumer")
        for durable in durables:
            why = f"never create, read from or delete the durable {durable}"
            for action in ("CREATE", "MSG.NEXT", "DELETE"):
                b.api_deny(f"CONSUMER.{action}.{stream}.{durable}", why)
    for dlq in dlqs:
        b.api(f"STREAM.INFO.{dlq}", "dead-letter queue size")
        b.api(f"STREAM.MSG.GET.{dlq}", "dlq list and dlq show")
        b.api(f"STREAM.MSG.DELETE.{dlq}", "dlq replay removes what it re-published")
    for spec in routers:
        b.api(f"STREAM.INFO.{spec.stream}", "the dead-letter safety net")
        b.api(f"CONSUMER.INFO.{spec.stream}.{spec.name}", "whether the router's durable exists")
    for event in sorted(topology.events.values(), key=lambda e: e.type):
        b.pub(event.subject, "dlq replay re-publishes dead-lettered events")
    b.catalogue_reads()
    b.api("INFO", "`history` connects like the provisioner (the JetStream API level)")
    b.api(f"STREAM.INFO.{options.audit_stream}", "`history`: the audit trail's extent")
    b.api(f"STREAM.MSG.GET.{options.audit_stream}", "`history`: the audit records")
    return b.role_of(
        "`events health`, `events replay`, `events dlq list/show/replay` and `history`"
    )


def derive_roles(topology: Topology, options: PermissionOptions | None = None) -> list[Role]:
    """Every role of ``topology``, in a fixed order (see the module docstring)."""
    opts = options or PermissionOptions()
    check_options(opts)
    groups, routers = _groups(topology)
    roles: list[Role] = []
    if topology.events:
        roles.append(_publisher(topology, opts, None))
        roles.extend(_publisher(topology, opts, t) for t in sorted(topology.events))
    roles.extend(_worker(opts, g) for g in groups)
    if routers:
        roles.append(_router(opts, routers, groups))
    roles.append(_planner(opts))
    roles.append(_applier(topology, opts))
    roles.append(_operator(topology, opts, groups, routers))
    return roles


def select_role(roles: Iterable[Role], name: str) -> Role:
    """The role called ``name``; ``RoleError`` (one line naming the roles there are) if none."""
    found = list(roles)
    for role in found:
        if role.name == name:
            return role
    known = ", ".join(r.name for r in found)
    raise RoleError(f"role {name!r} is not in the topology (its roles: {known})")


def check_options(options: PermissionOptions) -> None:
    """``RoleError`` for an inbox prefix, domain or audit setting that is not a usable subject."""
    sample = options.inbox_for("x")
    if not is_valid_subject(sample, wildcards=False):
        raise RoleError(f"inbox prefix {options.inbox_prefix!r} is not a subject without wildcards")
    domain = options.js_domain
    if domain is not None and ("." in domain or not is_valid_subject(domain, wildcards=False)):
        raise RoleError(f"JetStream domain {options.js_domain!r} is not a valid subject token")
    if not is_valid_subject(options.audit_subjects):
        raise RoleError(f"audit subjects {options.audit_subjects!r} are not a valid subject")
