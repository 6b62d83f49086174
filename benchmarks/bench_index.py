"""Clip index at scale: videos/s and peak memory of building the index cold, from its cache, and from a list that
gives frame counts, projected to Kinetics-400 (~240k videos of ~10 s at 30 fps) on 16 cores.

Two sets of real H.264 clips are generated once (PyAV libx264, a drifting random texture): ``--videos`` short
clips (default 2 s at 30 fps) and ``--long-videos`` Kinetics-length ones (10 s at 30 fps, 300 frames). Every
build runs in a fresh process, so that its peak RSS (``ru_maxrss``) is that build's alone; a process that only
imports the index code gives the fixed overhead. The files sit in the page cache: disk reads are not measured.
Last, ``--synthetic`` empty files (240k) are indexed with a stand-in probe that reads nothing: what the index
itself costs at Kinetics size, with evenly spaced timestamps and without.

    python benchmarks/bench_index.py                                    # 400 + 100 clips: a few minutes
    python benchmarks/bench_index.py --videos 2000 --long-videos 300 --decode 200 --dir /tmp/clips  # docs' run
    python benchmarks/bench_index.py --keep        # keep the generated clips in the temporary folder for next time
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

K400_VIDEOS, K400_FRAMES, CORES = 240_000, 300, 16


def write_video(path: Path, frames: int, fps: int, size: tuple[int, int], seed: int) -> None:
    """A random texture drifting one pixel a frame: every frame differs, as in real footage."""
    from ino.utils.viz import OverlayVideoWriter

    height, width = size
    texture = np.random.default_rng(seed).integers(0, 256, (height + frames, width + frames, 3), dtype=np.uint8)
    with OverlayVideoWriter(path, fps) as writer:
        for t in range(frames):
            writer.write(texture[t : t + height, t : t + width])


def make_empty_set(folder: Path, count: int) -> Path:
    """``count`` empty .mp4 files (for the synthetic full-scale builds), reused like :func:`make_set`'s."""
    done = folder / "recipe.json"
    if done.is_file() and json.loads(done.read_text()) == {"empty": count}:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for i in range(count):
        if i % 1000 == 0:
            (folder / f"{i // 1000:03d}").mkdir(parents=True)
        (folder / f"{i // 1000:03d}" / f"video{i:06d}.mp4").touch()
    done.write_text(json.dumps({"empty": count}))
    return folder


def make_set(folder: Path, count: int, frames: int, fps: int, size: tuple[int, int]) -> Path:
    """``count`` clips in ``folder``, reused when a previous run made the same set."""
    recipe = {"count": count, "frames": frames, "fps": fps, "size": size}
    done = folder / "recipe.json"
    if done.is_file() and json.loads(done.read_text()) == recipe:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paths = [folder / f"{i // 1000:03d}" / f"clip{i:06d}.mp4" for i in range(count)]
    started = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write_video, paths, [frames] * count, [fps] * count, [size] * count, range(count), chunksize=8))
    print(f"generated {count} clips of {frames} frames in {time.perf_counter() - started:.0f} s: {folder}")
    done.write_text(json.dumps(recipe))
    return folder


# ------------------------------------------------------------------------------------- one measured process


def fake_probe(path: str, backend: str, uneven: bool) -> object:
    """What PyAV's probe returns for a 10-s 30-fps Kinetics clip (tuples of 300 pts and seconds), without reading:
    evenly spaced timestamps, or (``uneven``) one frame a little late, so that every timestamp must be stored."""
    from ino.data.videos import VideoInfo

    pts = [512 * i + (7 if uneven and i == 150 else 0) for i in range(K400_FRAMES)]
    return VideoInfo(Path(path), K400_FRAMES, 30.0, 256, 340, "pyav", tuple(p / 15360 for p in pts), tuple(pts))


def measure(spec: dict) -> dict:
    """Run in a fresh process: one index build (or only the imports), timed, with this process's peak RSS."""
    started = time.perf_counter()
    import ino.data.probes
    from ino.data.clips import ClipDataset, ClipIndex, list_videos
    from ino.data.videos import import_av

    import_av()  # imported once per training run: not part of a build's cost
    result: dict = {"import_s": time.perf_counter() - started}
    if spec["mode"] != "baseline":
        warnings.simplefilter("ignore")
        videos = list_videos(spec["source"])
        if spec["mode"] == "synthetic":  # empty files, "probed" without I/O: the index machinery at full scale
            ino.data.probes.probe_video = partial(fake_probe, uneven=spec["uneven"])
        if "limit" in spec:
            videos = videos[: spec["limit"]]
        started = time.perf_counter()
        index = ClipIndex.build(videos, cache_dir=spec.get("cache"), workers=spec.get("workers", 1))
        result["build_s"] = time.perf_counter() - started
        table = index.table
        result.update(
            videos=len(index.videos),
            clips=index.n_clips,
            frames=int(table.n_frames.sum()),
            from_cache=index.from_cache,
            table_bytes=sum(getattr(table, name).nbytes for name in table.__dataclass_fields__),
        )
        if spec.get("decode"):
            dataset, rng = ClipDataset(index, lambda frames: frames), np.random.default_rng(0)
            ids = rng.integers(index.n_clips, size=spec["decode"])
            dataset.decode(int(ids[0]))  # warm-up
            started = time.perf_counter()
            for clip in ids:
                dataset.decode(int(clip))
            result["decode_ms"] = (time.perf_counter() - started) / len(ids) * 1000
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run(spec: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--measure", json.dumps(spec)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"measurement {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_counts_list(source: Path, cache: Path, out: Path) -> Path:
    """A ``path,n_frames,fps`` list (the authors' meta/*.csv with counts) of ``source``, from its cached probes."""
    from ino.data.clips import ClipIndex, list_videos

    index = ClipIndex.build(list_videos(source), cache_dir=cache, workers=1)
    rows = [f"{info.path},{info.n_frames},{info.fps!r}\n" for info in map(index.info, range(len(index.videos)))]
    out.write_text("path,n_frames,fps\n" + "".join(rows))
    return out


# ------------------------------------------------------------------------------------------------- report


def bench_set(name: str, folder: Path, work: Path, workers: list[int], decode: int) -> dict[str, dict]:
    rows: dict[str, dict] = {"fixed": run({"mode": "cold", "source": str(folder), "limit": 10})}
    for w in workers:
        rows[f"cold, {w} worker(s)"] = run(
            {"mode": "cold", "source": str(folder), "cache": str(work / f"c{w}"), "workers": w}
        )
        cached = {"mode": "cached", "source": str(folder), "cache": str(work / f"c{w}"), "workers": w}
        rows[f"cached, {w} worker(s)"] = run({**cached, "decode": decode if w == workers[0] else 0})
    listing = write_counts_list(folder, work / f"c{workers[0]}", work / f"{name}.csv")
    rows["csv with counts (no probe)"] = run({"mode": "counts", "source": str(listing), "decode": decode})
    cache_files = list((work / f"c{workers[0]}").glob("probes-*.npz"))
    rows["cache file"] = {"bytes": cache_files[0].stat().st_size if cache_files else 0}
    return rows


def print_set(title: str, rows: dict[str, dict], baseline: dict) -> None:
    print(f"\n{title}")
    print("| build | videos/s | seconds | clips | peak RSS MB (+ over imports) | decode ms/clip |")
    print("|---|---|---|---|---|---|")
    for label, row in rows.items():
        if label == "fixed" or "build_s" not in row:
            continue
        extra = row["peak_rss_mb"] - baseline["peak_rss_mb"]
        decode = f"{row['decode_ms']:.1f}" if "decode_ms" in row else ""
        print(
            f"| {label} | {row['videos'] / row['build_s']:.0f} | {row['build_s']:.2f} | {row['clips']} | "
            f"{row['peak_rss_mb']:.0f} (+{extra:.0f}) | {decode} |"
        )
    cold = rows[next(k for k in rows if k.startswith("cold"))]
    print(
        f"cache file: {rows['cache file']['bytes'] / cold['videos']:.0f} B/video; in-memory table: "
        f"{cold['table_bytes'] / cold['videos']:.0f} B/video; {cold['frames'] / cold['videos']:.0f} frames/video"
    )


def synthetic(folder: Path) -> None:
    """The index machinery (probe bookkeeping, table, cache, clip counts) on a Kinetics-size collection."""
    print(f"\nfull scale, probe replaced by a no-I/O stand-in ({K400_FRAMES} frames a video), 1 worker:")
    print("| build | seconds | clips | peak RSS MB | cache MB |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for label, uneven, cache in [
            ("cold, even timestamps", False, "even"),
            ("cached", False, "even"),
            ("cold, uneven timestamps (all stored)", True, "uneven"),
            ("cached", True, "uneven"),
        ]:
            spec = {"mode": "synthetic", "source": str(folder), "cache": f"{work}/{cache}", "uneven": uneven}
            row = run(spec)
            size = sum(f.stat().st_size for f in Path(work, cache).glob("*.npz")) / 2**20
            print(f"| {label} | {row['build_s']:.1f} | {row['clips']} | {row['peak_rss_mb']:.0f} | {size:.0f} |")


def project(short: dict[str, dict], long: dict[str, dict], workers: list[int]) -> None:
    """Kinetics-400 on 16 cores, from the measured rates (see the printed assumptions)."""

    def rate(rows: dict[str, dict], w: int) -> float:
        row = rows[f"cold, {w} worker(s)"]
        return row["videos"] / row["build_s"]

    one = rate(long, workers[0])
    best = max(rate(long, w) for w in workers)
    speedup = rate(long, workers[-1]) / one if len(workers) > 1 else 1.0
    # Amdahl from 1 -> n workers: speedup = 1 / ((1 - p) + p / n)
    n = workers[-1]
    parallel = min(1.0, max(0.0, (1 - 1 / speedup) / (1 - 1 / n))) if n > 1 else 0.0
    speedup16 = 1 / ((1 - parallel) + parallel / CORES)
    short_row = short[f"cold, {workers[0]} worker(s)"]
    short_frames = short_row["frames"] / short_row["videos"]
    per_frame = 1 / rate(short, workers[0]) / short_frames  # every cost proportional to frames: an upper bound
    # memory: what a build of 10 videos peaks at is the fixed part; the rest grows with the videos
    per_video = max(
        0.0,
        *(
            (rows[f"cold, {workers[0]} worker(s)"]["peak_rss_mb"] - rows["fixed"]["peak_rss_mb"])
            / (rows[f"cold, {workers[0]} worker(s)"]["videos"] - rows["fixed"]["videos"])
            for rows in (short, long)
        ),
    )
    fixed = max(rows["fixed"]["peak_rss_mb"] for rows in (short, long))
    print(f"\nprojection to {K400_VIDEOS} videos of {K400_FRAMES} frames on {CORES} cores:")
    print(
        f"  measured on {K400_FRAMES}-frame clips: {one:.0f} videos/s on 1 worker, x{speedup:.2f} on {n} "
        f"-> parallel fraction {parallel:.2f} (Amdahl) -> x{speedup16:.1f} on {CORES}"
    )
    print(
        f"  cold build: {K400_VIDEOS / one / speedup16 / 60:.1f} min (Amdahl), "
        f"{K400_VIDEOS / best / 60:.1f} min if threads gave nothing beyond the measured best, "
        f"{K400_VIDEOS * K400_FRAMES * per_frame / speedup16 / 60:.1f} min scaling the short clips' cost per frame"
    )
    print(
        f"  memory: {fixed:.0f} MB (imports and a 10-video build) + {per_video * 1024:.2f} KB/video x {K400_VIDEOS}"
        f" = {fixed + per_video * K400_VIDEOS:.0f} MB; worst case (no evenly spaced timestamps): "
        f"+ 2 x 8 B x {K400_VIDEOS * K400_FRAMES / 1e6:.0f}M frames = "
        f"+{2 * 8 * K400_VIDEOS * K400_FRAMES / 2**20:.0f} MB"
    )
    print("  not included: reading the files from disk (the probe demuxes every packet: the collection's size)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=400, help="short clips (default 400; 2000 for the full run)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the short clips")
    parser.add_argument("--long-videos", type=int, default=100, help="Kinetics-length clips (10 s at 30 fps)")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", default="96x128", help="HxW of the generated clips")
    parser.add_argument("--workers", default="1,2", help="index_workers values to measure")
    parser.add_argument("--decode", type=int, default=100, help="clips decoded per index kind (0: none)")
    parser.add_argument(
        "--synthetic", type=int, default=K400_VIDEOS, help="empty files indexed with a stand-in probe (0: skip)"
    )
    parser.add_argument("--dir", type=Path, help="where the generated clips go, kept (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder's clips for the next run")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return
    size = tuple(int(v) for v in args.size.split("x"))
    workers = [int(w) for w in args.workers.split(",")]
    root = args.dir or Path(tempfile.gettempdir()) / "ino-bench-index"
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()} at the start")
    try:
        short = make_set(root / "short", args.videos, round(args.seconds * args.fps), args.fps, size)
        long = make_set(root / "long", args.long_videos, 10 * args.fps, args.fps, size)
        with tempfile.TemporaryDirectory() as work:
            baseline = run({"mode": "baseline"})
            print(f"imports only: peak RSS {baseline['peak_rss_mb']:.0f} MB")
            short_rows = bench_set("short", short, Path(work) / "short", workers, 0)
            long_rows = bench_set("long", long, Path(work) / "long", workers, args.decode)
        print_set(f"{args.videos} clips of {args.seconds:g} s at {args.fps} fps, {args.size}", short_rows, baseline)
        print_set(f"{args.long_videos} clips of 10 s at {args.fps} fps, {args.size}", long_rows, baseline)
        project(short_rows, long_rows, workers)
        if args.synthetic:
            synthetic(make_empty_set(root / "empty", args.synthetic))
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"load average {os.getloadavg()} at the end")


if __name__ == "__main__":
    main()
