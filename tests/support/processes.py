"""Other processes for fault-injection tests: a second writer that holds an output folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOLD = """
import sys, time
from ino.utils.outputs import exclusive
with exclusive(sys.argv[1], sys.argv[2]):
    print("locked", flush=True)
    time.sleep(120)
"""


def hold_folder(folder: Path, purpose: str = "holder test") -> subprocess.Popen:
    """A process that holds ``folder`` as its writer until killed (as a running ``ino`` command would)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), purpose], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process
