"""Topology files → validated desired model.

``load_topology(dir)`` reads every ``*.yaml`` file of a topology directory, validates it (schema
and semantic checks, every problem at once) and returns the :class:`~jelmore_infra.model.Topology`,
or raises :class:`~jelmore_infra.errors.TopologyError` carrying every diagnostic.
``check_topology(dir)`` returns the model (or ``None``) and the diagnostics instead of raising.
``parse_sources([(filename, text), ...])`` does the same without touching files.
"""

from __future__ import annotations

from jelmore_infra.topology.load import check_topology, load_topology, parse_sources

__all__ = ["check_topology", "load_topology", "parse_sources"]
