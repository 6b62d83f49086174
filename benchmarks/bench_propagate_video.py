"""End-to-end label propagation speed: JPEG decode + ViT features + propagation + output masks, per frame.

This is what a user waits for (the engine-only comparison with the dense formulation is
``bench_propagate.py``). Frames are real DAVIS 480p JPEGs from ``../shared/data/davis-dev`` (cycled to reach
``--frames``), or synthetic 854x480 frames when that folder is absent. The backbone is a random-init ViT-S/8
(speed does not depend on the weights); the protocol is the ``ino-davis`` preset (480 x 848 input, 60 x 106
grid, block 7, top-k 5, first + 10 previous frames, radius 40).

    python benchmarks/bench_propagate_video.py --frames 2000 --device cuda --batch-size 16 --feature-dtype float16
    python benchmarks/bench_propagate_video.py --frames 6 --device cpu     # CPU: ~5 s per 480p frame

Prints frames/s, the time per stage (features / propagation+output), the time 2,000 frames would take, and
peak memory (CUDA allocator peak, or resident set size on the CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ino.data.davis import read_frame
from ino.models.weights import load_backbone
from ino.propagation.api import VideoPropagator
from ino.propagation.features import map_frames
from ino.propagation.presets import PRESETS, target_size

DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis-dev" / "JPEGImages" / "480p"


def frames(count: int) -> Iterator[np.ndarray]:
    """Real DAVIS frames in sequence order, cycled; synthetic noise frames when the folder is absent."""
    paths = sorted(DAVIS.glob("*/*.jpg")) if DAVIS.is_dir() else []
    if paths:
        return map_frames(read_frame, itertools.islice(itertools.cycle(paths), count), depth=16)
    generator = np.random.default_rng(0)
    return (generator.integers(0, 256, (480, 854, 3), dtype=np.uint8) for _ in range(count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="frames per backbone pass (16 GPU, 1 CPU)")
    parser.add_argument("--feature-dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--chunk-size", type=int, default=PRESETS["ino-davis"].chunk_size)
    args = parser.parse_args()
    device = torch.device(args.device)
    config = dataclasses.replace(PRESETS["ino-davis"], feature_dtype=args.feature_dtype, chunk_size=args.chunk_size)
    batch_size = args.batch_size or (16 if device.type == "cuda" else 1)
    propagator = VideoPropagator(load_backbone("random"), config, device=device, batch_size=batch_size)
    assert propagator.extractor is not None
    original_hw, target_hw = (480, 854), target_size(480, 854, config)
    first = np.zeros(original_hw, dtype=np.uint8)
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
    total = time.perf_counter() - started
    if device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (CUDA allocator peak)"
        name = torch.cuda.get_device_name(device)
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (max RSS)"
        name = f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    print(
        f"protocol: ino-davis, 854x480 -> {target_hw[1]}x{target_hw[0]}, grid {target_hw[0] // 8}x{target_hw[1] // 8}, "
        f"ViT-S/8 random init, block {config.feature_block + 1}, top-k {config.topk}, "
        f"context 1+{config.n_last_frames}, radius {config.radius}, features {config.feature_dtype}, batch {batch_size}"
    )
    print(f"frames: {args.frames} ({'davis-dev JPEGs' if DAVIS.is_dir() else 'synthetic'})")
    for stage, seconds in timings.items():
        print(f"  {stage:<20} {seconds:8.2f} s  ({1000 * seconds / args.frames:.1f} ms/frame)")
    print(f"total {total:.2f} s = {args.frames / total:.2f} frames/s; 2,000 frames: {2000 * total / args.frames:.1f} s")
    print(f"peak memory: {peak}")


if __name__ == "__main__":
    main()
