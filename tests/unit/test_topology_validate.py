"""Semantic checks: what the server would refuse (or silently rewrite) is caught offline, and
valid topologies, however many features they use, pass without false alarms."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from jelmore_infra.subjects import subjects_overlap
from jelmore_infra.topology.load import parse_sources
from jelmore_infra.topology.validate import name_problem


def check(text: str) -> list[str]:
    topology, diags = parse_sources([("t.yaml", dedent(text))])
    assert (topology is None) == any(d.severity == "error" for d in diags)
    return [d.message for d in diags]


VALID = {
    "everything_a_stream_can_be": """\
        streams:
          ORDERS:
            description: orders
            subjects: [orders.>, refunds.*]
            retention: interest
            max_consumers: unlimited
            max_msgs: 1_000_000
            max_bytes: 512MiB
            max_age: 1h30m
            max_msgs_per_subject: 10
            max_msg_size: 1MB
            discard: new
            discard_new_per_subject: true
            storage: memory
            num_replicas: 3
            duplicate_window: 2m
            placement: {cluster: east, tags: [ssd]}
            compression: s2
            first_seq: 100
            subject_transform: {src: "orders.>", dest: "o.>"}
            republish: {src: "orders.>", dest: "copy.orders.>", headers_only: true}
            allow_direct: true
            deny_delete: true
            deny_purge: true
            consumer_limits: {inactive_threshold: 1h, max_ack_pending: 5000}
            metadata: {team: payments, "owner": "x"}
            allow_msg_ttl: true
          COPY:
            mirror:
              name: ORDERS
              opt_start_seq: 5
              filter_subject: orders.eu.>
            mirror_direct: true
          AGG:
            subjects: [agg.>]
            sources:
              - name: ORDERS
                subject_transforms: [{src: "orders.>", dest: "agg.orders.>"}]
              - name: REMOTE
                external: {api: "$JS.hub.API", deliver: "deliver.hub"}
          MARKERS:
            subjects: [markers.>]
            subject_delete_marker_ttl: 10m
            max_age: 1d
          COUNTERS:
            subjects: [counters.>]
            allow_msg_counter: true
          SCHEDULED:
            subjects: [scheduled.>]
            allow_msg_schedules: true
            allow_atomic: true
          FAST:
            subjects: [fast.>]
            persist_mode: async
            allow_batched: true
          PLAIN: {}
        """,
    "consumer_groups_with_many_settings": """\
        streams:
          ORDERS:
            subjects: [orders.>]
            num_replicas: 3
        consumer_groups:
          billing:
            stream: ORDERS
            description: bills
            deliver_policy: by_start_sequence
            opt_start_seq: 10
            ack_policy: explicit
            max_deliver: 3
            backoff: [1s, 5s, 30s]
            ack_wait: 1s
            filter_subject: orders.new
            replay_policy: instant
            sample_freq: 50%
            max_waiting: 100
            max_ack_pending: unlimited
            headers_only: false
            max_batch: 100
            max_expires: 30s
            max_bytes: 1MiB
            inactive_threshold: 1d
            num_replicas: 3
            mem_storage: false
            metadata: {team: billing}
            priority_groups: [jobs]
            priority_policy: pinned_client
            priority_timeout: 2m
          history:
            stream: ORDERS
            deliver_policy: by_start_time
            opt_start_time: "2026-01-31T12:00:00.5+01:00"
          latest:
            stream: ORDERS
            deliver_policy: last_per_subject
            filter_subjects: [orders.a.*, orders.b.*]
          forever:
            stream: ORDERS
            max_deliver: -1
            backoff: [1s, 2s, 3s, 4s, 5s]
        """,
    "work_queue_with_disjoint_groups": """\
        streams:
          JOBS:
            subjects: [jobs.>]
            retention: workqueue
        consumer_groups:
          a:
            stream: JOBS
            ack_policy: explicit
            filter_subjects: [jobs.a.>]
          b:
            stream: JOBS
            ack_policy: explicit
            deliver_policy: all
            filter_subject: jobs.b.*
        """,
    "stream_named_subject_and_filters_from_sources": """\
        streams:
          ORDERS: {}
          AGG:
            sources: [{name: ORDERS}]
        consumer_groups:
          direct:
            stream: ORDERS
            filter_subject: ORDERS
          sourced:
            stream: AGG
            filter_subject: anything.goes
        """,
    "backoff_as_long_as_max_deliver": """\
        streams:
          S: {subjects: [s.>]}
        consumer_groups:
          g:
            stream: S
            max_deliver: 3
            backoff: [1s, 2s, 3s]
        """,
    "empty_sections": """\
        streams:
        consumer_groups:
        """,
    "server_subjects_with_no_ack_and_the_exempt_ones_without": """\
        streams:
          API_AUDIT:
            subjects: ["$JS.API.>", "$SYS.REQ.>", "$NRG.>"]
            no_ack: true
          ADVISORIES:
            subjects: ["$JS.EVENT.>", "$SYS.ACCOUNT.>"]
        """,
    "a_subject_overlapping_the_api_with_no_ack": """\
        streams:
          TWO_TOKENS_OR_MORE:
            subjects: ["*.>"]
            no_ack: true
        """,
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_topologies_pass(name: str) -> None:
    assert check(VALID[name]) == []


S = "streams:\n  S:\n    subjects: [s.>]\n"

INVALID = [
    ("streams:\n  S:\n    mirror_direct: true\n", "mirror_direct needs a mirror"),
    (
        "streams:\n  S:\n    storage: memory\n    persist_mode: async\n",
        "persist_mode: async needs file storage",
    ),
    (
        "streams:\n  S:\n    persist_mode: async\n    allow_atomic: true\n",
        "persist_mode: async cannot be used with allow_atomic",
    ),
    ("streams:\n  S:\n    sources: [{filter_subject: a}]\n", "sources.0 needs 'name:'"),
    ("streams:\n  S:\n    mirror: {name: S}\n", "cannot copy from itself"),
    (
        "streams:\n  S:\n    sources: [{name: A}, {name: A}]\n",
        "source 'A' is listed twice",
    ),
    (
        "streams:\n  S:\n    mirror: {name: A, filter_subject: a, subject_transforms: "
        "[{src: a, dest: b}]}\n",
        "mirror cannot have both filter_subject and subject_transforms",
    ),
    (
        "streams:\n  S:\n    subjects: [s.>]\n    republish: {dest: s.copy}\n",
        "republish.dest 's.copy' overlaps the stream's subject 's.>'",
    ),
    ("streams:\n  S:\n    placement: {preferred: n1}\n", "placement.preferred is not permitted"),
    ("streams:\n  S:\n    subjects: ['>']\n", "capturing all subjects ('>') requires no_ack"),
    (
        "streams:\n  S:\n    subject_delete_marker_ttl: 5s\n    deny_purge: true\n",
        "deny_purge: true conflicts with subject_delete_marker_ttl",
    ),
    (
        "streams:\n  S:\n    allow_msg_schedules: true\n    allow_rollup_hdrs: false\n",
        "allow_rollup_hdrs: false conflicts with allow_msg_schedules",
    ),
    (
        "streams:\n  S:\n    subject_delete_marker_ttl: 5s\n    allow_msg_ttl: false\n",
        "allow_msg_ttl: false conflicts with subject_delete_marker_ttl",
    ),
    (
        "streams:\n  S:\n    allow_msg_counter: true\n    discard: new\n",
        "a counter stream (allow_msg_counter) cannot use discard: new",
    ),
    (
        "streams:\n  S:\n    allow_msg_counter: true\n    allow_msg_ttl: true\n",
        "a counter stream (allow_msg_counter) cannot use message TTLs",
    ),
    (
        "streams:\n  S:\n    allow_msg_schedules: true\n    sources: [{name: A}]\n",
        "allow_msg_schedules cannot be used on a stream with sources",
    ),
    ("streams:\n  S:\n    mirror: {name: A}\n    first_seq: 5\n", "cannot have first_seq"),
    ("streams:\n  S:\n    max_msg_size: 3GB\n", "max_msg_size '3GB' is too large"),
    ("streams:\n  S:\n    description: " + "x" * 4097 + "\n", "description is 4097 characters"),
    ("streams:\n  S:\n    metadata: {n: 5}\n", "metadata value of 'n' must be text"),
    ("streams:\n  S:\n    max_age: 1s1h\n", "units must go from largest to smallest"),
    ("streams:\n  A: {}\n  B:\n    subjects: [A]\n", "subject 'A' of stream 'B' overlaps subject"),
    (
        "streams:\n  S:\n    discard: new\n    discard_new_per_subject: true\n",
        "discard_new_per_subject needs max_msgs_per_subject greater than 0",
    ),
    (S + "consumer_groups:\n  g:\n    stream: S\n    num_replicas: 6\n", "from 0"),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    ack_policy: flow_control\n",
        "ack_policy: flow_control needs a push consumer",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    backoff: [1s]\n    ack_wait: 30s\n",
        "ack_wait (30s) differs from the first backoff delay (1s)",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    priority_policy: overflow\n",
        "priority_policy: overflow needs at least one priority group",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    priority_groups: [a]\n",
        "priority_groups need a priority_policy other than none",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    priority_policy: overflow\n"
        "    priority_groups: [this-name-is-far-too-long]\n",
        "invalid priority group name",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    priority_timeout: 1m\n",
        "priority_timeout needs a priority_policy other than none",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    max_expires: 500us\n",
        "max_expires must be at least 1ms",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    filter_subjects: []\n",
        "filter_subjects is empty",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    sample_freq: often\n",
        "sample_freq must be a percentage",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    max_bytes: -1\n",
        "max_bytes cannot be unlimited",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    deliver_policy: by_start_sequence\n",
        "deliver_policy: by_start_sequence needs opt_start_seq",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    opt_start_time: '2026-01-01T00:00:00Z'\n",
        "opt_start_time is used only with deliver_policy: by_start_time",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    opt_start_time: '2026-13-01T00:00:00Z'\n"
        "    deliver_policy: by_start_time\n",
        "opt_start_time must be an RFC 3339 time",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    durable_name: g\n",
        "do not write 'durable_name' in the settings",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    idle_heartbeat: 5s\n",
        "is a push consumer setting, but consumer group 'g' is a pull consumer",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    jelmore:\n      dead_letter: {stream: X}\n",
        "jelmore.dead_letter needs 'subject:'",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    jelmore:\n      dead_letter:\n"
        "        stream: X\n        subject: dlq.*\n",
        "invalid dead-letter subject 'dlq.*': it must not contain wildcards",
    ),
    (
        S + "consumer_groups:\n  g:\n    stream: S\n    jelmore:\n      retry_delays: 2s\n",
        "jelmore.retry_delays must be a list of durations",
    ),
    (S + "consumer_groups:\n  g:\n    stream: [S]\n", "stream must be a stream name"),
    (S + "consumer_groups:\n  g:\n", "consumer group 'g' needs settings"),
    (
        "streams:\n  S:\n    consumer_limits: {max_ack_pending: 10}\n"
        "consumer_groups:\n  g:\n    stream: S\n    max_ack_pending: 20\n",
        "max_ack_pending (20) is above the limit of stream 'S'",
    ),
    (
        "streams:\n  S:\n    retention: interest\n    num_replicas: 3\n"
        "consumer_groups:\n  g:\n    stream: S\n    num_replicas: 1\n",
        "on a interest stream, num_replicas must be 0 or the stream's (3)",
    ),
    (
        "streams:\n  W:\n    retention: workqueue\n"
        "consumer_groups:\n  g:\n    stream: W\n    ack_policy: explicit\n    deliver_policy: new\n",
        "need deliver_policy: all (here it is new)",
    ),
    (
        "streams:\n  W:\n    retention: workqueue\n    subjects: [w.>]\n"
        "consumer_groups:\n  a:\n    stream: W\n    ack_policy: explicit\n"
        "  b:\n    stream: W\n    ack_policy: explicit\n    filter_subject: w.b\n",
        "reads every subject of work-queue stream 'W', so it must be the stream's only",
    ),
    ("streams:\n  'a b': {}\n", "invalid stream name 'a b': it must not contain whitespace"),
    (
        'streams:\n  "a\\0b": {}\n',
        "invalid stream name 'a\\x00b': it must not contain a NUL character",
    ),
    (
        S + 'consumer_groups:\n  "g\\0":\n    stream: S\n',
        "invalid consumer group name 'g\\x00': it must not contain a NUL character",
    ),
    (
        'streams:\n  S:\n    subjects: ["s.\\0"]\n',
        "invalid subject 's.\\x00' in subjects[0]: it contains a NUL character",
    ),
    (
        'streams:\n  S:\n    subjects: ["$JS.API.>"]\n',
        "subject '$JS.API.>' overlaps '$JS.>', the subjects of the JetStream API: the server "
        "refuses it unless the stream has no_ack: true",
    ),
    (
        'streams:\n  S:\n    subjects: ["*.>"]\n',
        "subject '*.>' overlaps '$JS.>', the subjects of the JetStream API",
    ),
    (
        'streams:\n  S:\n    subjects: ["$SYS.REQ.*"]\n',
        "subject '$SYS.REQ.*' overlaps '$SYS.>', the subjects of the system API",
    ),
    (
        "streams:\n  S:\n    subjects: ['>']\n    no_ack: true\n    num_replicas: 3\n",
        "capturing all subjects ('>') requires num_replicas: 1",
    ),
    (S + "consumer_groups:\n  'g/1':\n    stream: S\n", "invalid consumer group name 'g/1'"),
    ("streams:\n  S:\n    max_age: !!float x\n", "cannot read value"),
    ("streams:\n  ? [a]\n  : {}\n", "keys must be plain names"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[m for _, m in INVALID])
def test_semantic_problem_is_reported(text: str, message: str) -> None:
    messages = check(text)
    assert any(message in m for m in messages), messages


def test_name_rules() -> None:
    assert name_problem("JELMORE_DLQ") is None
    assert name_problem("") == "is empty"
    assert name_problem("a" * 255) is None
    assert name_problem("a" * 256) is not None
    for bad in ("a.b", "a*", "a>", "a/b", "a\\b", "a b", "a\tb", "a\0b"):
        assert name_problem(bad) is not None


def test_an_invalid_value_does_not_cause_a_second_message_about_it_missing() -> None:
    messages = check(
        S + "consumer_groups:\n  g:\n    stream: S\n    deliver_policy: by_start_time\n"
        "    opt_start_time: yesterday\n"
    )
    assert len(messages) == 1 and "RFC 3339" in messages[0]


DLQ = "streams:\n  S:\n    subjects: [s.>]\n  D:\n    subjects: [dlq.>]\n"


def test_runtime_settings_need_explicit_acks() -> None:
    messages = check(
        DLQ + "consumer_groups:\n  g:\n    stream: S\n    max_deliver: 3\n"
        "    jelmore:\n      retry_delays: [2s]\n"
    )
    assert messages == [
        "the jelmore retry and dead-letter settings need ack_policy: explicit (it is none by "
        "default): the runtime retries by nak and dead-letters by ack"
    ]


def test_dead_letter_without_max_deliver_is_a_warning_only() -> None:
    text = (
        DLQ + "consumer_groups:\n  g:\n    stream: S\n    ack_policy: explicit\n"
        "    jelmore:\n      dead_letter: {stream: D, subject: dlq.g}\n"
    )
    topology, diags = parse_sources([("t.yaml", text)])
    assert topology is not None
    assert [(d.severity, str(d.location)) for d in diags] == [("warning", "t.yaml:11:20")]
    assert "never dead-lettered" in diags[0].message


# --- the server agrees ------------------------------------------------------------------------
# What the semantic checks refuse, a real nats-server refuses too; what they accept, it creates.

SERVER_REFUSES = {
    "subject_overlap_across_streams": "streams:\n  A: {subjects: [j.>]}\n  B: {subjects: [j.dlq.>]}\n",
    "duplicate_window_over_max_age": "streams:\n  A: {max_age: 1m, duplicate_window: 2m}\n",
    "discard_new_per_subject_alone": "streams:\n  A: {discard_new_per_subject: true}\n",
    "sealed_create": "streams:\n  A: {sealed: true}\n",
    "mirror_with_subjects": "streams:\n  O: {}\n  A: {subjects: [m.>], mirror: {name: O}}\n",
    "rollups_with_deny_purge": "streams:\n  A: {deny_purge: true, allow_rollup_hdrs: true}\n",
    "backoff_over_max_deliver": S
    + "consumer_groups:\n  g: {stream: S, max_deliver: 2, backoff: [1s, 2s, 3s]}\n",
    "overlapping_filters": S + "consumer_groups:\n  g: {stream: S, filter_subjects: [s.*, s.a]}\n",
    "filter_subject_and_filter_subjects": S
    + "consumer_groups:\n  g: {stream: S, filter_subject: s.a, filter_subjects: [s.b]}\n",
    "start_seq_with_deliver_all": S + "consumer_groups:\n  g: {stream: S, opt_start_seq: 5}\n",
    "last_per_subject_without_filter": S
    + "consumer_groups:\n  g: {stream: S, deliver_policy: last_per_subject}\n",
    "workqueue_ack_none": "streams:\n  W: {retention: workqueue}\nconsumer_groups:\n  g: {stream: W}\n",
    "workqueue_two_unfiltered": "streams:\n  W: {retention: workqueue}\nconsumer_groups:\n"
    "  a: {stream: W, ack_policy: explicit}\n  b: {stream: W, ack_policy: explicit}\n",
    "workqueue_overlapping_groups": "streams:\n  W: {retention: workqueue, subjects: [w.>]}\n"
    "consumer_groups:\n  a: {stream: W, ack_policy: explicit, filter_subject: w.a.>}\n"
    "  b: {stream: W, ack_policy: explicit, filter_subject: w.*.x}\n",
    "consumer_replicas_over_stream": S + "consumer_groups:\n  g: {stream: S, num_replicas: 3}\n",
    "capture_all_without_no_ack": "streams:\n  A: {subjects: ['>']}\n",
    "overlap_within_stream": "streams:\n  A: {subjects: [a.*, a.b]}\n",
    "republish_cycle": "streams:\n  A: {subjects: [a.>], republish: {dest: a.x}}\n",
    "async_on_memory": "streams:\n  A: {storage: memory, persist_mode: async}\n",
    "counter_on_workqueue": "streams:\n  A: {retention: workqueue, allow_msg_counter: true}\n",
    "schedules_with_discard_new": "streams:\n  A: {discard: new, allow_msg_schedules: true}\n",
    "placement_preferred": "streams:\n  A: {placement: {preferred: x}}\n",
    "mirror_direct_without_mirror": "streams:\n  A: {mirror_direct: true}\n",
    "duplicate_source": "streams:\n  O: {}\n  A: {sources: [{name: O}, {name: O}]}\n",
    "priority_policy_without_groups": S
    + "consumer_groups:\n  g: {stream: S, priority_policy: overflow}\n",
    "max_expires_below_1ms": S + "consumer_groups:\n  g: {stream: S, max_expires: 500us}\n",
    "flow_control_ack_on_pull": S
    + "consumer_groups:\n  g: {stream: S, ack_policy: flow_control}\n",
    "workqueue_deliver_new": "streams:\n  W: {retention: workqueue}\nconsumer_groups:\n"
    "  g: {stream: W, ack_policy: explicit, deliver_policy: new}\n",
}


def _send_all(url: str, text: str) -> list[str]:
    """Create every resource the drafts describe, in order; the server's error descriptions."""
    import asyncio
    import json

    import nats

    from jelmore_infra.diagnostics import Diagnostic as Diag
    from jelmore_infra.topology.build import build_consumer, build_stream
    from jelmore_infra.topology.load import merge_files
    from jelmore_infra.topology.validate import convert_topology

    diags: list[Diag] = []
    streams, groups = convert_topology(merge_files([("t.yaml", dedent(text))], diags), diags)
    assert diags == []

    async def run() -> list[str]:
        nc = await nats.connect(url)
        errors: list[str] = []
        try:
            requests = [
                (f"$JS.API.STREAM.CREATE.{d.name}", build_stream(d).config) for d in streams
            ]
            for g in groups:
                spec = build_consumer(g)
                requests.append(
                    (
                        f"$JS.API.CONSUMER.CREATE.{spec.stream}.{spec.name}",
                        {"stream_name": spec.stream, "config": spec.config},
                    )
                )
            for subject, body in requests:
                reply = await nc.request(subject, json.dumps(body).encode(), timeout=5)
                data = json.loads(reply.data)
                if "error" in data:
                    errors.append(data["error"]["description"])
            for d in streams:
                await nc.request(f"$JS.API.STREAM.DELETE.{d.name}", b"", timeout=5)
        finally:
            await nc.close()
        return errors

    return asyncio.run(run())


@pytest.mark.parametrize("name", list(SERVER_REFUSES))
def test_the_server_refuses_what_validation_refuses(name: str, shared_nats_server: Any) -> None:
    text = SERVER_REFUSES[name]
    assert check(text) != [], "validation must refuse it"
    assert _send_all(shared_nats_server.url, text) != [], "the server accepted it"


@pytest.mark.parametrize(
    "name", ["consumer_groups_with_many_settings", "work_queue_with_disjoint_groups"]
)
def test_the_server_accepts_what_validation_accepts(name: str, shared_nats_server: Any) -> None:
    text = VALID[name].replace("num_replicas: 3", "num_replicas: 1")
    assert check(text) == []
    assert _send_all(shared_nats_server.url, text) == []


def test_the_server_accepts_the_repository_topology(shared_nats_server: Any) -> None:
    from pathlib import Path

    base = Path(__file__).resolve().parents[2] / "topology"
    text = "\n".join(p.read_text() for p in sorted(base.glob("*.yaml")))
    assert _send_all(shared_nats_server.url, text) == []


# --- at scale ----------------------------------------------------------------------------------
# Thousands of streams sharing one subject space give one error per stream subject, each naming a
# few of the others and counting the rest, and the text output prints a few of them.


def _streams_text(subjects: list[str]) -> str:
    lines = ["streams:"]
    for i, subject in enumerate(subjects):
        lines += [f"  S{i}:", f"    subjects: ['{subject}']"]
    return "\n".join(lines) + "\n"


def test_two_thousand_streams_on_one_subject_get_one_error_each() -> None:
    n = 2000
    topology, diags = parse_sources([("t.yaml", _streams_text(["foo.>"] * n))])
    assert topology is None
    assert len(diags) == n
    assert len({d.location for d in diags}) == n  # one per stream, at its subject
    for d in diags:
        assert f"overlaps {n - 1:,} subjects of other streams: " in d.message
        assert f", ... and {n - 1 - 5:,} more; a subject can be stored by only one stream" in (
            d.message
        )
        assert d.message.count("(at t.yaml:") == len(d.related) == 5
        assert len(d.message) < 600


def _brute_force_counts(subjects: list[list[str]]) -> dict[tuple[int, str], int]:
    counts: dict[tuple[int, str], int] = {}
    for i, mine in enumerate(subjects):
        for subject in mine:
            counts[(i, subject)] = sum(
                subjects_overlap(subject, other)
                for j, theirs in enumerate(subjects)
                if j != i
                for other in theirs
            )
    return counts


def test_each_overlap_is_reported_once_per_stream_with_its_exact_count() -> None:
    rng = random.Random(9)
    tokens = ["a", "b", "*"]
    subjects: list[list[str]] = []
    for _ in range(60):
        mine: list[str] = []
        while len(mine) < rng.randint(1, 2):
            subject = ".".join(rng.choice(tokens) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.3:
                subject += ".>"
            if all(not subjects_overlap(subject, m) for m in mine):
                mine.append(subject)
        subjects.append(mine)
    lines = ["streams:"]
    for i, mine in enumerate(subjects):
        lines += [f"  S{i}:", f"    subjects: [{', '.join(repr(x) for x in mine)}]"]
    _, diags = parse_sources([("t.yaml", "\n".join(lines) + "\n")])

    reported: dict[tuple[int, str], int] = {}
    pattern = re.compile(r"^subject '([^']+)' of stream 'S(\d+)' overlaps (?:(\d+) )?subject")
    for d in diags:
        if "a subject can be stored by only one stream" not in d.message:
            continue  # e.g. '*.a' overlaps the JetStream API: another rule
        m = pattern.match(d.message)
        assert m is not None, d.message
        key = (int(m.group(2)), m.group(1))
        assert key not in reported, f"reported twice: {key}"
        reported[key] = int(m.group(3) or 1)
    expected = {k: v for k, v in _brute_force_counts(subjects).items() if v}
    assert reported == expected
    assert len(expected) > 20  # the topology has plenty of overlaps


def test_the_subjects_of_one_stream_are_checked_once_each() -> None:
    text = "streams:\n  S:\n    subjects: [a.*, a.b, a.c, a.>, a.b]\n"
    messages = check(text)
    assert messages == [
        "subject 'a.b' overlaps subject 'a.*' of the same stream 'S' (at t.yaml:3:16)",
        "subject 'a.c' overlaps subject 'a.*' of the same stream 'S' (at t.yaml:3:16)",
        "subject 'a.>' overlaps 3 earlier subjects of the same stream 'S': 'a.*' (at "
        "t.yaml:3:16), 'a.b' (at t.yaml:3:21) and 'a.c' (at t.yaml:3:26)",
        "subject 'a.b' is listed twice in stream 'S' (first at t.yaml:3:21)",
    ]


def test_validate_prints_a_few_lines_for_two_thousand_overlapping_streams(tmp_path: Path) -> None:
    from tests.support.cli import run_cli

    (tmp_path / "streams.yaml").write_text(
        _streams_text(["foo.*" if i % 2 else "foo.x" for i in range(2000)])
    )
    proc = run_cli("validate", "--topology", str(tmp_path))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 20 + 2, lines[-3:]
    assert all(" error: subject 'foo." in line for line in lines[:20])
    assert lines[20] == "... and 1,980 more errors of this kind (validate --json lists them all)"
    assert lines[21].endswith("is invalid: 2,000 errors.")

    everything = run_cli("validate", "--topology", str(tmp_path), "--limit", "0")
    assert len(everything.stderr.splitlines()) == 2000 + 1
    doc = json.loads(run_cli("validate", "--topology", str(tmp_path), "--json").stdout)
    assert len(doc["diagnostics"]) == 2000


def test_repeated_diagnostics_are_capped_with_a_count_of_the_rest() -> None:
    from jelmore_infra.diagnostics import Diagnostic, Location, capped_lines

    def diag(line: int, message: str) -> Diagnostic:
        return Diagnostic("error", message, Location("t.yaml", line, 3))

    diags = [diag(1, "invalid stream name 'a.b': it must not contain '.'")]
    diags += [
        diag(i, f"unknown stream setting 'key{i}' (did you mean 'k{i}'?)") for i in range(2, 9)
    ]
    diags += [diag(9, "sealed cannot be true in a topology: a stream cannot be created sealed")]
    diags += [diag(i, f"unknown stream setting 'other{i}'") for i in range(10, 12)]
    lines = list(capped_lines(diags, per_kind=3))
    assert lines == [
        "t.yaml:1:3: error: invalid stream name 'a.b': it must not contain '.'",
        "t.yaml:2:3: error: unknown stream setting 'key2' (did you mean 'k2'?)",
        "t.yaml:3:3: error: unknown stream setting 'key3' (did you mean 'k3'?)",
        "t.yaml:4:3: error: unknown stream setting 'key4' (did you mean 'k4'?)",
        "... and 4 more errors of this kind (validate --json lists them all)",
        "t.yaml:9:3: error: sealed cannot be true in a topology: a stream cannot be created sealed",
        "t.yaml:10:3: error: unknown stream setting 'other10'",
        "t.yaml:11:3: error: unknown stream setting 'other11'",
    ]
    assert len(list(capped_lines(diags, per_kind=0))) == len(diags)
    one_more = list(capped_lines(diags[:5], per_kind=3))
    assert one_more[-1] == "... and 1 more error of this kind (validate --json lists them all)"
