"""Whole propagation runs on disk: DAVIS, YouTube-VOS and single videos, resumable and written atomically.

Each is a loop over :class:`~ino.propagation.api.VideoPropagator`. A sequence is written into a hidden temporary
folder and renamed into place when its last frame is done, so a folder under ``--out`` is always complete.
``<out>/.ino-propagate.json`` records the settings (backbone, protocol) and the finished sequences: re-running the
same command skips them and redoes a partial one; a re-run with other settings refuses to mix results rather than
silently overwrite or reuse them. Under ``torchrun`` the sequences are split over the ranks
(:mod:`ino.propagation.run_state`); every sequence's masks are those of a one-process run.
"""

from __future__ import annotations

import itertools
import logging
import os
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

import numpy as np
from tqdm import tqdm

from ino.data.davis import DavisLayout, YtvosLayout, read_frame, read_object_ids, write_mask
from ino.errors import InoError
from ino.propagation.api import VideoPropagator, check_mask, load_mask
from ino.propagation.features import map_frames
from ino.propagation.run_state import run_shared, shared_run
from ino.utils.atomic import atomic_write
from ino.utils.distributed import Distributed
from ino.utils.outputs import exclusive, refuse_inside, remove_made, renew
from ino.utils.viz import OverlayVideoWriter, contact_sheet, overlay_mask

log = logging.getLogger(__name__)


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
        masks = propagator.run(_decoded(frames, name, shown), {0: annotation})
        try:
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
        _write_sequence(folder, stems, itertools.chain(before, masks), keep=layout.output_frames(name))
    except InoError as error:
        raise InoError(f"video {name!r}: {error}") from None


def propagate_video_file(
    video: str | Path,
    first_mask: str | Path,
    out: str | Path,
    propagator: VideoPropagator,
    *,
    max_frames: int | None = None,
    fps: float | None = None,
    sheet_frames: int = 8,
    progress: bool = True,
) -> dict[str, Path]:
    """A video file or frame folder -> ``<out>/masks/<frame>.png``, ``overlay.mp4`` and ``contact_sheet.png``.

    Frames are streamed once: each is kept only until its mask is ready (a batch plus the prefetch queue),
    when its overlay is written; the contact sheet keeps overlays of ``sheet_frames`` evenly spaced frames.
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

    def remembered() -> Iterator[np.ndarray]:
        stream = iter_frames(video, stop=n_frames)
        for frame in tqdm(stream, total=n_frames, desc=video.name, unit="frame", disable=not progress):
            pending.append(frame)
            yield frame

    with exclusive(out, "ino propagate"):
        masks_dir = out / "masks"
        partial = _partial(masks_dir)
        tiles: list[tuple[str, np.ndarray]] = []
        overlay_path, partial_overlay = out / "overlay.mp4", partial / "overlay.mp4"
        with OverlayVideoWriter(partial_overlay, fps or info.fps or 24.0) as writer:
            for t, ids in enumerate(propagator.run(remembered(), {0: first})):
                shown = overlay_mask(pending.popleft(), ids)
                writer.write(shown)
                write_mask(partial / f"{t:05d}.png", ids)
                if t in chosen:
                    tiles.append((f"frame {t}", shown))
        os.replace(partial_overlay, overlay_path)  # a run that fails leaves no playable partial overlay
        os.replace(partial, masks_dir)
        sheet = contact_sheet(tiles, out / "contact_sheet.png")
    return {"masks": masks_dir, "overlay": overlay_path, "contact_sheet": sheet}
