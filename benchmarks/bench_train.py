"""Training throughput at the paper's settings, float32 next to bfloat16: clips/s of the model step, of the data
loader, and peak memory.

The model step is INO's own (:meth:`ino.training.meta_arch.InoMetaArch.train_step`: teacher forward on L global
crops per clip, student forward on the masked global crops and L x M local crops, the three losses, backward,
per-parameter clipping, AdamW, EMA), timed stage by stage (its ``timings``) on random crops so that data loading
cannot hide in it. The loader is timed separately on real clips (decode +
multi-crop augmentation in worker processes). A step is masked half of the time in training; both kinds are
timed here. Each precision runs in a process of its own (its peak memory is its own) from the same seed, and the
first step's losses are compared: what bf16 autocast changes in the numbers, next to what it saves in time.

    python benchmarks/bench_train.py                                   # CPU: ViT-S/8, L 4, M 8, 1 clip, 4 steps
    python benchmarks/bench_train.py --device cuda --batch-size 32 --steps 20 --loader-workers 12
    python benchmarks/bench_train.py --arch vit_tiny --patch-size 16   # quick
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

from fresh_process import in_fresh_process
from ino.configs.schema import TrainConfig
from ino.data.augment import MultiCropAugment
from ino.data.clips import ClipDataset, ClipIndex, ClipSampler, list_videos, make_loader
from ino.training.meta_arch import InoMetaArch, StepSchedule
from ino.utils.hardware import cpu_has_native_bf16

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


def time_model(args: argparse.Namespace, precision: str) -> dict[str, object]:
    """Seconds per step of each stage, the mean over ``args.steps`` steps (half masked) after two warm-up steps (one
    of each kind: the first masked step builds kernels for its own shapes); the first step's losses; peak memory."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    config = TrainConfig.from_dict(
        {"model": {"arch": args.arch, "patch_size": args.patch_size}, "optim": {"precision": precision}}
    )
    meta = InoMetaArch(config, device)
    b, frames, m, g, s = args.batch_size, config.clips.clip_len, config.augment.n_local, 224, 64
    schedule = StepSchedule(lr=1e-4, weight_decay=0.04, teacher_momentum=0.996)
    first: dict[str, float] = {}
    for step in range(args.steps + 2):
        if step == 2:
            meta.timings = {}  # after the warm-up steps (allocator, kernels)
        config.masking.prob = float(step % 2)  # masked and unmasked steps alternate
        global_crops = torch.randn(b, frames, 3, g, g)
        local_crops = torch.randn(b, frames, m, 3, s, s)
        terms = meta.train_step(global_crops, local_crops, step, schedule)
        first = first or {k: float(v) for k, v in terms.items() if k in ("loss", "out")}
    assert meta.timings is not None
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    stages = {stage: seconds / args.steps for stage, seconds in meta.timings.items()}
    return {"stages": stages, "first": first, "peak_gib": peak}


def time_loader(args: argparse.Namespace) -> tuple[float, int] | None:
    if not VIDEOS.is_dir() or args.loader_clips < 1:
        return None
    index = ClipIndex.build(list_videos(VIDEOS), cache_dir=None, workers=4)
    sampler = ClipSampler(index, 5, seed=0, batch_size=args.batch_size)
    loader = make_loader(ClipDataset(index, MultiCropAugment()), sampler, args.batch_size, args.loader_workers)
    clips, started = 0, None
    for batch_index, (global_crops, _) in enumerate(loader):
        if batch_index == 1:
            started = time.perf_counter()  # after worker start-up
        elif batch_index > 1:
            clips += global_crops.shape[0]
        if clips >= args.loader_clips:
            break
    return clips / (time.perf_counter() - started), clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--arch", default="vit_small")
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1, help="clips per step")
    parser.add_argument("--steps", type=int, default=4, help="timed steps (half masked), after two warm-up steps")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated, of bf16, fp16, fp32")
    parser.add_argument("--loader-workers", type=int, default=2)
    parser.add_argument("--loader-clips", type=int, default=24)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}"
    print(f"device: {name}; torch {torch.__version__}")
    print(f"model: {args.arch}/{args.patch_size}, head 4096, L 4, M 8, crops 224/64, {args.batch_size} clip(s)/step")
    firsts = {}
    for precision in args.precisions.split(","):
        result = in_fresh_process(time_model, args, precision)
        stages, firsts[precision] = result["stages"], result["first"]
        step = sum(stages.values())
        rate, peak, loss = args.batch_size / step, result["peak_gib"], firsts[precision]["loss"]
        print(f"{precision}: model step {1000 * step:.1f} ms = {rate:.2f} clips/s (mean of masked and unmasked); "
              f"peak {peak:.2f} GiB; first step loss {loss:.5f}")  # fmt: skip
        for stage, seconds in stages.items():
            print(f"  {stage:<18} {1000 * seconds:9.1f} ms  ({100 * seconds / step:4.1f} %)")
    names = list(firsts)
    for precision in names[1:]:
        change = firsts[precision]["loss"] - firsts[names[0]]["loss"]
        print(f"first-step loss, {precision} - {names[0]}: {change:+.5f} ({change / firsts[names[0]]['loss']:+.2%})")
    loader = time_loader(args)
    if loader is None:
        print(f"loader: skipped ({VIDEOS} not found, or --loader-clips 0)")
    else:
        rate, clips = loader
        workers = args.loader_workers
        print(f"loader: {rate:.1f} clips/s over {clips} real clips, {workers} workers (decode + multi-crop)")


if __name__ == "__main__":
    main()
