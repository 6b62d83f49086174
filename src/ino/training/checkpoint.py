"""Training checkpoints: plain dicts of tensors and numbers, written atomically, the last K kept.

Everything in a checkpoint loads with ``torch.load(weights_only=True)`` (no pickled classes): the configuration
is stored as plain data. A checkpoint is written to a temporary name and renamed, so a crash while saving leaves
the previous one intact; restarting a run picks the newest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ino.errors import InoError
from ino.utils.atomic import atomic_write

_NAME = re.compile(r"^step-(\d{8})\.pt$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(run_dir: str | Path, state: dict[str, Any], step: int, keep_last: int) -> Path:
    """Write ``checkpoints/step-<step>.pt`` atomically and delete all but the newest ``keep_last``."""
    path = checkpoint_dir(run_dir) / f"step-{step:08d}.pt"
    atomic_write(path, lambda stream: torch.save(state, stream))
    for old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's dict; a file that is not one ends with a message naming it."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise InoError(f"{path}: no such checkpoint") from None
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise InoError(f"{path}: not a readable training checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or "student" not in state or "teacher" not in state:
        raise InoError(f"{path}: not an ino training checkpoint (no student/teacher entries)")
    return state
