"""Whole propagation runs on disk: DAVIS, YouTube-VOS and single videos, resumable and written atomically.

A sequence is written into a hidden temporary folder and renamed into place when its last frame is done, so
a folder under ``--out`` is always complete. ``<out>/.ino-propagate.json`` records the settings (backbone,
protocol) and the finished sequences: re-running the same command skips them and redoes a partial one; a
re-run with other settings refuses to mix results rather than silently overwrite or reuse them.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

import numpy as np
from tqdm import tqdm

from ino.atomic import atomic_write, atomic_write_text
from ino.data.davis import DavisLayout, read_frame, write_mask
from ino.data.videos import IMAGE_SUFFIXES
from ino.errors import InoError
from ino.features import FeatureExtractor, map_frames
from ino.video_propagation import check_mask, load_mask, segment_frames
from ino.viz import OverlayVideoWriter, contact_sheet, overlay_mask

STATE_FILE = ".ino-propagate.json"


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
    """Write masks named by frame into ``folder`` via a hidden temporary folder renamed at the end."""
    partial = folder.parent / f".partial-{folder.name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, ids in zip(names, masks, strict=True):
        if keep is None or name in keep:
            write_mask(partial / f"{name}.png", ids)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)


def _progress(frames: list[Path], label: str, enabled: bool) -> Iterator[Path]:
    return iter(tqdm(frames, desc=label, unit="frame", leave=False, disable=not enabled))


def propagate_davis(
    davis_root: str | Path,
    out: str | Path,
    extractor: FeatureExtractor,
    settings: Mapping[str, object],
    *,
    set_name: str = "val",
    resolution: str = "480p",
    sequences: list[str] | None = None,
    max_frames: int | None = None,
    progress: bool = True,
) -> list[str]:
    """Propagate each sequence's frame-0 annotation; write ``<out>/<sequence>/<frame>.png``.

    Only the first annotation is read (spec §11 item 32: no other ground truth is touched). Returns the
    sequences processed, finished ones included.
    """
    layout = DavisLayout(Path(davis_root), resolution)
    out = Path(out)
    names = sequences or layout.sequences(set_name)
    state = RunState(out, {**settings, "max_frames": max_frames})
    for name in tqdm(names, desc="sequences", unit="seq", disable=not progress or len(names) == 1):
        folder = out / name
        if state.is_finished(name, folder):
            print(f"{name}: already done, skipped")
            continue
        frames = layout.image_frames(name)[:max_frames]
        annotation = layout.annotation_dir(name) / f"{frames[0].stem}.png"
        first = load_mask(annotation, str(annotation))
        masks = segment_frames(map_frames(read_frame, _progress(frames, name, progress)), {0: first}, extractor)
        try:
            _write_sequence(folder, [p.stem for p in frames], masks, keep=None)
        except InoError as error:
            raise InoError(f"sequence {name!r}: {error}") from None
        state.finish(name)
    return names


def _folder(folder: Path) -> Path:
    if not folder.is_dir():
        raise InoError(f"{folder}: no such folder")
    return folder


def _images(folder: Path) -> list[Path]:
    """The image files of a frame folder, sorted by name (the frame order)."""
    return sorted(p for p in _folder(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def propagate_ytvos(
    root: str | Path,
    out: str | Path,
    extractor: FeatureExtractor,
    settings: Mapping[str, object],
    *,
    all_frames: str | Path | None = None,
    videos: list[str] | None = None,
    progress: bool = True,
) -> Path:
    """YouTube-VOS (spec §9): propagate over every frame, write only the annotated-frame list, zip it.

    ``root`` is a split folder (``valid/``) with ``JPEGImages/<video>/`` (the frames to output, every 5th) and
    ``Annotations/<video>/`` (each object's mask at its first appearance). ``all_frames`` (``valid_all_frames/``)
    holds every frame; without it the sparse frames are propagated. Objects first appearing at frame t start
    their own chain there. Writes ``<out>/Annotations/<video>/<frame>.png`` at the original size and
    ``<out>/Annotations.zip`` for the evaluation server; returns the zip's path.
    """
    root, out = Path(root), Path(out)
    source_root = Path(all_frames) if all_frames else root
    annotations = out / "Annotations"
    names = videos or sorted(p.name for p in _folder(root / "Annotations").iterdir() if p.is_dir())
    state = RunState(out, {**settings, "all_frames": bool(all_frames)})
    for name in tqdm(names, desc="videos", unit="video", disable=not progress or len(names) == 1):
        folder = annotations / name
        if state.is_finished(name, folder):
            continue
        outputs = {p.stem for p in _images(root / "JPEGImages" / name)}
        frame_dir = source_root / "JPEGImages" / name
        frames = _images(frame_dir)
        stems = [p.stem for p in frames]
        position = {stem: t for t, stem in enumerate(stems)}
        given: dict[int, np.ndarray] = {}
        for path in sorted((root / "Annotations" / name).glob("*.png")):
            if path.stem not in position:
                raise InoError(f"{path}: annotated frame {path.stem} is not among the frames in {frame_dir}")
            given[position[path.stem]] = load_mask(path, str(path))
        if not given:
            raise InoError(f"{root / 'Annotations' / name}: no annotation PNG")
        start = min(given)
        masks = {t - start: ids for t, ids in given.items()}
        masks_out = segment_frames(map_frames(read_frame, _progress(frames[start:], name, progress)), masks, extractor)
        empty = np.zeros_like(masks[0])
        before = (empty for _ in stems[:start])
        try:
            _write_sequence(folder, stems, itertools.chain(before, masks_out), keep=outputs)
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
    extractor: FeatureExtractor,
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

    masks_dir = out / "masks"
    partial = out / ".partial-masks"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    tiles: list[tuple[str, np.ndarray]] = []
    overlay_path = out / "overlay.mp4"
    with OverlayVideoWriter(overlay_path, fps or info.fps or 24.0) as writer:
        for t, ids in enumerate(segment_frames(remembered(), {0: first}, extractor)):
            shown = overlay_mask(pending.popleft(), ids)
            writer.write(shown)
            write_mask(partial / f"{t:05d}.png", ids)
            if t in chosen:
                tiles.append((f"frame {t}", shown))
    shutil.rmtree(masks_dir, ignore_errors=True)
    os.replace(partial, masks_dir)
    sheet = contact_sheet(tiles, out / "contact_sheet.png")
    return {"masks": masks_dir, "overlay": overlay_path, "contact_sheet": sheet}
