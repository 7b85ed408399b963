"""Pictures of the topology and of a plan: streams → consumer groups → dead-letter streams.

A :class:`Graph` holds nodes keyed by resource address (``stream.JELMORE``,
``consumer.JELMORE.session_handlers``, ``kv.config``, ``objectstore.files``,
``event.session.created``) and labelled edges between them; data flows along every edge:

- a stream → each consumer group reading it (``consumes``);
- a consumer group → the stream its dead letters go to (``dead-letter``, from the group's
  metadata key ``jelmore.dead-letter-stream``);
- a mirrored or sourced stream or KV bucket → the stream or bucket that copies it (``mirror`` /
  ``source``, from the config's ``mirror`` and ``sources``; an origin in another JetStream domain
  or account (``external``) is a node of its own, named with its API prefix);
- an event type → the stream whose subjects capture it (``captures``).

:func:`topology_graph` draws what the topology files declare (a stream, bucket or group they
refer to without declaring it is drawn dashed, marked "not in topology"); :func:`plan_graph`
draws the part of the server a plan touches, from the plan's changes alone: every changed
resource, marked with its action, and its immediate neighbours. :func:`plan_mermaid` fits that
picture into what GitHub's Mermaid draws (:data:`MAX_EDGES`, :data:`MAX_CHARS`).

:func:`render_mermaid` and :func:`render_dot` write a graph as Mermaid flowchart or Graphviz DOT
text. Node ids are generated (``s0``, ``c3``, …: a kind letter and a number), so no name can
break either syntax; labels are escaped for each (Mermaid: every character but letters, digits
and a few safe marks becomes an entity ``#NNN;``; DOT: a double-quoted string with ``&`` as
``&amp;``), after non-printable characters became visible escapes
(:mod:`jelmore_infra.render.controls`).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jelmore_infra.kinds.shape import KV_PREFIX, OBJ_PREFIX
from jelmore_infra.model import META_DEAD_LETTER_STREAM, Topology
from jelmore_infra.plan import Action, Kind, ResourceChange
from jelmore_infra.render.controls import escape_controls

NodeKind = Literal["stream", "consumer", "kv", "objectstore", "event", "external"]
Link = Literal["consumes", "dead-letter", "mirror", "source", "captures"]

#: Output formats of :func:`render`.
FORMATS = ("mermaid", "dot")
#: Mermaid draws no flowchart of more edges than this by default (its ``maxEdges``, which a
#: diagram cannot raise); a plan's picture stays below it.
MERMAID_MAX_EDGES = 500
#: Mermaid draws no diagram longer than this many characters by default (``maxTextSize``).
MERMAID_MAX_TEXT = 50_000
#: The most edges and characters a plan's picture may have: below Mermaid's limits, and small
#: enough to leave most of a pull-request comment for the rest of the plan.
MAX_EDGES = 400
MAX_CHARS = 20_000

#: Mermaid classes of the marked nodes (names, styles), in legend order.
MARK_STYLES: dict[str, str] = {
    "created": "fill:#d1f5d3,stroke:#1a7f37,color:#000",
    "changed": "fill:#fff1c2,stroke:#9a6700,color:#000",
    "replaced": "fill:#ffd8b5,stroke:#bc4c00,color:#000",
    "deleted": "fill:#ffd7d5,stroke:#cf222e,color:#000,stroke-dasharray:5 5",
    "outside": "fill:#f6f8fa,stroke:#8c959f,color:#57606a,stroke-dasharray:3 3",
}
#: Which class marks a node the plan creates, changes, replaces or deletes.
ACTION_MARK: dict[Action, str] = {
    Action.CREATE: "created",
    Action.UPDATE: "changed",
    Action.MIGRATE: "changed",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
}
#: What to draw first when a plan's picture must be cut: the changes that lose or rebuild data.
_SEVERITY = {
    Action.REPLACE: 0,
    Action.DELETE: 1,
    Action.MIGRATE: 2,
    Action.UPDATE: 3,
    Action.CREATE: 4,
    Action.NOOP: 5,
}


@dataclass(slots=True)
class Node:
    """One resource in a picture.

    ``action``: what the plan does to it (``None``: a neighbour the plan leaves alone, or a
    topology picture). ``undeclared``: the topology refers to it without declaring it. ``via``:
    the JetStream API prefix of an ``external`` origin.
    """

    key: str
    kind: NodeKind
    name: str
    action: Action | None = None
    undeclared: bool = False
    via: str | None = None

    @property
    def label(self) -> str:
        """The text drawn in the node (unescaped)."""
        text = {
            "kv": f"KV {self.name}",
            "objectstore": f"object store {self.name}",
            "external": f"{self.name} via {self.via}" if self.via else self.name,
        }.get(self.kind, self.name)
        if self.undeclared:
            text += " (not in topology)"
        if self.action is not None and self.action is not Action.NOOP:
            text = f"{self.action.symbol} {text}"
        return text

    @property
    def mark(self) -> str | None:
        """The Mermaid class of the node, or ``None``."""
        if self.action is not None and self.action in ACTION_MARK:
            return ACTION_MARK[self.action]
        if self.undeclared or self.kind == "external":
            return "outside"
        return None


@dataclass(frozen=True, slots=True)
class Edge:
    """Data flows from ``tail`` to ``head`` (node keys)."""

    tail: str
    head: str
    link: Link


@dataclass(slots=True)
class Graph:
    """Nodes by key and edges, both in the order they were added (the output order)."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[Edge, None] = field(default_factory=dict)

    def add(self, key: str, kind: NodeKind, name: str, **extra: Any) -> Node:
        """The node ``key``, added first if it is new."""
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = Node(key, kind, name, **extra)
        return node

    def connect(self, tail: str, head: str, link: Link) -> None:
        self.edges[Edge(tail, head, link)] = None

    def changed(self) -> list[Node]:
        """The nodes a plan creates, changes, replaces or deletes."""
        return [n for n in self.nodes.values() if n.mark in ACTION_MARK.values()]


# --- building ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Refs:
    """Turns the names a config refers to into node keys, adding the nodes it has not seen.

    A stream name ``KV_<b>`` or ``OBJ_<b>`` is the bucket ``b`` when the graph knows such a
    bucket (a bucket is a stream of that name). ``undeclared``: a node added here is marked as
    not in the topology (for topology pictures; a plan's neighbours are simply unchanged).
    """

    graph: Graph
    kv: frozenset[str]
    objectstores: frozenset[str]
    undeclared: bool

    def stream(self, name: str) -> str:
        if name.startswith(KV_PREFIX) and name[len(KV_PREFIX) :] in self.kv:
            return self._add(f"kv.{name[len(KV_PREFIX) :]}", "kv", name[len(KV_PREFIX) :])
        if name.startswith(OBJ_PREFIX) and name[len(OBJ_PREFIX) :] in self.objectstores:
            bucket = name[len(OBJ_PREFIX) :]
            return self._add(f"objectstore.{bucket}", "objectstore", bucket)
        return self._add(f"stream.{name}", "stream", name)

    def bucket(self, name: str) -> str:
        bucket = name.removeprefix(KV_PREFIX)
        return self._add(f"kv.{bucket}", "kv", bucket)

    def external(self, name: str, api: str) -> str:
        key = f"external:{api}:{name}"
        self.graph.add(key, "external", name, via=api or None)
        return key

    def _add(self, key: str, kind: NodeKind, name: str) -> str:
        self.graph.add(key, kind, name, undeclared=self.undeclared)
        return key


def _origins(config: Mapping[str, Any]) -> Iterator[tuple[str, Link, str | None]]:
    """``(origin name, "mirror" | "source", external API prefix or None)`` of a config."""
    mirror = config.get("mirror")
    entries: list[tuple[Any, Link]] = [(mirror, "mirror")]
    entries += [(src, "source") for src in config.get("sources") or ()]
    for entry, link in entries:
        if not isinstance(entry, Mapping) or not entry.get("name"):
            continue
        external = entry.get("external")
        api = None
        if isinstance(external, Mapping) and external:
            api = str(external.get("api") or "")
        yield str(entry["name"]), link, api


def _dead_letter_stream(config: Mapping[str, Any]) -> str | None:
    metadata = config.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    name = metadata.get(META_DEAD_LETTER_STREAM)
    return str(name) if name else None


def _link(refs: _Refs, kind: NodeKind, key: str, config: Mapping[str, Any], parent: str) -> None:
    """The edges one resource's config declares. ``parent``: a consumer group's stream, an
    event type's capturing stream (empty when none captures it)."""
    g = refs.graph
    if kind in ("stream", "kv"):
        for origin, link, api in _origins(config):
            if api is not None:
                tail = refs.external(origin, api)
            else:
                tail = refs.stream(origin) if kind == "stream" else refs.bucket(origin)
            g.connect(tail, key, link)
    elif kind == "consumer":
        g.connect(refs.stream(parent), key, "consumes")
        dead = _dead_letter_stream(config)
        if dead:
            g.connect(key, refs.stream(dead), "dead-letter")
    elif kind == "event" and parent:
        g.connect(key, refs.stream(parent), "captures")


def topology_graph(topology: Topology, *, events: bool = True) -> Graph:
    """Everything the topology declares (event types only with ``events``)."""
    g = Graph()
    for name in topology.streams:
        g.add(f"stream.{name}", "stream", name)
    for name in topology.kv_buckets:
        g.add(f"kv.{name}", "kv", name)
    for name in topology.object_stores:
        g.add(f"objectstore.{name}", "objectstore", name)
    for consumer in topology.consumers.values():
        g.add(consumer.address, "consumer", consumer.name)
    if events:
        for event in topology.events.values():
            g.add(event.address, "event", event.type)
    refs = _Refs(g, frozenset(topology.kv_buckets), frozenset(topology.object_stores), True)
    for name, spec in topology.streams.items():
        _link(refs, "stream", f"stream.{name}", spec.config, "")
    for name, bucket in topology.kv_buckets.items():
        _link(refs, "kv", f"kv.{name}", bucket.config, "")
    for consumer in topology.consumers.values():
        _link(refs, "consumer", consumer.address, consumer.config, consumer.stream)
    if events:
        for event in topology.events.values():
            _link(refs, "event", event.address, event.config, event.stream or "")
    return g


_NODE_KIND: dict[Kind, NodeKind] = {
    Kind.STREAM: "stream",
    Kind.CONSUMER: "consumer",
    Kind.KV: "kv",
    Kind.OBJECT_STORE: "objectstore",
    Kind.EVENT: "event",
}


def plan_graph(changes: Iterable[ResourceChange]) -> Graph:
    """The changed resources (marked with their action) and their immediate neighbours.

    Edges come from each change's new config (its old one for a delete): a changed group's
    stream and dead-letter stream, a changed stream's or bucket's origins, a changed event
    type's stream. A stream's changed groups are connected to it through their own edges.
    """
    todo = [c for c in changes if c.action is not Action.NOOP]
    g = Graph()
    for c in todo:
        g.add(c.address, _NODE_KIND[c.kind], c.name).action = c.action
    kv = frozenset(c.name for c in todo if c.kind is Kind.KV)
    stores = frozenset(c.name for c in todo if c.kind is Kind.OBJECT_STORE)
    refs = _Refs(g, kv, stores, False)
    for c in todo:
        config = c.after if c.after is not None else (c.before or {})
        parent = c.stream if c.kind is Kind.CONSUMER else ""
        if c.kind is Kind.EVENT:
            parent = str(config.get("stream") or "")
        _link(refs, _NODE_KIND[c.kind], c.address, config, parent)
    return g


# --- fitting a plan's picture into a comment -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Picture:
    """A plan's Mermaid picture: ``shown`` of the plan's ``total`` changed resources drawn;
    ``marks``: the classes its nodes carry (for a legend), in :data:`MARK_STYLES` order;
    ``plain``: whether it draws an unchanged neighbour (a node without a class)."""

    text: str
    shown: int
    total: int
    marks: tuple[str, ...]
    plain: bool


def plan_mermaid(
    changes: Sequence[ResourceChange], *, max_edges: int = MAX_EDGES, max_chars: int = MAX_CHARS
) -> Picture | None:
    """The plan's picture as Mermaid text of at most ``max_edges`` edges and ``max_chars``
    characters (``None`` when nothing changes).

    When the whole picture is larger, whole groups of connected resources are drawn, the groups
    holding replaces and deletes first (then migrations, updates, creates; plan order among
    equals), until the next would not fit; when the first group alone is too large, as much of
    it as fits is drawn.
    """
    full = plan_graph(changes)
    total = len(full.changed())
    if not total:
        return None
    part = full
    text = render_mermaid(full)
    if len(full.edges) > max_edges or len(text) > max_chars:
        order = {c.address: i for i, c in enumerate(changes)}
        part = _fitted(full, order, max_edges, max_chars)
        text = render_mermaid(part)
    present = {node.mark for node in part.nodes.values()}
    marks = tuple(name for name in MARK_STYLES if name in present)
    return Picture(text, len(part.changed()), total, marks, None in present)


def _components(graph: Graph, order: Mapping[str, int]) -> list[list[str]]:
    """The graph's connected node groups, most severe change first."""
    parent = {key: key for key in graph.nodes}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for edge in graph.edges:
        a, b = root(edge.tail), root(edge.head)
        if a != b:
            parent[b] = a
    groups: dict[str, list[str]] = {}
    for key in graph.nodes:
        groups.setdefault(root(key), []).append(key)

    def rank(keys: list[str]) -> tuple[int, int]:
        ranks = [
            (_SEVERITY[node.action], order.get(key, len(order)))
            for key in keys
            if (node := graph.nodes[key]).action is not None
        ]
        return min(ranks, default=(len(_SEVERITY), len(order)))

    return sorted(groups.values(), key=rank)


def _fitted(graph: Graph, order: Mapping[str, int], max_edges: int, max_chars: int) -> Graph:
    """The first of the graph's groups that fit the limits together; when not even the first
    fits on its own, as much of it as fits, edge by edge."""
    node_cost, edge_cost, used = _estimates(len(str(len(graph.nodes))))
    by_tail: dict[str, list[Edge]] = {}
    for e in graph.edges:
        by_tail.setdefault(e.tail, []).append(e)
    part = Graph()
    for group in _components(graph, order):
        members = set(group)
        edges = [e for key in group for e in by_tail.get(key, ()) if e.head in members]
        cost = sum(node_cost(graph.nodes[k]) for k in group) + sum(edge_cost(e) for e in edges)
        if used + cost <= max_chars and len(part.edges) + len(edges) <= max_edges:
            part.nodes.update((k, graph.nodes[k]) for k in group)
            part.edges.update(dict.fromkeys(edges))
            used += cost
            continue
        if not part.nodes:  # the first group alone is too large: draw it in part
            for edge in edges:
                new = [k for k in dict.fromkeys((edge.tail, edge.head)) if k not in part.nodes]
                cost = edge_cost(edge) + sum(node_cost(graph.nodes[k]) for k in new)
                if used + cost > max_chars or len(part.edges) >= max_edges:
                    break
                part.nodes.update((k, graph.nodes[k]) for k in new)
                part.edges[edge] = None
                used += cost
        break
    return part


# --- Mermaid -------------------------------------------------------------------------------------

#: Characters a Mermaid label shows as they are; every other one becomes ``#NNN;``. ``:`` and
#: ``;`` are left out on purpose: Mermaid rewrites lines holding ``style``/``classDef``,
#: ``:``, ``#`` and ``;``, and ``#``…``;`` is its entity syntax.
_MERMAID_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.-/,+~()"
)
_MERMAID_SHAPE: dict[NodeKind, tuple[str, str]] = {
    "stream": ('["', '"]'),
    "consumer": ('("', '")'),
    "kv": ('[("', '")]'),
    "objectstore": ('[("', '")]'),
    "event": ('>"', '"]'),
    "external": ('["', '"]'),
}
_MERMAID_ARROW: dict[Link, str] = {
    "consumes": "-->",
    "captures": "-->",
    "dead-letter": "-.->|dead letters|",
    "mirror": "==>|mirror|",
    "source": "-->|source|",
}
_ID_LETTER: dict[NodeKind, str] = {
    "stream": "s",
    "consumer": "c",
    "kv": "k",
    "objectstore": "b",
    "event": "e",
    "external": "r",
}


def mermaid_label(text: str) -> str:
    """``text`` safe inside a double-quoted Mermaid label: one line, entities for the rest."""
    return "".join(ch if ch in _MERMAID_SAFE else f"#{ord(ch)};" for ch in escape_controls(text))


def _ids(graph: Graph) -> dict[str, str]:
    counters: dict[str, int] = {}
    ids: dict[str, str] = {}
    for key, node in graph.nodes.items():
        letter = _ID_LETTER[node.kind]
        ids[key] = f"{letter}{counters.get(letter, 0)}"
        counters[letter] = counters.get(letter, 0) + 1
    return ids


def _mermaid_node(node_id: str, node: Node) -> str:
    start, end = _MERMAID_SHAPE[node.kind]
    return f"  {node_id}{start}{mermaid_label(node.label)}{end}\n"


def _mermaid_edge(tail: str, head: str, link: Link) -> str:
    return f"  {tail} {_MERMAID_ARROW[link]} {head}\n"


_MERMAID_HEAD = "flowchart LR\n"


def _class_lines(members: Mapping[str, list[str]]) -> str:
    lines = [f"  classDef {name} {MARK_STYLES[name]}\n" for name in MARK_STYLES if members[name]]
    lines += [
        f"  class {','.join(members[name])} {name}\n" for name in MARK_STYLES if members[name]
    ]
    return "".join(lines)


def _estimates(width: int) -> tuple[Callable[[Node], int], Callable[[Edge], int], int]:
    """Upper bounds of the characters a node and an edge add to :func:`render_mermaid`'s text
    when no id is longer than a letter and ``width`` digits, and of the fixed part."""
    some_id = "x" + "9" * width

    def node_cost(node: Node) -> int:
        return len(_mermaid_node(some_id, node)) + len(some_id) + 1  # the node, its class entry

    def edge_cost(edge: Edge) -> int:
        return len(_mermaid_edge(some_id, some_id, edge.link))

    every_class = {name: ["x"] for name in MARK_STYLES}
    fixed = len(_MERMAID_HEAD) + len(_class_lines(every_class))
    return node_cost, edge_cost, fixed


def render_mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart, left to right (ends with a newline)."""
    ids = _ids(graph)
    out = [_MERMAID_HEAD]
    out += [_mermaid_node(ids[key], node) for key, node in graph.nodes.items()]
    out += [_mermaid_edge(ids[e.tail], ids[e.head], e.link) for e in graph.edges]
    members: dict[str, list[str]] = {name: [] for name in MARK_STYLES}
    for key, node in graph.nodes.items():
        if node.mark is not None:
            members[node.mark].append(ids[key])
    out.append(_class_lines(members))
    return "".join(out)


# --- DOT -----------------------------------------------------------------------------------------

_DOT_SHAPE: dict[NodeKind, str] = {
    "stream": "box",
    "consumer": "box",
    "kv": "cylinder",
    "objectstore": "cylinder",
    "event": "cds",
    "external": "box",
}
_DOT_EDGE: dict[Link, str] = {
    "consumes": "",
    "captures": "",
    "dead-letter": ' [label="dead letters", style=dashed]',
    "mirror": ' [label="mirror", style=bold]',
    "source": ' [label="source"]',
}
#: Fill colours of marked nodes (the Mermaid classes' colours).
_DOT_FILL = {
    name: style.split(",")[0].removeprefix("fill:")
    for name, style in MARK_STYLES.items()
    if style.startswith("fill:")
}


def dot_string(text: str) -> str:
    """``text`` as a DOT double-quoted string that Graphviz draws as it is: one line, with
    backslashes and quotes escaped, and ``&`` written ``&amp;`` (Graphviz reads HTML entities
    in labels, so ``&amp;`` would otherwise be drawn as ``&``)."""
    escaped = escape_controls(text).replace("&", "&amp;")
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _dot_node(node_id: str, node: Node) -> str:
    attrs = [f"label={dot_string(node.label)}", f"shape={_DOT_SHAPE[node.kind]}"]
    styles = ["rounded"] if node.kind == "consumer" else []
    mark = node.mark
    if mark in _DOT_FILL:
        styles.append("filled")
        attrs.append(f'fillcolor="{_DOT_FILL[mark]}"')
    if mark in ("deleted", "outside"):
        styles.append("dashed")
    if styles:
        attrs.append(f'style="{",".join(styles)}"')
    return f"  {node_id} [{', '.join(attrs)}];\n"


def render_dot(graph: Graph) -> str:
    """The graph as a Graphviz DOT digraph, left to right (ends with a newline)."""
    ids = _ids(graph)
    out = ["digraph jelmore {\n", "  rankdir=LR;\n"]
    out += [_dot_node(ids[key], node) for key, node in graph.nodes.items()]
    out += [f"  {ids[e.tail]} -> {ids[e.head]}{_DOT_EDGE[e.link]};\n" for e in graph.edges]
    out.append("}\n")
    return "".join(out)


def render(graph: Graph, fmt: str = "mermaid") -> str:
    """The graph in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "mermaid":
        return render_mermaid(graph)
    if fmt == "dot":
        return render_dot(graph)
    raise ValueError(f"unknown graph format {fmt!r} (one of {', '.join(FORMATS)})")


__all__ = [
    "FORMATS",
    "MAX_CHARS",
    "MAX_EDGES",
    "Edge",
    "Graph",
    "Node",
    "Picture",
    "dot_string",
    "mermaid_label",
    "plan_graph",
    "plan_mermaid",
    "render",
    "render_dot",
    "render_mermaid",
    "topology_graph",
]
