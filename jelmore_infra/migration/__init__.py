"""Data-preserving stream migration (``replace_strategy: migrate``).

:mod:`~jelmore_infra.migration.steps` is pure: the plan's view (:func:`migration_steps`, refusals)
and where an interrupted run stands. :mod:`~jelmore_infra.migration.executor` runs it against a
server (imports nats; load it only when applying). docs/migration.md describes it for users.
"""
