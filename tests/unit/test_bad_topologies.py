"""Each kind of malformed topology yields its own clear message at its exact file:line:col."""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent

import pytest

from jelmore_infra.diagnostics import Diagnostic
from jelmore_infra.topology.load import parse_sources

STREAMS_OK = """\
streams:
  JELMORE:
    subjects: [jelmore.session.>]
  JELMORE_DLQ:
    subjects: [jelmore.dlq.>]
"""


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str]
    message: str  # a substring of the expected diagnostic's message
    where: str  # "file:line" or "file:line:col"


def one(text: str) -> dict[str, str]:
    return {"t.yaml": dedent(text)}


def with_streams(groups: str) -> dict[str, str]:
    return {"a.yaml": STREAMS_OK, "b.yaml": dedent(groups)}


CASES = [
    Case(
        "unknown_key_with_suggestion",
        one("""\
            streams:
              S:
                max_mesages: 10
            """),
        "unknown stream setting 'max_mesages' (did you mean 'max_msgs'?)",
        "t.yaml:3:5",
    ),
    Case(
        "unknown_consumer_key_with_suggestion",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                ack_polcy: explicit
            """),
        "unknown consumer group setting 'ack_polcy' (did you mean 'ack_policy'?)",
        "b.yaml:4:5",
    ),
    Case(
        "unknown_top_level_key",
        one("""\
            stream:
              S: {}
            """),
        "unknown top-level key 'stream' (did you mean 'streams'?)",
        "t.yaml:1:1",
    ),
    Case(
        "duplicate_yaml_key_names_both_lines",
        one("""\
            streams:
              S:
                max_msgs: 10
                max_age: 1h
                max_msgs: 20
            """),
        "duplicate key 'max_msgs' (first written at t.yaml:3:5)",
        "t.yaml:5:5",
    ),
    Case(
        "stream_defined_in_two_files",
        {
            "a.yaml": "streams:\n  S:\n    subjects: [a.>]\n",
            "b.yaml": "# more\nstreams:\n  S:\n    subjects: [b.>]\n",
        },
        "stream 'S' is defined twice: here and at a.yaml:2:3",
        "b.yaml:3:3",
    ),
    Case(
        "group_defined_twice_in_one_file",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
            consumer_groups:
              h:
                stream: JELMORE
            """),
        "duplicate key 'consumer_groups' (first written at b.yaml:1:1)",
        "b.yaml:4:1",
    ),
    Case(
        "bad_duration_unit",
        one("""\
            streams:
              S:
                max_age: 7x
            """),
        "max_age: invalid duration '7x'",
        "t.yaml:3:14",
    ),
    Case(
        "duration_without_unit",
        one("""\
            streams:
              S:
                duplicate_window: 60
            """),
        "a duration needs a unit: write '60s'",
        "t.yaml:3:23",
    ),
    Case(
        "bad_size_unit",
        one("""\
            streams:
              S:
                max_bytes: 10GG
            """),
        "invalid size unit 'GG'",
        "t.yaml:3:16",
    ),
    Case(
        "bad_enum_lists_choices",
        one("""\
            streams:
              S:
                retention: workqueues
            """),
        "invalid retention 'workqueues': choose one of limits, interest, workqueue",
        "t.yaml:3:16",
    ),
    Case(
        "subject_overlap_across_streams",
        one("""\
            streams:
              JELMORE:
                subjects: [jelmore.>]
              JELMORE_DLQ:
                subjects:
                  - jelmore.dlq.>
            """),
        "subject 'jelmore.dlq.>' of stream 'JELMORE_DLQ' overlaps subject 'jelmore.>' of stream "
        "'JELMORE' (at t.yaml:3:16)",
        "t.yaml:6:9",
    ),
    Case(
        "subject_in_the_jetstream_api_without_no_ack",
        one("""\
            streams:
              AUDIT:
                subjects:
                  - "$JS.API.>"
            """),
        "subject '$JS.API.>' overlaps '$JS.>', the subjects of the JetStream API: the server "
        "refuses it unless the stream has no_ack: true",
        "t.yaml:4:9",
    ),
    Case(
        "two_token_wildcard_overlaps_the_jetstream_api",
        one("""\
            streams:
              S:
                subjects: ["*.>"]
            """),
        "subject '*.>' overlaps '$JS.>'",
        "t.yaml:3:16",
    ),
    Case(
        "nul_in_stream_name",
        one("""\
            streams:
              "ORDERS\\0":
                subjects: [orders.>]
            """),
        "invalid stream name 'ORDERS\\x00': it must not contain a NUL character",
        "t.yaml:2:3",
    ),
    Case(
        "nul_in_subject",
        one("""\
            streams:
              S:
                subjects: ["orders.\\0"]
            """),
        "invalid subject 'orders.\\x00' in subjects[0]: it contains a NUL character",
        "t.yaml:3:16",
    ),
    Case(
        "capture_all_replicated",
        one("""\
            streams:
              ALL:
                subjects: [">"]
                no_ack: true
                num_replicas: 3
            """),
        "capturing all subjects ('>') requires num_replicas: 1",
        "t.yaml:5:19",
    ),
    Case(
        "subject_overlap_within_stream",
        one("""\
            streams:
              S:
                subjects:
                  - orders.*
                  - orders.new
            """),
        "subject 'orders.new' overlaps subject 'orders.*' of the same stream 'S'",
        "t.yaml:5:9",
    ),
    Case(
        "duplicate_subject_within_stream",
        one("""\
            streams:
              S:
                subjects: [a.b, a.b]
            """),
        "subject 'a.b' is listed twice in stream 'S'",
        "t.yaml:3:21",
    ),
    Case(
        "invalid_subject",
        one("""\
            streams:
              S:
                subjects: ["orders..new"]
            """),
        "invalid subject 'orders..new' in subjects[0]: it has an empty token",
        "t.yaml:3:16",
    ),
    Case(
        "wildcard_inside_token",
        one("""\
            streams:
              S:
                subjects: [orders.new*]
            """),
        "has a wildcard inside the token 'new*'",
        "t.yaml:3:16",
    ),
    Case(
        "missing_stream_reference",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMOR
            """),
        "consumer group 'g' reads stream 'JELMOR', which is not defined in the topology "
        "(did you mean 'JELMORE'?)",
        "b.yaml:3:13",
    ),
    Case(
        "group_without_stream",
        with_streams("""\
            consumer_groups:
              g:
                ack_policy: explicit
            """),
        "consumer group 'g' needs 'stream:'",
        "b.yaml:2:3",
    ),
    Case(
        "filter_outside_stream",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                filter_subjects:
                  - jelmore.session.>
                  - jelmore.dlq.x
            """),
        "filter 'jelmore.dlq.x' is not within the subjects of stream 'JELMORE' (jelmore.session.>)",
        "b.yaml:6:9",
    ),
    Case(
        "overlapping_filters",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                filter_subjects:
                  - jelmore.session.*
                  - jelmore.session.started
            """),
        "filter 'jelmore.session.started' overlaps filter 'jelmore.session.*' (at b.yaml:5:9)",
        "b.yaml:6:9",
    ),
    Case(
        "filter_subject_with_filter_subjects",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                filter_subject: jelmore.session.a
                filter_subjects: [jelmore.session.b]
            """),
        "filter_subject cannot be combined with filter_subjects",
        "b.yaml:4:21",
    ),
    Case(
        "backoff_longer_than_max_deliver",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                max_deliver: 2
                backoff: [1s, 2s, 4s]
            """),
        "backoff has 3 delays but max_deliver is 2",
        "b.yaml:5:14",
    ),
    Case(
        "duplicate_window_longer_than_max_age",
        one("""\
            streams:
              S:
                max_age: 1m
                duplicate_window: 2m
            """),
        "duplicate_window (2m) cannot be longer than max_age (1m, at t.yaml:3:14)",
        "t.yaml:4:23",
    ),
    Case(
        "max_age_below_100ms",
        one("""\
            streams:
              S:
                max_age: 50ms
            """),
        "max_age must be at least 100ms (or 0 to leave it unset), not 50ms",
        "t.yaml:3:14",
    ),
    Case(
        "subject_delete_marker_ttl_below_1s",
        one("""\
            streams:
              S:
                subject_delete_marker_ttl: 500ms
            """),
        "subject_delete_marker_ttl must be at least 1s",
        "t.yaml:3:32",
    ),
    Case(
        "stream_num_replicas_zero",
        one("""\
            streams:
              S:
                num_replicas: 0
            """),
        "num_replicas must be from 1 to 5 for a stream, not 0",
        "t.yaml:3:19",
    ),
    Case(
        "stream_num_replicas_six",
        one("""\
            streams:
              S:
                num_replicas: 6
            """),
        "num_replicas must be from 1 to 5 for a stream, not 6",
        "t.yaml:3:19",
    ),
    Case(
        "consumer_replicas_above_stream",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                num_replicas: 3
            """),
        "num_replicas (3) cannot be more than its stream's (1, stream 'JELMORE')",
        "b.yaml:4:19",
    ),
    Case(
        "discard_new_per_subject_without_discard_new",
        one("""\
            streams:
              S:
                max_msgs_per_subject: 5
                discard_new_per_subject: true
            """),
        "discard_new_per_subject needs discard: new",
        "t.yaml:4:30",
    ),
    Case(
        "workqueue_two_unfiltered_groups",
        one("""\
            streams:
              WQ:
                retention: workqueue
            consumer_groups:
              first:
                stream: WQ
                ack_policy: explicit
              second:
                stream: WQ
                ack_policy: explicit
            """),
        "work-queue stream 'WQ' can have only one consumer group without filters: 'first' "
        "(at t.yaml:5:3) already reads every subject",
        "t.yaml:8:3",
    ),
    Case(
        "workqueue_overlapping_filters_across_groups",
        one("""\
            streams:
              WQ:
                retention: workqueue
                subjects: [jobs.>]
            consumer_groups:
              first:
                stream: WQ
                ack_policy: explicit
                filter_subjects: [jobs.a.>]
              second:
                stream: WQ
                ack_policy: explicit
                filter_subjects: [jobs.*.x]
            """),
        "filter 'jobs.*.x' overlaps filter 'jobs.a.>' of consumer group 'first'",
        "t.yaml:13:23",
    ),
    Case(
        "workqueue_non_explicit_ack",
        one("""\
            streams:
              WQ:
                retention: workqueue
            consumer_groups:
              g:
                stream: WQ
                ack_policy: all
            """),
        "consumer groups of work-queue stream 'WQ' need ack_policy: explicit (here it is all)",
        "t.yaml:7:17",
    ),
    Case(
        "dead_letter_stream_missing",
        one("""\
            streams:
              S:
                subjects: [s.>]
            consumer_groups:
              g:
                stream: S
                jelmore:
                  dead_letter:
                    stream: DLQ
                    subject: dlq.g
            """),
        "dead-letter stream 'DLQ' is not defined in the topology",
        "t.yaml:9:17",
    ),
    Case(
        "dead_letter_subjects_not_covered",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                jelmore:
                  dead_letter:
                    stream: JELMORE_DLQ
                    subject: dlq.g
            """),
        "dead-letter subject 'dlq.g.>' is not within the subjects of stream 'JELMORE_DLQ' "
        "(jelmore.dlq.>)",
        "b.yaml:7:18",
    ),
    Case(
        "dead_letter_is_own_stream",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                jelmore:
                  dead_letter:
                    stream: JELMORE
                    subject: jelmore.session.dead
            """),
        "the dead-letter stream cannot be the group's own stream 'JELMORE'",
        "b.yaml:6:17",
    ),
    Case(
        "retry_delay_zero",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                jelmore:
                  retry_delays: [2s, 0s]
            """),
        "jelmore.retry_delays[1] must be longer than 0",
        "b.yaml:5:26",
    ),
    Case(
        "push_only_setting_on_pull_group",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                idle_heartbeat: 5s
            """),
        "'idle_heartbeat' is a push consumer setting, but consumer group 'g' is a pull consumer",
        "b.yaml:4:5",
    ),
    Case(
        "pull_only_setting_on_push_consumer",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                deliver_subject: out.g
                max_waiting: 10
            """),
        "'max_waiting' is a pull consumer setting, but consumer 'g' is a push consumer",
        "b.yaml:5:5",
    ),
    Case(
        "runtime_settings_on_push_consumer",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                deliver_subject: out.g
                ack_policy: explicit
                jelmore:
                  retry_delays: [1s]
            """),
        "jelmore runtime settings, which need a pull consumer",
        "b.yaml:4:5",
    ),
    Case(
        "reserved_metadata_key",
        one("""\
            streams:
              S:
                metadata:
                  jelmore.managed-by: me
            """),
        "metadata key 'jelmore.managed-by' is reserved",
        "t.yaml:4:7",
    ),
    Case(
        "reserved_server_metadata_key",
        one("""\
            streams:
              S:
                metadata: {_nats.req.level: "0"}
            """),
        "metadata key '_nats.req.level' is reserved",
        "t.yaml:3:16",
    ),
    Case(
        "bad_name_characters",
        one("""\
            streams:
              orders.v1: {}
            """),
        "invalid stream name 'orders.v1': it must not contain '.'",
        "t.yaml:2:3",
    ),
    Case(
        "name_too_long",
        one(f"""\
            streams:
              {"S" * 256}: {{}}
            """),
        "it is 256 characters long (at most 255 are allowed)",
        "t.yaml:2:3",
    ),
    Case(
        "name_in_settings",
        one("""\
            streams:
              S:
                name: OTHER
            """),
        "do not write 'name' in the settings: the key 'S' is the stream's name",
        "t.yaml:3:5",
    ),
    Case(
        "yaml_syntax_error_with_its_line",
        one("""\
            streams:
              S:
                subjects: [a.b
                max_age: 1d
            """),
        "YAML syntax error",
        "t.yaml:4",
    ),
    Case(
        "top_level_list",
        one("""\
            - streams
            - consumer_groups
            """),
        "a topology file must be a map with 'streams:' and/or 'consumer_groups:', not a list",
        "t.yaml:1:1",
    ),
    Case(
        "streams_section_is_a_list",
        one("""\
            streams:
              - S
            """),
        "'streams' must be a map of stream names to their settings, not a list",
        "t.yaml:2:3",
    ),
    Case(
        "non_map_settings",
        one("""\
            streams:
              S: [a, b]
            """),
        "the settings of stream 'S' must be a map, not a list",
        "t.yaml:2:6",
    ),
    Case(
        "wrong_type_bool",
        one("""\
            streams:
              S:
                deny_delete: "yes"
            """),
        "deny_delete must be true or false, not 'yes'",
        "t.yaml:3:18",
    ),
    Case(
        "plain_yes_is_text_not_a_boolean",
        one("""\
            streams:
              S:
                deny_delete: yes
            """),
        "deny_delete must be true or false, not 'yes'",
        "t.yaml:3:18",
    ),
    Case(
        "plain_on_is_text_not_a_boolean",
        one("""\
            streams:
              S:
                deny_purge: on
            """),
        "deny_purge must be true or false, not 'on'",
        "t.yaml:3:17",
    ),
    Case(
        "plain_no_is_text_not_a_boolean",
        one("""\
            streams:
              S:
                allow_rollup_hdrs: no
            """),
        "allow_rollup_hdrs must be true or false, not 'no'",
        "t.yaml:3:24",
    ),
    Case(
        "capitalised_true_is_text_not_a_boolean",
        one("""\
            streams:
              S:
                deny_delete: True
            """),
        "deny_delete must be true or false, not 'True'",
        "t.yaml:3:18",
    ),
    Case(
        "unknown_yaml_tag",
        one("""\
            streams:
              S:
                max_age: !foo 1d
            """),
        "cannot read value '1d' tagged '!foo': topology files take no YAML tags",
        "t.yaml:3:14",
    ),
    Case(
        "python_object_tag",
        one("""\
            streams:
              S:
                metadata: !!python/object:os.system {}
            """),
        "cannot read a map tagged '!!python/object:os.system'",
        "t.yaml:3:15",
    ),
    Case(
        "standard_tag_on_a_list",
        one("""\
            streams:
              S:
                subjects: !!seq [a.>]
            """),
        "cannot read a list tagged '!!seq'",
        "t.yaml:3:15",
    ),
    Case(
        "non_specific_tag",
        one("""\
            streams:
              S:
                description: ! text
            """),
        "cannot read value 'text' tagged '!'",
        "t.yaml:3:18",
    ),
    Case(
        "arabic_indic_digit_in_a_duration",
        one("""\
            streams:
              S:
                max_age: ٣s
            """),
        "max_age: invalid duration '٣s': write numbers with the digits 0-9",
        "t.yaml:3:14",
    ),
    Case(
        "arabic_indic_digits_in_a_size",
        one("""\
            streams:
              S:
                max_bytes: ١٠GB
            """),
        "max_bytes: invalid size '١٠GB': write numbers with the digits 0-9",
        "t.yaml:3:16",
    ),
    Case(
        "fullwidth_digits_in_a_count",
        one("""\
            streams:
              S:
                max_msgs: "１００"
            """),
        "max_msgs: invalid count '１００': write numbers with the digits 0-9",
        "t.yaml:3:15",
    ),
    Case(
        "arabic_indic_digits_in_sample_freq",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                sample_freq: "٥٠%"
            """),
        "sample_freq must be a percentage like '50%'",
        "b.yaml:4:18",
    ),
    Case(
        "hex_number_is_text",
        one("""\
            streams:
              S:
                num_replicas: 0x1
            """),
        "num_replicas must be a whole number, not '0x1'",
        "t.yaml:3:19",
    ),
    Case(
        "sexagesimal_number_is_text",
        one("""\
            streams:
              S:
                max_age: 1:30
            """),
        "max_age: invalid duration '1:30'",
        "t.yaml:3:14",
    ),
    Case(
        "alias_without_anchor",
        one("""\
            streams:
              S:
                max_age: *week
            """),
        "the alias '*week' has no anchor '&week' before it",
        "t.yaml:3:14",
    ),
    Case(
        "wrong_type_count",
        one("""\
            streams:
              S:
                max_msgs: [1]
            """),
        "max_msgs must be a whole number or 'unlimited', not a list",
        "t.yaml:3:15",
    ),
    Case(
        "subjects_not_a_list",
        one("""\
            streams:
              S:
                subjects: orders.>
            """),
        "subjects must be a list of subjects, not 'orders.>' (write it as a list: [orders.>])",
        "t.yaml:3:15",
    ),
    Case(
        "setting_without_value",
        one("""\
            streams:
              S:
                max_age:
            """),
        "max_age has no value",
        "t.yaml:3",
    ),
    Case(
        "sealed_stream",
        one("""\
            streams:
              S:
                sealed: true
            """),
        "sealed cannot be true in a topology",
        "t.yaml:3:13",
    ),
    Case(
        "mirror_with_subjects",
        one("""\
            streams:
              M:
                subjects: [m.>]
                mirror:
                  name: ORIGIN
            """),
        "a mirror stream cannot have subjects",
        "t.yaml:3:15",
    ),
    Case(
        "start_sequence_without_policy",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                opt_start_seq: 10
            """),
        "opt_start_seq is used only with deliver_policy: by_start_sequence (deliver_policy is all)",
        "b.yaml:4:20",
    ),
    Case(
        "by_start_time_without_time",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                deliver_policy: by_start_time
            """),
        "deliver_policy: by_start_time needs opt_start_time",
        "b.yaml:4:21",
    ),
    Case(
        "last_per_subject_without_filter",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                deliver_policy: last_per_subject
            """),
        "deliver_policy: last_per_subject needs filter_subject or filter_subjects",
        "b.yaml:4:21",
    ),
    Case(
        "counter_stream_with_workqueue",
        one("""\
            streams:
              C:
                retention: workqueue
                allow_msg_counter: true
            """),
        "a counter stream (allow_msg_counter) needs retention: limits",
        "t.yaml:4:24",
    ),
    Case(
        "schedules_with_discard_new",
        one("""\
            streams:
              S:
                discard: new
                allow_msg_schedules: true
            """),
        "allow_msg_schedules cannot be used with discard: new",
        "t.yaml:4:26",
    ),
    Case(
        "deny_purge_with_rollups",
        one("""\
            streams:
              S:
                deny_purge: true
                allow_rollup_hdrs: true
            """),
        "roll-ups require the purge permission",
        "t.yaml:4:24",
    ),
    Case(
        "backoff_with_retry_delays",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                backoff: [1s]
                jelmore:
                  retry_delays: [2s]
            """),
        "backoff cannot be combined with jelmore.retry_delays",
        "b.yaml:4:14",
    ),
    Case(
        "bad_time",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                deliver_policy: by_start_time
                opt_start_time: yesterday
            """),
        "opt_start_time must be an RFC 3339 time",
        "b.yaml:5:21",
    ),
    Case(
        "stream_setting_on_group",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                retention: limits
            """),
        "unknown consumer group setting 'retention'; it is a stream setting",
        "b.yaml:4:5",
    ),
    Case(
        "second_yaml_document",
        one("""\
            streams: {}
            ---
            consumer_groups: {}
            """),
        "only one YAML document per file",
        "t.yaml:2",
    ),
    Case(
        "unknown_jelmore_key",
        with_streams("""\
            consumer_groups:
              g:
                stream: JELMORE
                jelmore:
                  retry_delay: [1s]
            """),
        "unknown jelmore setting 'retry_delay' (did you mean 'retry_delays'?)",
        "b.yaml:5:7",
    ),
    Case(
        "stream_replace_strategy_unknown_value",
        one("""\
            streams:
              S:
                storage: memory
                jelmore:
                  replace_strategy: migrte
            """),
        "jelmore.replace_strategy must be one of recreate, migrate, not 'migrte'",
        "t.yaml:5:25",
    ),
    Case(
        "stream_jelmore_unknown_key",
        one("""\
            streams:
              S:
                jelmore:
                  replace_strategie: migrate
            """),
        "unknown stream jelmore setting 'replace_strategie' (did you mean 'replace_strategy'?)",
        "t.yaml:4:7",
    ),
    Case(
        "stream_jelmore_not_a_map",
        one("""\
            streams:
              S:
                jelmore: migrate
            """),
        "jelmore must be a map with replace_strategy",
        "t.yaml:3:14",
    ),
]


def _find(diags: list[Diagnostic], message: str) -> Diagnostic:
    for d in diags:
        if message in d.message:
            return d
    shown = "\n".join(d.format() for d in diags)
    raise AssertionError(f"no diagnostic contains {message!r}; got:\n{shown}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_topology_is_reported_at_its_place(case: Case) -> None:
    topology, diags = parse_sources(list(case.files.items()))
    assert topology is None
    diag = _find(diags, case.message)
    assert diag.severity == "error"
    assert diag.location is not None
    assert str(diag.location).startswith(case.where + (":" if case.where.count(":") == 1 else ""))


def test_there_are_enough_bad_topology_cases() -> None:
    assert len(CASES) >= 25


def test_every_problem_is_reported_at_once() -> None:
    text = dedent("""\
        streams:
          S:
            max_mesages: 1
            max_age: 7x
            num_replicas: 9
        consumer_groups:
          g:
            stream: NOPE
            idle_heartbeat: 5s
        """)
    _, diags = parse_sources([("t.yaml", text)])
    messages = " | ".join(d.message for d in diags)
    for part in ("max_mesages", "7x", "num_replicas", "NOPE", "idle_heartbeat"):
        assert part in messages
    assert [d.location for d in diags] == sorted(d.location for d in diags if d.location)


def test_duplicate_key_diagnostic_names_both_places() -> None:
    _, diags = parse_sources([("t.yaml", "streams:\n  S: {}\n  S: {}\n")])
    diag = _find(diags, "duplicate key 'S'")
    assert diag.location is not None and diag.location.line == 3
    assert [r.line for r in diag.related] == [2]


def test_name_defined_in_two_files_names_both_places() -> None:
    _, diags = parse_sources(
        [("b.yaml", "streams:\n  S: {}\n"), ("a.yaml", "\n\nstreams:\n  S: {}\n")]
    )
    diag = _find(diags, "defined twice")
    assert str(diag.location) == "b.yaml:2:3"
    assert [str(r) for r in diag.related] == ["a.yaml:4:3"]
