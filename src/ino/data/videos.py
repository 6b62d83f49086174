"""Videos as frame sources: video files through PyAV or OpenCV, folders of images, and INO's 8-fps resampling.

Three readers sit behind :func:`probe_video`, :func:`iter_frames` and :func:`read_frames`:

* ``"pyav"`` (the default when ``av`` is importable): what training uses. It is the decoder behind torchvision's
  ``read_video``, which INO's ``VideoClips`` called (docs/method.md §1.3), and it seeks by presentation
  timestamp, so random access is exact and cheap. ``av`` is imported lazily: this module and the OpenCV reader
  work without it.
* ``"opencv"`` (``cv2.VideoCapture`` with its bundled FFmpeg): present where PyAV is not (our GPU image). On the
  33 dev clips it returns the same pixels as PyAV (same FFmpeg decoder and swscale conversion).
* a folder of ``.jpg``/``.jpeg``/``.png`` files, sorted by name, is a video too (DAVIS ``JPEGImages`` layout). It is
  decoded with PIL, as INO's training decodes frames, whatever backend is asked for.

Frame ``i`` always means the i-th frame in presentation order, and every path returns RGB ``uint8`` (H, W, 3)
arrays; random access returns exactly the pixels of sequential decoding with the same reader. Bad input raises
:class:`~ino.errors.InoError` naming the file and the problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ino.configs.schema import VIDEO_BACKENDS
from ino.errors import InoError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Frame rate assumed for a folder of images: DAVIS footage is 24 fps (and our davis16 clips were encoded at 24).
DEFAULT_FOLDER_FPS = 24.0


@dataclass(frozen=True)
class VideoInfo:
    """What a reader learned about a video without decoding pixels (except where said).

    ``n_frames`` is exact, never the container header's claim: a header can count frames that are never shown
    (``cotracker-pillow.mp4`` says 149, decodes to 147 because an edit list discards two). PyAV counts the
    packets that carry a timestamp and are not marked discard (demuxing only, ~5 ms per clip) and falls back to
    decoding when packets carry no timestamps; OpenCV cannot demux, so it grabs (decodes without colour
    conversion) every frame; a folder counts its image files.

    ``timestamps`` are presentation times in seconds, one per frame (``None`` for folders): PyAV's come from the
    packets (stream time base), OpenCV's from ``CAP_PROP_POS_MSEC`` while counting. ``pts`` (PyAV only) are the
    same times as integers in the stream time base, kept so that :func:`read_frames` can seek without demuxing
    again. Pass a ``VideoInfo`` from the same backend as ``info=`` to skip that work.
    """

    path: Path
    n_frames: int
    fps: float
    height: int
    width: int
    backend: str
    timestamps: tuple[float, ...] | None = None
    pts: tuple[int, ...] | None = None


def import_av() -> ModuleType | None:
    """PyAV if importable; looked up on every call so that hiding ``av`` (tests, the GPU image) is honoured."""
    try:
        import av
    except ImportError:
        return None
    return av


def _resolve(path: str | Path, backend: str) -> tuple[Path, str]:
    """Check that ``path`` exists and pick the reader: ``"folder"``, ``"pyav"`` or ``"opencv"``."""
    path = Path(path)
    if backend not in VIDEO_BACKENDS:
        raise InoError(f"{path}: unknown video backend {backend!r} (choose one of {', '.join(VIDEO_BACKENDS)})")
    if not path.exists():
        raise InoError(f"{path}: no such video file or frame folder")
    if path.is_dir():
        return path, "folder"
    if backend == "pyav" and import_av() is None:
        raise InoError(f"{path}: backend 'pyav' requested but PyAV (the 'av' package) is not installed")
    if backend == "auto":
        backend = "pyav" if import_av() is not None else "opencv"
    return path, backend


# ---------------------------------------------------------------------------------------------------- folders


def _folder_files(path: Path) -> list[Path]:
    files = sorted(
        p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )
    if not files:
        raise InoError(f"{path}: frame folder has no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InoError(f"{path}: cannot read the frame image ({error})") from None


def _check_size(frame: np.ndarray, shape: tuple[int, ...] | None, where: Path) -> tuple[int, ...]:
    if shape is not None and frame.shape != shape:
        raise InoError(f"{where}: frame size {frame.shape[1]}x{frame.shape[0]} differs from {shape[1]}x{shape[0]}")
    return frame.shape


def _folder_probe(path: Path, fps: float) -> VideoInfo:
    files = _folder_files(path)
    try:
        with Image.open(files[0]) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InoError(f"{files[0]}: cannot read the frame image ({error})") from None
    return VideoInfo(path, len(files), float(fps), height, width, "folder")


# ------------------------------------------------------------------------------------------------------- PyAV


def _av_open(path: Path) -> Any:
    av = import_av()
    assert av is not None  # _resolve checked
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as error:
        raise InoError(f"{path}: not a readable video ({error})") from None
    if not container.streams.video:
        container.close()
        raise InoError(f"{path}: has no video stream")
    return container


def _av_error(path: Path, error: Exception) -> InoError:
    return InoError(f"{path}: video cannot be decoded ({error})")


def _av_probe(path: Path) -> VideoInfo:
    av = import_av()
    assert av is not None
    with _av_open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate  # average_rate: what torchvision's VideoClips used
        height, width = stream.codec_context.height, stream.codec_context.width
        time_base = stream.time_base
        try:
            packets = [p.pts for p in container.demux(stream) if p.pts is not None and not p.is_discard]
        except av.FFmpegError as error:
            raise _av_error(path, error) from None
    pts = sorted(packets)
    if not pts or len(set(pts)) != len(pts):  # no usable timestamps: count (and time) decoded frames instead
        pts = []
        with _av_open(path) as container:
            stream = container.streams.video[0]
            try:
                for frame in container.decode(stream):
                    pts.append(frame.pts)
                    height, width = frame.height, frame.width
            except av.FFmpegError as error:
                raise _av_error(path, error) from None
        if not pts:
            raise InoError(f"{path}: video stream has no decodable frames")
        if any(p is None for p in pts) or len(set(pts)) != len(pts):
            return VideoInfo(path, len(pts), _rate_or_fail(path, rate), height, width, "pyav")
    # p * num / den: the correctly rounded float of the exact ratio, as float(p * time_base), without a Fraction
    # per frame (which was a third of the probe's time)
    num, den = (time_base.numerator, time_base.denominator) if time_base else (0, 0)
    seconds = tuple(p * num / den for p in pts) if time_base else None
    if not rate and seconds and len(seconds) > 1 and seconds[-1] > seconds[0]:
        rate = (len(seconds) - 1) / (seconds[-1] - seconds[0])
    return VideoInfo(path, len(pts), _rate_or_fail(path, rate), height, width, "pyav", seconds, tuple(pts))


def _rate_or_fail(path: Path, rate: Any) -> float:
    if not rate or float(rate) <= 0:
        raise InoError(f"{path}: cannot determine the frame rate")
    return float(rate)


def av_frames(path: Path, start: int, stop: int | None, info: VideoInfo | None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, av.VideoFrame)`` for start <= index < stop, seeking when ``start > 0``.

    The seek lands on the keyframe at or before frame ``start``'s timestamp and frames are numbered by the rank
    of their timestamp. If that numbering does not line up (no timestamp, a landing after the target, a gap), we
    reopen and number decoded frames by count from the first, which is the definition of frame ``i``.
    """
    av = import_av()
    assert av is not None
    if stop is not None and stop <= start:
        return
    pts = info.pts if info is not None and info.backend == "pyav" else None
    if start > 0 and pts is None:
        pts = _av_probe(path).pts
    expected = start  # the next index to yield
    try:
        if start > 0 and pts is not None:
            if start >= len(pts):
                return
            rank = {p: i for i, p in enumerate(pts)}
            with _av_open(path) as container:
                stream = container.streams.video[0]
                container.seek(pts[start], stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    index = rank.get(frame.pts) if frame.pts is not None else None
                    if index is None or index > expected:
                        break  # cannot place this frame, or the seek overshot: count from the start instead
                    if index == expected:
                        yield index, frame
                        expected += 1
                        if stop is not None and expected >= stop:
                            return
                else:
                    return
        with _av_open(path) as container:
            for index, frame in enumerate(container.decode(container.streams.video[0])):
                if stop is not None and index >= stop:
                    return
                if index >= expected:
                    yield index, frame
    except av.FFmpegError as error:
        raise _av_error(path, error) from None


# ----------------------------------------------------------------------------------------------------- OpenCV


def _cv_open(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise InoError(f"{path}: not a readable video (OpenCV could not open it)")
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)  # PyAV and torchvision ignore rotation metadata; so do we
    return capture


def _cv_probe(path: Path) -> VideoInfo:
    capture = _cv_open(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        seconds = []
        while capture.grab():  # CAP_PROP_FRAME_COUNT is the header's guess; count what actually decodes
            seconds.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    finally:
        capture.release()
    if not seconds:
        raise InoError(f"{path}: video has no decodable frames")
    if len(set(seconds)) != len(seconds):
        return VideoInfo(path, len(seconds), _rate_or_fail(path, fps), height, width, "opencv")
    return VideoInfo(path, len(seconds), _rate_or_fail(path, fps), height, width, "opencv", tuple(seconds))


def _cv_frames(path: Path, start: int, stop: int | None, info: VideoInfo | None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, RGB frame)`` for start <= index < stop.

    OpenCV seeks by frame number through the average fps, which can land on the wrong frame in variable-rate
    files; we accept its seek only when the landed frame's timestamp equals the one an OpenCV probe recorded for
    that index, else we grab (decode without colour conversion) from the first frame.
    """
    if stop is not None and stop <= start:
        return
    capture = _cv_open(path)
    try:
        current = -1  # index of the grabbed frame that retrieve() would return
        times = info.timestamps if info is not None and info.backend == "opencv" else None
        if start > 0 and times is not None and start < len(times):
            capture.set(cv2.CAP_PROP_POS_FRAMES, start)
            if capture.grab() and abs(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 - times[start]) < 1e-6:
                current = start
            else:
                capture.release()
                capture = _cv_open(path)
        while current < start:
            if not capture.grab():
                return
            current += 1
        while stop is None or current < stop:
            ok, frame = capture.retrieve()
            if not ok:
                raise InoError(f"{path}: frame {current} cannot be decoded")
            yield current, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if not capture.grab():
                return
            current += 1
    finally:
        capture.release()


# ------------------------------------------------------------------------------------------------- public API


def probe_video(path: str | Path, backend: str = "auto", *, folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoInfo:
    """Frame count, frame rate, size and timestamps of a video file or frame folder (see :class:`VideoInfo`).

    ``folder_fps`` is the rate given to a folder of images, which has none of its own (ignored for files).
    """
    path, kind = _resolve(path, backend)
    if kind == "folder":
        return _folder_probe(path, folder_fps)
    return _av_probe(path) if kind == "pyav" else _cv_probe(path)


def iter_frames(
    path: str | Path,
    backend: str = "auto",
    start: int = 0,
    stop: int | None = None,
    *,
    info: VideoInfo | None = None,
) -> Iterator[np.ndarray]:
    """Stream frames ``start .. stop-1`` (to the end when ``stop`` is None) as RGB uint8 (H, W, 3), in order.

    One frame is held at a time, so label propagation can walk videos of any length. PyAV seeks to the keyframe
    before ``start``; OpenCV seeks only when given an OpenCV ``info`` (see :func:`_cv_frames`). The path, backend
    and range are checked on the call; a file that turns out not to decode raises when iterated.
    """
    path, kind = _resolve(path, backend)
    if start < 0 or (stop is not None and stop < start):
        raise InoError(f"{path}: invalid frame range start={start}, stop={stop}")
    if kind == "folder":
        return _folder_frames(_folder_files(path)[start:stop])
    if kind == "pyav":
        # to_ndarray(format="rgb24") is torchvision's frame.to_rgb().to_ndarray(): the pixels INO trained on
        return (frame.to_ndarray(format="rgb24") for _, frame in av_frames(path, start, stop, info))
    return (frame for _, frame in _cv_frames(path, start, stop, info))


def _folder_frames(files: list[Path]) -> Iterator[np.ndarray]:
    shape = None
    for file in files:
        frame = _read_image(file)
        shape = _check_size(frame, shape, file)
        yield frame


def read_frames(
    path: str | Path, indices: Sequence[int] | np.ndarray, backend: str = "auto", *, info: VideoInfo | None = None
) -> np.ndarray:
    """Frames at ``indices`` (any order, repeats allowed) as a (len(indices), H, W, 3) uint8 array.

    For training clips: decoding starts at the keyframe before the smallest index and stops at the largest, and
    only the requested frames are converted to RGB, with exactly the pixels of sequential decoding. Pass the
    ``info`` of an earlier :func:`probe_video` with the same backend to skip re-reading the timestamps.
    """
    path, kind = _resolve(path, backend)
    wanted = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
    if any(i < 0 for i in wanted):
        raise InoError(f"{path}: negative frame index {min(wanted)}")
    if kind == "folder":
        files = _folder_files(path)
        n_frames: int | None = len(files)
    elif kind == "pyav" and (info is None or info.backend != "pyav"):
        info = _av_probe(path)
        n_frames = info.n_frames
    else:
        n_frames = info.n_frames if info is not None and info.backend == kind else None
    if n_frames is not None and wanted and max(wanted) >= n_frames:
        raise InoError(f"{path}: frame index {max(wanted)} out of range (the video has {n_frames} frames)")
    if not wanted:
        meta = info if info is not None else probe_video(path, backend)
        return np.empty((0, meta.height, meta.width, 3), dtype=np.uint8)
    unique = sorted(set(wanted))
    got: dict[int, np.ndarray] = {}
    if kind == "folder":
        shape = None
        for i in unique:
            got[i] = _read_image(files[i])
            shape = _check_size(got[i], shape, files[i])
    elif kind == "pyav":
        want = set(unique)
        for i, frame in av_frames(path, unique[0], unique[-1] + 1, info):
            if i in want:
                got[i] = frame.to_ndarray(format="rgb24")
    else:
        want = set(unique)
        for i, frame in _cv_frames(path, unique[0], unique[-1] + 1, info):
            if i in want:
                got[i] = frame
    missing = [i for i in unique if i not in got]
    if missing:
        raise InoError(f"{path}: frame index {missing[0]} out of range (the video ended before it)")
    return np.stack([got[i] for i in wanted])


def exact_fraction(value: float | Fraction) -> Fraction:
    """A rate as an exact fraction: 29.97002997... -> 30000/1001, so floors land where the true rate puts them."""
    return Fraction(value).limit_denominator(100_000) if isinstance(value, float) else Fraction(value)


def resampled_indices(n_frames: int, fps: float | Fraction, target_fps: float | Fraction = 8.0) -> np.ndarray:
    """Source frame indices of a video resampled from ``fps`` to ``target_fps`` (docs/method.md §1.2).

    As torchvision's ``VideoClips``: floor(n_frames * target_fps / fps) resampled frames, frame k taken from source
    index floor(k * fps / target_fps) (a plain stride when the ratio is an integer; repeats when upsampling).
    Computed with exact fractions: torchvision's float32 products leave the true floor after ~4,500 resampled
    frames at 59.94 fps (~9 min of video; ~9,000 at 29.97 fps), so long videos differ there, by one source frame.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    source, target = exact_fraction(fps), exact_fraction(target_fps)
    if source <= 0 or target <= 0:
        raise ValueError(f"frame rates must be positive, got fps={fps}, target_fps={target_fps}")
    count = math.floor(n_frames * target / source)
    step = source / target
    return np.arange(count, dtype=np.int64) * step.numerator // step.denominator
