"""The one apply order, shared by the plan (the order of its changes) and apply (its phases).

Kinds have a dependency tier (streams 0, consumers 1; see :mod:`jelmore_infra.kinds`). Deletes
come first, the highest tier first (consumers before their streams); then creates, replaces and
updates, the lowest tier first (streams before their consumers). For streams and consumers that
gives four phases: consumer deletes, stream deletes, stream changes, consumer changes. Within a
phase changes are sorted by address, except that a resource comes after the resources of its own
kind it depends on (a mirror or sourcing stream after its origin). Apply runs the changes of one
phase concurrently, in runs that never hold a change together with one it depends on, and starts
a run only when the one before it has finished.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from jelmore_infra.kinds import KINDS, kind_of
from jelmore_infra.plan import Action, ResourceChange

_TIERS: tuple[int, ...] = tuple(sorted({k.tier for k in KINDS}))


def phase_of(change: ResourceChange) -> int:
    """The apply phase of ``change`` (0 first): deletes by tier downwards, then the rest upwards."""
    position = _TIERS.index(kind_of(change).tier)
    if change.action is Action.DELETE:
        return len(_TIERS) - 1 - position
    return len(_TIERS) + position


def order_changes(changes: Iterable[ResourceChange]) -> list[ResourceChange]:
    """``changes`` in apply order (see the module docstring)."""
    groups: dict[int, list[ResourceChange]] = {}
    for change in changes:
        groups.setdefault(phase_of(change), []).append(change)
    ordered: list[ResourceChange] = []
    for phase in sorted(groups):
        ordered.extend(_dependency_order(sorted(groups[phase], key=lambda c: c.address)))
    return ordered


def phases(changes: Sequence[ResourceChange]) -> list[list[ResourceChange]]:
    """Consecutive runs of changes in the same phase, in plan order (apply's unit of work).

    A change that depends on one already in the run (a mirror or sourcing stream created with
    its origin) starts a new run, so its origin exists before it: a source set up before its
    origin exists was seen to wait about 40 s for the server's next attempt (2.10.26).
    """
    runs: list[list[ResourceChange]] = []
    in_run: set[tuple[str, str]] = set()  # (kind, name) of the last run's changes
    for change in changes:
        needs = {(change.kind, name) for name in kind_of(change).dependencies(change)}
        if runs and phase_of(runs[-1][-1]) == phase_of(change) and not needs & in_run:
            runs[-1].append(change)
        else:
            runs.append([change])
            in_run = set()
        in_run.add((change.kind, change.name))
    return runs


def _dependency_order(items: Sequence[ResourceChange]) -> list[ResourceChange]:
    """``items`` in their order, but a resource after those of its kind it depends on."""
    by_name = {(c.kind, c.name): c for c in items}
    done: set[str] = set()
    out: list[ResourceChange] = []

    def visit(c: ResourceChange, stack: set[str]) -> None:
        key = c.address
        if key in done or key in stack:
            return
        stack.add(key)
        for dep in sorted(kind_of(c).dependencies(c)):
            found = by_name.get((c.kind, dep))
            if found is not None:
                visit(found, stack)
        done.add(key)
        out.append(c)

    for c in items:
        visit(c, set())
    return out
