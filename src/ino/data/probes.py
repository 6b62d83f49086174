"""Probing a video collection once: parallel :func:`~ino.data.videos.probe_video` calls behind an on-disk cache.

Probing reads every video's frame timestamps (PyAV: demuxing only, ~1.5 ms for 300 frames; OpenCV: decoding every
frame), so a Kinetics-size collection takes minutes; the result is cached under a hash of the sorted (path, size,
mtime_ns) list, the backend and the cache layout version. Any added, removed, rewritten or touched file changes the
key, so a cache can never silently describe other files (INO's was keyed on its folder name only, docs/method.md
§10.26).

The probes are held as columns (:class:`ProbeTable`), never as one :class:`~ino.data.videos.VideoInfo` per video:
Kinetics' ~72M frame timestamps are ~5 GB as tuples of Python ints and floats. A video whose timestamps are evenly
spaced (nearly every encoder's constant-rate output) is stored as (first, step), the others as int64 runs, so a
Kinetics-400 table is ~60 MB (docs/training.md, "Indexing at scale").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

from ino.data.videos import VideoInfo, import_av, probe_video
from ino.errors import InoError
from ino.utils.atomic import atomic_write

#: Bump when the cache layout or what a probe records changes.
CACHE_VERSION = 2
#: Seconds between progress lines while probing (a Kinetics-size collection takes minutes).
PROGRESS_EVERY = 30.0
log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ProbeTable:
    """Row ``i`` is one probed video. Its PyAV seek timestamps are ``pts_start + pts_step * arange(n_frames)`` when
    ``pts_step`` is non-zero, else the run ``pts[pts_offsets[i]:pts_offsets[i + 1]]`` (empty where there are none:
    OpenCV, frame folders, videos listed with their frame counts). OpenCV's timestamps (``seconds``) are runs too."""

    paths: np.ndarray
    kinds: np.ndarray
    n_frames: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    fps: np.ndarray
    pts_start: np.ndarray
    pts_step: np.ndarray
    pts_offsets: np.ndarray
    pts: np.ndarray
    sec_offsets: np.ndarray
    seconds: np.ndarray

    @classmethod
    def from_infos(cls, infos: Iterable[VideoInfo]) -> ProbeTable:
        columns = _Columns()
        for info in infos:
            columns.add(info)
        return columns.table()

    @classmethod
    def concat(cls, tables: Sequence[ProbeTable]) -> ProbeTable:
        """The rows of ``tables``, one after the other (probed videos plus videos listed with their counts)."""
        columns = {}
        for field in fields(cls):
            parts = [getattr(table, field.name) for table in tables]
            if field.name.endswith("_offsets"):
                shifts = np.cumsum([0] + [part[-1] for part in parts[:-1]])
                parts = [parts[0][:1]] + [part[1:] + shift for part, shift in zip(parts, shifts, strict=True)]
            columns[field.name] = np.concatenate(parts)
        return cls(**columns)

    def __len__(self) -> int:
        return len(self.paths)

    def info(self, row: int) -> VideoInfo:
        """Row ``row`` as the VideoInfo that :func:`~ino.data.videos.read_frames` seeks with."""
        n_frames, start, step = int(self.n_frames[row]), int(self.pts_start[row]), int(self.pts_step[row])
        pts = self.pts[self.pts_offsets[row] : self.pts_offsets[row + 1]].tolist()
        if step:
            pts = list(range(start, start + step * n_frames, step))
        seconds = self.seconds[self.sec_offsets[row] : self.sec_offsets[row + 1]]
        return VideoInfo(
            Path(str(self.paths[row])),
            n_frames,
            float(self.fps[row]),
            int(self.heights[row]),
            int(self.widths[row]),
            str(self.kinds[row]),
            timestamps=tuple(seconds.tolist()) if len(seconds) else None,
            pts=tuple(pts) if pts else None,
        )


class _Columns:
    """Table rows added one video at a time, each reduced at once to a few numbers and arrays: the per-frame
    tuples of a VideoInfo never pile up (a Kinetics probe would hold ~5 GB of them)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int, int, int, float, int, int]] = []
        self.pts: list[np.ndarray] = []
        self.seconds: list[np.ndarray] = []

    def add(self, info: VideoInfo) -> None:
        pts = np.asarray(info.pts or (), dtype=np.int64)
        steps = np.diff(pts)
        start, step = (int(pts[0]), int(steps[0]) if len(steps) else 1) if len(pts) else (0, 0)
        if len(steps) and (steps != step).any():
            start, step = 0, 0
        self.pts.append(pts if len(pts) and not step else np.empty(0, np.int64))
        seconds = info.timestamps if info.backend == "opencv" else None
        self.seconds.append(np.asarray(seconds or (), dtype=np.float64))
        row = (str(info.path), info.backend, info.n_frames, info.height, info.width, info.fps, start, step)
        self.rows.append(row)

    def table(self) -> ProbeTable:
        paths, kinds, n_frames, heights, widths, fps, starts, steps = list(zip(*self.rows, strict=True)) or [()] * 8
        return ProbeTable(
            paths=np.array(paths, dtype=str),
            kinds=np.array(kinds, dtype=str),
            n_frames=np.array(n_frames, dtype=np.int64),
            heights=np.array(heights, dtype=np.int64),
            widths=np.array(widths, dtype=np.int64),
            fps=np.array(fps, dtype=np.float64),
            pts_start=np.array(starts, dtype=np.int64),
            pts_step=np.array(steps, dtype=np.int64),
            pts_offsets=np.cumsum([0] + [len(t) for t in self.pts], dtype=np.int64),
            pts=np.concatenate([np.empty(0, np.int64), *self.pts]),
            sec_offsets=np.cumsum([0] + [len(t) for t in self.seconds], dtype=np.int64),
            seconds=np.concatenate([np.empty(0, np.float64), *self.seconds]),
        )


def file_backend(backend: str) -> str:
    """The reader that ``backend`` means for files here: the cache key must name what actually probed them."""
    if backend == "auto":
        return "pyav" if import_av() is not None else "opencv"
    return backend


def listed_table(counts: Mapping[str, tuple[int, float]], backend: str) -> ProbeTable:
    """Rows for videos whose frame count and rate a list file gave (``{path: (n_frames, fps)}``), not probed: no
    size and no timestamps, so a clip of one is decoded by counting frames (:func:`~ino.data.videos.read_frames`)."""
    kind = file_backend(backend)
    infos = (
        VideoInfo(Path(path), n, fps, 0, 0, "folder" if os.path.isdir(path) else kind)
        for path, (n, fps) in counts.items()
    )
    return ProbeTable.from_infos(infos)


def _probe(path: str, backend: str) -> VideoInfo | str:
    """The probe, or why it failed (without the path, which the caller's report adds)."""
    try:
        return probe_video(path, backend)
    except InoError as error:
        return str(error).removeprefix(f"{path}: ")
    except Exception as error:  # one odd file must never stop indexing 100k videos: it is reported, not raised
        return f"{type(error).__name__}: {error}"


def _bounded_map(function: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``map`` over a thread pool, in order, with a few tasks in flight per thread: ``pool.map`` would create
    every future up front (~1 KB each, 240 MB for Kinetics) and keep every finished result until it is read."""
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _cache_key(paths: Sequence[str], backend: str) -> str | None:
    """Hash of the sorted (path, size, mtime_ns) list, backend and layout version; None if a file vanished."""
    try:
        stats = sorted((p, (s := os.stat(p)).st_size, s.st_mtime_ns) for p in paths)
    except OSError:
        return None
    return hashlib.sha1(json.dumps([CACHE_VERSION, backend, stats]).encode()).hexdigest()[:20]


def _save(file: Path, table: ProbeTable, failed: dict[str, str]) -> None:
    """Plain arrays (np.savez, no pickle): compact, and loaded in about a second for 100k videos."""
    arrays = {f.name: getattr(table, f.name) for f in fields(table)}
    arrays["failed_paths"] = np.array(list(failed), dtype=str)
    arrays["failed_reasons"] = np.array(list(failed.values()), dtype=str)
    atomic_write(file, lambda stream: np.savez(stream, **arrays))


def _load(file: Path) -> tuple[ProbeTable, dict[str, str]]:
    with np.load(file, allow_pickle=False) as data:
        table = ProbeTable(**{f.name: data[f.name] for f in fields(ProbeTable)})
        failed = dict(zip(data["failed_paths"].tolist(), data["failed_reasons"].tolist(), strict=True))
    return table, failed


def probe_all(
    paths: Sequence[str], backend: str, workers: int, cache_dir: str | Path | None
) -> tuple[ProbeTable, dict[str, str], bool]:
    """Probe every path, or load the probes from ``cache_dir``: (usable probes, {path: why not}, from the cache).

    Threads, not processes: they are safe in a process that already holds CUDA or a process group, and PyAV's
    demuxing releases the GIL while it reads; the Python work per packet does not, so threads add little beyond
    two (docs/training.md, "Indexing at scale"). The table's rows need not follow ``paths``' order (a cache is
    shared by every order of the same files).
    """
    backend = file_backend(backend)
    key = _cache_key(paths, backend) if cache_dir is not None else None
    cache = Path(cache_dir) / f"probes-{key}.npz" if key is not None and cache_dir is not None else None
    if cache is not None and cache.is_file():
        try:
            return (*_load(cache), True)
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s: unreadable probe cache, probing again (%s)", cache, error)
    columns, failed = _Columns(), {}
    started = last = time.monotonic()
    results = _bounded_map(lambda p: _probe(p, backend), paths, max(1, workers))
    for done, (path, result) in enumerate(zip(paths, results, strict=True), 1):
        if isinstance(result, str):
            failed[path] = result
        else:
            columns.add(result)
        if time.monotonic() - last > PROGRESS_EVERY:
            last = time.monotonic()
            log.info("probed %d of %d videos (%.0f/s)", done, len(paths), done / (last - started))
    table = columns.table()
    if cache is not None:
        _save(cache, table, failed)
    return table, failed, False
