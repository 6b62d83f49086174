"""INO self-supervised training (spec §1-§6): one process on a CPU or GPU, or many under ``torchrun``.

One step (spec §5.6, faithful order): draw the mask (the same on every rank: seeded by (seed, step)); set lr and
weight decay; teacher forward on the global crops, student forward on the masked global crops and the local
crops; L = w_out L_out + w_mim L_mim + w_aff L_aff; backward; per-parameter gradient clip at 3; drop the head's
last-layer gradients during the first ``freeze_last_layer`` epochs; AdamW step; teacher EMA.

Fixed relative to the authors' code: 0-based epochs over exactly ``epochs`` (no skipped warm-up epoch, the
last-layer freeze happens), no crash when not distributed, a bad video takes another clip, resume restores
everything (models, optimiser, scaler, centres, RNG, position inside the epoch): 2N straight steps and N + N
resumed steps give identical weights in deterministic mode.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ino import distributed
from ino.atomic import atomic_write_text
from ino.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ino.config import TrainConfig, dump_yaml, to_dict
from ino.data.augment import MultiCropAugment
from ino.data.clips import ClipDataset, ClipIndex, ClipSampler, list_videos, make_loader
from ino.errors import InoError
from ino.losses import InoLoss, teacher_entropy
from ino.masking import block_masks, random_shared_mask
from ino.models.network import InoNetwork, build_network
from ino.models.teacher import ema_update, make_teacher
from ino.models.weights import load_backbone
from ino.schedules import (
    clip_gradients_per_parameter,
    lr_schedule,
    teacher_momentum_schedule,
    weight_decay_schedule,
)
from ino.train_log import TrainLog

#: settings that may change between a run and its resumption (they do not change the maths)
RESUMABLE_CHANGES = {("run", "max_steps"), ("run", "log_every"), ("run", "checkpoint_every"), ("run", "keep_last")}


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    losses: list[float]


def _precision(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 on GPU by default, fp32 (None) on the CPU, where bf16 is slower."""
    choice = config.optim.precision
    if choice == "auto":
        choice = "bf16" if device.type == "cuda" else "fp32"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[choice]


def _param_groups(network: InoNetwork) -> list[dict]:
    """Group 0 (decayed): every trainable tensor with ndim > 1 that is not a bias; group 1: the rest (wd 0)."""
    decayed, plain = [], []
    for name, parameter in network.named_parameters():
        if not parameter.requires_grad:
            continue
        (plain if name.endswith(".bias") or parameter.ndim <= 1 else decayed).append(parameter)
    return [{"params": decayed}, {"params": plain, "weight_decay": 0.0}]


def _check_resumable(saved: dict, config: TrainConfig, path: Path) -> None:
    current = to_dict(config)
    changed = [
        f"{group}.{key}"
        for group, values in saved.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if (group, key) not in RESUMABLE_CHANGES and current.get(group, {}).get(key) != value
    ]
    changed += [k for k in ("data",) if saved.get(k) != current.get(k)]
    if changed:
        raise InoError(
            f"{path} was written with other settings ({', '.join(changed)}); use another --output-dir to start a "
            "new run, or the original settings to resume"
        )


def _build_network(config: TrainConfig) -> InoNetwork:
    m = config.model
    network = build_network(m.arch, m.patch_size, m.img_size, m.drop_path, m.out_dim, m.hidden_dim, m.bottleneck_dim)
    if m.init != "random":
        network.backbone.load_state_dict(load_backbone(m.init, arch=m.arch, patch_size=m.patch_size).state_dict())
    return network


def _step_mask(config: TrainConfig, step: int, rank: int, clips: int, grid: int) -> tuple[torch.Tensor | None, str]:
    """This step's mask: (N,) shared (faithful, identical on every rank) or (B, N) per clip; None if unmasked."""
    if config.masking.mode == "random_shared":
        mask = random_shared_mask(np.random.default_rng([config.run.seed, step]), grid * grid, **_mask_args(config))
        return (mask if mask.any() else None), "shared"
    rng = np.random.default_rng([config.run.seed, step, rank])
    masks = block_masks(rng, clips, (grid, grid), **_mask_args(config)).flatten(1)
    return (masks if masks.any() else None), "per_clip"


def _mask_args(config: TrainConfig) -> dict:
    return {"prob": config.masking.prob, "ratio": tuple(config.masking.ratio)}


def train(config: TrainConfig, progress: bool = True, device: str | None = None) -> TrainResult:
    """Run (or resume) training as configured; returns where it stopped."""
    config.validate()
    if not config.data:
        raise InoError("no training data: pass --data with a folder, glob or CSV list of videos")
    dist = distributed.setup(device)
    try:
        return _train(config, dist, progress)
    finally:
        distributed.cleanup()


def _train(config: TrainConfig, dist: distributed.Distributed, progress: bool) -> TrainResult:
    run_dir = Path(config.output_dir)
    resume_path = latest_checkpoint(run_dir)
    resumed = load_checkpoint(resume_path) if resume_path else None
    if resumed is not None:
        _check_resumable(resumed["config"], config, resume_path)
    if config.run.deterministic:
        torch.use_deterministic_algorithms(True)
    device = dist.device

    clips = config.clips
    index_cache = clips.cache_dir or str(run_dir / "clip-index")
    if not dist.is_main:
        distributed.barrier()  # let rank 0 build the cache once
    index = ClipIndex.build(
        list_videos(config.data),
        clip_len=clips.clip_len,
        sampling=clips.sampling,
        target_fps=clips.target_fps,
        frame_stride=clips.frame_stride,
        cache_dir=index_cache,
        workers=clips.index_workers,
        backend=clips.backend,
    )
    if dist.is_main:
        distributed.barrier()
    batch = config.optim.batch_size
    sampler = ClipSampler(
        index, clips.clips_per_video, seed=config.run.seed, rank=dist.rank, world_size=dist.world_size, batch_size=batch
    )
    steps_per_epoch = sampler.steps_per_epoch
    if steps_per_epoch < 1:
        raise InoError(
            f"{len(index.videos)} usable videos give fewer clips per epoch than one step needs "
            f"({batch} clips x {dist.world_size} processes); add videos or lower optim.batch_size"
        )
    total_steps = config.optim.epochs * steps_per_epoch
    stop_step = min(total_steps, config.run.max_steps or total_steps)
    dataset = ClipDataset(index, MultiCropAugment(config.augment), seed=config.run.seed)

    torch.manual_seed(config.run.seed)  # identical initial weights on every rank
    student = _build_network(config).to(device)
    teacher = make_teacher(student)
    loss_fn = InoLoss(
        config.model.out_dim,
        (config.loss.w_out, config.loss.w_mim, config.loss.w_aff),
        config.loss.out_mode,
        config.loss.tau_s,
        config.loss.tau_t,
        config.loss.tau_t_aff,
        config.loss.center_momentum,
    ).to(device)
    optimizer = torch.optim.AdamW(_param_groups(student), lr=0.0)
    autocast_dtype = _precision(config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
    total_clips = batch * dist.world_size
    o = config.optim
    lrs = lr_schedule(o.base_lr, total_clips, total_steps, o.warmup_epochs * steps_per_epoch, o.min_lr, clips.clip_len)
    wds = weight_decay_schedule(total_steps, o.weight_decay, o.weight_decay_end)
    momenta = teacher_momentum_schedule(total_steps, o.momentum_teacher, 1.0)

    step = 0
    if resumed is not None:
        student.load_state_dict(resumed["student"])
        teacher.load_state_dict(resumed["teacher"])
        optimizer.load_state_dict(resumed["optimizer"])
        scaler.load_state_dict(resumed["scaler"])
        loss_fn.load_state_dict(resumed["loss"])
        torch.set_rng_state(resumed["rng"]["torch"])
        if device.type == "cuda" and "cuda" in resumed["rng"]:
            torch.cuda.set_rng_state(resumed["rng"]["cuda"], device)
        step = int(resumed["step"])
    model = DistributedDataParallel(student, find_unused_parameters=True) if dist.enabled else student
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", dump_yaml(config))
    log = TrainLog(run_dir, dist.is_main, stop_step, step, progress)
    grid = config.augment.global_size // config.model.patch_size
    last_layer = set(student.head.last_layer_parameters())
    losses: list[float] = []
    saved: Path | None = resume_path

    def checkpoint() -> Path | None:
        if not dist.is_main:
            return None
        rng = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        state = {
            "student": student.state_dict(),
            "teacher": teacher.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "loss": loss_fn.state_dict(),
            "step": step,
            "epoch": step // steps_per_epoch,
            "rng": rng,
            "config": to_dict(config),
        }
        path = save_checkpoint(run_dir, state, step, config.run.keep_last)
        log.event(f"saved {path}")
        return path

    loader = make_loader(dataset, sampler, batch, clips.workers, pin_memory=device.type == "cuda")
    try:
        while step < stop_step:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            sampler.set_epoch(epoch)
            sampler.skip(in_epoch * batch)
            waited, started = 0.0, time.perf_counter()
            before = step
            for global_crops, local_crops in loader:
                waited += time.perf_counter() - started
                record = _step(
                    config, model, student, teacher, loss_fn, optimizer, scaler, autocast_dtype, device, dist,
                    global_crops, local_crops, step, epoch, grid, last_layer,
                    lrs[step], wds[step], momenta[step],
                )  # fmt: skip
                elapsed = time.perf_counter() - started
                record.update(clips_per_s=total_clips / max(elapsed, 1e-9), data_wait=waited / max(elapsed, 1e-9))
                losses.append(record["loss"])
                step += 1
                log.step(record)
                if step % config.run.checkpoint_every == 0 or step == stop_step:
                    saved = checkpoint() or saved
                if config.run.eval_every and step % config.run.eval_every == 0:
                    _evaluate(config, student, run_dir, step, device, log, dist)
                if step >= stop_step or step % steps_per_epoch == 0:
                    break
                waited, started = 0.0, time.perf_counter()
            if step == before:
                raise InoError(f"epoch {epoch}: the clip loader gave no batch at position {in_epoch} of the epoch")
            if step % steps_per_epoch == 0 and step % config.run.checkpoint_every and step != stop_step:
                saved = checkpoint() or saved  # epoch end
    finally:
        log.close()
    distributed.barrier()
    return TrainResult(run_dir, step, saved, losses)


def _evaluate(
    config: TrainConfig,
    student: InoNetwork,
    run_dir: Path,
    step: int,
    device: torch.device,
    log: TrainLog,
    dist: distributed.Distributed,
) -> None:
    """Periodic J&F of the student backbone on ``run.eval_davis_root`` (main rank; the others wait)."""
    if dist.is_main and config.run.eval_davis_root:
        from ino.train_eval import davis_jf

        sequences = config.run.eval_sequences.split(",") if config.run.eval_sequences else None
        run = config.run
        folder = run_dir / "eval"
        scores = davis_jf(student.backbone, run.eval_davis_root, folder, device, run.eval_short_side, sequences)
        log.record({"step": step, **scores})
        log.event(f"step {step}: DAVIS J&F-Mean {scores['davis_J&F-Mean']:.4f}")
    distributed.barrier()


def _step(
    config: TrainConfig,
    model: torch.nn.Module,
    student: InoNetwork,
    teacher: InoNetwork,
    loss_fn: InoLoss,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    autocast_dtype: torch.dtype | None,
    device: torch.device,
    dist: distributed.Distributed,
    global_crops: torch.Tensor,
    local_crops: torch.Tensor,
    step: int,
    epoch: int,
    grid: int,
    last_layer: set[torch.nn.Parameter],
    lr: float,
    wd: float,
    momentum: float,
) -> dict:
    """One optimisation step; returns its log record (losses averaged over ranks)."""
    clips, frames = global_crops.shape[:2]
    n_local = local_crops.shape[2]
    # (B, T, ...) -> (T * B, ...) and (B, T, M, ...) -> (T * M * B, ...): the (t, crop, b) order of the losses
    globals_ = global_crops.transpose(0, 1).flatten(0, 1).to(device, non_blocking=True)
    locals_ = local_crops.permute(1, 2, 0, 3, 4, 5).flatten(0, 2).to(device, non_blocking=True)
    mask, kind = _step_mask(config, step, dist.rank, clips, grid)
    student_mask = patch_index = loss_mask = None
    if mask is not None:
        mask = mask.to(device)
        if kind == "shared":
            student_mask = mask.expand(frames * clips, -1)
            patch_index = mask.nonzero().squeeze(1)
        else:
            student_mask = mask.unsqueeze(0).expand(frames, -1, -1).flatten(0, 1)
            patch_index = torch.arange(grid * grid, device=device)
            loss_mask = mask
    for index, group in enumerate(optimizer.param_groups):
        group["lr"] = float(lr)
        if index == 0:
            group["weight_decay"] = float(wd)

    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        with torch.no_grad():
            t_out = teacher(globals_, None, None, patch_index)
        s_out = model(globals_, locals_, student_mask, patch_index)
    width = t_out.global_cls.shape[-1]
    teacher_patch = student_patch = None
    if mask is not None:
        teacher_patch = t_out.patches.view(frames, clips, -1, width)
        student_patch = s_out.patches.view(frames, clips, -1, width)
    loss, parts = loss_fn(
        t_out.global_cls.view(frames, clips, width),
        s_out.global_cls.view(frames, clips, width),
        s_out.local_cls.view(frames, n_local, clips, width),
        teacher_patch,
        student_patch,
        loss_mask,
    )
    names = ["loss", "out", "mim", "aff"]
    values = torch.stack([loss.detach(), *(parts.get(n, torch.zeros((), device=device)) for n in names[1:])])
    entropy = teacher_entropy(t_out.global_cls.float(), loss_fn.center_cls.center, config.loss.tau_t)
    reduced = distributed.mean_over_ranks(torch.cat([values.float(), entropy.reshape(1).float()])).tolist()
    if not all(math.isfinite(v) for v in reduced):
        raise InoError(
            f"non-finite loss at step {step} ({dict(zip(names, reduced[:4], strict=True))}); training stopped, "
            "the last checkpoint in the run folder is the last good state"
        )
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    if config.optim.clip_grad > 0:
        clip_gradients_per_parameter(student.parameters(), config.optim.clip_grad)
    if epoch < config.optim.freeze_last_layer:
        for parameter in last_layer:
            parameter.grad = None
    scaler.step(optimizer)
    scaler.update()
    ema_update(teacher, student, float(momentum))
    record = {"step": step, "epoch": epoch, **dict(zip(names, reduced[:4], strict=True))}
    record.update(
        teacher_entropy=reduced[4], masked=mask is not None, lr=float(lr), wd=float(wd), momentum=float(momentum)
    )
    return record
