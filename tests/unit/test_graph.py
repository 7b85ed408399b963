"""``jelmore-infra graph`` and the pictures behind it (:mod:`jelmore_infra.render.graph`).

The shape of the graph is checked on the model; the Mermaid and DOT texts are checked with the
real parsers (Mermaid itself and Graphviz compiled to WebAssembly, ``tests/support/
diagram_parsers.py``), which also read every label back, so an escaping mistake shows up as a
parse error or a changed name.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from textwrap import dedent
from typing import Any

from bench.topogen import write_topology
from jelmore_infra.model import Topology
from jelmore_infra.plan import Action, Kind, ResourceChange
from jelmore_infra.render.controls import escape_controls
from jelmore_infra.render.graph import (
    MAX_CHARS,
    MAX_EDGES,
    MERMAID_MAX_EDGES,
    Graph,
    plan_graph,
    plan_mermaid,
    render_dot,
    render_mermaid,
    topology_graph,
)
from jelmore_infra.topology import load_topology
from jelmore_infra.topology.load import parse_sources
from tests.support.cli import TOPOLOGY, assert_clean_error, run_cli
from tests.support.diagram_parsers import parse_diagrams
from tests.support.render_plans import (
    CASES,
    SESSION_HANDLERS_CONFIG,
    consumer_change,
    plan_mixed,
    stream_change,
)

#: Every kind of link: a mirror of an undeclared stream, sources (local, external, a KV
#: bucket's stream), KV mirrors and sources, an object store, a dead-letter stream with '-'.
LINKS_YAML = """\
    streams:
      ORDERS: {subjects: [orders.>]}
      DEAD-letters_1: {subjects: [dlq.>]}
      COPY: {mirror: {name: MISSING}}
      AGG:
        subjects: [agg.>]
        sources:
          - name: ORDERS
          - name: REMOTE
            external: {api: "$JS.hub.API", deliver: deliver.hub}
          - name: KV_config
    kv_buckets:
      config: {history: 5}
      config-copy: {mirror: {name: config}}
      merged: {sources: [{name: config}, {name: other, external: {api: "$JS.x.API"}}]}
    object_stores:
      files: {}
    consumer_groups:
      workers:
        stream: ORDERS
        ack_policy: explicit
        max_deliver: 3
        jelmore: {dead_letter: {stream: DEAD-letters_1, subject: dlq.workers}}
    events:
      order.placed: {subject: orders.placed, payload: {type: object}}
"""

#: Names the server accepts (or that a plan may carry) and that could break a diagram's syntax.
ODD_NAMES = [
    'Q"uote',
    "hash#35;not-an-entity",
    "semi;colon:style",
    "angle<b>bold</b>",
    "back`tick`",
    "pipe|bar",
    "brace{x}[y]",
    "amp&amp;",
    "end",
    "subgraph",
    "graph",
    "o-circle",
    "x-cross",
    "ünïcødé-名前",
    "ESC\x1b[2J",
    "back\\slash",
    "line\nbreak",
    "classDef:#fff;",
    "percent%%comment",
]


def links_topology() -> Topology:
    topology, diags = parse_sources([("t.yaml", dedent(LINKS_YAML))])
    assert topology is not None, [d.format() for d in diags]
    return topology


def edges_by_key(graph: Graph) -> set[tuple[str, str, str]]:
    return {(e.tail, e.head, e.link) for e in graph.edges}


def odd_plan() -> list[ResourceChange]:
    """A stream and a consumer group of every odd name, each group dead-lettering to the next
    stream, with event types of odd names (dots included) captured by them."""
    changes: list[ResourceChange] = []
    for name in ODD_NAMES:
        changes.append(stream_change(name, Action.CREATE, None, {"name": name}))
    for i, name in enumerate(ODD_NAMES):
        dead = ODD_NAMES[(i + 1) % len(ODD_NAMES)]
        config = {
            **SESSION_HANDLERS_CONFIG,
            "durable_name": name,
            "metadata": {"jelmore.dead-letter-stream": dead},
        }
        changes.append(consumer_change(name, name, Action.UPDATE, config, config))
        event = f"odd.{i}.{name}"
        changes.append(
            ResourceChange(
                f"event.{event}",
                Kind.EVENT,
                "KV_jelmore-catalogue",
                event,
                Action.CREATE,
                None,
                {"subject": f"odd.{i}", "stream": name},
            )
        )
    return changes


# --- the shape ----------------------------------------------------------------------------------


def test_the_jelmore_topology_links_streams_groups_dead_letters_and_events() -> None:
    graph = topology_graph(load_topology(str(TOPOLOGY)))
    edges = edges_by_key(graph)
    for group in ("session_handlers", "file_watchers", "git_monitors", "system_monitors"):
        address = f"consumer.JELMORE.{group}"
        assert ("stream.JELMORE", address, "consumes") in edges
        assert (address, "stream.JELMORE_DLQ", "dead-letter") in edges
    assert ("event.session.created", "stream.JELMORE", "captures") in edges
    assert {n.kind for n in graph.nodes.values()} == {"stream", "consumer", "event"}
    assert not any(n.undeclared for n in graph.nodes.values())


def test_mirrors_sources_and_buckets_link_each_origin_to_its_copy() -> None:
    graph = topology_graph(links_topology())
    edges = edges_by_key(graph)
    assert ("stream.MISSING", "stream.COPY", "mirror") in edges
    assert ("stream.ORDERS", "stream.AGG", "source") in edges
    assert ("external:$JS.hub.API:REMOTE", "stream.AGG", "source") in edges
    assert ("kv.config", "stream.AGG", "source") in edges  # KV_config is the bucket's stream
    assert ("kv.config", "kv.config-copy", "mirror") in edges
    assert ("kv.config", "kv.merged", "source") in edges
    assert ("external:$JS.x.API:other", "kv.merged", "source") in edges
    assert ("consumer.ORDERS.workers", "stream.DEAD-letters_1", "dead-letter") in edges
    assert ("event.order.placed", "stream.ORDERS", "captures") in edges
    assert graph.nodes["objectstore.files"].kind == "objectstore"
    assert graph.nodes["stream.MISSING"].undeclared
    assert graph.nodes["stream.MISSING"].label == "MISSING (not in topology)"
    assert graph.nodes["external:$JS.hub.API:REMOTE"].label == "REMOTE via $JS.hub.API"
    assert [n.key for n in graph.nodes.values() if n.mark == "outside"] == [
        "stream.MISSING",
        "external:$JS.hub.API:REMOTE",
        "external:$JS.x.API:other",
    ]


def test_no_events_leaves_event_types_out() -> None:
    graph = topology_graph(links_topology(), events=False)
    assert not any(n.kind == "event" for n in graph.nodes.values())
    assert not any(e.link == "captures" for e in graph.edges)


def test_node_ids_are_generated_so_no_name_reaches_the_syntax() -> None:
    graph = plan_graph(odd_plan())
    mermaid = render_mermaid(graph)
    dot = render_dot(graph)
    ident = r"[scekbr][0-9]+"
    mermaid_nodes = re.findall(rf'^  ({ident})(?:\["|\("|\[\("|>")(.*)"[\])]+$', mermaid, re.M)
    assert len(mermaid_nodes) == len(graph.nodes)
    mermaid_edges = re.findall(rf"^  {ident} (-->|-\.->\|dead letters\|) {ident}$", mermaid, re.M)
    assert len(mermaid_edges) == len(graph.edges)
    dot_nodes = re.findall(
        rf'^  {ident} \[label="((?:[^"\\]|\\.)*)", shape=\w+[^\n]*\];$', dot, re.M
    )
    assert len(dot_nodes) == len(graph.nodes)
    assert len(re.findall(rf"^  {ident} -> {ident}[^\n]*;$", dot, re.M)) == len(graph.edges)
    # Mermaid labels hold only letters, digits, a few marks and entities: no quote, backtick,
    # markup, '#' or ';' outside an entity, no ':' at all; control characters are escapes
    for _, label in mermaid_nodes:
        assert re.fullmatch(r"([A-Za-z0-9 _./,+~()-]|#[0-9]+;)*", label), label
    assert "\x1b" not in mermaid + dot
    assert "ESC#92;x1b#91;2J" in mermaid and "ESC\\\\x1b[2J" in dot


def test_a_plan_graph_marks_each_action_and_draws_unchanged_neighbours_plainly() -> None:
    plan = plan_mixed()
    graph = plan_graph(plan.changes)
    marks = {key: node.mark for key, node in graph.nodes.items()}
    assert marks == {
        "stream.JELMORE": "created",
        "consumer.JELMORE.session_handlers": "changed",
        "consumer.JELMORE.git_monitors": "replaced",
        "stream.OLD": "deleted",
        "stream.JELMORE_DLQ": None,  # the changed group's dead-letter stream
    }
    assert graph.nodes["stream.JELMORE"].label == "+ JELMORE"
    assert graph.nodes["consumer.JELMORE.git_monitors"].label == "-/+ git_monitors"
    assert graph.nodes["stream.JELMORE_DLQ"].label == "JELMORE_DLQ"
    assert edges_by_key(graph) == {
        ("stream.JELMORE", "consumer.JELMORE.session_handlers", "consumes"),
        ("consumer.JELMORE.session_handlers", "stream.JELMORE_DLQ", "dead-letter"),
        ("stream.JELMORE", "consumer.JELMORE.git_monitors", "consumes"),
    }


def test_a_deleted_resource_is_drawn_from_its_old_config_and_a_migrated_one_as_changed() -> None:
    old = {**SESSION_HANDLERS_CONFIG, "metadata": {"jelmore.dead-letter-stream": "DLQ"}}
    changes = [
        consumer_change("S", "gone", Action.DELETE, old, None),
        stream_change("M", Action.MIGRATE, {"name": "M"}, {"name": "M", "mirror": {"name": "O"}}),
    ]
    graph = plan_graph(changes)
    assert ("consumer.S.gone", "stream.DLQ", "dead-letter") in edges_by_key(graph)
    assert ("stream.O", "stream.M", "mirror") in edges_by_key(graph)
    assert graph.nodes["stream.M"].mark == "changed"
    assert graph.nodes["stream.M"].label == "~> M"


def test_a_plan_without_changes_has_no_picture() -> None:
    assert plan_mermaid([]) is None
    noop = stream_change("S", Action.NOOP, {"name": "S"}, {"name": "S"})
    assert plan_mermaid([noop]) is None


# --- large plans ----------------------------------------------------------------------------------


def many_creates(tmp_path: Path, resources: int = 5000) -> list[ResourceChange]:
    """Creates for a bench/topogen.py topology (streams, then their groups), as a plan has them."""
    topology = load_topology(str(write_topology(tmp_path / "topo", resources)))
    changes = [stream_change(n, Action.CREATE, None, s.config) for n, s in topology.streams.items()]
    changes += [
        consumer_change(c.stream, c.name, Action.CREATE, None, c.config)
        for c in topology.consumers.values()
    ]
    return changes


def test_a_large_plans_picture_stays_within_what_github_draws(tmp_path: Path) -> None:
    changes = many_creates(tmp_path)
    picture = plan_mermaid(changes)
    assert picture is not None
    assert len(picture.text) <= MAX_CHARS
    edges = picture.text.count(" --> ")
    assert 0 < edges <= MAX_EDGES < MERMAID_MAX_EDGES
    assert 0 < picture.shown < picture.total == 5000
    # whole streams with their four groups, the first ones of the plan
    streams = re.findall(r'^  s[0-9]+\["\+ (BENCH_[0-9]+)"\]$', picture.text, re.M)
    groups = re.findall(r'^  c[0-9]+\("\+ (bench_[0-9]+)_g[0-3]"\)$', picture.text, re.M)
    assert streams == [f"BENCH_{i:05d}" for i in range(len(streams))]
    assert sorted(groups) == sorted(s.lower() for s in streams for _ in range(4))
    assert picture.shown == len(streams) * 5


def test_a_cut_picture_draws_replacements_and_deletions_first(tmp_path: Path) -> None:
    changes = many_creates(tmp_path, 1000)
    last = changes[-1]
    doomed = replace(last, action=Action.REPLACE, before=last.after)
    deleted = stream_change("ZZ_OLD", Action.DELETE, {"name": "ZZ_OLD"}, None)
    picture = plan_mermaid([*changes[:-1], doomed, deleted], max_chars=3000)
    assert picture is not None and picture.shown < picture.total
    lines = picture.text.splitlines()
    # the replaced group's stream and its groups, then the deleted stream, then the rest
    assert lines[1] == f'  s0["+ {last.stream}"]'
    assert f'("-/+ {last.name}")' in "".join(lines[2:6])
    assert lines[6] == '  s1["- ZZ_OLD"]'
    assert picture.marks == ("created", "replaced", "deleted")
    assert len(picture.text) <= 3000


def test_a_single_group_larger_than_the_limit_is_drawn_in_part() -> None:
    fan = [stream_change("HUB", Action.UPDATE, {"name": "HUB"}, {"name": "HUB"})]
    fan += [
        consumer_change("HUB", f"g{i}", Action.CREATE, None, {"durable_name": f"g{i}"})
        for i in range(600)
    ]
    picture = plan_mermaid(fan)
    assert picture is not None
    assert picture.text.count(" --> ") == MAX_EDGES
    assert picture.shown == MAX_EDGES + 1 and picture.total == 601


# --- the real parsers -----------------------------------------------------------------------------


def expected_labels(graph: Graph) -> list[str]:
    return [escape_controls(n.label) for n in graph.nodes.values()]


def check_mermaid(result: dict[str, Any], graph: Graph) -> None:
    assert result["ok"], result.get("error")
    assert [v["text"] for v in result["vertices"]] == expected_labels(graph)
    assert len(result["edges"]) == len(graph.edges)
    texts = {"consumes": "", "captures": "", "dead-letter": "dead letters"}
    texts |= {"mirror": "mirror", "source": "source"}
    assert [e["text"] for e in result["edges"]] == [texts[e.link] for e in graph.edges]
    marked = {v["text"]: v["classes"] for v in result["vertices"]}
    for node in graph.nodes.values():
        assert marked[escape_controls(node.label)] == ([node.mark] if node.mark else [])


def check_dot(result: dict[str, Any], graph: Graph) -> None:
    assert result["ok"], result.get("error")
    # Graphviz (WebAssembly, no fonts) estimates the width of letters outside ASCII
    estimates = "Warning: no value for width of non-ASCII character"
    assert [w for w in result["warnings"] if not w.startswith(estimates)] == []
    assert [n["drawn"] for n in result["nodes"]] == expected_labels(graph)
    assert len(result["edges"]) == len(graph.edges)
    texts = {"consumes": "", "captures": "", "dead-letter": "dead letters"}
    texts |= {"mirror": "mirror", "source": "source"}
    assert [e["drawn"] for e in result["edges"]] == [texts[e.link] for e in graph.edges]
    shapes = {"stream": "box", "consumer": "box", "kv": "cylinder", "objectstore": "cylinder"}
    shapes |= {"event": "cds", "external": "box"}
    assert [n["shape"] for n in result["nodes"]] == [shapes[n.kind] for n in graph.nodes.values()]


def test_mermaid_and_graphviz_parse_every_graph_and_read_back_every_name(tmp_path: Path) -> None:
    graphs = [
        topology_graph(load_topology(str(TOPOLOGY))),
        topology_graph(links_topology()),
        plan_graph(odd_plan()),
        *(plan_graph(build().changes) for build in CASES.values()),
    ]
    batch: list[tuple[Any, str]] = []
    for graph in graphs:
        batch += [("mermaid", render_mermaid(graph)), ("dot", render_dot(graph))]
    results = parse_diagrams(batch)
    for i, graph in enumerate(graphs):
        check_mermaid(results[2 * i], graph)
        check_dot(results[2 * i + 1], graph)
    odd = results[4]["vertices"]
    assert {'+ Q"uote', "+ angle<b>bold</b>", "+ amp&amp;"} <= {v["text"] for v in odd}


def test_the_parsers_reject_what_they_cannot_draw(tmp_path: Path) -> None:
    """The check can fail: broken syntax, and a flowchart over Mermaid's edge limit."""
    too_many = "flowchart LR\n" + "".join(f"  s{i} --> s{i + 1}\n" for i in range(501))
    results = parse_diagrams(
        [
            ("mermaid", 'flowchart LR\n  s0["a"b"] --> s1\n'),
            ("mermaid", too_many),
            ("dot", 'digraph jelmore {\n  s0 [label="a"b"];\n}\n'),
        ]
    )
    assert [r["ok"] for r in results] == [False, False, False]
    assert "Edge limit exceeded" in results[1]["error"]


def test_a_large_plans_picture_parses_with_mermaid(tmp_path: Path) -> None:
    changes = many_creates(tmp_path)
    picture = plan_mermaid(changes)
    assert picture is not None
    (result,) = parse_diagrams([("mermaid", picture.text)])
    assert result["ok"], result.get("error")
    assert len(result["edges"]) <= MAX_EDGES
    assert sum(1 for v in result["vertices"] if v["classes"] == ["created"]) == picture.shown


# --- the command ----------------------------------------------------------------------------------


def test_graph_prints_the_topology_as_mermaid_by_default() -> None:
    proc = run_cli("graph", "--topology", str(TOPOLOGY))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == render_mermaid(topology_graph(load_topology(str(TOPOLOGY))))
    assert proc.stderr == ""


def test_graph_prints_dot_and_leaves_events_out_when_asked() -> None:
    proc = run_cli("graph", "--topology", str(TOPOLOGY), "--format", "dot", "--no-events")
    assert proc.returncode == 0, proc.stderr
    expected = render_dot(topology_graph(load_topology(str(TOPOLOGY)), events=False))
    assert proc.stdout == expected
    assert "session.created" not in proc.stdout


def test_graph_of_an_invalid_topology_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("streams:\n  S:\n    max_mesages: 1\n")
    proc = run_cli("graph", "--topology", str(tmp_path))
    assert_clean_error(proc)
    assert "t.yaml:3:5" in proc.stderr
    assert_clean_error(run_cli("graph", "--format", "svg"))


def test_graph_warns_when_mermaid_would_not_draw_it(tmp_path: Path) -> None:
    topo = write_topology(tmp_path / "topo", 5000)
    proc = run_cli("graph", "--topology", str(topo))
    assert proc.returncode == 0
    assert proc.stdout.count(" --> ") == 4000
    assert proc.stderr.startswith("warning: the graph has 4,000 edges and ")
    assert "(try --format dot)" in proc.stderr
    assert run_cli("graph", "--topology", str(topo), "--format", "dot").stderr == ""
