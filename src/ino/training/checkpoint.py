"""Training checkpoints: plain dicts of tensors and numbers, written atomically, checked, the last K kept.

Everything in a checkpoint loads with ``torch.load(weights_only=True)`` (no pickled classes): the configuration is
stored as plain data. What survives:

- a crash or kill -9 while saving: the checkpoint is written to a temporary name and renamed, so the previous one
  stays intact (a temporary file left behind is removed by the next save);
- a diverging run: a checkpoint is never written with non-finite weights, so the newest one is always usable;
- a damaged file (truncated, or bytes flipped inside a tensor): every checkpoint carries a SHA-256 digest of its
  contents, verified when loaded; resuming then falls back to the previous intact checkpoint, with a warning.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ino.errors import InoError
from ino.utils.atomic import atomic_write
from ino.utils.checksum import digest, verify_digest

_NAME = re.compile(r"^step-(\d{8})\.pt$")
#: the temporary files of interrupted saves (``atomic_write`` names them ``.<name>.<random>``)
_TEMPORARY = ".step-*.pt.*"
log = logging.getLogger(__name__)


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


def non_finite(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors of a state dict that hold NaN or infinity."""
    return [key for key, t in state.items() if torch.is_floating_point(t) and not bool(torch.isfinite(t).all())]


def save_checkpoint(run_dir: str | Path, state: dict[str, Any], step: int, keep_last: int) -> Path:
    """Write ``checkpoints/step-<step>.pt`` atomically with its digest, and delete all but the newest ``keep_last``.

    Refuses (``InoError``) when the weights are not finite: the newest checkpoint must stay the last good state.
    """
    bad = [f"{part}.{key}" for part in ("student", "teacher") for key in non_finite(state[part])]
    if bad:
        raise InoError(f"step {step}: {len(bad)} weight tensors hold NaN or infinity ({', '.join(bad[:3])}, ...)")
    folder = checkpoint_dir(run_dir)
    path = folder / f"step-{step:08d}.pt"
    for stale in folder.glob(_TEMPORARY):  # left by a save that was killed: ours by name
        stale.unlink(missing_ok=True)
    state = {**state, "digest": digest(state)}
    try:
        atomic_write(path, lambda stream: torch.save(state, stream))
    except RuntimeError as error:  # torch reports a full disk as an error of its zip writer
        free = shutil.disk_usage(folder).free / 2**20
        reason = str(error).strip().splitlines()[0]
        raise InoError(f"{path}: cannot write the checkpoint ({free:.0f} MiB free on its disk; {reason})") from None
    for old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's dict, its digest verified; a file that is not one, or was damaged, ends with a message."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise InoError(f"{path}: no such checkpoint") from None
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise InoError(f"{path}: not a readable training checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or "student" not in state or "teacher" not in state:
        raise InoError(f"{path}: not an ino training checkpoint (no student/teacher entries)")
    return verify_digest(state, path)


def latest_intact_checkpoint(run_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads and verifies, with its state; damaged newer ones are passed over with a
    warning. None for a run without checkpoints; an error when none of them is intact."""
    found = list_checkpoints(run_dir)
    for path in reversed(found):
        try:
            return path, load_checkpoint(path)
        except InoError as error:
            log.warning("warning: %s; falling back to the previous checkpoint", error)
    if found:
        raise InoError(f"{checkpoint_dir(run_dir)}: none of the {len(found)} checkpoints is intact")
    return None
