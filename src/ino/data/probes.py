"""Probing a video collection once: parallel :func:`~ino.data.videos.probe_video` calls behind an on-disk cache.

Probing reads every video's frame timestamps (PyAV: demuxing only, ~5 ms a clip; OpenCV: decoding every frame), so
a Kinetics-size collection takes a while; the result is cached under a hash of the sorted (path, size, mtime_ns)
list, the backend and the cache layout version. Any added, removed, rewritten or touched file changes the key, so
a cache can never silently describe other files (INO's was keyed on its folder name only, docs/method.md §10.26).

The probes are held as columns (:class:`ProbeTable`), not as :class:`~ino.data.videos.VideoInfo` objects: Kinetics'
~70M frame timestamps are ~0.6 GB as int64 arrays but ~2.5 GB as tuples of Python ints, in every process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ino.data.videos import VideoInfo, import_av, probe_video
from ino.errors import InoError
from ino.utils.atomic import atomic_write

#: Bump when the cache layout or what a probe records changes.
CACHE_VERSION = 1
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeTable:
    """Row ``i`` is one probed video; ``pts`` (PyAV seek data) and ``seconds`` (OpenCV's) are concatenated over the
    rows, row i's run being ``pts[pts_offsets[i]:pts_offsets[i + 1]]`` (empty where that reader has none)."""

    paths: np.ndarray
    kinds: np.ndarray
    n_frames: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    fps: np.ndarray
    pts_offsets: np.ndarray
    pts: np.ndarray
    sec_offsets: np.ndarray
    seconds: np.ndarray

    @classmethod
    def from_infos(cls, infos: Sequence[VideoInfo]) -> ProbeTable:
        pts = [np.asarray(i.pts or (), dtype=np.int64) for i in infos]
        seconds = [np.asarray((i.timestamps if i.backend == "opencv" else None) or (), np.float64) for i in infos]
        return cls(
            paths=np.array([str(i.path) for i in infos], dtype=str),
            kinds=np.array([i.backend for i in infos], dtype=str),
            n_frames=np.array([i.n_frames for i in infos], dtype=np.int64),
            heights=np.array([i.height for i in infos], dtype=np.int64),
            widths=np.array([i.width for i in infos], dtype=np.int64),
            fps=np.array([i.fps for i in infos], dtype=np.float64),
            pts_offsets=np.cumsum([0] + [len(t) for t in pts], dtype=np.int64),
            pts=np.concatenate([np.empty(0, np.int64), *pts]),
            sec_offsets=np.cumsum([0] + [len(t) for t in seconds], dtype=np.int64),
            seconds=np.concatenate([np.empty(0, np.float64), *seconds]),
        )

    def __len__(self) -> int:
        return len(self.paths)

    def info(self, row: int) -> VideoInfo:
        """Row ``row`` as the VideoInfo that :func:`~ino.data.videos.read_frames` seeks with."""
        pts = self.pts[self.pts_offsets[row] : self.pts_offsets[row + 1]]
        seconds = self.seconds[self.sec_offsets[row] : self.sec_offsets[row + 1]]
        return VideoInfo(
            Path(str(self.paths[row])),
            int(self.n_frames[row]),
            float(self.fps[row]),
            int(self.heights[row]),
            int(self.widths[row]),
            str(self.kinds[row]),
            timestamps=tuple(seconds.tolist()) if len(seconds) else None,
            pts=tuple(pts.tolist()) if len(pts) else None,
        )


def _file_backend(backend: str) -> str:
    """The reader that ``backend`` means for files here: the cache key must name what actually probed them."""
    if backend == "auto":
        return "pyav" if import_av() is not None else "opencv"
    return backend


def _probe(path: str, backend: str) -> VideoInfo | str:
    """The probe, or why it failed (without the path, which the caller's report adds)."""
    try:
        return probe_video(path, backend)
    except InoError as error:
        return str(error).removeprefix(f"{path}: ")
    except Exception as error:  # one odd file must never stop indexing 100k videos: it is reported, not raised
        return f"{type(error).__name__}: {error}"


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

    Threads, not processes: PyAV's demuxing and OpenCV's decoding release the GIL (33 clips: 0.27 s on one
    thread, 0.12 s on two), and threads are safe in a process that already holds CUDA or a process group. The
    table's rows need not follow ``paths``' order (a cache is shared by every order of the same files).
    """
    backend = _file_backend(backend)
    key = _cache_key(paths, backend) if cache_dir is not None else None
    cache = Path(cache_dir) / f"probes-{key}.npz" if key is not None and cache_dir is not None else None
    if cache is not None and cache.is_file():
        try:
            return (*_load(cache), True)
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s: unreadable probe cache, probing again (%s)", cache, error)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = dict(zip(paths, pool.map(lambda p: _probe(p, backend), paths), strict=True))
    table = ProbeTable.from_infos([r for r in results.values() if isinstance(r, VideoInfo)])
    failed = {p: r for p, r in results.items() if isinstance(r, str)}
    if cache is not None:
        _save(cache, table, failed)
    return table, failed, False
