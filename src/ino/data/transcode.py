"""Transcode a video collection once into small, fast-seeking H.264 files for training.

Training decodes 4 frames at random places of every video, at native resolution, and then crops at most ~95 % of
a frame down to 224 px (docs/method.md §1.3, §2): decoding 1080p sources with 250-frame GOPs spends most of the
loader's time on pixels and frames that are thrown away. ``prepare`` re-encodes every video once with libx264
(yuv420p, crf 23), the short side at most ``short_side`` (even sides, as yuv420p needs), a keyframe every
``keyframe_interval`` frames so a seek decodes at most that many frames, optionally resampled to ``fps``
(INO's own 8-fps index then maps 1:1).
Audio is dropped. Frames are re-timed at a constant rate, which is how the readers number them anyway.

Outputs mirror the inputs' relative paths under ``dst`` (``a/b.mp4`` -> ``dst/a/b.mp4``; any other container or a
frame folder gets ``.mp4`` appended: ``b.webm.mp4``), each written atomically. Every output records the settings
in its ``comment`` tag, so a rerun skips outputs made with the same settings and redoes the others: the job is
resumable at file granularity. A bad input is reported (one line, and ``prepare-report.json``), never fatal; a
worker process that dies inside FFmpeg only costs the file it was on (see :func:`_run_jobs`).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from ino.data.sources import ClipWarning, list_videos
from ino.data.videos import av_frames, import_av, iter_frames, probe_video, resampled_indices
from ino.errors import InoError
from ino.utils.atomic import atomic_write, atomic_write_text
from ino.utils.outputs import claim_file, exclusive, mark_made, record_file, written_by_ino

REPORT_NAME = "prepare-report.json"
#: The random part of the temporary names that :func:`~ino.utils.atomic.atomic_write` (``mkstemp``) gives.
TEMPORARY_SUFFIX = re.compile(r"[a-z0-9_]{8}")
log = logging.getLogger(__name__)
#: Part of every output's settings tag: bump when the encoding changes in a way that should redo old outputs.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TranscodeConfig:
    """How outputs are encoded; ``fps=None`` keeps each video's native rate."""

    short_side: int = 320
    fps: float | None = None
    keyframe_interval: int = 8
    crf: int = 23
    preset: str = "veryfast"

    def tag(self) -> str:
        """The settings as written into (and compared with) each output's ``comment`` metadata."""
        fps = "native" if self.fps is None else f"{self.fps:g}"
        return (
            f"ino-prepare v{FORMAT_VERSION} short_side={self.short_side} fps={fps} "
            f"keyint={self.keyframe_interval} crf={self.crf} preset={self.preset}"
        )


#: (source, output, settings, encoder threads): what a worker process needs for one file.
Job = tuple[str, str, TranscodeConfig, int]


@dataclass(frozen=True)
class FileResult:
    """What happened to one input: ``done`` (transcoded), ``skipped`` (output already complete) or ``failed``."""

    source: str
    output: str
    status: str
    error: str | None = None
    frames: int = 0
    bytes_out: int = 0


@dataclass
class PrepareReport:
    """Counts per status, the failures, and list entries that were missing (also in ``prepare-report.json``)."""

    settings: dict
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    frames: int = 0
    bytes_out: int = 0
    seconds: float = 0.0


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side scaled down to at most ``short_side`` (never up), both even."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def output_name(relative: Path, is_file: bool) -> Path:
    """``a/b.mp4`` stays; ``a/b.webm`` -> ``a/b.webm.mp4`` and a frame folder ``a/b`` -> ``a/b.mp4``: never two
    inputs onto one output."""
    return relative if is_file and relative.suffix.lower() == ".mp4" else relative.with_name(relative.name + ".mp4")


def _settings_tag(output: Path) -> str | None:
    """The settings ``ino prepare`` recorded in ``output`` (its ``comment`` tag), or None for any other file."""
    av = import_av()
    if av is None or not output.is_file():
        return None
    try:
        with av.open(str(output), metadata_errors="ignore") as container:
            tag = container.metadata.get("comment")
    except (av.FFmpegError, OSError):
        return None
    return tag if isinstance(tag, str) and tag.startswith("ino-prepare v") else None


def _is_current(output: Path, tag: str) -> bool:
    """True when ``output`` is a complete output made with these settings (atomic writes: present = complete)."""
    return _settings_tag(output) == tag


def _is_report(path: Path) -> bool:
    """Whether ``path`` is a report that ``ino prepare`` wrote (before reports were recorded as ino's)."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and report.keys() == {f.name for f in fields(PrepareReport)}


def _frames_to_write(source: Path, config: TranscodeConfig) -> tuple[Iterator[Any], Fraction, int, int]:
    """The ``av.VideoFrame``s to encode (repeated or dropped when resampling), the output rate and the source size.

    Frames are numbered and found as :func:`~ino.data.videos.read_frames` finds them, so the output holds exactly
    the frames that training would read from the source. Video frames stay in their decoded YUV: a detour through
    RGB would cost a conversion each way and ~4 levels of colour.
    """
    av = import_av()
    assert av is not None  # checked by the caller
    info = probe_video(source, "pyav")
    if info.backend == "folder":
        frames = (av.VideoFrame.from_ndarray(array, format="rgb24") for array in iter_frames(source))
    else:
        frames = (frame for _, frame in av_frames(source, 0, None, info))
    if config.fps is None:
        return frames, Fraction(info.fps).limit_denominator(100_000), info.width, info.height
    wanted = Counter(resampled_indices(info.n_frames, info.fps, config.fps).tolist())

    def resampled() -> Iterator[Any]:
        for i, frame in enumerate(frames):
            for _ in range(wanted.get(i, 0)):
                yield frame

    return resampled(), Fraction(config.fps).limit_denominator(100_000), info.width, info.height


def transcode(source: Path, output: Path, config: TranscodeConfig, threads: int = 0) -> int:
    """Encode ``source`` (a video file or frame folder) to ``output`` atomically; returns the frames written.

    The output holds the frames, at the frame rate, that training reads from the source (see
    :func:`_frames_to_write`). ``threads`` = 0 lets x264 choose.
    """
    av = import_av()
    if av is None:
        raise InoError("ino prepare needs PyAV (the 'av' package)")
    frames, rate, width, height = _frames_to_write(source, config)
    out_width, out_height = output_size(width, height, config.short_side)
    written = 0

    def encode(stream: IO[bytes]) -> None:
        nonlocal written
        with av.open(stream, "w", format="mp4") as container:
            container.metadata["comment"] = config.tag()
            video = container.add_stream("libx264", rate=rate)
            video.width, video.height, video.pix_fmt = out_width, out_height, "yuv420p"
            video.codec_context.gop_size = config.keyframe_interval
            video.codec_context.thread_count = threads
            video.options = {"crf": str(config.crf), "preset": config.preset}
            for frame in frames:
                frame = frame.reformat(out_width, out_height, format="yuv420p", interpolation="AREA")
                frame.pts, frame.time_base = written, 1 / rate
                container.mux(video.encode(frame))
                written += 1
            container.mux(video.encode())
        if not written:
            raise InoError(f"{source}: no frames to write (fps={config.fps} keeps none)")

    atomic_write(output, encode)
    return written


def _prepare_one(job: Job) -> FileResult:
    """Run in a worker process: skip, transcode, or report why not (any exception: one bad file never stops a
    collection of 100k)."""
    source, output, config, threads = job
    if _is_current(Path(output), config.tag()):
        return FileResult(source, output, "skipped", bytes_out=os.path.getsize(output))
    # the temporary file of a write that was killed (a crash, a broken pool): mkstemp's 8 characters, no other
    for stale in Path(output).parent.glob(f".{glob.escape(Path(output).name)}.{'?' * 8}"):
        if TEMPORARY_SUFFIX.fullmatch(stale.name.rsplit(".", 1)[1]):
            stale.unlink(missing_ok=True)
    try:
        frames = transcode(Path(source), Path(output), config, threads)
    except Exception as error:
        message = str(error).removeprefix(f"{source}: ") if isinstance(error, InoError) else repr(error)
        return FileResult(source, output, "failed", error=message)
    return FileResult(source, output, "done", frames=frames, bytes_out=os.path.getsize(output))


def _run_jobs(jobs: list[Job], workers: int) -> Iterator[FileResult]:
    """Results of ``jobs`` on ``workers`` processes, in completion order.

    At most ``2 * workers`` jobs are in flight. If a worker dies (a fault inside FFmpeg kills the whole pool),
    the jobs that were in flight are retried one at a time in a fresh single-process pool, which pins the crash
    on its file; then the rest resumes in a new pool.
    """
    queue, suspects = deque(jobs), deque[Job]()
    while queue or suspects:
        if suspects:
            job = suspects.popleft()
            with ProcessPoolExecutor(1) as pool:
                try:
                    yield pool.submit(_prepare_one, job).result()
                except BrokenProcessPool:
                    yield FileResult(job[0], job[1], "failed", error="the worker process died while transcoding it")
            continue
        with ProcessPoolExecutor(workers) as pool:
            running: dict[Future, Job] = {}
            while queue or running:
                while queue and len(running) < 2 * workers:
                    job = queue.popleft()
                    running[pool.submit(_prepare_one, job)] = job
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    job = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        suspects.append(job)
                        broken = True
                        continue
                    yield result
                if broken:
                    suspects.extend(running.values())
                    break


def _refuse_overlap(src: Path, dst: Path, videos: list[Path]) -> None:
    """Stop when ``dst`` lies inside the folder ``src`` or holds a listed video: outputs would become inputs (a
    rerun would transcode them again, or transcode a file onto itself), and leaving those videos out is silent."""
    if src.is_dir() and (dst == src.resolve() or src.resolve() in dst.parents):
        raise InoError(
            f"--dst {dst} lies inside --src {src}: a later run would read its outputs as inputs; choose a --dst "
            "outside --src"
        )
    inside = [v for v in videos if v.resolve() == dst or dst in v.resolve().parents]
    if inside:
        more = f" (and {len(inside) - 1} more)" if len(inside) > 1 else ""
        raise InoError(
            f"{inside[0]}{more}, named by --src {src}, lies inside --dst {dst}: outputs would replace or re-encode "
            "inputs; choose a --dst that holds none of the videos"
        )


def _claim_outputs(jobs: list[Job], dst: Path, overwrite: bool) -> None:
    """Stop before any work when an output's name is taken by something ``ino`` did not write (a user's file of
    the same name, a folder), unless ``overwrite``. An earlier run's output is ino's by its settings tag, even in a
    folder without a marker (made by an older ``ino``, or copied with new modification times)."""
    taken = []
    for source, output, _, _ in jobs:
        path = Path(output)
        if path.is_dir():
            raise InoError(f"{path} is a folder where the output of {source} goes: move it, or choose another --dst")
        if path.exists() and not overwrite and not written_by_ino(path) and _settings_tag(path) is None:
            taken.append((path, source))
    if taken:
        (path, source), more = taken[0], f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise InoError(
            f"{path}{more} exists in --dst {dst} and was not written by ino (the output of {source} goes there): "
            "move it away, choose another --dst, or pass --overwrite to replace it"
        )
    report = dst / REPORT_NAME
    claim_file(report, overwrite=overwrite or _is_report(report), what="--dst report")


def _make_folders(dst: Path, outputs: list[str], fresh: bool) -> None:
    """Mark ``dst`` as ino's when this run made it (``fresh``), and create the folders the outputs go into, each
    marked (a folder that exists stays as it is): the outputs in them are then ino's to replace on a rerun, with no
    record per file."""
    if fresh:
        mark_made(dst)
    needed = {folder for output in outputs for folder in Path(output).parents if dst in folder.parents}
    for folder in sorted(needed, key=lambda f: len(f.parts)):
        if not folder.exists():
            mark_made(folder)


def prepare(
    src: str | Path,
    dst: str | Path,
    config: TranscodeConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> PrepareReport:
    """Transcode every video that ``src`` names (a folder, glob or csv/txt list; see
    :func:`~ino.data.sources.list_videos`) into ``dst``; returns the report also written to ``dst``.

    Each failed or missing input is logged as a warning (one line each) and listed in the report. A file in
    ``dst`` that ``ino`` did not write is never replaced unless ``overwrite``: the command stops before any work.
    """
    config = config or TranscodeConfig()
    if config.short_side < 2 or config.keyframe_interval < 1 or (config.fps is not None and config.fps <= 0):
        raise InoError(f"invalid transcoding settings: {config.tag()}")
    if import_av() is None:
        raise InoError("ino prepare needs PyAV (the 'av' package) to encode H.264")
    started = time.perf_counter()
    src, dst = Path(src), Path(dst).resolve()
    with warnings.catch_warnings():  # missing list entries get our own line below, not a second one
        warnings.simplefilter("ignore", ClipWarning)
        listed = list_videos(src)
    videos = [Path(os.path.abspath(v)) for v in listed]
    _refuse_overlap(src, dst, videos)
    folder = src.is_dir() and listed != [src]  # a folder of videos, not one frame folder
    root = Path(os.path.abspath(src)) if folder else Path(os.path.commonpath([v.parent for v in videos]))
    workers = max(1, workers or os.cpu_count() or 1)
    threads = max(1, (os.cpu_count() or 1) // workers)  # encoder threads: fill the cores, no oversubscription
    jobs = [(str(v), str(dst / output_name(v.relative_to(root), v.is_file())), config, threads) for v in videos]
    _claim_outputs(jobs, dst, overwrite)
    report = PrepareReport(settings=asdict(config), counts={"done": 0, "skipped": 0, "failed": 0})
    report.missing = [str(p) for p in listed.missing]
    for path in report.missing:
        log.warning("missing: %s", path)
    fresh = not dst.exists()
    with exclusive(dst, "ino prepare"):
        _make_folders(dst, [job[1] for job in jobs], fresh)
        for result in tqdm(_run_jobs(jobs, workers), total=len(jobs), unit="video", disable=not progress):
            report.counts[result.status] += 1
            report.frames += result.frames
            report.bytes_out += result.bytes_out
            if result.status == "failed":
                report.failed.append({"source": result.source, "error": result.error})
                log.warning("failed: %s: %s", result.source, result.error)
        report.seconds = round(time.perf_counter() - started, 3)
        record_file(atomic_write_text(dst / REPORT_NAME, json.dumps(asdict(report), indent=1) + "\n"))
    return report
