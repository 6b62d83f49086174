"""Whole propagation runs on disk: DAVIS, YouTube-VOS and single videos, resumable and written atomically.

Each is a loop over :class:`~ino.propagation.api.VideoPropagator`. A sequence is written into a hidden temporary
folder and renamed into place when its last frame is done, so a folder under ``--out`` is always complete.
``<out>/.ino-propagate.json`` records the settings (backbone, protocol) and the finished sequences: re-running the
same command skips them and redoes a partial one; a re-run with other settings refuses to mix results rather than
silently overwrite or reuse them. Under ``torchrun`` the sequences are split over the ranks
(:mod:`ino.propagation.run_state`); every sequence's masks are those of a one-process run.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

import numpy as np
from tqdm import tqdm

from ino.data.davis import DavisLayout, YtvosLayout, read_frame, read_object_ids, write_mask
from ino.errors import InoError, Interrupted
from ino.propagation.api import VideoPropagator, check_mask, load_mask
from ino.propagation.features import map_frames
from ino.propagation.run_state import run_shared, shared_run
from ino.utils.atomic import atomic_write, atomic_write_text
from ino.utils.distributed import Distributed
from ino.utils.outputs import (
    claim_file,
    claim_folder,
    exclusive,
    is_made,
    record_file,
    refuse_inside,
    remove_made,
    renew,
    written_by_ino,
)
from ino.utils.stopping import EXIT_CODES, StopRequests
from ino.utils.viz import OverlayVideoWriter, contact_sheet, overlay_mask

log = logging.getLogger(__name__)
#: a video run's record of its settings and inputs, and where its previous masks wait while the new ones move in
VIDEO_STATE, PREVIOUS_MASKS = ".ino-propagate-video.json", ".previous-masks"


def _write_sequence(folder: Path, names: Iterable[str], masks: Iterator[np.ndarray], keep: set[str] | None) -> None:
    """Write masks named by frame into ``folder`` via a hidden temporary folder renamed at the end.

    Both folders carry ``ino``'s marker: a folder of that name that ``ino`` did not make is never replaced.
    """
    partial = _partial(folder)
    for name, ids in zip(names, masks, strict=True):
        if keep is None or name in keep:
            write_mask(partial / f"{name}.png", ids)
    os.replace(partial, folder)


def _partial(folder: Path) -> Path:
    """The empty, marked ``.partial-<name>`` folder that becomes ``folder``, whose previous version (made by ``ino``:
    a foreign one stops the run, before any work) is removed first."""
    remove_made(folder)
    return renew(folder.parent / f".partial-{folder.name}")


def _decoded(frames: list[Path], label: str, progress: bool) -> Iterator[np.ndarray]:
    """The frames decoded in a background thread, with a progress bar over them."""
    return map_frames(read_frame, tqdm(frames, desc=label, unit="frame", leave=False, disable=not progress))


def propagate_davis(
    davis_root: str | Path,
    out: str | Path,
    propagator: VideoPropagator,
    settings: Mapping[str, object],
    *,
    set_name: str = "val",
    resolution: str = "480p",
    sequences: list[str] | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    dist: Distributed | None = None,
) -> list[str]:
    """Propagate each sequence's frame-0 annotation; write ``<out>/<sequence>/<frame>.png``.

    Only the first annotation is read (no other ground truth is touched, docs/method.md §10). With ``dist`` (a
    rank of a ``torchrun`` job) this rank does its share only. Returns the sequences of the run, finished ones
    included.
    """
    layout = DavisLayout(Path(davis_root), resolution)
    out = Path(out)
    refuse_inside(out, layout.data_folders())
    names = sequences or layout.sequences(set_name)
    shown = progress and (dist is None or dist.is_main)

    def frames_of(name: str) -> list[Path]:
        return layout.image_frames(name)[:max_frames]

    def work(name: str) -> None:
        frames = frames_of(name)
        annotation = layout.annotation_dir(name) / f"{frames[0].stem}.png"
        try:
            with contextlib.closing(propagator.run(_decoded(frames, name, shown), {0: annotation})) as masks:
                _write_sequence(out / name, [p.stem for p in frames], masks, keep=None)
        except InoError as error:
            raise InoError(f"sequence {name!r}: {error}") from None

    bar = ("sequences", "seq") if shown else None
    with shared_run(out, {**settings, "max_frames": max_frames}, dist) as state:
        run_shared(state, names, lambda n: out / n, lambda n: len(frames_of(n)), work, dist, bar)
    return names


def propagate_ytvos(
    layout: YtvosLayout,
    out: str | Path,
    propagator: VideoPropagator,
    settings: Mapping[str, object],
    *,
    videos: list[str] | None = None,
    progress: bool = True,
    dist: Distributed | None = None,
) -> Path:
    """YouTube-VOS (docs/method.md §9): propagate over every frame, write only the annotated-frame list, zip it.

    Objects first appearing at frame t start their own reference chain there. Writes
    ``<out>/Annotations/<video>/<frame>.png`` at the original size and ``<out>/Annotations.zip`` for the
    evaluation server (rank 0 of a ``torchrun`` job, once every rank is done); returns the zip's path.
    """
    out = Path(out)
    refuse_inside(out, layout.data_folders())
    names = videos or layout.videos()
    annotations = out / "Annotations"
    shown = progress and (dist is None or dist.is_main)

    def work(name: str) -> None:
        _ytvos_video(layout, annotations / name, propagator, name, shown)

    def write_zip(stream: IO[bytes]) -> None:
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as handle:
            for name in names:
                for png in sorted((annotations / name).glob("*.png")):
                    handle.write(png, png.relative_to(out).as_posix())

    with shared_run(out, {**settings, "all_frames": layout.all_frames is not None}, dist) as state:
        bar = ("videos", "video") if shown else None
        run_shared(state, names, lambda n: annotations / n, lambda n: len(layout.frames(n)), work, dist, bar)
        if dist is None or dist.is_main:
            atomic_write(out / "Annotations.zip", write_zip)
    return out / "Annotations.zip"


def _ytvos_video(layout: YtvosLayout, folder: Path, propagator: VideoPropagator, name: str, progress: bool) -> None:
    frames = layout.frames(name)
    stems = [p.stem for p in frames]
    position = {stem: t for t, stem in enumerate(stems)}
    given: dict[int, np.ndarray] = {}
    for path in layout.annotations(name):
        if path.stem not in position:
            raise InoError(f"{path}: annotated frame {path.stem} is not among the frames of video {name!r}")
        given[position[path.stem]] = read_object_ids(path)
    if not given:
        raise InoError(f"{layout.root / 'Annotations' / name}: no annotation PNG")
    start = min(given)
    masks = propagator.run(_decoded(frames[start:], name, progress), {t - start: m for t, m in given.items()})
    before = (np.zeros_like(given[start]) for _ in stems[:start])
    try:
        with contextlib.closing(masks):  # a failed write stops the decoding thread before the error goes on
            _write_sequence(folder, stems, itertools.chain(before, masks), keep=layout.output_frames(name))
    except InoError as error:
        raise InoError(f"video {name!r}: {error}") from None


def propagate_video_file(
    video: str | Path,
    first_mask: str | Path,
    out: str | Path,
    propagator: VideoPropagator,
    *,
    settings: Mapping[str, object] | None = None,
    max_frames: int | None = None,
    fps: float | None = None,
    sheet_frames: int = 8,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """A video file or frame folder -> ``<out>/masks/<frame>.png``, ``overlay.mp4`` and ``contact_sheet.png``.

    Frames are streamed once: each is kept only until its mask is ready (a batch plus the prefetch queue),
    when its overlay is written; the contact sheet keeps overlays of ``sheet_frames`` evenly spaced frames.

    All three are written into the hidden ``<out>/.partial-masks/`` and moved into place only when complete, so a
    previous run's results stay whole until the new ones replace them, and a run stopped by SIGTERM or Ctrl-C
    (exit 143 / 130) leaves them as they were. ``overlay.mp4`` and ``contact_sheet.png`` that ``ino`` did not
    write are replaced only with ``overwrite``, and a ``masks/`` folder it did not make never is. With
    ``settings`` (what the masks depend on: backbone and protocol), ``<out>/.ino-propagate-video.json`` records
    them with the inputs' identity, and a re-run of an identical finished job changes nothing.
    """
    from ino.data.videos import iter_frames, probe_video

    video, out = Path(video), Path(out)
    if video.is_dir():
        refuse_inside(out, [video])
    info = probe_video(video)
    n_frames = min(info.n_frames, max_frames) if max_frames else info.n_frames
    first = load_mask(first_mask, str(first_mask))
    check_mask(first, (info.height, info.width), f"{first_mask}")
    chosen = set(np.linspace(0, n_frames - 1, min(sheet_frames, n_frames)).round().astype(int).tolist())
    pending: deque[np.ndarray] = deque()
    results = {"masks": out / "masks", "overlay": out / "overlay.mp4", "contact_sheet": out / "contact_sheet.png"}
    job = None
    if settings is not None:
        inputs = {"video": _identity(video), "mask": _identity(Path(first_mask))}
        job = {**settings, **inputs, "frames": n_frames, "fps": fps, "sheet_frames": sheet_frames}

    def remembered() -> Iterator[np.ndarray]:
        stream = iter_frames(video, stop=n_frames)
        for frame in tqdm(stream, total=n_frames, desc=video.name, unit="frame", disable=not progress):
            pending.append(frame)
            yield frame

    with exclusive(out, "ino propagate"):
        for folder in (results["masks"], out / PREVIOUS_MASKS):  # foreign ones stop the run before any work
            claim_folder(folder)
        for name in ("overlay", "contact_sheet"):
            claim_file(results[name], overwrite=overwrite, what="output")
        if job is not None and _video_done(out, results, job):
            log.info("%s: already done with these settings and inputs (%s)", video.name, out)
            return results
        staging = renew(out / ".partial-masks")
        try:
            tiles: list[tuple[str, np.ndarray]] = []
            with StopRequests() as stop, OverlayVideoWriter(staging / "overlay.mp4", fps or info.fps or 24.0) as writer:
                for t, ids in enumerate(propagator.run(remembered(), {0: first})):
                    shown = overlay_mask(pending.popleft(), ids)
                    writer.write(shown)
                    write_mask(staging / f"{t:05d}.png", ids)
                    if t in chosen:
                        tiles.append((f"frame {t}", shown))
                    signalled = stop.requested()
                    if signalled:
                        raise Interrupted(
                            f"stopped by {signalled.name} at frame {t + 1} of {n_frames}; "
                            f"the previous results in {out} are as they were",
                            EXIT_CODES[signalled],
                        )
            contact_sheet(tiles, staging / "contact_sheet.png")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a run that fails leaves no playable partial overlay
            raise
        _replace_video_results(out, staging, results, job)
    return results


def _identity(path: Path) -> dict[str, object]:
    """What tells an input apart from an edited or other one: its place, and the size and modification time of the
    file (of each frame of a folder)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        listing = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
        digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
        return {"path": str(path.resolve()), "frames": digest}
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _video_done(out: Path, results: Mapping[str, Path], job: Mapping[str, object]) -> bool:
    """Whether ``out`` holds the complete, untouched results of exactly this job."""
    try:
        recorded = json.loads((out / VIDEO_STATE).read_text())
    except (OSError, ValueError):
        return False
    masks = results["masks"]
    return (
        recorded == json.loads(json.dumps(job))
        and is_made(masks)
        and len(list(masks.glob("*.png"))) == job["frames"]
        and all(written_by_ino(results[name]) for name in ("overlay", "contact_sheet"))
    )


def _replace_video_results(
    out: Path, staging: Path, results: Mapping[str, Path], job: Mapping[str, object] | None
) -> None:
    """Move the complete new results over the previous ones (renames: microseconds); the record of the job goes
    first and comes back last, so results caught half replaced are never taken for a finished job."""
    (out / VIDEO_STATE).unlink(missing_ok=True)
    for name in ("overlay", "contact_sheet"):
        os.replace(staging / results[name].name, results[name])
        record_file(results[name])
    previous = out / PREVIOUS_MASKS
    remove_made(previous)  # left by a run killed during this swap
    if results["masks"].exists():
        os.replace(results["masks"], previous)
    os.replace(staging, results["masks"])
    remove_made(previous)
    if job is not None:
        atomic_write_text(out / VIDEO_STATE, json.dumps(job, indent=1, sort_keys=True) + "\n")
