"""End-to-end label propagation speed, float32 next to bfloat16, and what bfloat16 costs in J&F.

Speed is what a user waits for: JPEG decode + ViT features + propagation + output masks, per frame (the
engine-only comparison with the dense formulation is ``bench_propagate.py``). Frames are real DAVIS 480p JPEGs
from ``../shared/data/davis-dev`` (cycled to reach ``--frames``), or synthetic 854x480 frames when that folder is
absent. Each precision runs in a process of its own, so that its peak memory is its own.

The accuracy check propagates ``../shared/data/davis-dev`` (first ``--jf-frames`` frames of every sequence) with
each precision and scores both with DAVIS J&F: the bf16 default on CPUs is kept only while the difference stays
within 0.005 (docs/propagation.md). The backbone is a seeded random-init ViT-S/8 unless ``--checkpoint`` names one;
the protocol is the ``ino-davis`` preset (480 x 848 input, 60 x 106 grid, block 7, top-k 5, first + 10 previous
frames, radius 40).

    python benchmarks/bench_propagate_video.py                       # CPU: fp32 and bf16, 6 frames, J&F on 30
    python benchmarks/bench_propagate_video.py --frames 2000 --device cuda --batch-size 16 --jf-frames 0

Prints frames/s, the time per stage (features / propagation+output), the time 2,000 frames would take, and
peak memory (CUDA allocator peak, or resident set size on the CPU) for each precision.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from fresh_process import in_fresh_process
from ino.data.davis import read_frame
from ino.evaluation.scorer import evaluate
from ino.models.weights import load_backbone
from ino.propagation.api import VideoPropagator
from ino.propagation.features import map_frames
from ino.propagation.presets import FEATURE_DTYPES, PRESETS, target_size
from ino.propagation.runs import propagate_davis
from ino.utils.hardware import cpu_has_native_bf16

DAVIS_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis-dev"
DAVIS = DAVIS_DEV / "JPEGImages" / "480p"


def frames(count: int) -> Iterator[np.ndarray]:
    """Real DAVIS frames in sequence order, cycled; synthetic noise frames when the folder is absent."""
    paths = sorted(DAVIS.glob("*/*.jpg")) if DAVIS.is_dir() else []
    if paths:
        return map_frames(read_frame, itertools.islice(itertools.cycle(paths), count), depth=16)
    generator = np.random.default_rng(0)
    return (generator.integers(0, 256, (480, 854, 3), dtype=np.uint8) for _ in range(count))


def _propagator(args: argparse.Namespace, dtype: str) -> VideoPropagator:
    config = dataclasses.replace(PRESETS["ino-davis"], feature_dtype=dtype, chunk_size=args.chunk_size)
    backbone = load_backbone(args.checkpoint, which=config.checkpoint_key)
    batch_size = args.batch_size or (16 if args.device.startswith("cuda") else 1)
    return VideoPropagator(backbone, config, device=args.device, batch_size=batch_size)


def measure_speed(args: argparse.Namespace, dtype: str) -> dict[str, float]:
    """Seconds per stage over ``args.frames`` frames of two made-up objects, and the peak memory, in this process."""
    propagator = _propagator(args, dtype)
    device = propagator.device
    assert propagator.extractor is not None
    first = np.zeros((480, 854), dtype=np.uint8)
    first[100:300, 200:500] = 1
    first[250:450, 550:800] = 2
    timings = {"features": 0.0, "propagation+output": 0.0}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    stream = propagator.extractor(frames(args.frames))
    for t in range(args.frames):
        tick = time.perf_counter()
        features = next(stream)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tock = time.perf_counter()
        propagator.step_features(features, first if t == 0 else None)
        timings["features"] += tock - tick
        timings["propagation+output"] += time.perf_counter() - tock
    timings["total"] = time.perf_counter() - started
    if device.type == "cuda":
        timings["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        timings["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def measure_jf(args: argparse.Namespace, dtype: str) -> dict[str, float]:
    """J&F-Mean over davis-dev (first ``args.jf_frames`` frames of each sequence) with features in ``dtype``."""
    with tempfile.TemporaryDirectory(prefix="ino-bench-jf-") as out:
        settings = {"bench": dtype}
        started = time.perf_counter()
        propagate_davis(DAVIS_DEV, out, _propagator(args, dtype), settings, max_frames=args.jf_frames, progress=False)
        seconds = time.perf_counter() - started
        scores = evaluate(DAVIS_DEV, out, max_frames=args.jf_frames)
    return {"seconds": seconds, **scores.global_results(), **{f"seq:{k}": v for k, v in scores.sequence_jf().items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=6, help="frames timed for speed")
    parser.add_argument("--jf-frames", type=int, default=30, help="frames per davis-dev sequence scored; 0: skip")
    parser.add_argument("--dtypes", default="float32,bfloat16", help=f"comma-separated, of {', '.join(FEATURE_DTYPES)}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--checkpoint", default="random", help="backbone weights (default: seeded random ViT-S/8)")
    parser.add_argument("--batch-size", type=int, default=None, help="frames per backbone pass (16 GPU, 1 CPU)")
    parser.add_argument("--chunk-size", type=int, default=PRESETS["ino-davis"].chunk_size)
    args = parser.parse_args()
    dtypes = args.dtypes.split(",")
    config = PRESETS["ino-davis"]
    target_hw = target_size(480, 854, config)
    if args.device.startswith("cuda"):
        name = torch.cuda.get_device_name(args.device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}"
    print(f"device: {name}; torch {torch.__version__}")
    print(
        f"protocol: ino-davis, 854x480 -> {target_hw[1]}x{target_hw[0]}, grid {target_hw[0] // 8}x{target_hw[1] // 8}, "
        f"ViT-S/8 {args.checkpoint}, block {config.feature_block + 1}, top-k {config.topk}, "
        f"context 1+{config.n_last_frames}, radius {config.radius}, batch {args.batch_size or 'default'}"
    )
    print(f"speed: {args.frames} frames ({'davis-dev JPEGs' if DAVIS.is_dir() else 'synthetic'})")
    for dtype in dtypes:
        timings = in_fresh_process(measure_speed, args, dtype)
        total = timings["total"]
        stages = "  ".join(f"{s} {1000 * timings[s] / args.frames:.0f} ms" for s in ("features", "propagation+output"))
        print(
            f"  {dtype:<9} {args.frames / total:6.3f} frames/s  ({stages} per frame); "
            f"2,000 frames: {2000 * total / args.frames:.0f} s; peak {timings['peak_mib']:.0f} MiB"
        )
    if args.jf_frames and DAVIS_DEV.is_dir():
        print(f"accuracy: davis-dev, first {args.jf_frames} frames of each sequence")
        results = {dtype: in_fresh_process(measure_jf, args, dtype) for dtype in dtypes}
        for dtype, row in results.items():
            per_sequence = " ".join(f"{k[4:]} {v:.4f}" for k, v in row.items() if k.startswith("seq:"))
            print(f"  {dtype:<9} J&F-Mean {row['J&F-Mean']:.4f} (J {row['J-Mean']:.4f}, F {row['F-Mean']:.4f}) "
                  f"in {row['seconds']:.0f} s; {per_sequence}")  # fmt: skip
        reference = results[dtypes[0]]["J&F-Mean"]
        for dtype in dtypes[1:]:
            print(f"  J&F difference {dtype} - {dtypes[0]}: {results[dtype]['J&F-Mean'] - reference:+.4f}")
    elif args.jf_frames:
        print(f"accuracy: skipped ({DAVIS_DEV} not found)")


if __name__ == "__main__":
    main()
