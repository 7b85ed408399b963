"""The ``--env NAME`` option (environment variable ``JELMORE_ENV``): which environment of the
topology directory (``environments/<NAME>.yaml``) a command works on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

ENV_VAR = "JELMORE_ENV"


def env_option(func: F) -> F:
    """Add ``--env NAME``; the command receives ``env_name`` (``None`` without one)."""
    from jelmore_infra.cli.common import ENVIRONMENT_NAME

    return click.option(
        "--env",
        "env_name",
        envvar=ENV_VAR,
        default=None,
        type=ENVIRONMENT_NAME,
        metavar="NAME",
        help=f"Environment: topology/environments/NAME.yaml overlays the topology (env {ENV_VAR}).",
    )(func)
