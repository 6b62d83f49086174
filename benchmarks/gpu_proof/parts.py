"""The measurements of ``benchmarks/gpu_proof.py``: training throughput, FLOPs, profile and loader (part a),
propagation speed (part b), and a short from-scratch training run scored against its random init (part c).

Every function takes a ``deadline`` (a ``time.monotonic()`` value) and returns a plain JSON-able dict; none of
them catches exceptions: the caller records a failure and goes on. The sizes come from a :class:`Sizes`, so the
CPU smoke run goes through exactly the code of the GPU run, only smaller.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ino.configs.loading import load_config, merge
from ino.configs.schema import TrainConfig
from ino.training.meta_arch import InoMetaArch, StepSchedule
from ino.utils.distributed import synchronize

#: bf16 dense tensor-core peaks (TFLOP/s) from NVIDIA's data sheets (their "with sparsity" figures halved), matched
#: in order against ``torch.cuda.get_device_name`` (SXM H100s report "H100 80GB HBM3")
PEAK_BF16_TFLOPS: tuple[tuple[tuple[str, ...], float, str], ...] = (
    (("H200", "NVL"), 835.0, "H200 NVL"),
    (("H200",), 989.0, "H200 (SXM)"),
    (("H100", "PCIE"), 756.0, "H100 PCIe"),
    (("H100", "NVL"), 835.0, "H100 NVL"),
    (("H100", "HBM3"), 989.0, "H100 SXM"),
    (("H100", "SXM"), 989.0, "H100 SXM"),
)
SCHEDULE = StepSchedule(lr=1e-4, weight_decay=0.04, teacher_momentum=0.996)
#: part c's run is cut into about this many epochs (schedules need epochs; every epoch end writes a checkpoint)
EPOCHS = 10


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between the GPU run (paper settings) and the CPU smoke run (tiny sizes)."""

    preset: str = "ino-charades"  # the training settings every measurement starts from
    model: tuple[tuple[str, Any], ...] = ()  # overrides of the preset's model group (smoke: a tiny head)
    augment: tuple[tuple[str, Any], ...] = ()
    precision: str = "bf16"
    batches: tuple[int, ...] = (8, 16, 32, 64)
    compile_backend: str = "inductor"
    compile_scope: str = "blocks"
    warmup_steps: int = 4  # 2 unmasked + 2 masked: the allocator, cuDNN/cuBLAS choices, a compile
    timed_s: float = 4.0  # each throughput point times at least this long ...
    min_timed_steps: int = 6  # ... and at least this many steps (always an even number: half masked)
    flop_steps: int = 8  # FLOPs are counted over the first this many timed step indices (half masked)
    compile_need_s: float = 100.0  # time left needed to start the first compiled point (a compile cannot be cut)
    profile_batch: int = 32
    profile_steps: int = 3
    loader_workers: tuple[int, ...] = (0, 4, 8, 16)
    loader_batch: int = 16
    loader_s: float = 5.0
    prop_arch: str = "vit_small"
    prop_short_side: int = 480  # the ino-davis preset's
    prop_patch: int = 8
    prop_batch: int = 16
    prop_frames: int = 400  # at most this many timed frames per precision (fewer when the deadline comes first)
    prop_warmup_frames: int = 32
    train_s: float = 240.0
    train_batch: int = 16
    train_min_steps: int = 10
    train_fixed_s: float = 15.0  # planning only: model build, clip index, loader start-up, first steps' kernels
    checkpoint_s: float = 1.5  # planning only: one ~0.45 GB checkpoint (student, teacher, AdamW) with its digest
    eval_batch: int = 8
    davis_sequences: int | None = None  # None: every sequence of the DAVIS-layout folder
    davis_max_frames: int | None = None  # None: every frame (the official protocol)

    def train_config(self, **changes: Any) -> TrainConfig:
        """The preset with this run's model/augment overrides, precision and the given nested ``changes``."""
        base = {"model": dict(self.model), "augment": dict(self.augment), "optim": {"precision": self.precision}}
        return load_config([self.preset], merge(base, changes))

    def protocol(self) -> dict[str, Any]:
        config = self.train_config()
        m, a = config.model, config.augment
        return {
            "model": f"{m.arch}/{m.patch_size}, head {m.hidden_dim}-{m.bottleneck_dim}-{m.out_dim}, drop path "
            f"{m.drop_path}",
            "clip_length": config.clips.clip_len,
            "crops": f"1 global {a.global_size} px + {a.n_local} local {a.local_size} px per frame",
            "precision": self.precision,
            "preset": self.preset,
        }


GPU = Sizes()
SMOKE = Sizes(
    preset="tiny",
    model=(("arch", "vit_tiny"), ("patch_size", 16), ("out_dim", 256), ("hidden_dim", 256), ("bottleneck_dim", 64)),
    augment=(("global_size", 64), ("local_size", 32), ("n_local", 2)),
    precision="bf16",
    batches=(1, 2),
    compile_backend="eager",  # dynamo's tracing and guards without code generation: the path, not the speed
    warmup_steps=2,
    timed_s=0.3,
    min_timed_steps=2,
    flop_steps=2,
    compile_need_s=8.0,
    profile_batch=2,
    profile_steps=1,
    loader_workers=(0, 2),
    loader_batch=2,
    loader_s=1.5,
    prop_arch="vit_tiny",
    prop_short_side=160,
    prop_patch=16,
    prop_batch=2,
    prop_frames=4,
    prop_warmup_frames=2,
    train_s=8.0,
    train_batch=2,
    train_min_steps=2,
    train_fixed_s=2.0,
    checkpoint_s=0.05,
    eval_batch=2,
    davis_sequences=2,
    davis_max_frames=5,
)


# ---------------------------------------------------------------------------------------------------------- helpers
def os_cpu_count() -> int:
    return os.cpu_count() or 1


def describe_error(error: BaseException) -> dict[str, Any]:
    """An exception as the JSON records it: type, message and the tail of its traceback."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return {"type": type(error).__name__, "message": str(error)[:2000], "traceback": "".join(lines)[-3000:]}


def reset_memory(device: torch.device) -> None:
    """Free what the last measurement held, so that each point's peak is its own."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float | None:
    """CUDA allocator peak since the last :func:`reset_memory`; None on the CPU (no per-measurement peak there)."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def peak_tflops(device: torch.device, override: float | None) -> dict[str, Any]:
    """The bf16 dense peak MFU is computed against, and where it came from; ``tflops`` None with a reason if unknown."""
    if override:
        return {"tflops": override, "source": "--peak-tflops"}
    if device.type != "cuda":
        return {"tflops": None, "reason": "not a CUDA device: no tensor-core peak to compare with"}
    name = torch.cuda.get_device_name(device)
    for needles, tflops, label in PEAK_BF16_TFLOPS:
        if all(needle in name.upper() for needle in needles):
            return {"tflops": tflops, "source": f"{label} bf16 dense data-sheet peak, matched from {name!r}"}
    return {"tflops": None, "reason": f"unknown GPU {name!r}: no bf16 peak on record (pass --peak-tflops)"}


def random_crops(config: TrainConfig, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L, 3, G, G) and (B, L, M, 3, S, S) normal noise on the device: the loader's shapes, without its cost."""
    a, frames = config.augment, config.clips.clip_len
    generator = torch.Generator(device=device).manual_seed(batch)
    g = torch.randn(batch, frames, 3, a.global_size, a.global_size, device=device, generator=generator)
    s = torch.randn(batch, frames, a.n_local, 3, a.local_size, a.local_size, device=device, generator=generator)
    return g, s


def masked_step(meta: InoMetaArch, crops: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, Any]:
    """One training step; odd steps masked, even ones not (training masks half of its steps at random)."""
    meta.config.masking.prob = float(step % 2)
    return meta.train_step(*crops, step, SCHEDULE)


def compile_networks(meta: InoMetaArch, backend: str, scope: str) -> str:
    """``torch.compile`` the student and teacher in place (``nn.Module.compile``: parameters, EMA and state dicts
    untouched); returns what was compiled, in words.

    ``scope="blocks"`` compiles each network's 12 transformer blocks as one graph (no grad for the teacher, grad
    for the student: 2 graphs in all): that is where the FLOPs are, and it traces without graph breaks. The whole
    network (``scope="network"``) breaks its graph on data-dependent checks in ``ino.models.vit`` (``torch.equal``
    in the teacher's position-embedding cache, ``mask.any()`` in the student) and compiles ~14 graphs: minutes
    that a 9-minute budget cannot pay. ``dynamic=True``: one graph serves every batch size and crop size.
    """
    import torch._dynamo

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)  # never fall back to eager silently
    for network in (meta.student, meta.teacher):
        module = network.backbone.blocks if scope == "blocks" else network
        module.compile(backend=backend, dynamic=True)
    if scope == "blocks":
        return (
            "the transformer blocks (backbone.blocks) of student and teacher; patch embedding, head, losses, "
            "optimiser and EMA eager"
        )
    return "the whole student and teacher networks (backbone + head); losses, optimiser and EMA eager"


def dynamo_counts() -> dict[str, int]:
    """Graphs compiled and graph breaks so far (a compiled number is only as good as its graphs)."""
    from torch._dynamo.utils import counters

    return {
        "unique_graphs": int(counters["stats"]["unique_graphs"]),
        "graph_breaks": sum(counters["graph_break"].values()),
    }


# ---------------------------------------------------------------------------------------------------------- part a
def count_flops(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """Model FLOPs per clip of a whole training step (teacher forward, student forward, backward), counted by
    ``torch.utils.flop_counter.FlopCounterMode`` on the eager model at batch 1: the mask is shared by the clips
    of a step, so a step's FLOPs are exactly linear in the batch. Counted for the same step indices the
    throughput points time first (``sizes.flop_steps`` of them after the warm-up, half masked), and averaged."""
    from torch.utils.flop_counter import FlopCounterMode

    config = sizes.train_config()
    meta = InoMetaArch(config, device)
    crops = random_crops(config, 1, device)
    totals: list[int] = []
    by_op: dict[str, float] = {}
    steps = range(sizes.warmup_steps, sizes.warmup_steps + sizes.flop_steps)
    for step in steps:
        with FlopCounterMode(display=False) as counter:
            masked_step(meta, crops, step)
        totals.append(counter.get_total_flops())
        for op, flops in counter.get_flop_counts().get("Global", {}).items():
            by_op[str(op)] = by_op.get(str(op), 0) + flops / len(steps)
    per_clip = statistics.fmean(totals)
    if not per_clip > 0:
        raise RuntimeError(f"FlopCounterMode counted {per_clip} FLOPs per step")
    return {
        "per_clip": per_clip,
        "per_clip_unmasked": statistics.fmean(totals[0::2]),
        "per_clip_masked": statistics.fmean(totals[1::2]),
        "steps_counted": list(steps),
        "by_op": {op: flops for op, flops in sorted(by_op.items(), key=lambda kv: -kv[1])},
        "note": "matmul/conv/attention FLOPs as FlopCounterMode counts them (element-wise ops not counted); "
        "attention is counted only where its kernel has a formula (CUDA flash/efficient/cuDNN SDPA, not the CPU one)",
    }


def train_throughput(
    sizes: Sizes,
    device: torch.device,
    batch: int,
    compiled: bool,
    deadline: float,
    flops_per_clip: float | None,
    peak: float | None,
) -> dict[str, Any]:
    """Clips/s of :meth:`InoMetaArch.train_step` at ``batch`` clips per step on crops already on the device.

    Warm-up steps first (allocator, kernel choices, and for ``compiled`` the compile, timed separately), then at
    least ``sizes.timed_s`` seconds and ``sizes.min_timed_steps`` steps, an even number (half masked), fewer
    only when ``deadline`` comes first. Every step ends in a host sync (the loss terms are read), as in training.
    """
    reset_memory(device)
    config = sizes.train_config()
    meta = InoMetaArch(config, device)
    before = dynamo_counts() if compiled else None
    what = compile_networks(meta, sizes.compile_backend, sizes.compile_scope) if compiled else None
    crops = random_crops(config, batch, device)
    started = time.perf_counter()
    for step in range(sizes.warmup_steps):
        masked_step(meta, crops, step)
    synchronize(device)
    warmup_s = time.perf_counter() - started
    steps, started = 0, time.perf_counter()
    while True:
        masked_step(meta, crops, sizes.warmup_steps + steps)
        steps += 1
        elapsed = time.perf_counter() - started
        enough = elapsed >= sizes.timed_s and steps >= sizes.min_timed_steps
        if steps % 2 == 0 and (enough or time.monotonic() >= deadline):
            break
    synchronize(device)
    elapsed = time.perf_counter() - started
    clips_per_s = batch * steps / elapsed
    result: dict[str, Any] = {
        "batch": batch,
        "compile": compiled,
        "clips_per_s": clips_per_s,
        "step_ms": 1000 * elapsed / steps,
        "timed_steps": steps,
        "timed_s": elapsed,
        "warmup_steps": sizes.warmup_steps,
        "warmup_s": warmup_s,
        "peak_memory_gib": peak_memory_gib(device),
        "model_tflops_per_s": None if flops_per_clip is None else flops_per_clip * clips_per_s / 1e12,
        "mfu": None if flops_per_clip is None or peak is None else flops_per_clip * clips_per_s / (peak * 1e12),
    }
    if compiled:
        after = dynamo_counts()
        assert before is not None
        result["dynamo"] = {key: after[key] - before[key] for key in after}
        result["compile_settings"] = {"backend": sizes.compile_backend, "dynamic": True, "what": what}
    if steps < sizes.min_timed_steps:
        result["note"] = f"cut short by its deadline after {steps} timed steps"
    del meta, crops
    reset_memory(device)
    return result


def profile_step(sizes: Sizes, device: torch.device, batch: int) -> dict[str, Any]:
    """Where a step's time goes: the top operators by (self) device time under ``torch.profiler``, and the
    meta-arch's own stage timings (each stage between two device syncs, so their sum exceeds a free-running step)."""
    from torch.profiler import ProfilerActivity, profile

    reset_memory(device)
    config = sizes.train_config()
    meta = InoMetaArch(config, device)
    crops = random_crops(config, batch, device)
    for step in range(sizes.warmup_steps):
        masked_step(meta, crops, step)
    synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    steps = range(sizes.warmup_steps, sizes.warmup_steps + 2 * sizes.profile_steps)
    with profile(activities=activities) as prof:
        for step in steps:
            masked_step(meta, crops, step)
        synchronize(device)
    on_device = device.type == "cuda"
    key = "self_device_time_total" if on_device else "self_cpu_time_total"
    # operators only (host-side events): on CUDA the kernels are rows of their own too, and each kernel's time is
    # already the "self" device time of the operator that launched it
    events = [
        e
        for e in prof.key_averages()
        if str(getattr(e, "device_type", "CPU")).endswith("CPU") and not e.key.startswith(("ino/", "ProfilerStep"))
    ]
    total = sum(getattr(e, key) for e in events) or 1.0
    top = sorted(events, key=lambda e: -getattr(e, key))[:15]
    meta.timings = {}
    for step in steps:
        masked_step(meta, crops, step)
    stages = {name: 1000 * seconds / len(steps) for name, seconds in meta.timings.items()}
    result = {
        "batch": batch,
        "steps": len(steps),
        "sorted_by": key,
        "total_ms_per_step": total / 1000 / len(steps),
        "top_ops": [
            {
                "op": e.key,
                "calls_per_step": e.count / len(steps),
                "ms_per_step": getattr(e, key) / 1000 / len(steps),
                "share": getattr(e, key) / total,
            }
            for e in top
        ],
        "stage_ms_per_step": stages,
        "stage_note": "each stage between device syncs (InoMetaArch.timings), mean of masked and unmasked steps",
    }
    del meta, crops, prof
    reset_memory(device)
    return result


def loader_throughput(sizes: Sizes, videos: Path, workers: int, deadline: float, index_cache: Path) -> dict[str, Any]:
    """Clips/s of the training data loader (decode 4 frames of a clip + 1 global and M local crops per frame) with
    ``workers`` processes, on the videos in ``videos``; the first batch (worker start-up) is not timed."""
    from ino.data.augment import MultiCropAugment
    from ino.data.clips import ClipDataset, ClipIndex, ClipSampler, list_videos, make_loader
    from ino.data.videos import import_av

    config = sizes.train_config()
    c = config.clips
    index = ClipIndex.build(
        list_videos([str(videos)]),
        c.clip_len,
        c.sampling,
        c.target_fps,
        c.frame_stride,
        cache_dir=index_cache,
        workers=max(1, min(8, workers or 1)),
    )
    batch = sizes.loader_batch
    sampler = ClipSampler(index, c.clips_per_video, seed=0, batch_size=batch)
    loader = make_loader(ClipDataset(index, MultiCropAugment(config.augment)), sampler, batch, workers)
    clips, timed_from, epoch = 0, None, 0
    stop_at = min(deadline, time.monotonic() + sizes.loader_s + 60.0)  # start-up included
    try:
        while True:
            sampler.set_epoch(epoch)
            for global_crops, _ in loader:
                if timed_from is None:
                    timed_from = time.perf_counter()
                    stop_at = min(deadline, time.monotonic() + sizes.loader_s)
                else:
                    clips += global_crops.shape[0]
                if time.monotonic() >= stop_at and clips:
                    break
            else:
                epoch += 1
                continue
            break
    finally:
        del loader  # stops the worker processes
    assert timed_from is not None
    return {
        "workers": workers,
        "clips_per_s": clips / (time.perf_counter() - timed_from),
        "clips": clips,
        "batch": batch,
        "videos": len(index.videos),
        "reader": "pyav" if import_av() is not None else "opencv",
    }


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Training logs at INFO would flood the console of a timed run; warnings still show."""
    import logging

    logger = logging.getLogger("ino")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
