"""Training clips from a video collection: a cached clip index, a seeded sharded sampler (:mod:`ino.data.sampler`),
a dataset.

INO cut clips with torchvision's ``VideoClips`` (docs/method.md §1): every window of 4 consecutive frames of the
video resampled to 8 fps, 5 random distinct clips per video per epoch, shuffled together. Its RNG was the global
torch one on every rank (docs/method.md §10.13), its cache ignored the file list (§10.26) and a decode error
crashed the run (§10.14).
Here the same clips are drawn from an explicit per-epoch generator, sharded without overlap, cached under a key of
the files' sizes and modification times, and a clip that fails to decode is replaced by another one.

A sample is addressed by ``(epoch, position, clip_id)`` and its augmentation is seeded from ``(seed, epoch,
position)``: the same run gives the same batches for any number of loader workers and after a mid-epoch resume.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from ino.configs.schema import SAMPLINGS
from ino.data.probes import ProbeTable, listed_table, probe_all
from ino.data.sampler import ClipSampler
from ino.data.sources import ClipWarning, VideoList, list_videos
from ino.data.videos import VideoInfo, exact_fraction, probe_video, read_frames, resampled_indices
from ino.errors import InoError

log = logging.getLogger(__name__)
#: list_videos and ClipSampler are re-exported: a training run names its sources and clips through this one module.
__all__ = ["ClipDataset", "ClipIndex", "ClipSampler", "ClipWarning", "VideoList", "list_videos", "make_loader"]


# ------------------------------------------------------------------------------------------------------ index


class ClipIndex:
    """Every clip of every usable video: clip ids 0..n_clips-1, video by video in input order.

    Clip ``j`` of a video is ``timeline[j + step * arange(clip_len)]``: with ``sampling="fps"`` the timeline is the
    video resampled to ``target_fps`` (INO: source index floor(k * fps / 8), 30 fps -> [0, 3, 7, 11]) and step 1
    (``frames_between_clips=1``); with ``"stride"`` it is every source frame and step ``frame_stride``. Clips are
    computed on demand from the probes (frame count, fps, size, seek timestamps), so a Kinetics-size index is a
    few arrays, not ~20M clip rows. Videos too short for one clip join ``skipped`` ({path: reason}).

    ``order`` lists the table's paths in the order that clip ids follow (default: the table's own order); paths
    that the table lacks (failed probes) are passed over. :meth:`build` is the usual way in.
    """

    def __init__(
        self,
        table: ProbeTable,
        clip_len: int = 4,
        sampling: str = "fps",
        target_fps: float = 8.0,
        frame_stride: int = 8,
        *,
        order: Sequence[str] | None = None,
        skipped: dict[Path, str] | None = None,
    ) -> None:
        if clip_len < 1 or frame_stride < 1 or target_fps <= 0 or sampling not in SAMPLINGS:
            raise InoError(
                f"invalid clip settings: clip_len={clip_len}, sampling={sampling!r} (one of {SAMPLINGS}), "
                f"target_fps={target_fps}, frame_stride={frame_stride}"
            )
        self.table, self.clip_len, self.sampling = table, clip_len, sampling
        self.target_fps, self.frame_stride = target_fps, frame_stride
        self.skipped: dict[Path, str] = dict(skipped or {})
        rows = np.arange(len(table))
        if order is not None:  # the table may come from a cache written for another order of the same files
            row_of = {path: row for row, path in enumerate(table.paths.tolist())}
            rows = np.array([row_of[p] for p in order if p in row_of], dtype=np.int64)
        counts = self._clip_counts(rows)
        for row in rows[counts == 0]:
            n, fps = int(table.n_frames[row]), float(table.fps[row])
            self.skipped[Path(str(table.paths[row]))] = f"too short for one clip ({n} frames at {fps:g} fps)"
        self.rows, self.clip_counts = rows[counts > 0], counts[counts > 0]
        self.clip_starts = np.concatenate([[0], np.cumsum(self.clip_counts)]).astype(np.int64)
        self.videos = [Path(str(p)) for p in table.paths[self.rows]]
        self.from_cache = False
        #: where each usable video's frame count was given: (number in ``list_files``, line), (-1, 0) if probed
        self.listed_lines = np.full((len(self.videos), 2), (-1, 0), dtype=np.int64)
        self.list_files: list[str] = []

    @classmethod
    def build(
        cls,
        videos: Sequence[str | Path],
        clip_len: int = 4,
        sampling: str = "fps",
        target_fps: float = 8.0,
        frame_stride: int = 8,
        cache_dir: str | Path | None = None,
        workers: int = 8,
        backend: str = "auto",
        counts: Mapping[str | Path, tuple[int, float]] | None = None,
    ) -> ClipIndex:
        """Probe ``videos`` (see :func:`~ino.data.probes.probe_all`: ``workers`` threads, cached in ``cache_dir``
        when given), then warn once per skipped video (unreadable or too short).

        Videos in ``counts`` ({video: (n_frames, fps)}; default: those a list file gave, when ``videos`` is a
        :class:`~ino.data.sources.VideoList`) are not probed: their clips come from the given numbers, and a clip
        past a video's real end fails to decode and is replaced during training (:class:`ClipDataset`).
        """
        paths = list(dict.fromkeys(os.path.abspath(v) for v in videos))
        if counts is None:
            counts = videos.counts if isinstance(videos, VideoList) else {}
        given = {os.path.abspath(video): value for video, value in counts.items()}
        listed = {path: given[path] for path in paths if path in given}
        to_probe = [path for path in paths if path not in listed]
        tables, failed, from_cache = [], {}, False
        if to_probe or not listed:
            probed, failed, from_cache = probe_all(to_probe, backend, workers, cache_dir)
            tables.append(probed)
        if listed:
            tables.append(listed_table(listed, backend))
        table = tables[0] if len(tables) == 1 else ProbeTable.concat(tables)  # no copy of a Kinetics-size table
        skipped = {Path(p): reason for p, reason in failed.items()}
        index = cls(table, clip_len, sampling, target_fps, frame_stride, order=paths, skipped=skipped)
        index.from_cache = from_cache
        index._note_lists(listed, videos.listed_at if isinstance(videos, VideoList) else {})
        for path, reason in index.skipped.items():
            warnings.warn(f"{path}: skipped for training: {reason}", ClipWarning, stacklevel=2)
        log.info(
            "clip index: %d videos, %d clips, %d skipped%s%s",
            len(index.videos),
            index.n_clips,
            len(index.skipped),
            f", {len(listed)} with listed frame counts" if listed else "",
            " (cached probes)" if from_cache else "",
        )
        return index

    def _note_lists(self, listed: Mapping[str, object], lines: Mapping[Path, tuple[Path, int]]) -> None:
        """Record where the ``listed`` videos' counts were read (``lines``: {video: (list, line)}), as two numbers
        per video: a dict of Kinetics' paths would be ~40 MB more in every loader worker."""
        where = {os.path.abspath(video): line for video, line in lines.items()}
        files: dict[str, int] = {}
        for number, video in enumerate(map(str, self.videos)):
            if video in listed:
                file, line = where.get(video, ("the counts given to ClipIndex.build", 0))
                self.listed_lines[number] = files.setdefault(str(file), len(files)), line
        self.list_files = list(files)

    def listed_at(self, video: int) -> str | None:
        """Where usable video ``video``'s frame count was given ("k400.csv line 3"), or None if it was probed."""
        file, line = (int(n) for n in self.listed_lines[video])
        return None if file < 0 else f"{self.list_files[file]} line {line}" if line else self.list_files[file]

    def _timeline(self, row: int) -> tuple[np.ndarray, int]:
        n_frames = int(self.table.n_frames[row])
        if self.sampling == "fps":
            return resampled_indices(n_frames, float(self.table.fps[row]), self.target_fps), 1
        return np.arange(n_frames, dtype=np.int64), self.frame_stride

    def _clip_counts(self, rows: np.ndarray, n_frames: np.ndarray | None = None) -> np.ndarray:
        """Clips per row, vectorised: resampled length floor(n * target / fps) with the exact fractions of
        :func:`~ino.data.videos.resampled_indices`, computed once per distinct frame rate. ``n_frames`` replaces
        the table's frame counts (a listed count found wrong)."""
        n_frames = self.table.n_frames[rows] if n_frames is None else n_frames
        length, step = n_frames, self.frame_stride
        if self.sampling == "fps":
            length, step = np.zeros_like(n_frames), 1
            fps = self.table.fps[rows]
            for value in np.unique(fps):
                ratio = exact_fraction(self.target_fps) / exact_fraction(float(value))
                length[fps == value] = n_frames[fps == value] * ratio.numerator // ratio.denominator
        return np.maximum(0, length - (self.clip_len - 1) * step)

    def identity(self) -> str:
        """What the index holds, as a digest: the clip settings and each usable video's path, frame count and rate,
        in order. A resumed run compares it with its checkpoint's: the same videos however ``--data`` spells them,
        and another set of videos (added, removed, re-encoded) is noticed."""
        table = self.table
        rows = [[str(table.paths[r]), int(table.n_frames[r]), float(table.fps[r])] for r in self.rows]
        settings = [self.clip_len, self.sampling, self.target_fps, self.frame_stride]
        return hashlib.sha256(json.dumps([settings, rows]).encode()).hexdigest()

    @property
    def n_clips(self) -> int:
        return int(self.clip_starts[-1])

    def info(self, video: int) -> VideoInfo:
        """The probe of usable video ``video`` (``videos[video]``), with its seek timestamps."""
        return self.table.info(int(self.rows[video]))

    def locate(self, clip_id: int) -> tuple[int, int]:
        """(video number, clip number within that video) of a global clip id."""
        if not 0 <= clip_id < self.n_clips:
            raise IndexError(f"clip id {clip_id} out of range (the index has {self.n_clips} clips)")
        video = int(np.searchsorted(self.clip_starts, clip_id, side="right")) - 1
        return video, clip_id - int(self.clip_starts[video])

    def clip_frames(self, clip_id: int) -> np.ndarray:
        """Source-frame indices (clip_len,) of a clip."""
        video, j = self.locate(clip_id)
        timeline, step = self._timeline(int(self.rows[video]))
        return timeline[j + step * np.arange(self.clip_len)]

    def clips_at(self, video: int, n_frames: int) -> int:
        """How many clips usable video ``video`` would have with ``n_frames`` frames (its real count, when a list
        gave another); they are its first clips, with the same frames."""
        rows = self.rows[video : video + 1]
        return int(self._clip_counts(rows, np.array([n_frames], dtype=np.int64))[0])

    def clips_of(self, video: int) -> np.ndarray:
        """Source-frame indices of every clip of one video, (n_clips, clip_len)."""
        timeline, step = self._timeline(int(self.rows[video]))
        starts = np.arange(int(self.clip_counts[video]))
        return timeline[starts[:, None] + step * np.arange(self.clip_len)]


# ---------------------------------------------------------------------------------------------------- dataset


@contextlib.contextmanager
def _seeded(*key: int) -> Iterator[None]:
    """Seed torch, numpy and random from ``key`` for the block, then restore the caller's generator states, so a
    sample's augmentation depends only on its key and the training loop's own RNG streams are left untouched."""
    words = np.random.SeedSequence(list(key)).generate_state(4)
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(words[0]) << 32 | int(words[1]))
        np.random.seed(int(words[2]))
        random.seed(int(words[3]))
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class ClipDataset(Dataset):
    """Decoded, transformed clips addressed by ``(epoch, position, clip_id)`` items of a :class:`ClipSampler`.

    A clip that fails to decode is replaced by one drawn from (seed, epoch, position, attempt): a video drawn
    uniformly, then a clip of it (so a video listed with an inflated count is not most draws), so a bad file costs
    a retry, not the run; the first failure of each video in each process warns. ``decode_failures`` counts them
    per video path in *this* process (each loader worker holds its own), so the warnings are the primary report.

    A video whose count a list gave too high is probed at its first failure in each process, with one warning
    naming the list line; a clip past its real end is then replaced by the clip at the same relative place within
    it. Which clip that is does not depend on when a process found out: batches stay the same for any number of
    loader workers.
    """

    def __init__(
        self, index: ClipIndex, transform: Callable[[np.ndarray], Any], seed: int = 0, max_retries: int = 10
    ) -> None:
        self.index, self.transform, self.seed, self.max_retries = index, transform, seed, max_retries
        self.decode_failures: Counter[str] = Counter()
        self._real_frames: dict[int, int | None] = {}  # listed videos probed after a failure (None: probe failed)

    def decode(self, clip_id: int) -> np.ndarray:
        """The clip's frames, (clip_len, H, W, 3) uint8 RGB at native size, seeking with the indexed probe."""
        info = self.index.info(self.index.locate(clip_id)[0])
        backend = "auto" if info.backend == "folder" else info.backend
        return read_frames(info.path, self.index.clip_frames(clip_id), backend, info=info)

    def _within(self, video: int, clip: int) -> int:
        """The clip id of ``clip``, or of the one replacing it when it lies past the real end of a video listed
        too long."""
        start, frames = int(self.index.clip_starts[video]), self._real_frames.get(video)
        if frames is None or int(self.index.clip_frames(start + clip).max()) < frames:
            return start + clip
        if not (real := self.index.clips_at(video, frames)):
            raise InoError(f"{self.index.videos[video]}: too short for one clip ({frames} frames)")
        return start + clip * real // int(self.index.clip_counts[video])

    def _probe_listed(self, video: int) -> bool:
        """After a failure: probe a video whose count a list gave (once per process); True when its real count is
        lower, which is then used (and reported with the list line)."""
        path, where = str(self.index.videos[video]), self.index.listed_at(video)
        if where is None or video in self._real_frames:
            return False
        info = self.index.info(video)
        try:
            frames: int | None = probe_video(path, "auto" if info.backend == "folder" else info.backend).n_frames
        except (InoError, OSError, ValueError):
            frames = None
        if frames is None or frames >= info.n_frames:
            self._real_frames[video] = None
            return False
        self._real_frames[video] = frames
        message = f"{where}: {path} has {frames} frames, not the {info.n_frames} listed; its clips past the end are"
        warnings.warn(f"{message} replaced by clips within it (correct the count)", ClipWarning, stacklevel=3)
        return True

    def _decode_clip(self, video: int, clip: int) -> np.ndarray:
        try:
            return self.decode(self._within(video, clip))
        except (InoError, OSError):
            if not self._probe_listed(video):
                raise
        return self.decode(self._within(video, clip))

    def __getitem__(self, item: tuple[int, int, int]) -> Any:
        epoch, position, clip_id = item
        video, clip = self.index.locate(clip_id)
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                rng = np.random.default_rng([self.seed, epoch, position, attempt])
                video = int(rng.integers(len(self.index.videos)))
                clip = int(rng.integers(self.index.clip_counts[video]))
            try:
                frames = self._decode_clip(video, clip)
                break
            except (InoError, OSError) as error:
                path = str(self.index.videos[video])
                if not self.decode_failures[path]:
                    failed = int(self.index.clip_starts[video]) + clip
                    warnings.warn(f"clip {failed} failed to decode, using another: {error}", ClipWarning, stacklevel=2)
                self.decode_failures[path] += 1
                last = error
        else:
            raise InoError(
                f"epoch {epoch} position {position}: {self.max_retries + 1} clips in a row failed to decode "
                f"(the last: {last})"
            )
        with _seeded(self.seed, epoch, position):
            return self.transform(frames)


def make_loader(
    dataset: ClipDataset, sampler: ClipSampler, batch_size: int, workers: int, pin_memory: bool = False
) -> DataLoader:
    """A DataLoader over ``sampler``'s items in batches of ``batch_size`` (= the sampler's, which sized the epoch).

    Workers persist across epochs when the loader is iterated again after ``sampler.set_epoch``. The loader draws
    its worker base seed from a generator of its own, not from torch's global RNG: creating it (e.g. on resume)
    must not shift the training process's random stream (drop path), or a resumed run would differ.
    """
    if batch_size != sampler.batch_size:
        raise InoError(f"loader batch size {batch_size} differs from the sampler's {sampler.batch_size}")
    return DataLoader(
        dataset,
        batch_sampler=BatchSampler(sampler, batch_size, drop_last=sampler.drop_last),
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
