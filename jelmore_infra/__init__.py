"""jelmore-infra: declarative infrastructure-as-code for NATS JetStream.

Data flows one way: topology files are loaded and validated into a desired model
(``jelmore_infra.topology``), the live server is read into a live model (``jelmore_infra.live``),
the two are diffed into a plan (``jelmore_infra.diff``, ``jelmore_infra.plan``), the plan is
rendered (``jelmore_infra.render``) and applied (``jelmore_infra.apply``). The runtime shim for
applications lives apart in ``jelmore_infra.runtime``.

This module stays import-light so the command line starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
