"""Output folders: one writer at a time, never inside an input dataset, and only what ``ino`` made is deleted.

- :func:`exclusive` holds an advisory lock (``flock`` on ``<folder>/.ino-lock``, removed when the writer is done)
  while a command writes there. A second writer stops at once with "in use by pid N (...) since ..."; a lock left by
  a process that died is free, because the kernel drops a process's locks with it. Re-entrant within one process (a
  command that calls a library function writing to the same folder holds it once).
- :func:`refuse_inside` stops an output folder that lies inside an input dataset's data folders (writing masks into
  ``Annotations/`` would replace the ground truth).
- :func:`mark_made` / :func:`remove_made` / :func:`renew`: a folder ``ino`` creates to rebuild later carries a marker
  file, and only a marked folder is ever removed; anything else with that name stops the command instead
  (:func:`claim_folder` checks this before any work, for a command that replaces the folder only at its end).
- :func:`claim_file` / :func:`record_file`: the same rule for single files. A file is ``ino``'s when it lies in a
  marked folder or its folder's record (``.ino-files``) names it with the size and modification time it had when
  ``ino`` wrote it (a file the user put there since, under the same name, is theirs again). Anything else is
  replaced only when the user says ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ino.errors import InoError

LOCK_NAME = ".ino-lock"
MARK_NAME = ".made-by-ino"
RECORD_NAME = ".ino-files"
_held: dict[Path, int] = {}
_held_guard = threading.Lock()


def make_folder(folder: Path) -> Path:
    """``folder`` and its parents, or one clear message (read-only place, a file in the way, a full disk)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InoError(f"{folder}: cannot create the output folder ({error.strerror or error})") from None
    return folder


def writable_folder(folder: str | Path, what: str = "--out") -> Path:
    """``folder`` created if needed and shown writable by writing (and removing) a probe file, so that a command
    fails at its start, not after its work, on a file in the way, a read-only place or a full disk."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InoError(f"{what} {folder} is a file, not a folder")
    make_folder(folder)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise InoError(f"{what} {folder}: cannot write there ({error.strerror or error})") from None
    return folder


@contextlib.contextmanager
def exclusive(folder: str | Path, purpose: str = "ino") -> Iterator[Path]:
    """Hold ``folder`` (created if needed) as its only writer for the block; see the module docstring."""
    folder = make_folder(Path(folder))
    key = folder.resolve()
    with _held_guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield folder
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    path = folder / LOCK_NAME
    handle = _lock(path, folder)
    try:
        os.write(handle, f"pid {os.getpid()} ({purpose}) since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        with _held_guard:
            _held[key] = 1
        try:
            yield folder
        finally:
            with _held_guard:
                del _held[key]
            path.unlink(missing_ok=True)  # while still locked: a waiting process then retries on a fresh file
    finally:
        os.close(handle)


def _lock(path: Path, folder: Path) -> int:
    """An open, locked descriptor of the lock file that is still the one at ``path`` (its holder may have removed
    the file it locked just before we opened it: then try again on the new one)."""
    while True:
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise InoError(f"{folder}: cannot write in the output folder ({error.strerror or error})") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(handle, 200).decode(errors="replace").strip() or "another process"
            os.close(handle)
            raise InoError(f"{folder} is in use by {holder}; wait for it to finish or choose another folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(handle, 0)
            return handle
        os.close(handle)


def refuse_inside(output: str | Path, inputs: Iterable[Path], what: str = "--out") -> None:
    """Stop when ``output`` is one of ``inputs`` (data folders of a dataset) or lies inside one."""
    out = Path(output).resolve()
    for folder in inputs:
        root = Path(folder).resolve()
        if out == root or root in out.parents:
            raise InoError(
                f"{what} {output} lies inside the input data folder {folder}: writing there could replace the "
                "dataset's own files; choose a folder outside it"
            )


def mark_made(folder: Path) -> Path:
    """Create ``folder`` (and parents) and mark it as made by ``ino``, so that a later run may remove it."""
    make_folder(folder)
    (folder / MARK_NAME).touch()
    return folder


def renew(folder: Path) -> Path:
    """``folder`` empty and marked: the previous one removed if ``ino`` made it (else the command stops)."""
    remove_made(folder)
    return mark_made(folder)


def is_made(folder: Path) -> bool:
    """Whether ``folder`` is one ``ino`` made (it holds the marker), so that ``ino`` may replace it."""
    return (folder / MARK_NAME).is_file()


def claim_folder(folder: Path) -> Path:
    """``folder`` when ``ino`` may replace it (absent, or made by ``ino``); else the command stops.

    For a command that replaces the folder only at its end: the check comes before any work.
    """
    if folder.exists() and not is_made(folder):
        raise InoError(f"{folder} exists and was not made by ino: move it away or choose another output folder")
    return folder


def remove_made(folder: Path) -> None:
    """Remove ``folder`` if ``ino`` made it (it holds the marker); a folder without the marker stops the command."""
    if claim_folder(folder).exists():
        shutil.rmtree(folder)


def written_by_ino(path: Path) -> bool:
    """Whether ``path`` is a file ``ino`` wrote: in a marked folder, or recorded there unchanged since."""
    if is_made(path.parent):
        return True
    entry = _record(path.parent).get(path.name)
    try:
        stat = path.stat()
    except OSError:
        return False
    return entry == [stat.st_size, stat.st_mtime_ns]


def claim_file(path: str | Path, *, overwrite: bool = False, what: str = "--out") -> Path:
    """``path`` when ``ino`` may write it: absent, written by ``ino`` before, or ``overwrite`` given.

    Called before any work, so that a refusal costs nothing; a folder in the way is refused even with
    ``overwrite`` (a file never replaces a folder).
    """
    path = Path(path)
    if path.is_dir():
        raise InoError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not overwrite and not written_by_ino(path):
        raise InoError(
            f"{what} {path} exists and was not written by ino: move it away, choose another output, or pass "
            "--overwrite to replace it"
        )
    return path


def record_file(path: str | Path) -> Path:
    """Note in its folder's record that ``ino`` wrote ``path`` (now complete), so a later run may replace it.

    Nothing is recorded inside a marked folder, which is ``ino``'s as a whole. The record is rewritten atomically;
    its writers are the folder's one writer (:func:`exclusive`) or commands writing one named file.
    """
    from ino.utils.atomic import atomic_write_text

    path = Path(path)
    if is_made(path.parent):
        return path
    record = _record(path.parent)
    stat = path.stat()
    record[path.name] = [stat.st_size, stat.st_mtime_ns]
    atomic_write_text(path.parent / RECORD_NAME, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def _record(folder: Path) -> dict[str, list[int]]:
    """The folder's record of files ``ino`` wrote (name -> [size, mtime_ns]); an unreadable one records nothing."""
    try:
        loaded = json.loads((folder / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
