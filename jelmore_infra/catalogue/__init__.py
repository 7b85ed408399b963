"""The event catalogue: event types with payload schemas, as declared (``events:``) and as stored.

- :mod:`~jelmore_infra.catalogue.compat`: the schema diff and the compatibility verdict of a
  payload schema change under an event's ``compatibility`` mode (pure).
- :mod:`~jelmore_infra.catalogue.entry`: how an event type is stored in the catalogue bucket and
  the headers that tie a message to its schema version (pure).

Pure: no I/O in this package; the live read and the runtime do the reading.
"""
