"""The diff: desired topology against live server state, producing the plan.

- :mod:`~jelmore_infra.diff.builder`: :func:`build_plan`, the loop over resource kinds;
- :mod:`~jelmore_infra.diff.changes`: set algebra over addresses, field by field deltas;
- :mod:`~jelmore_infra.diff.rules`: version gates and how each field change is carried out
  (:class:`~jelmore_infra.fields.Update`), as plan diagnostics;
- :mod:`~jelmore_infra.diff.impact`: typed data-impact records as plan messages;
- :mod:`~jelmore_infra.diff.order`: the phase order shared by plan and apply.

The rules of each kind live in :mod:`jelmore_infra.kinds`; the server facts behind them are
listed in ``docs/server-semantics.md``.

Pure: no I/O, no network, no clock (``now`` is a parameter).
"""

from __future__ import annotations

from jelmore_infra.diff.builder import build_plan

__all__ = ["build_plan"]
