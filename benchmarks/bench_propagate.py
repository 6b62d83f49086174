"""Speed and peak memory of label propagation: the tiled engine against the dense textbook formulation.

Both run on the same seeded random features (one (C, h, w) map per frame, generated lazily) at a preset's
settings, each in its own child process so that peak resident memory (ru_maxrss minus the resident size
before the run) belongs to one method only; on CUDA the allocator's peak is reported instead. The dense
version is docs/method.md §7.4 as written: an (n_ctx * hw, hw) affinity times an (hw, hw) window mask, top-k along the
key axis, column normalisation, one matrix product with the context labels.

    python benchmarks/bench_propagate.py                    # 480p grid 60x106, C=384, 10 frames (~2 min)
    python benchmarks/bench_propagate.py --reduce 2         # grid 30x53, radius 20: a quick run
    python benchmarks/bench_propagate.py --frames 6 --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ino.propagation.engine import LabelPropagator
from ino.propagation.presets import PRESETS, PropagationConfig


def frame_features(args: argparse.Namespace, device: torch.device) -> Iterator[torch.Tensor]:
    """Seeded features, smooth over time (each frame drifts from the last) like a real video's."""
    generator = torch.Generator().manual_seed(0)
    current = torch.randn(args.channels, args.height, args.width, generator=generator)
    for _ in range(args.frames):
        yield current.to(device)
        current = current + 0.3 * torch.randn(current.shape, generator=generator)


def first_labels(args: argparse.Namespace) -> np.ndarray:
    """Three objects on a background, at full resolution (patch 8)."""
    ids = np.zeros((args.height * 8, args.width * 8), dtype=np.uint8)
    ids[40:200, 60:300] = 1
    ids[150:400, 350:600] = 2
    ids[100:300, 620:] = 3
    return ids


def run_engine(args: argparse.Namespace, config: PropagationConfig, device: torch.device) -> list[float]:
    propagator = LabelPropagator(config, device)
    times = []
    for t, features in enumerate(frame_features(args, device)):
        start = time.perf_counter()
        propagator.step(features, first_labels(args) if t == 0 else None)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def run_dense(args: argparse.Namespace, config: PropagationConfig, device: torch.device) -> list[float]:
    """docs/method.md §7.4 with dense matrices (single chain, DAVIS): the formulation the engine replaces."""
    h, w = args.height, args.width
    rows = torch.arange(h, device=device).repeat_interleave(w)
    cols = torch.arange(w, device=device).repeat(h)
    window = ((rows[:, None] - rows[None]).abs() <= config.radius) & (
        (cols[:, None] - cols[None]).abs() <= config.radius
    )
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    times = []
    for t, features in enumerate(frame_features(args, device)):
        start = time.perf_counter()
        feats.append(F.normalize(features.reshape(features.shape[0], -1), dim=0))
        if t == 0:
            one_hot = torch.from_numpy(first_labels(args)).long().to(device)
            one_hot = F.one_hot(one_hot).permute(2, 0, 1).float()
            small = F.interpolate(one_hot[None], size=(h, w), mode="bilinear", align_corners=True)[0]
            labels.append(small.reshape(small.shape[0], -1))
        else:
            context = [0, *range(max(t - config.n_last_frames, 1), t)]
            keys = torch.cat([feats[i] for i in context], dim=1)
            affinity = torch.exp(keys.T @ feats[t] / config.temperature)
            affinity = affinity * window.repeat(len(context), 1)
            kth = torch.topk(affinity, config.topk, dim=0).values[-1:]
            affinity = affinity * (affinity >= kth)
            affinity = affinity / affinity.sum(dim=0, keepdim=True)
            labels.append(torch.cat([labels[i] for i in context], dim=1) @ affinity)
            del keys, affinity, kth  # freed before the next frame's, as a careful dense version would
        for old in range(len(feats)):
            if 0 < old <= t - config.n_last_frames:
                feats[old] = labels[old] = torch.empty(0)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def resident_bytes() -> int:
    """Current resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def child(args: argparse.Namespace) -> None:
    """Run one method and print a JSON line with per-frame times and peak memory."""
    device = torch.device(args.device)
    config = dataclasses.replace(PRESETS[args.preset], radius=args.radius, chunk_size=args.chunk_size)
    before = resident_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = (run_engine if args.child == "engine" else run_dense)(args, config, device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    print(json.dumps({"times": times, "peak_bytes": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="ino-davis", choices=sorted(PRESETS))
    parser.add_argument("--frames", type=int, default=10, help="frames including frame 0 (default 10)")
    parser.add_argument("--reduce", type=int, default=1, help="divide the 60x106 grid and the radius by this")
    parser.add_argument("--channels", type=int, default=384)
    parser.add_argument("--chunk-size", type=int, default=PRESETS["ino-davis"].chunk_size)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", default="engine,dense", help="comma-separated: engine, dense")
    parser.add_argument("--child", choices=["engine", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--height", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--radius", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    height, width = 60 // args.reduce, 106 // args.reduce
    radius = PRESETS[args.preset].radius // args.reduce
    print(
        f"preset {args.preset}: grid {height}x{width}, C={args.channels}, radius {radius}, "
        f"{args.frames} frames, chunk {args.chunk_size}, device {args.device}, "
        f"{torch.get_num_threads()} threads"
    )
    results = {}
    for method in args.methods.split(","):
        command = [
            sys.executable,
            __file__,
            "--child",
            method,
            "--height",
            str(height),
            "--width",
            str(width),
            "--radius",
            str(radius),
        ]
        for name in ("preset", "frames", "channels", "chunk_size", "device"):
            command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[method] = json.loads(output.strip().splitlines()[-1])
        times = results[method]["times"][1:]
        peak = results[method]["peak_bytes"] / 2**20
        print(
            f"{method:>6}: {len(times) / sum(times):7.3f} frames/s over frames 1..{len(times)}, "
            f"last frame {times[-1]:6.2f} s, peak memory {peak:8.1f} MiB"
        )
    if {"engine", "dense"} <= results.keys():
        engine, dense = results["engine"], results["dense"]
        speedup = sum(dense["times"][1:]) / sum(engine["times"][1:])
        memory = engine["peak_bytes"] / dense["peak_bytes"]
        print(f"engine vs dense: {speedup:.2f}x faster, {memory:.3f} of the dense peak memory")


if __name__ == "__main__":
    main()
