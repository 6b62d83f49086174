"""Whole propagation runs on disk: DAVIS, YouTube-VOS and single videos, resumable and written atomically.

Each is a loop over :class:`~ino.propagation.api.VideoPropagator`. A sequence is written into a hidden temporary
folder and renamed into place when its last frame is done, so a folder under ``--out`` is always complete.
``<out>/.ino-propagate.json`` records the settings (backbone, protocol) and the finished sequences: re-running the
same command skips them and redoes a partial one; a re-run with other settings refuses to mix results rather than
silently overwrite or reuse them.
"""

from __future__ import annotations

import itertools
import json
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
from ino.utils.atomic import atomic_write, atomic_write_text
from ino.utils.outputs import exclusive, refuse_inside, remove_made, renew
from ino.utils.viz import OverlayVideoWriter, contact_sheet, overlay_mask

STATE_FILE = ".ino-propagate.json"
log = logging.getLogger(__name__)


class RunState:
    """The settings a results folder was made with and the sequences finished under them."""

    def __init__(self, out: Path, settings: Mapping[str, object]) -> None:
        self.path = out / STATE_FILE
        self.settings = json.loads(json.dumps(settings))
        self.finished: list[str] = []
        if self.path.is_file():
            try:
                stored = json.loads(self.path.read_text())
                previous, finished = stored["settings"], list(stored["finished"])
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise InoError(f"{self.path}: unreadable run state ({error}); delete it to start over") from None
            if previous != self.settings:
                before, now = _flatten(previous), _flatten(self.settings)
                changed = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
                raise InoError(
                    f"{out} holds results made with other settings (changed: {', '.join(changed)}); "
                    "choose another --out or delete that folder"
                )
            self.finished = finished

    def is_finished(self, name: str, folder: Path) -> bool:
        return name in self.finished and folder.is_dir()

    def finish(self, name: str) -> None:
        if name not in self.finished:
            self.finished.append(name)
        atomic_write_text(
            self.path, json.dumps({"settings": self.settings, "finished": self.finished}, indent=1) + "\n"
        )


def _flatten(settings: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted keys, so that a refusal names the exact setting that changed."""
    flat: dict[str, object] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
) -> list[str]:
    """Propagate each sequence's frame-0 annotation; write ``<out>/<sequence>/<frame>.png``.

    Only the first annotation is read (no other ground truth is touched, docs/method.md §10). Returns the
    sequences processed, finished ones included.
    """
    layout = DavisLayout(Path(davis_root), resolution)
    out = Path(out)
    refuse_inside(out, layout.data_folders())
    names = sequences or layout.sequences(set_name)
    with exclusive(out, "ino propagate"):
        _davis_sequences(layout, out, propagator, RunState(out, {**settings, "max_frames": max_frames}), names,
                         max_frames, progress)  # fmt: skip
    return names


def _davis_sequences(
    layout: DavisLayout,
    out: Path,
    propagator: VideoPropagator,
    state: RunState,
    names: list[str],
    max_frames: int | None,
    progress: bool,
) -> None:
    for name in tqdm(names, desc="sequences", unit="seq", disable=not progress or len(names) == 1):
        folder = out / name
        if state.is_finished(name, folder):
            log.info("%s: already done, skipped", name)
            continue
        frames = layout.image_frames(name)[:max_frames]
        annotation = layout.annotation_dir(name) / f"{frames[0].stem}.png"
        masks = propagator.run(_decoded(frames, name, progress), {0: annotation})
        try:
            _write_sequence(folder, [p.stem for p in frames], masks, keep=None)
        except InoError as error:
            raise InoError(f"sequence {name!r}: {error}") from None
        state.finish(name)


def propagate_ytvos(
    layout: YtvosLayout,
    out: str | Path,
    propagator: VideoPropagator,
    settings: Mapping[str, object],
    *,
    videos: list[str] | None = None,
    progress: bool = True,
) -> Path:
    """YouTube-VOS (docs/method.md §9): propagate over every frame, write only the annotated-frame list, zip it.

    Objects first appearing at frame t start their own reference chain there. Writes
    ``<out>/Annotations/<video>/<frame>.png`` at the original size and ``<out>/Annotations.zip`` for the
    evaluation server; returns the zip's path.
    """
    out = Path(out)
    refuse_inside(out, layout.data_folders())
    names = videos or layout.videos()
    with exclusive(out, "ino propagate"):
        return _ytvos_videos(layout, out, propagator, settings, names, progress)


def _ytvos_videos(
    layout: YtvosLayout,
    out: Path,
    propagator: VideoPropagator,
    settings: Mapping[str, object],
    names: list[str],
    progress: bool,
) -> Path:
    annotations = out / "Annotations"
    state = RunState(out, {**settings, "all_frames": layout.all_frames is not None})
    for name in tqdm(names, desc="videos", unit="video", disable=not progress or len(names) == 1):
        folder = annotations / name
        if state.is_finished(name, folder):
            continue
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
        state.finish(name)

    def write_zip(stream: IO[bytes]) -> None:
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as handle:
            for name in names:
                for png in sorted((annotations / name).glob("*.png")):
                    handle.write(png, png.relative_to(out).as_posix())

    return atomic_write(out / "Annotations.zip", write_zip)


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
