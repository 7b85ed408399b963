"""The ``events:`` section: event types, their settings and payload schemas, checked offline."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from jelmore_infra.topology import load_topology
from jelmore_infra.topology.load import parse_sources

REPO_TOPOLOGY = Path(__file__).resolve().parents[2] / "topology"

STREAMS = """\
streams:
  JELMORE:
    subjects: [jelmore.session.>]
  OTHER:
    subjects: [other.>]
consumer_groups:
  session_handlers:
    stream: JELMORE
    filter_subject: jelmore.session.>
"""


def check(events: str) -> list[str]:
    """``file:line:col: severity: message`` of every diagnostic for the streams plus ``events``."""
    topology, diags = parse_sources([("s.yaml", STREAMS), ("e.yaml", dedent(events))])
    assert (topology is None) == any(d.severity == "error" for d in diags)
    return [d.format() for d in diags]


def test_the_repository_declares_the_eight_jelmore_event_types() -> None:
    topology = load_topology(REPO_TOPOLOGY)
    assert sorted(topology.events) == [
        "session.completed",
        "session.created",
        "session.directory_changed",
        "session.failed",
        "session.file_modified",
        "session.git_activity",
        "session.output",
        "session.status",
    ]
    created = topology.events["session.created"]
    assert created.subject == "jelmore.session.created"
    assert created.stream == "JELMORE"
    assert created.compatibility == "backward"
    assert set(created.payload["properties"]) == {"provider", "timeout"}
    assert set(topology.events["session.output"].payload["properties"]) == {"content", "tokens"}


def test_an_event_gets_its_defaults_and_the_stream_that_captures_it() -> None:
    topology, diags = parse_sources(
        [("s.yaml", STREAMS), ("e.yaml", "events:\n  session.x:\n    payload: {type: object}\n")]
    )
    assert diags == [] and topology is not None
    event = topology.events["session.x"]
    assert event.config == {
        "subject": "jelmore.session.x",
        "description": "",
        "compatibility": "backward",
        "sensitive": False,
        "payload": {"type": "object"},
    }
    assert event.stream == "JELMORE" and event.address == "event.session.x"


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            "events:\n  a.b:\n    payload: {type: objekt}\n",
            "e.yaml:3:15: error: invalid payload schema of event 'a.b': at /type: 'objekt' is "
            "not valid under any of the given schemas",
        ),
        (
            "events:\n  a.b:\n    payload:\n      properties:\n        n: {minimum: ten}\n",
            "e.yaml:5:13: error: invalid payload schema of event 'a.b': at "
            "/properties/n/minimum: 'ten' is not of type 'number'",
        ),
        (
            "events:\n  a.b:\n    payload: {type: string, pattern: '(unclosed'}\n",
            "e.yaml:3:29: error: invalid payload schema of event 'a.b': at /pattern: "
            "'(unclosed' is not a 'regex'",
        ),
        (
            "events:\n  a.b:\n    compatibility: backwrd\n    payload: {}\n",
            "e.yaml:3:20: error: unknown compatibility 'backwrd' (did you mean 'backward'?); "
            "use none, backward, forward, full",
        ),
        (
            "events:\n  a.b:\n    payload:\n      properties:\n"
            "        x: {$ref: 'https://example.com/s.json'}\n",
            "e.yaml:5:13: error: $ref 'https://example.com/s.json' points outside the schema; "
            "payload schemas may only refer to their own parts ('#/$defs/…'): nothing is fetched "
            "from the network",
        ),
        (
            "events:\n  a.b:\n    payload: {$schema: 'http://json-schema.org/draft-07/schema#'}\n",
            "e.yaml:3:15: error: $schema 'http://json-schema.org/draft-07/schema#' is not draft "
            "2020-12; leave it out or use https://json-schema.org/draft/2020-12/schema",
        ),
        (
            "events:\n  a.b:\n    sensitve: true\n    payload: {}\n",
            "e.yaml:3:5: error: unknown event setting 'sensitve' (did you mean 'sensitive'?); an "
            "event has 'subject', 'description', 'compatibility', 'sensitive' and 'payload'",
        ),
        (
            "events:\n  a.b:\n    sensitive: yes\n    payload: {}\n",
            "e.yaml:3:16: error: sensitive must be true or false, not 'yes'",
        ),
        (
            "events:\n  a.b:\n    description: x\n",
            "e.yaml:2:3: error: event 'a.b' needs a 'payload:' schema",
        ),
        (
            "events:\n  a.b:\n    subject: jelmore.session.*\n    payload: {}\n",
            "e.yaml:3:14: error: subject 'jelmore.session.*' must not contain wildcards ('*' or "
            "'>'); an event's subject is one literal subject (no wildcards)",
        ),
        (
            "events:\n  'a b':\n    payload: {}\n",
            "e.yaml:2:3: error: invalid event type 'a b': use dot-separated words of letters, "
            "digits, '-' and '_' (like session.created), at most 255 characters",
        ),
    ],
    ids=[
        "unknown-type",
        "nested-keyword",
        "bad-regex",
        "unknown-compatibility",
        "remote-ref",
        "other-draft",
        "unknown-setting",
        "yes-is-not-a-boolean",
        "missing-payload",
        "wildcard-subject",
        "bad-name",
    ],
)
def test_bad_events_are_refused_at_their_file_line_and_column(events: str, expected: str) -> None:
    assert expected in check(events)


def test_an_event_whose_subject_no_stream_captures_is_refused() -> None:
    assert check("events:\n  nowhere.x:\n    payload: {}\n") == [
        "e.yaml:2:3: error: no stream captures the subject 'jelmore.nowhere.x' of event "
        "'nowhere.x'; add it to a stream's subjects or set the event's subject",
    ]


def test_two_events_on_one_subject_are_refused_pointing_at_both() -> None:
    topology, diags = parse_sources(
        [
            ("s.yaml", STREAMS),
            (
                "e.yaml",
                "events:\n  a.one:\n    subject: other.x\n    payload: {}\n"
                "  a.two:\n    subject: other.x\n    payload: {}\n",
            ),
        ]
    )
    assert topology is None
    (error,) = diags
    assert error.format() == (
        "e.yaml:6:5: error: events 'a.one' and 'a.two' share the subject 'other.x'; each event "
        "type needs its own subject"
    )
    assert [str(r) for r in error.related] == ["e.yaml:3:5"]


def test_a_group_filter_matching_no_declared_event_is_a_warning() -> None:
    topology, diags = parse_sources(
        [
            (
                "s.yaml",
                STREAMS.replace(
                    "filter_subject: jelmore.session.>", "filter_subject: jelmore.x.>"
                ).replace("jelmore.session.>]", "jelmore.>]"),
            ),
            ("e.yaml", "events:\n  session.y:\n    payload: {}\n"),
        ]
    )
    assert topology is not None
    assert [d.format() for d in diags] == [
        "s.yaml:9:21: warning: consumer group 'session_handlers' filters on 'jelmore.x.>', which "
        "matches no declared event",
    ]


def test_a_local_ref_and_a_draft_2020_12_schema_are_accepted() -> None:
    events = """\
        events:
          session.z:
            payload:
              $schema: https://json-schema.org/draft/2020-12/schema
              $defs: {id: {type: string, minLength: 1}}
              type: object
              properties: {id: {$ref: '#/$defs/id'}}
        """
    assert check(events) == []


def test_the_kv_bucket_of_the_catalogue_cannot_be_declared() -> None:
    topology, diags = parse_sources([("b.yaml", "kv_buckets:\n  jelmore-catalogue: {}\n")])
    assert topology is None
    assert diags[0].format() == (
        "b.yaml:2:3: error: 'jelmore-catalogue' is the KV bucket of jelmore-infra's event "
        "catalogue; choose another name"
    )
