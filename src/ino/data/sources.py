"""Which videos a training source names: folders, glob patterns and INO-style csv/txt lists.

Shared by training (:mod:`ino.data.clips`) and ``ino prepare``; it imports neither torch nor a decoder, so that
listing a collection stays cheap in every process.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from ino.data.videos import IMAGE_SUFFIXES
from ino.errors import InoError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")
LIST_SUFFIXES = (".csv", ".txt")


class ClipWarning(UserWarning):
    """A video left out of training (missing, unreadable, too short) or a clip that failed to decode."""


class VideoList(list):
    """The listed videos (a plain ``list[Path]``) plus ``missing``: list entries that do not exist, and ``counts``:
    {video: (n_frames, fps)} for those a list gave with their frame counts, which need no probe."""

    missing: list[Path]
    counts: dict[Path, tuple[int, float]]


def _is_frame_folder(folder: Path) -> bool:
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return bool(entries) and all(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in entries)


def _scan(folder: Path) -> list[Path]:
    """Video files under ``folder`` (recursively) and folders holding only images, which are one video each."""
    if _is_frame_folder(folder):
        return [folder]
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):  # hidden files, including interrupted atomic writes
            continue
        if entry.is_dir():
            found.extend(_scan(entry))
        elif entry.suffix.lower() in VIDEO_SUFFIXES:
            found.append(entry)
    return found


def _number(field: str) -> Fraction | None:
    """``field`` as an exact number ("300", "29.97", "30000/1001"), or None when it is not one."""
    try:
        return Fraction(field)
    except (ValueError, ZeroDivisionError):
        return None


def _counts(fields: list[str], where: str) -> tuple[int, float]:
    """(n_frames, fps) of a ``path,n_frames,fps`` line, or one InoError naming the file, line and field."""
    n_frames, fps = (_number(fields[1]), _number(fields[2])) if len(fields) >= 3 else (None, None)
    if n_frames is None or fps is None:
        raise InoError(f"{where}: expected path,n_frames,fps as on the list's other lines, got {','.join(fields)!r}")
    if n_frames.denominator != 1 or n_frames < 0:
        raise InoError(f"{where}: n_frames must be a whole number >= 0, got {fields[1]!r}")
    if fps <= 0:
        raise InoError(f"{where}: fps must be a positive number, got {fields[2]!r}")
    return int(n_frames), float(fps)


def _read_list(list_file: Path, missing: list[Path], counts: dict[Path, tuple[int, float]]) -> list[Path]:
    """INO's csv format: the first comma-separated field of each line is a path, relative to the list file's
    folder or, failing that, to the working directory (INO's ``./data/Charades_v1_480/x.mp4`` lines in
    ``meta/*.csv`` were relative to the folder its training script ran in); other fields are ignored.

    A list whose lines read ``path,n_frames,fps`` (numbers in the second and third fields, after an optional
    header line) gives each video's frame count and rate, which are then put in ``counts`` and trusted instead of
    a probe: every line of such a list must have them, so that a typo is one clear error, not a silent probe.
    """
    entries = []
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), 1):
        fields = [field.strip() for field in line.split(",")]
        if fields[0] and not fields[0].startswith("#"):
            entries.append((f"{list_file} line {number}", fields))
    # the first two lines decide (the first may be a header); _counts then checks every line
    counted = [len(f) >= 3 and _number(f[1]) is not None and _number(f[2]) is not None for _, f in entries[:2]]
    with_counts = any(counted)
    if with_counts and not counted[0]:
        entries = entries[1:]  # the header
    found = []
    for where, fields in entries:
        entry = fields[0]
        given = _counts(fields, where) if with_counts else None
        path = list_file.parent / entry  # an absolute entry stays itself
        if not path.exists() and Path(entry).exists():
            path = Path(entry)
        if path.exists():
            found.append(Path(os.path.normpath(path)))
            if given is not None:
                counts[found[-1]] = given
        else:
            missing.append(path)
            warnings.warn(f"{path}: listed in {list_file} but missing; skipped", ClipWarning, stacklevel=3)
    return found


def list_videos(sources: str | Path | Sequence[str | Path]) -> VideoList:
    """The videos named by one or more sources, de-duplicated, in order.

    A source is a folder (scanned recursively for mp4/webm/mkv/avi/mov files; a sub-folder holding only images is
    one video), a glob pattern, a .csv/.txt list (see :func:`_read_list`; a list may give frame counts, which then
    skip the probe) or a single video file or frame folder.
    A source that names nothing raises :class:`InoError`; a missing list entry only warns (a 10k-line list with a
    few stale lines should still train) and is counted in the result's ``missing``.
    """
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    found: list[Path] = []
    missing: list[Path] = []
    counts: dict[Path, tuple[int, float]] = {}
    for source in items:
        path = Path(source)
        if path.is_dir():
            found.extend(_scan(path))
        elif path.is_file():
            found.extend(_read_list(path, missing, counts) if path.suffix.lower() in LIST_SUFFIXES else [path])
        elif glob.has_magic(str(source)):
            matches = [Path(m) for m in sorted(glob.glob(str(source), recursive=True))]
            found.extend(m for m in matches if m.is_file() and m.suffix.lower() in VIDEO_SUFFIXES)
            for folder in (m for m in matches if m.is_dir()):
                found.extend(_scan(folder))
        else:
            raise InoError(f"{path}: no such video, folder, list file or matching glob pattern")
    if missing:
        warnings.warn(f"{len(missing)} listed videos are missing", ClipWarning, stacklevel=2)
    result = VideoList(dict.fromkeys(found))
    result.missing = missing
    result.counts = {video: counts[video] for video in result if video in counts}
    if not result:
        raise InoError(f"no videos found in {', '.join(str(s) for s in items)}")
    return result
