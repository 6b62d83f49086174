"""A task folder's record, ``<out>/<model>/<task>/suite-task.json``: the settings its results were made with and,
once scored, the scores, card and timings.

Written (temp-then-rename) when a task starts, with status ``started``, and again when it is scored, status
``scored``. A rerun with the same settings skips a scored task and resumes a started one (its run skips the
sequences it finished); a rerun with other settings is refused before any work, naming what changed, rather than
mixing results made two ways in one table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ino.errors import InoError
from ino.propagation.run_state import changed_keys
from ino.utils.atomic import atomic_write_text

RECORD_NAME = "suite-task.json"
STARTED, SCORED = "started", "scored"


def normalised(value: object) -> object:
    """``value`` as JSON reads it back (tuples become lists), so that a stored copy compares equal."""
    return json.loads(json.dumps(value))


def read_record(folder: Path) -> dict[str, object] | None:
    """The folder's record, None when there is none; an unreadable one stops the run."""
    path = folder / RECORD_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or record.get("status") not in (STARTED, SCORED) or "settings" not in record:
            raise ValueError("not a suite task record")
    except (OSError, ValueError) as error:
        raise InoError(f"{path}: unreadable suite record ({error}); delete that task folder to redo it") from None
    return record


def check_record(folder: Path, settings: Mapping[str, object]) -> str | None:
    """The status of the folder's task under ``settings`` (None: not started); other settings stop the run."""
    record = read_record(folder)
    if record is None:
        return None
    if record["settings"] != normalised(settings):
        changed = changed_keys(record["settings"], normalised(settings))  # type: ignore[arg-type]
        raise InoError(
            f"{folder} holds results made with other settings (changed: {', '.join(changed)}); "
            "choose another --out or delete that folder"
        )
    return str(record["status"])


def write_record(folder: Path, record: Mapping[str, object]) -> Path:
    """Write the record atomically (the task folder's one writer holds it)."""
    return atomic_write_text(folder / RECORD_NAME, json.dumps(normalised(record), indent=1) + "\n")
