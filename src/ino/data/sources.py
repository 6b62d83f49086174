"""Which videos a training source names: folders, glob patterns and INO-style csv/txt lists.

Shared by training (:mod:`ino.data.clips`) and ``ino prepare``; it imports neither torch nor a decoder, so that
listing a collection stays cheap in every process.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

from ino.data.videos import IMAGE_SUFFIXES
from ino.errors import InoError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")
LIST_SUFFIXES = (".csv", ".txt")


class ClipWarning(UserWarning):
    """A video left out of training (missing, unreadable, too short) or a clip that failed to decode."""


class VideoList(list):
    """The listed videos (a plain ``list[Path]``) plus ``missing``: list entries that do not exist, ``counts``:
    {video: (n_frames, fps)} for those a list gave with their frame counts, which need no probe, and ``listed_at``:
    {video: (list file, line number)}, where each of those counts was read (a wrong one is reported there)."""

    missing: list[Path]
    counts: dict[Path, tuple[int, float]]
    listed_at: dict[Path, tuple[Path, int]]


def _is_frame_folder(folder: Path) -> bool:
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return bool(entries) and all(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in entries)


def _scan(folder: Path, walked: set[Path] | None = None) -> list[Path]:
    """Video files under ``folder`` (recursively) and folders holding only images, which are one video each.

    Symbolic links are followed (a collection often links in folders from other disks), but a folder reached
    again (``ln -s . again``, two links to one folder) is walked once: a loop would list every video ~40 times,
    until the system's limit on nested links stops it. ``walked`` holds the real folders walked so far.
    """
    walked = set() if walked is None else walked
    real = folder.resolve()
    if real in walked:
        return []
    walked.add(real)
    if _is_frame_folder(folder):
        return [folder]
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):  # hidden files, including interrupted atomic writes
            continue
        if entry.is_dir():
            found.extend(_scan(entry, walked))
        elif entry.suffix.lower() in VIDEO_SUFFIXES:
            found.append(entry)
    return found


def _folders_under(base: str) -> Iterator[str]:
    """``base`` and every folder below it that glob's ``**`` matches (hidden ones are not), each real folder once:
    glob's own ``**`` follows a link back up again and again, ~2^40 paths for two loops (``ln -s . again``)."""
    walked: set[str] = set()
    for folder, names, _ in os.walk(base, followlinks=True):
        real = os.path.realpath(folder)
        names[:] = [] if real in walked else sorted(name for name in names if not name.startswith("."))
        if real not in walked:
            walked.add(real)
            yield folder


def _glob(pattern: str) -> list[str]:
    """``glob.glob(pattern, recursive=True)``, except that each ``**`` walks a real folder once (a pattern ending
    in ``**`` gives the folders only, which the caller scans)."""
    parts = Path(pattern).parts
    if "**" not in parts:
        return glob.glob(pattern)
    at = parts.index("**")
    bases = glob.glob(os.path.join(*parts[:at])) if at else [os.curdir]
    rest = parts[at + 1 :]
    found = []
    for folder in (folder for base in bases if os.path.isdir(base) for folder in _folders_under(base)):
        found.extend(_glob(os.path.join(glob.escape(folder), *rest)) if rest else [folder])
    return found


def _number(field: str) -> Fraction | None:
    """``field`` as an exact number ("300", "29.97", "30000/1001"), or None when it is not one."""
    try:
        return Fraction(field)
    except (ValueError, ZeroDivisionError):
        return None


def _is_word(field: str) -> bool:
    """Whether ``field`` is a column name (``n_frames``, ``"fps"``): it starts with a letter and is no number
    (``nan`` and ``inf`` are numbers, bad ones; ``6O`` is a typo, not a name)."""
    name = field.strip("\"'")
    try:
        float(name)
    except ValueError:
        return name[:1].isalpha()
    return False


def _counts(fields: list[str], where: str) -> tuple[int, float]:
    """(n_frames, fps) of a ``path,n_frames,fps`` line, or one InoError naming the file, line and field.

    The count must be written in plain digits: ``1e3`` or ``300.0`` is a number, but no frame count a tool writes,
    so it is more likely a slip than a count (and a count that is too high costs clips all run long).
    """
    if len(fields) < 3:
        raise InoError(f"{where}: expected path,n_frames,fps as on the list's other lines, got {','.join(fields)!r}")
    if not (fields[1].isascii() and fields[1].isdigit()):
        raise InoError(f"{where}: n_frames must be a whole number >= 0 in plain digits, got {fields[1]!r}")
    fps = _number(fields[2])
    try:
        rate = float(fps) if fps is not None and fps > 0 else None
    except OverflowError:
        rate = None
    if rate is None or rate == float("inf"):
        raise InoError(f"{where}: fps must be a positive number (such as 25, 29.97 or 30000/1001), got {fields[2]!r}")
    return int(fields[1]), rate


def _list_lines(list_file: Path) -> list[str]:
    """The list's lines, read as UTF-8 (a leading byte-order mark, as Excel writes, is dropped), or one InoError
    naming the list, and the line where it is not UTF-8 text."""
    try:
        data = list_file.read_bytes()
    except OSError as error:
        raise InoError(f"{list_file}: cannot read the list ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        read = bytes(error.object)
        line = read.count(b"\n", 0, error.start) + 1
        raise InoError(
            f"{list_file} line {line}: not UTF-8 text (byte 0x{read[error.start]:02x}); save the list as UTF-8"
        ) from None
    return text.split("\n")


def _read_list(
    list_file: Path, missing: list[Path], counts: dict[Path, tuple[int, float]], listed_at: dict[Path, tuple[Path, int]]
) -> list[Path]:
    """INO's csv format: the first comma-separated field of each line is a path, relative to the list file's
    folder or, failing that, to the working directory (INO's ``./data/Charades_v1_480/x.mp4`` lines in
    ``meta/*.csv`` were relative to the folder its training script ran in); other fields are ignored.

    A list whose lines read ``path,n_frames,fps`` (numbers in the second and third fields of one of its first two
    lines, after an optional header line whose fields are words) gives each video's frame count and rate, which
    are then put in ``counts`` (and the line in ``listed_at``) and trusted instead of a probe: every line of such a
    list must have them, so that a typo is one clear error, not a silent probe or a line taken for a header.
    """
    entries = []
    for number, line in enumerate(_list_lines(list_file), 1):
        if "\0" in line:
            raise InoError(f"{list_file} line {number}: a NUL character; the list must be plain text, one path a line")
        fields = [field.strip() for field in line.split(",")]
        if fields[0] and not fields[0].startswith("#"):
            entries.append((number, fields))
    header = bool(entries) and len(entries[0][1]) >= 3 and all(_is_word(f) for f in entries[0][1][1:3])
    rows = entries[1:] if header else entries
    # the first two lines after the header decide; _counts then checks every line
    with_counts = any(len(f) >= 3 and _number(f[1]) is not None and _number(f[2]) is not None for _, f in rows[:2])
    if with_counts:
        entries = rows
    found = []
    for number, fields in entries:
        entry = fields[0]
        given = _counts(fields, f"{list_file} line {number}") if with_counts else None
        path = list_file.parent / entry  # an absolute entry stays itself
        if not path.exists() and Path(entry).exists():
            path = Path(entry)
        if path.exists():
            found.append(Path(os.path.normpath(path)))
            if given is not None:
                counts[found[-1]] = given
                listed_at[found[-1]] = (list_file, number)
        else:
            missing.append(path)
            warnings.warn(f"{path}: listed in {list_file} but missing; skipped", ClipWarning, stacklevel=3)
    return found


def _real_file(path: Path) -> tuple[int, int] | Path:
    """What identifies the file itself, however it is reached (a symbolic or hard link, ``a/../a``)."""
    try:
        stat = os.stat(path)
    except OSError:
        return path
    return stat.st_dev, stat.st_ino


def list_videos(sources: str | Path | Sequence[str | Path]) -> VideoList:
    """The videos named by one or more sources, each real file once (the first name it is reached by), in order.

    A source is a folder (scanned recursively for mp4/webm/mkv/avi/mov files; a sub-folder holding only images is
    one video; symbolic links are followed, each folder walked once), a glob pattern, a .csv/.txt list (see
    :func:`_read_list`; a list may give frame counts, which then skip the probe) or a single video file or frame
    folder. A source that names nothing raises :class:`InoError`; a missing list entry only warns (a 10k-line
    list with a few stale lines should still train) and is counted in the result's ``missing``.
    """
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    found: list[Path] = []
    missing: list[Path] = []
    counts: dict[Path, tuple[int, float]] = {}
    listed_at: dict[Path, tuple[Path, int]] = {}
    for source in items:
        path = Path(source)
        if path.is_dir():
            found.extend(_scan(path))
        elif path.is_file():
            is_list = path.suffix.lower() in LIST_SUFFIXES
            found.extend(_read_list(path, missing, counts, listed_at) if is_list else [path])
        elif glob.has_magic(str(source)):
            matches = [Path(m) for m in sorted(_glob(str(source)))]
            found.extend(m for m in matches if m.is_file() and m.suffix.lower() in VIDEO_SUFFIXES)
            walked: set[Path] = set()
            for folder in (m for m in matches if m.is_dir()):
                found.extend(_scan(folder, walked))
        else:
            raise InoError(f"{path}: no such video, folder, list file or matching glob pattern")
    if missing:
        warnings.warn(f"{len(missing)} listed videos are missing", ClipWarning, stacklevel=2)
    unique: dict[tuple[int, int] | Path, Path] = {}
    for video in found:
        unique.setdefault(_real_file(video), video)
    result = VideoList(unique.values())
    result.missing = missing
    result.counts = {video: counts[video] for video in result if video in counts}
    result.listed_at = {video: listed_at[video] for video in result.counts}
    if not result:
        raise InoError(f"no videos found in {', '.join(str(s) for s in items)}")
    return result
