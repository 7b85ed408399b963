"""Impact records as plan messages: the record, its message kind and field, its numbers, and
its sentence from :func:`jelmore_infra.render.impact.impact_text` (so a saved plan and the apply
gates carry the same text every view shows).

Pure: no I/O.
"""

from __future__ import annotations

from jelmore_infra.impact import Impact
from jelmore_infra.plan import PlanMessage
from jelmore_infra.render.impact import impact_text


def impact_message(record: Impact) -> PlanMessage:
    """The warning a reviewer reads for ``record``."""
    return PlanMessage(
        "warning",
        record.MESSAGE_KIND,
        impact_text(record),
        record.address,
        record.field,
        record.data(),
        record,
    )
