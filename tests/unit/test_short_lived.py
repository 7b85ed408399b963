"""``plan`` and ``apply`` end without the interpreter's final garbage collection.

With the collector off for the whole command (``short_lived``), every object it made is still
there at exit, and the interpreter's last collection would walk them all (tens of milliseconds
after a large apply) only to free what the operating system frees anyway.
"""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import os
from jelmore_infra.cli.common import short_lived
from jelmore_infra.cli.plan_cmd import short_lived_to_the_end

class Cycle:
    def __del__(self):
        os.write(1, b"collected\\n")

{setup}()
garbage = Cycle()
garbage.me = garbage
del garbage
print("done", flush=True)
"""


def run(setup: str) -> list[str]:
    code = PROGRAM.format(setup=setup)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_a_short_lived_command_leaves_its_objects_out_of_the_collection_at_exit() -> None:
    assert run("short_lived_to_the_end") == ["done"]


def test_without_it_the_collection_at_exit_would_find_them() -> None:
    # The check above can fail: the same program only turning the collector off is collected.
    assert run("short_lived") == ["done", "collected"]
