"""Atomic file writes: a temporary file in the target folder, renamed over the target when complete.

A crash or a full disk never leaves a truncated file under the final name, and a file that already exists is
replaced only by a complete new one. The temporary file is given the permissions a plain ``open`` would
(``mkstemp`` creates it 0600).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ino.errors import InoError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(stream)`` on a binary temporary file, then rename it to ``path``; returns ``path``.

    A file-system error (full disk, read-only folder, permission) becomes one :class:`InoError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as error:
        raise InoError(f"{path}: cannot write ({error.strerror or error})") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise InoError(f"{path}: cannot write ({error.strerror or error})") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically (no newline translation)."""
    return atomic_write(path, lambda stream: stream.write(text.encode()))
