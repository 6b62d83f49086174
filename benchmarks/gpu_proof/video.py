"""Parts (b) and (c) of ``benchmarks/gpu_proof.py``: propagation speed at 480p, and a short from-scratch training
run scored on davis-dev against its random init. Same conventions as :mod:`gpu_proof.parts` (a deadline in, a
JSON-able dict out, exceptions left to the caller).
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ino.configs.schema import TrainConfig
from ino.training.meta_arch import InoMetaArch
from ino.utils.distributed import synchronize

from .parts import EPOCHS, Sizes, peak_memory_gib, reset_memory


# ---------------------------------------------------------------------------------------------------------- part b
def propagation_config(sizes: Sizes, feature_dtype: str) -> Any:
    """INO's DAVIS protocol (``ino-davis``: short side 480, block 7 + norm, top-k 5, first + 10 previous, radius
    40, temperature 0.1), adapted to the backbone's patch size as ``ino propagate`` adapts it."""
    from ino.propagation.presets import for_patch_size, resolve_config

    config = resolve_config("ino-davis", feature_dtype=feature_dtype, short_side=sizes.prop_short_side)
    return for_patch_size(config, sizes.prop_patch)


def davis_frames(davis_root: Path) -> tuple[list[Path], np.ndarray]:
    """Every 480p JPEG of the DAVIS-layout folder with the size of the first sequence's, and that sequence's first
    annotation (the mask the stream starts from)."""
    from PIL import Image

    from ino.data.davis import DavisLayout, read_object_ids

    layout = DavisLayout(davis_root)
    names = layout.sequences()
    first = layout.image_frames(names[0])
    mask = read_object_ids(layout.annotation_dir(names[0]) / f"{first[0].stem}.png")
    with Image.open(first[0]) as image:
        size = image.size
    paths = []
    for name in names:
        frames = layout.image_frames(name)
        with Image.open(frames[0]) as image:
            if image.size == size:
                paths.extend(frames)
    return paths, mask


def propagation_speed(
    sizes: Sizes, device: torch.device, davis_root: Path, feature_dtype: str, deadline: float
) -> dict[str, Any]:
    """Frames/s of :meth:`VideoPropagator.run` (JPEG decode in a background thread, ViT features
    ``prop_batch`` frames at a time, propagation, masks back at the frame size; writing PNGs excluded) on the
    DAVIS frames cycled as one stream, after a short warm-up stream; stops at ``prop_frames`` or ``deadline``."""
    from ino.data.davis import read_frame
    from ino.models.weights import load_backbone
    from ino.propagation.api import VideoPropagator
    from ino.propagation.features import map_frames
    from ino.propagation.presets import target_size

    config = propagation_config(sizes, feature_dtype)
    paths, mask = davis_frames(davis_root)
    reset_memory(device)
    built = time.perf_counter()
    backbone = load_backbone("random", arch=sizes.prop_arch, patch_size=sizes.prop_patch)
    propagator = VideoPropagator(backbone, config, device=device, batch_size=sizes.prop_batch)
    build_s = time.perf_counter() - built

    def stream(count: int) -> Iterator[np.ndarray]:
        return map_frames(read_frame, itertools.islice(itertools.cycle(paths), count), depth=2 * sizes.prop_batch)

    started = time.perf_counter()
    for _ in propagator.run(stream(sizes.prop_warmup_frames), {0: mask}):
        pass
    synchronize(device)
    warmup_s = time.perf_counter() - started
    reset_memory(device)
    frames, started = 0, time.perf_counter()
    for _ in propagator.run(stream(sizes.prop_frames), {0: mask}):
        frames += 1
        if time.monotonic() >= deadline and frames >= 2 * sizes.prop_batch:
            break
    synchronize(device)
    elapsed = time.perf_counter() - started
    fps = frames / elapsed
    height, width = mask.shape
    target = target_size(height, width, config)
    result = {
        "feature_dtype": feature_dtype,
        "frames": frames,
        "seconds": elapsed,
        "frames_per_s": fps,
        "ms_per_frame": 1000 / fps,
        "projected_2000_frames_s": 2000 / fps,
        "meets_30s_target": 2000 / fps <= 30.0,
        "peak_memory_gib": peak_memory_gib(device),
        "warmup_frames": sizes.prop_warmup_frames,
        "warmup_s": warmup_s,
        "build_s": build_s,
        "protocol": {
            "frames": f"{len(paths)} DAVIS JPEGs of {davis_root.name}, cycled as one stream",
            "frame_size": f"{width}x{height} -> {target[1]}x{target[0]}",
            "grid": f"{target[0] // config.patch_size}x{target[1] // config.patch_size}",
            "backbone": f"random-init {sizes.prop_arch}/{sizes.prop_patch} (speed does not depend on the weights)",
            "block": config.feature_block + 1,
            "topk": config.topk,
            "context": f"first + {config.n_last_frames} previous",
            "radius": config.radius,
            "batch_size": sizes.prop_batch,
            "chunk_size": config.chunk_size,
        },
    }
    del propagator, backbone
    reset_memory(device)
    return result


# ---------------------------------------------------------------------------------------------------------- part c
def plan_training(sizes: Sizes, videos: Path, run_dir: Path, cache: Path, steps: int, workers: int) -> TrainConfig:
    """The preset's recipe for ``steps`` steps on ``videos``, cut into about :data:`EPOCHS` epochs as ``ino demo``
    cuts its runs: the fewest clips per video per epoch that make an epoch of steps / 10 steps (the loop writes a
    ~0.45 GB checkpoint at every epoch end, so the preset's 5 clips per video, 10 steps an epoch here, would spend
    a third of the budget saving), one fifth of the epochs warm-up (the paper's 5 of 25), the clean schedule (the
    authors' enters its schedules one epoch in), and ``max_steps`` = ``steps``."""
    from ino.data.clips import ClipIndex, ClipSampler, list_videos

    c = sizes.train_config().clips
    index = ClipIndex.build(
        list_videos([str(videos)]), c.clip_len, c.sampling, c.target_fps, c.frame_stride, cache_dir=cache, workers=8
    )
    most, wanted = int(index.clip_counts.max()), math.ceil(steps / EPOCHS)
    per_video = next(
        (
            k
            for k in range(1, most + 1)
            if ClipSampler(index, k, batch_size=sizes.train_batch).steps_per_epoch >= wanted
        ),
        most,
    )
    per_epoch = ClipSampler(index, per_video, batch_size=sizes.train_batch).steps_per_epoch
    if per_epoch < 1:
        raise RuntimeError(f"{videos}: the videos give fewer clips than one step of {sizes.train_batch} needs")
    epochs = max(2, math.ceil(steps / per_epoch))
    return sizes.train_config(
        data=[str(videos)],
        output_dir=str(run_dir),
        clips={"clips_per_video": per_video, "cache_dir": str(cache), "workers": workers},
        optim={"batch_size": sizes.train_batch, "epochs": epochs, "warmup_epochs": max(1, round(epochs / 5))}
        | {"schedule": "clean"},
        run={"seed": 0, "max_steps": steps, "checkpoint_every": steps, "log_every": 1},
    )


def train_run(
    sizes: Sizes,
    device: torch.device,
    videos: Path,
    work: Path,
    train_s: float,
    clips_per_s: float,
    workers: int,
) -> dict[str, Any]:
    """``ino.training.loop.train`` from scratch for ``train_s`` seconds of wall time (clip index and checkpoints
    included): the steps are planned from the measured ``clips_per_s`` so that the schedules fit the run, and a
    deadline stops it at ``train_s`` whatever happens."""
    from ino.training.log import read_log
    from ino.training.loop import train

    started = time.monotonic()
    steps, overhead = sizes.train_min_steps, sizes.train_fixed_s
    for _ in range(2):  # the epochs (each ends in a checkpoint) depend on the steps, and the steps on their cost
        steps = max(sizes.train_min_steps, int((train_s - overhead) * clips_per_s / sizes.train_batch))
        config = plan_training(sizes, videos, work / "run", work / "clip-index", steps, workers)
        overhead = sizes.train_fixed_s + config.optim.epochs * sizes.checkpoint_s
    trained = train(config, progress=False, device=str(device), deadline=started + train_s)
    wall = time.monotonic() - started
    if trained.checkpoint is None:
        raise RuntimeError("training wrote no checkpoint")
    records = [r for r in read_log(trained.run_dir) if "loss" in r]  # one line per step (log_every 1)
    steps_s = sum(config.optim.batch_size / r["clips_per_s"] for r in records)
    o = config.optim
    summary = {
        "steps": trained.step,
        "planned_steps": steps,
        "stopped_at_deadline": trained.stopped_at_deadline,
        "wall_s": wall,
        "steps_s": steps_s,
        "outside_steps_s": wall - steps_s,
        "outside_steps_note": "clip index, model build, epoch-end and final checkpoints (loader start-up is in the "
        "first step's data wait)",
        "budget_s": train_s,
        "planned_from_clips_per_s": clips_per_s,
        "planned_overhead_s": overhead,
        "clips_seen": trained.step * o.batch_size,
        "first_loss": records[0]["loss"] if records else None,
        "last_loss": trained.losses[-1] if trained.losses else None,
        "mean_data_wait": statistics.fmean(r["data_wait"] for r in records) if records else None,
        "checkpoint": str(trained.checkpoint),
        "recipe": {
            **sizes.protocol(),
            "videos": str(videos),
            "batch_size": o.batch_size,
            "clips_per_video_per_epoch": config.clips.clips_per_video,
            "steps_per_epoch": steps_per_epoch(config),
            "epochs": o.epochs,
            "warmup_epochs": o.warmup_epochs,
            "base_lr": o.base_lr,
            "schedule": o.schedule,
            "loader_workers": config.clips.workers,
            "seed": config.run.seed,
            "loss_weights": {"out": config.loss.w_out, "mim": config.loss.w_mim, "aff": config.loss.w_aff},
        },
    }
    return summary


def steps_per_epoch(config: TrainConfig) -> int:
    from ino.data.clips import ClipIndex, ClipSampler, list_videos

    c = config.clips
    index = ClipIndex.build(list_videos(config.data), c.clip_len, c.sampling, c.target_fps, c.frame_stride,
                            cache_dir=c.cache_dir, workers=1)  # fmt: skip
    return ClipSampler(index, c.clips_per_video, batch_size=config.optim.batch_size).steps_per_epoch


def random_init_backbone(config: TrainConfig) -> Any:
    """The student backbone exactly as training initialised it (same seed, same draws), in eval mode."""
    return InoMetaArch(config, torch.device("cpu")).student.backbone.eval()


def davis_sequences(sizes: Sizes, davis_root: Path) -> list[str]:
    from ino.data.davis import DavisLayout

    names = DavisLayout(davis_root).sequences()
    return names[: sizes.davis_sequences] if sizes.davis_sequences else names


def score_backbone(
    sizes: Sizes, device: torch.device, backbone: Any, davis_root: Path, out: Path, names: list[str]
) -> dict[str, Any]:
    """Propagate ``names`` of the DAVIS-layout folder from their first annotations and score them (J&F)."""
    from ino.evaluation.scorer import evaluate
    from ino.propagation.api import VideoPropagator
    from ino.propagation.runs import propagate_davis

    config = propagation_config(sizes, "float32")  # the VideoPropagator adapts it to the backbone's patch size
    propagator = VideoPropagator(backbone, config, device=device, batch_size=sizes.eval_batch)
    started = time.perf_counter()
    propagate_davis(
        davis_root,
        out,
        propagator,
        {"gpu_proof": asdict(propagator.config)},
        sequences=names,
        max_frames=sizes.davis_max_frames,
        progress=False,
    )
    propagate_s = time.perf_counter() - started
    evaluation = evaluate(davis_root, out, sequences=names, max_frames=sizes.davis_max_frames)
    per_object = {name: {k: row[k] for k in ("J-Mean", "F-Mean")} for name, row in evaluation.object_rows()}
    for row in per_object.values():
        row["J&F-Mean"] = (row["J-Mean"] + row["F-Mean"]) / 2
    del propagator
    reset_memory(device)
    return {
        "global": evaluation.global_results(),
        "per_sequence_jf": evaluation.sequence_jf(),
        "per_object": per_object,
        "propagate_s": propagate_s,
        "frames_scored": evaluation.protocol["frames_scored"],
        "n_frame_objects": evaluation.protocol["n_frame_objects"],
    }
