"""A "kitchen sink" live state per server version: streams and consumers that set every field the
version knows, created through the raw API (as another tool or a person would have made them).

Used by the version-matrix tests: import → plan shows no changes; change one field → the plan
shows exactly that field with the right action.
"""

from __future__ import annotations

from typing import Any

S = 1_000_000_000
Version = tuple[int, int, int]


def streams(version: Version) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "name": "KS_LIMITS",
            "description": "every limit",
            "subjects": ["ks.limits.>", "ks.other"],
            "retention": "limits",
            "max_consumers": 20,
            "max_msgs": 1000,
            "max_bytes": 10 * 1024 * 1024,
            "max_age": 3600 * S,
            "max_msgs_per_subject": 10,
            "max_msg_size": 4096,
            "discard": "new",
            "discard_new_per_subject": True,
            "storage": "file",
            "num_replicas": 1,
            "duplicate_window": 30 * S,
            "compression": "s2",
            "allow_direct": True,
            "allow_rollup_hdrs": True,
            "deny_delete": True,
            "republish": {"src": "ks.limits.>", "dest": "rp.limits.>", "headers_only": True},
            "consumer_limits": {"inactive_threshold": 3600 * S, "max_ack_pending": 500},
            "metadata": {"team": "platform", "tier": "gold"},
        },
        {
            "name": "KS_INTEREST",
            "subjects": ["ks.interest.>"],
            "retention": "interest",
            "storage": "memory",
            "max_age": 600 * S,
            "deny_purge": True,
            "no_ack": False,
            "first_seq": 100,
            "subject_transform": {"src": "ks.interest.in.>", "dest": "ks.interest.out.>"},
        },
        {
            "name": "KS_WQ",
            "subjects": ["ks.wq.*"],
            "retention": "workqueue",
            "discard": "old",
            "max_msgs": 50_000,
        },
        {
            "name": "KS_MIRROR",
            "mirror": {"name": "KS_LIMITS", "filter_subject": "ks.limits.>"},
            "mirror_direct": True,
            "max_age": 86400 * S,
        },
        {
            "name": "KS_SOURCED",
            "subjects": ["ks.sourced.>"],
            "sources": [
                {"name": "KS_LIMITS", "filter_subject": "ks.limits.a.>"},
                {
                    "name": "KS_WQ",
                    "subject_transforms": [
                        {"src": "ks.wq.*", "dest": "ks.sourced.wq.{{wildcard(1)}}"}
                    ],
                },
            ],
        },
    ]
    if version >= (2, 11, 0):
        out.append(
            {
                "name": "KS_TTL",
                "subjects": ["ks.ttl.>"],
                "allow_msg_ttl": True,
                "subject_delete_marker_ttl": 5 * S,
                "allow_rollup_hdrs": True,
                "max_age": 3600 * S,
            }
        )
    if version >= (2, 12, 0):
        out.append(
            {
                "name": "KS_COUNTER",
                "subjects": ["ks.counter.>"],
                "allow_msg_counter": True,
                "allow_direct": True,
            }
        )
        out.append(
            {
                "name": "KS_FEATURES",
                "subjects": ["ks.features.>"],
                "allow_msg_schedules": True,
                "allow_rollup_hdrs": True,
                "persist_mode": "async",
                "storage": "file",
            }
        )
        out.append(
            {
                "name": "KS_ATOMIC",
                "subjects": ["ks.atomic.>"],
                "allow_atomic": True,
                **({"allow_batched": True} if version >= (2, 14, 0) else {}),
            }
        )
    return out


def consumers(version: Version) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = [
        (
            "KS_LIMITS",
            {
                "durable_name": "pull_everything",
                "description": "pull with every limit",
                "deliver_policy": "by_start_sequence",
                "opt_start_seq": 5,
                "ack_policy": "explicit",
                "ack_wait": 10 * S,
                "max_deliver": 5,
                "backoff": [10 * S, 20 * S],
                "filter_subjects": ["ks.limits.a.>", "ks.limits.b.>"],
                "replay_policy": "original",
                "sample_freq": "50%",
                "max_waiting": 100,
                "max_ack_pending": 200,
                "headers_only": True,
                "max_batch": 10,
                "max_expires": 30 * S,
                "max_bytes": 1024 * 1024,
                "inactive_threshold": 1800 * S,
                "mem_storage": True,
                "metadata": {"owner": "ks"},
            },
        ),
        (
            "KS_LIMITS",
            {
                "durable_name": "push_all",
                "deliver_policy": "new",
                "ack_policy": "all",
                "deliver_subject": "ks.deliver.push_all",
                "deliver_group": "workers",
                "idle_heartbeat": 5 * S,
                "flow_control": True,
                "rate_limit_bps": 1_000_000,
                "max_ack_pending": 100,
            },
        ),
        (
            "KS_LIMITS",
            {
                "durable_name": "last_per_subject",
                "deliver_policy": "last_per_subject",
                "filter_subject": "ks.limits.>",
                "ack_policy": "none",
            },
        ),
        (
            "KS_LIMITS",
            {
                "durable_name": "by_time",
                "deliver_policy": "by_start_time",
                "opt_start_time": "2026-01-01T00:00:00Z",
                "ack_policy": "explicit",
            },
        ),
        (
            "KS_LIMITS",
            {"durable_name": "last_msg", "deliver_policy": "last", "ack_policy": "explicit"},
        ),
        ("KS_WQ", {"durable_name": "wq_worker", "ack_policy": "explicit", "max_deliver": 3}),
        ("KS_INTEREST", {"durable_name": "interest_reader", "ack_policy": "explicit"}),
    ]
    if version >= (2, 11, 0):
        out.append(
            (
                "KS_LIMITS",
                {
                    "durable_name": "overflow",
                    "ack_policy": "explicit",
                    "priority_policy": "overflow",
                    "priority_groups": ["jobs"],
                },
            )
        )
        out.append(
            (
                "KS_LIMITS",
                {
                    "durable_name": "pinned",
                    "ack_policy": "explicit",
                    "priority_policy": "pinned_client",
                    "priority_groups": ["jobs"],
                    "priority_timeout": 60 * S,
                },
            )
        )
    if version >= (2, 12, 0):
        out.append(
            (
                "KS_LIMITS",
                {
                    "durable_name": "prioritized",
                    "ack_policy": "explicit",
                    "priority_policy": "prioritized",
                    "priority_groups": ["jobs"],
                },
            )
        )
    return out


#: Out-of-band changes the server accepts in place: (address, field, new value). The plan must
#: show exactly that field as an in-place update back to the topology's value.
def in_place_edits(version: Version) -> list[tuple[str, str, Any]]:
    edits: list[tuple[str, str, Any]] = [
        ("stream.KS_LIMITS", "description", "changed"),
        ("stream.KS_LIMITS", "subjects", ["ks.limits.>", "ks.other", "ks.more"]),
        ("stream.KS_LIMITS", "max_msgs", 2000),
        ("stream.KS_LIMITS", "max_bytes", 20 * 1024 * 1024),
        ("stream.KS_LIMITS", "max_age", 7200 * S),
        ("stream.KS_LIMITS", "max_msgs_per_subject", 20),
        ("stream.KS_LIMITS", "max_msg_size", 8192),
        ("stream.KS_LIMITS", "duplicate_window", 60 * S),
        ("stream.KS_LIMITS", "allow_direct", False),
        ("stream.KS_LIMITS", "republish", {"src": "ks.limits.>", "dest": "rp2.limits.>"}),
        (
            "stream.KS_LIMITS",
            "consumer_limits",
            {"inactive_threshold": 7200 * S, "max_ack_pending": 600},
        ),
        ("stream.KS_LIMITS", "metadata", {"team": "platform", "tier": "silver"}),
        ("stream.KS_LIMITS", "compression", "none"),
        ("stream.KS_INTEREST", "retention", "limits"),
        (
            "stream.KS_INTEREST",
            "subject_transform",
            {"src": "ks.interest.in.>", "dest": "ks.interest.o2.>"},
        ),
        ("stream.KS_WQ", "discard", "new"),
        (
            "stream.KS_SOURCED",
            "sources",
            [{"name": "KS_LIMITS", "filter_subject": "ks.limits.a.>"}],
        ),
        ("consumer.KS_LIMITS.pull_everything", "description", "changed"),
        ("consumer.KS_LIMITS.pull_everything", "max_deliver", 6),
        ("consumer.KS_LIMITS.pull_everything", "backoff", [10 * S, 30 * S]),
        ("consumer.KS_LIMITS.pull_everything", "filter_subjects", ["ks.limits.a.>"]),
        ("consumer.KS_LIMITS.pull_everything", "max_ack_pending", 300),
        ("consumer.KS_LIMITS.pull_everything", "headers_only", False),
        ("consumer.KS_LIMITS.pull_everything", "max_batch", 20),
        ("consumer.KS_LIMITS.pull_everything", "max_expires", 60 * S),
        ("consumer.KS_LIMITS.pull_everything", "max_bytes", 2 * 1024 * 1024),
        ("consumer.KS_LIMITS.pull_everything", "inactive_threshold", 2400 * S),
        ("consumer.KS_LIMITS.pull_everything", "sample_freq", "20%"),
        ("consumer.KS_LIMITS.pull_everything", "metadata", {"owner": "someone-else"}),
        ("consumer.KS_LIMITS.push_all", "rate_limit_bps", 2_000_000),
        ("consumer.KS_LIMITS.push_all", "deliver_group", "other-workers"),
        ("consumer.KS_WQ.wq_worker", "max_deliver", 4),
    ]
    if version >= (2, 11, 0):
        edits.append(("stream.KS_TTL", "subject_delete_marker_ttl", 10 * S))
        edits.append(("consumer.KS_LIMITS.pinned", "priority_timeout", 120 * S))
    if version >= (2, 12, 5):
        edits.append(("stream.KS_LIMITS", "max_consumers", 30))
    if version >= (2, 12, 0):
        edits.append(("stream.KS_ATOMIC", "allow_atomic", False))
    if version >= (2, 14, 0):
        edits.append(("stream.KS_ATOMIC", "allow_batched", False))
    return edits
