"""Malformed ``kv_buckets:`` / ``object_stores:`` entries: each one clear error at its
file:line:col, nothing built (docs/buckets.md for the rules)."""

from __future__ import annotations

import pytest

from jelmore_infra.topology.load import parse_sources
from tests.unit.test_bad_topologies import Case, _find, one

CASES = [
    Case(
        "bucket_name_with_a_dot",
        one("""\
            kv_buckets:
              jelmore.config:
                history: 5
            """),
        "invalid KV bucket name 'jelmore.config': use only letters, digits, '-' and '_'",
        "t.yaml:2:3",
    ),
    Case(
        "object_store_name_with_a_wildcard",
        one("""\
            object_stores:
              "files*":
                max_bytes: 1GiB
            """),
        "invalid object store name 'files*'",
        "t.yaml:2:3",
    ),
    Case(
        "the_lock_bucket_name",
        one("""\
            kv_buckets:
              jelmore-infra-locks: {}
            """),
        "is the KV bucket of jelmore-infra's apply lock",
        "t.yaml:2:3",
    ),
    Case(
        "history_zero",
        one("""\
            kv_buckets:
              config:
                history: 0
            """),
        "history must be from 1 to 64 (the number of values kept per key), not 0",
        "t.yaml:3:14",
    ),
    Case(
        "history_above_64",
        one("""\
            kv_buckets:
              config:
                history: 65
            """),
        "history must be from 1 to 64",
        "t.yaml:3:14",
    ),
    Case(
        "negative_ttl",
        one("""\
            kv_buckets:
              config:
                ttl: -5s
            """),
        "ttl: invalid duration '-5s'",
        "t.yaml:3:10",
    ),
    Case(
        "negative_ttl_number",
        one("""\
            object_stores:
              files:
                ttl: -1
            """),
        "ttl",
        "t.yaml:3:10",
    ),
    Case(
        "object_store_setting_on_a_kv_bucket_and_the_reverse",
        one("""\
            object_stores:
              files:
                history: 3
            """),
        "'history' is a KV bucket setting, not an object store setting",
        "t.yaml:3:5",
    ),
    Case(
        "kv_only_setting_on_an_object_store",
        one("""\
            object_stores:
              files:
                max_value_size: 1MiB
            """),
        "'max_value_size' is a KV bucket setting, not an object store setting",
        "t.yaml:3:5",
    ),
    Case(
        "stream_setting_on_a_bucket",
        one("""\
            kv_buckets:
              config:
                max_msgs_per_subject: 5
            """),
        "unknown KV bucket setting 'max_msgs_per_subject'",
        "t.yaml:3:5",
    ),
    Case(
        "derived_setting_is_not_a_topology_setting",
        one("""\
            kv_buckets:
              config:
                allow_msg_ttl: true
            """),
        "unknown KV bucket setting 'allow_msg_ttl'",
        "t.yaml:3:5",
    ),
    Case(
        "replicas_above_five",
        one("""\
            kv_buckets:
              config:
                replicas: 7
            """),
        "replicas must be from 1 to 5, not 7",
        "t.yaml:3:15",
    ),
    Case(
        "storage_choice",
        one("""\
            object_stores:
              files:
                storage: disk
            """),
        "invalid storage 'disk': choose one of file, memory",
        "t.yaml:3:14",
    ),
    Case(
        "compression_is_a_boolean",
        one("""\
            kv_buckets:
              config:
                compression: s2
            """),
        "compression must be true or false",
        "t.yaml:3:18",
    ),
    Case(
        "bucket_section_not_a_map",
        one("""\
            kv_buckets: [config]
            """),
        "'kv_buckets' must be a map of KV bucket names to their settings",
        "t.yaml:1:13",
    ),
    Case(
        "stream_declared_under_a_buckets_stream_name",
        one("""\
            kv_buckets:
              config: {}
            streams:
              KV_config:
                subjects: [config.>]
            """),
        "stream 'KV_config' is the stream of KV bucket 'config' (declared at t.yaml:2:3)",
        "t.yaml:4:3",
    ),
    Case(
        "stream_subjects_overlapping_a_bucket",
        one("""\
            object_stores:
              files: {}
            streams:
              ALL:
                subjects: [">"]
            """),
        "subject '>' of stream 'ALL' overlaps object store 'files' ($O.files.>)",
        "t.yaml:5:16",
    ),
    Case(
        "replace_strategy_bad_value_on_a_kv_bucket",
        one("""\
            kv_buckets:
              config:
                storage: memory
                jelmore:
                  replace_strategy: copy
            """),
        "jelmore.replace_strategy must be one of recreate, migrate, not 'copy'",
        "t.yaml:5:25",
    ),
    Case(
        "unknown_jelmore_setting_on_an_object_store",
        one("""\
            object_stores:
              files:
                jelmore: {replace_strateg: migrate}
            """),
        "unknown object store jelmore setting 'replace_strateg' (did you mean "
        "'replace_strategy'?); the jelmore block of an object store has replace_strategy",
        "t.yaml:3:15",
    ),
    Case(
        "jelmore_block_of_a_bucket_not_a_map",
        one("""\
            kv_buckets:
              config:
                jelmore: migrate
            """),
        "jelmore must be a map with replace_strategy, not 'migrate'",
        "t.yaml:3:14",
    ),
    Case(
        "bucket_defined_twice",
        {
            "a.yaml": "kv_buckets:\n  config:\n    history: 2\n",
            "b.yaml": "kv_buckets:\n  config:\n    history: 3\n",
        },
        "KV bucket 'config' is defined twice",
        "b.yaml:2:3",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_bucket_is_reported_at_its_place(case: Case) -> None:
    topology, diags = parse_sources(list(case.files.items()))
    assert topology is None
    diag = _find(diags, case.message)
    assert diag.severity == "error"
    assert diag.location is not None
    shown = str(diag.location)
    assert shown == case.where or shown.startswith(case.where + ":"), (shown, diag.message)


def test_the_issues_example_loads_with_units_in_wire_form() -> None:
    text = """\
kv_buckets:
  jelmore-config:
    description: Runtime settings
    history: 5
    ttl: 1h
    max_value_size: 1MiB
    max_bytes: 1GiB
    storage: file
    replicas: 1
    compression: true
object_stores:
  jelmore-artifacts:
    description: Session artifacts
    max_bytes: 10GiB
    storage: file
"""
    topology, diags = parse_sources([("t.yaml", text)])
    assert topology is not None, [d.format() for d in diags]
    kv = topology.kv_buckets["jelmore-config"].config
    assert kv["history"] == 5 and kv["ttl"] == 3600 * 10**9
    assert kv["max_value_size"] == 1024**2 and kv["max_bytes"] == 1024**3
    assert kv["compression"] is True
    assert kv["metadata"] == {"jelmore.managed-by": "jelmore-infra"}
    obj = topology.object_stores["jelmore-artifacts"].config
    assert obj["max_bytes"] == 10 * 1024**3 and obj["storage"] == "file"
    assert not topology.streams
